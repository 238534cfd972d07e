package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/sqlite"
)

// countsOf dumps event_counts.
func countsOf(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.MainFile)+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT org_id, field, width, slot, key, n FROM event_counts`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var org, field, width, slot, n int64
		var key []byte
		if err := rows.Scan(&org, &field, &width, &slot, &key, &n); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprintf("%d/%d/%d/%d/%q", org, field, width, slot, key)] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCountsFilled opens a store whose events were stored before
// event_counts existed (its rows and the migration's mark removed, as an
// older version left them), after retention removed some: the migration
// counts the events the index holds, as the commit and retention had, and
// the counts survive a restart.
func TestCountsFilled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{BucketShift: 8})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var orgs []int64
	for i, name := range []string{"acme", "globex"} {
		org, err := s.CreateOrg(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, org.ID)
		if err := demo.Load(ctx, s, org.ID, 3000+i*500, "e", base, 7*time.Minute, uint64(i+1), nil); err != nil {
			t.Fatal(err)
		}
	}
	cut := veritrail.DefaultSettings()
	cut.Retention = []veritrail.RetentionRule{{Category: "*", ContentDays: 2, MetadataDays: 4}}
	if res, err := s.Expire(ctx, orgs[0], cut.Cutoffs(base.Add(10*24*time.Hour+5*time.Hour)), "rec"); err != nil || res.Envelopes == 0 {
		t.Fatalf("retention: %+v, %v", res, err)
	}
	sq := &veritrail.StatsQuery{Query: veritrail.Query{Since: base, Until: base.Add(30 * 24 * time.Hour)}, Top: veritrail.CountedFields}
	stats := func(s *sqlite.Store) string {
		var out string
		for _, org := range orgs {
			st, err := s.Stats(ctx, org, sq)
			if err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprint(st.Total, st.Counts, st.Top)
		}
		return out
	}
	want := stats(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	kept := countsOf(t, dir)
	if len(kept) == 0 {
		t.Fatal("no counts kept")
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.MainFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM event_counts`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = '0016_event_counts_fill'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err = sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := stats(s); got != want {
		t.Fatalf("stats after the migration:\n got  %s\n want %s", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	filled := countsOf(t, dir)
	if fmt.Sprint(filled) != fmt.Sprint(kept) {
		t.Fatalf("filled counts differ from kept ones: %d rows against %d", len(filled), len(kept))
	}
}

// demoStore opens a store in dir (buckets of 1<<shift events, closed at
// cleanup) with organization acme holding n sample events from start,
// step apart.
func demoStore(t *testing.T, dir string, shift uint, n int, prefix string, start time.Time, step time.Duration) (*sqlite.Store, *veritrail.Org) {
	t.Helper()
	return demoStoreVia(t, dir, shift, n, prefix, start, step, nil)
}

// demoStoreVia is demoStore appending through via(store) (the store
// itself if via is nil).
func demoStoreVia(t *testing.T, dir string, shift uint, n int, prefix string, start time.Time, step time.Duration, via func(*sqlite.Store) demo.Appender) (*sqlite.Store, *veritrail.Org) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{BucketShift: shift})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	org, err := s.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var to demo.Appender = s
	if via != nil {
		to = via(s)
	}
	if err := demo.Load(ctx, to, org.ID, n, prefix, start, step, 1, nil); err != nil {
		t.Fatal(err)
	}
	return s, org
}
