package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestRawConn checks verification's C-API reader against a file written
// through database/sql: a missing file is refused, not created; integers and blobs read back as written (NULL as
// nil, an empty blob as empty), arguments bound in order, bad SQL and
// writes refused with SQLite's message, and a cancelled context stopping
// a scan.
func TestRawConn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raw.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)`,
		`INSERT INTO t VALUES (1, x'00ff'), (2, NULL), (3, x''), (4, CAST('text' AS BLOB))`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	// A missing file is not created.
	if c, err := openRawConn(path + "-missing"); err == nil || !strings.Contains(err.Error(), "unable to open") {
		if c != nil {
			c.close()
		}
		t.Fatalf("opening a missing file: %v", err)
	}
	pool := &rawPool{path: path}
	defer pool.close()
	c, err := pool.get()
	if err != nil {
		t.Fatal(err)
	}
	defer pool.put(c)
	ctx := context.Background()
	r, err := c.query(ctx, `SELECT k, b FROM t WHERE k >= ? AND k < ? ORDER BY k`, 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for r.next() {
		b := r.bytes(1)
		switch {
		case b == nil:
			got = append(got, "nil")
		case len(b) == 0:
			got = append(got, "empty")
		default:
			got = append(got, string(b))
		}
		if r.int64(0) != int64(len(got)) {
			t.Fatalf("row %d has k %d", len(got), r.int64(0))
		}
	}
	if err := r.close(); err != nil {
		t.Fatal(err)
	}
	if s := strings.Join(got, ","); s != "\x00\xff,nil,empty,text" {
		t.Fatalf("read %q", s)
	}
	if _, err := c.query(ctx, `SELECT missing FROM t`); err == nil || !strings.Contains(err.Error(), "no such column: missing") {
		t.Fatalf("bad SQL: %v", err)
	}
	if err := c.exec(`INSERT INTO t VALUES (5, NULL)`); err == nil {
		t.Fatal("a write through a verification connection succeeded")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	r, err = c.query(cctx, `SELECT k FROM t`)
	if err != nil {
		t.Fatal(err)
	}
	if r.next() || r.close() != context.Canceled {
		t.Fatalf("a cancelled scan: %v", r.err)
	}
}
