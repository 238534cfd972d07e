package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
)

// Token revocations must reach a server's token cache at once, including
// revocations made by another process (veritrail token revoke beside a
// running server). Each revocation bumps token_generation in meta, in its
// own transaction, and then appends one byte to the revocations file of the
// data directory. A server's RevocationGeneration is the size of that file,
// read with one fstat and no SQL, plus the database's generation as last
// polled (every second by checkpointLoop): the file makes a completed
// revocation visible at once, the poll covers a revoking process that died
// between its commit and its append.

// RevocationsFile is the data directory's revocations file.
const RevocationsFile = "token-revocations"

// revocations is the store's side of the file.
type revocations struct {
	f      *os.File
	fd     int
	polled atomic.Uint64 // token_generation as last read from the database
}

func openRevocations(dir string, readOnly bool) (*revocations, error) {
	flag := os.O_RDWR | os.O_CREATE | os.O_APPEND
	if readOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(filepath.Join(dir, RevocationsFile), flag, 0o600)
	if readOnly && os.IsNotExist(err) {
		return &revocations{fd: -1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open the token revocations file: %w", err)
	}
	return &revocations{f: f, fd: int(f.Fd())}, nil
}

func (r *revocations) close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// announce tells every process with the directory open that a revocation
// was committed.
func (r *revocations) announce() error {
	if _, err := r.f.Write([]byte{'\n'}); err != nil {
		return fmt.Errorf("the token was revoked, but running servers may notice it only within a second: %w", err)
	}
	return nil
}

// size is the number of revocations announced through the file.
func (r *revocations) size() (uint64, error) {
	if r.fd < 0 {
		return 0, nil
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(r.fd, &st); err != nil {
		return 0, fmt.Errorf("read the token revocations file: %w", err)
	}
	return uint64(st.Size), nil
}

// readGeneration reads token_generation.
func readGeneration(ctx context.Context, db *sql.DB) (uint64, error) {
	var g uint64
	err := db.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'token_generation'`).Scan(&g)
	return g, err
}

// pollGeneration refreshes the polled generation (checkpointLoop).
func (s *Store) pollGeneration(ctx context.Context) {
	g, err := readGeneration(ctx, s.cdb)
	if err != nil {
		s.log.Warn("could not read the token revocation generation", slog.Any("err", err))
		return
	}
	s.revoked.polled.Store(g)
}

// RevocationGeneration implements veritrail.TokenStore. One generation
// serves every organization: a revocation anywhere changes it, which
// costs other organizations' cached tokens one reread each.
func (s *Store) RevocationGeneration(ctx context.Context, orgID int64) (uint64, error) {
	n, err := s.revoked.size()
	if err != nil {
		return 0, err
	}
	polled := s.revoked.polled.Load()
	if s.ckptDone == nil {
		// No poll loop (an administration or read-only store): read the
		// database itself.
		if polled, err = readGeneration(ctx, s.rdb); err != nil {
			return 0, err
		}
	}
	// Both only grow, so the sum changes whenever either does.
	return n + polled, nil
}
