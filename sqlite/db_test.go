package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSecondServerRefusedAtOnce: a second server on a data directory in
// use is refused at once, and its refusal does not touch the running
// server's files (a TRUNCATE checkpoint on the way out used to wait out the
// busy timeout for the running server's readers, holding off its writer).
func TestSecondServerRefusedAtOnce(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateOrg(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	// A reader of the running server holds an old snapshot.
	conn, err := s.rdb.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, `ROLLBACK`)
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM orgs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOrg(ctx, "b"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	_, err = Open(ctx, dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "another Veritrail server") {
		t.Fatalf("second open: %v, want refusal", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the refusal took %v: it waited on the running server", d)
	}
}
