package sqlite_test

import (
	"context"
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/verify"
)

// copyStore copies a store's files (the database, its WAL, full text) as a
// crash would leave them: the writer still running, its tail unflushed.
func copyStore(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	names, err := filepath.Glob(filepath.Join(from, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		base := filepath.Base(name)
		if base != sqlite.MainFile && base != sqlite.MainFile+"-wal" {
			continue // full text is rebuilt; the lock belongs to the writer
		}
		src, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.Create(filepath.Join(to, base))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		dst.Close()
	}
	return to
}

// checkAll checks that a store answers for all n events: a query pages
// through them, stats count them by type, and verify passes.
func checkAll(t *testing.T, s *sqlite.Store, org int64, n int) {
	t.Helper()
	ctx := context.Background()
	got := 0
	q := &veritrail.Query{Order: veritrail.OrderAsc, Limit: 97}
	for {
		p, err := s.Query(ctx, org, q)
		if err != nil {
			t.Fatal(err)
		}
		got += len(p.Events)
		if p.Next == nil {
			break
		}
		q.After = p.Next
	}
	if got != n {
		t.Fatalf("query pages hold %d events, want %d", got, n)
	}
	// A filter: every demo event has a type, so a range over all types
	// goes through the postings (and the tail).
	p, err := s.Query(ctx, org, &veritrail.Query{Limit: veritrail.MaxLimit,
		Filters: []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{{Lo: "\x00"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != min(n, veritrail.MaxLimit) {
		t.Fatalf("a type filter finds %d events, want %d", len(p.Events), min(n, veritrail.MaxLimit))
	}
	st, err := s.Stats(ctx, org, &veritrail.StatsQuery{Query: veritrail.Query{
		Filters: []veritrail.Filter{{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{{Lo: "\x00"}}}}},
		Top: []veritrail.Field{veritrail.FieldType}, TopLimit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != int64(n) {
		t.Fatalf("stats count %d events, want %d", st.Total, n)
	}
	rep := &verify.Report{Max: 100}
	sums, err := verify.Check(ctx, s.VerifySource(), verify.Options{Index: true}, rep)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || sums[0].Checked != int64(n) {
		t.Fatalf("verify: %+v %v", sums, rep.Failures)
	}
}

// TestTailCrash copies a running store whose postings tail is not written
// out, and checks that the copy, read-only (verify --data) and then opened
// by a writer (which writes the tail out), answers for every acknowledged
// event.
func TestTailCrash(t *testing.T) {
	defer sqlite.SetTailLimits(1<<40, 1000*time.Hour)()
	ctx := context.Background()
	dir := t.TempDir()
	const n = 700 // past several buckets of 64, all in the tail
	s, org := demoStore(t, dir, 6, n, "c-", time.Now().Add(-time.Hour), time.Second)
	crashed := copyStore(t, dir)
	// The running store answers from its tail (verify, last, writes it out).
	checkAll(t, s, org.ID, n)
	db, err := sql.Open("sqlite", filepath.Join(crashed, sqlite.MainFile))
	if err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM postings`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("the copy holds %d postings rows (%v): want its whole index in the tail", rows, err)
	}
	db.Close()

	ro, err := sqlite.Open(ctx, crashed, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, ro, org.ID, n)
	ro.Close()

	w, err := sqlite.Open(ctx, crashed, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	checkAll(t, w, org.ID, n)
}
