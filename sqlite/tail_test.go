package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
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

// requests is a demo.Appender that sends each batch as requests of n
// events, one after the other (each waits for its acknowledgement).
type requests struct {
	s     *sqlite.Store
	n     int
	after func(s *sqlite.Store, org int64) // called after each request, if set
}

func (r requests) Append(ctx context.Context, org int64, evs []*veritrail.Event) ([]veritrail.AppendResult, error) {
	var out []veritrail.AppendResult
	for len(evs) > 0 {
		k := min(r.n, len(evs))
		res, err := r.s.Append(ctx, org, evs[:k])
		if err != nil {
			return nil, err
		}
		out = append(out, res...)
		evs = evs[k:]
		if r.after != nil {
			r.after(r.s, org)
		}
	}
	return out, nil
}

// tailStore opens a store with buckets of 64 and loads n demo events in
// requests of 10, calling after (if set) after each.
func tailStore(t *testing.T, dir string, n int, after func(s *sqlite.Store, org int64)) (*sqlite.Store, int64) {
	t.Helper()
	s, org := demoStoreVia(t, dir, 6, n, "i-", time.Now().Add(-time.Hour), time.Second, func(s *sqlite.Store) demo.Appender {
		return requests{s: s, n: 10, after: after}
	})
	return s, org.ID
}

// waitTail waits until org's tail holds fewer than n events.
func waitTail(t *testing.T, s *sqlite.Store, org int64, n int) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); s.TailLen(org) >= n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the tail still holds %d events after a minute, want fewer than %d", s.TailLen(org), n)
		}
	}
}

// TestTailWrittenWhenIdle checks that, below the size at which a commit
// writes the tail out, the tail is written out by the idle commit lane in
// a transaction of its own, never in a commit that acknowledges
// requests, and that queries, stats and verify answer for every event
// across those write-outs.
func TestTailWrittenWhenIdle(t *testing.T) {
	defer sqlite.SetTailTriggers(64, 1<<40, 1000*time.Hour)()
	const n = 500
	s, org := tailStore(t, t.TempDir(), n, nil)
	waitTail(t, s, org, 64)
	inCommit, idle := s.TailWrites()
	if inCommit != 0 || idle == 0 {
		t.Fatalf("tails written out: %d in commits, %d by the idle lane; want 0 and some", inCommit, idle)
	}
	checkAll(t, s, org, n)
}

// TestTailBoundedInCommit checks that a lane that is never idle for the
// tail (its idle size never reached) still writes it out in the commit
// that brings it to the commit size: the tail's memory stays bounded.
func TestTailBoundedInCommit(t *testing.T) {
	defer sqlite.SetTailTriggers(1<<40, 64, 1000*time.Hour)()
	const n = 500
	longest := 0
	s, org := tailStore(t, t.TempDir(), n, func(s *sqlite.Store, org int64) {
		longest = max(longest, s.TailLen(org))
	})
	if longest >= 64 {
		t.Fatalf("the tail held %d events after a commit, want fewer than 64", longest)
	}
	inCommit, idle := s.TailWrites()
	if inCommit < n/70 || idle != 0 {
		t.Fatalf("tails written out: %d in commits, %d by the idle lane; want %d and 0", inCommit, idle, n/70)
	}
	checkAll(t, s, org, n)
}

// TestTailCrashBetweenWriteOuts copies a running store after several idle
// write-outs, each leaving the frontier in the middle of a bucket with a
// tail past it, and checks that the copy answers for every event
// read-only and once a writer has rebuilt and written out its tail.
func TestTailCrashBetweenWriteOuts(t *testing.T) {
	defer sqlite.SetTailTriggers(64, 1<<40, 1000*time.Hour)()
	ctx := context.Background()
	dir := t.TempDir()
	n := 300
	s, org := tailStore(t, dir, n, nil)
	waitTail(t, s, org, 64)
	// Where the write-outs fell depends on when the lane was idle: one
	// event more at a time until a tail is left.
	for s.TailLen(org) == 0 {
		if err := demo.Load(ctx, s, org, 1, fmt.Sprintf("one-%d-", n), time.Now(), time.Second, 1, nil); err != nil {
			t.Fatal(err)
		}
		n++
		waitTail(t, s, org, 64)
	}
	if _, idle := s.TailWrites(); idle < 2 {
		t.Fatalf("%d idle write-outs: want several", idle)
	}
	crashed := copyStore(t, dir)
	db, err := sql.Open("sqlite", filepath.Join(crashed, sqlite.MainFile))
	if err != nil {
		t.Fatal(err)
	}
	var frontier int64
	if err := db.QueryRow(`SELECT seq FROM postings_frontier WHERE org_id = ?`, org).Scan(&frontier); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if frontier%64 == 0 || frontier != int64(n-s.TailLen(org)) {
		t.Fatalf("the copy's frontier is %d (tail %d): want it inside a bucket, at the tail", frontier, s.TailLen(org))
	}
	ro, err := sqlite.Open(ctx, crashed, sqlite.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	checkAll(t, ro, org, n)
	ro.Close()
	w, err := sqlite.Open(ctx, crashed, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	checkAll(t, w, org, n)
}
