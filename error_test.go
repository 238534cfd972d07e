package veritrail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// pgError stands for a PostgreSQL driver's error: it has a SQLSTATE.
type pgError struct{ code string }

func (e *pgError) Error() string    { return "server error (SQLSTATE " + e.code + ")" }
func (e *pgError) SQLState() string { return e.code }

// TestFaultOf: faults of the surroundings get the answer a client can act
// on; coded errors and bugs are left alone.
func TestFaultOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // "" for nil
	}{
		{"nil", nil, ""},
		{"coded", Errorf(EConflict, "x"), ""},
		{"a bug", errors.New("index out of range"), ""},
		{"a constraint", &pgError{"23505"}, ""},
		{"a closed file", &os.PathError{Op: "read", Path: "/d/f", Err: syscall.EBADF}, ""},
		{"ENOSPC", &os.PathError{Op: "write", Path: "/d/f", Err: syscall.ENOSPC}, EInsufficientStorage},
		{"SQLITE_FULL", fmt.Errorf("commit: %w", errors.New("database or disk is full (13)")), EInsufficientStorage},
		{"disk_full", &pgError{"53100"}, EInsufficientStorage},
		{"deadline", fmt.Errorf("commit: %w", context.DeadlineExceeded), EUnavailable},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, EUnavailable},
		{"cut mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), EUnavailable},
		{"admin shutdown", &pgError{"57P01"}, EUnavailable},
		{"starting up", &pgError{"57P03"}, EUnavailable},
		{"connection failure", &pgError{"08006"}, EUnavailable},
		{"too many connections", &pgError{"53300"}, EUnavailable},
	} {
		f := FaultOf(tc.err)
		got := ""
		if f != nil {
			got = f.Code
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
