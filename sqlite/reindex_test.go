package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sqlite"
)

// postingsOf dumps the postings of some fields: (bucket, field, key) →
// offsets, whatever runs hold them.
func postingsOf(t *testing.T, db *sql.DB, fields ...veritrail.Field) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, f := range fields {
		rows, err := db.Query(`SELECT bucket, key, list FROM postings WHERE field = ?`, int(f))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var bucket int64
			var key, list []byte
			if err := rows.Scan(&bucket, &key, &list); err != nil {
				t.Fatal(err)
			}
			k := fmt.Sprintf("%d/%d/%q", bucket, f, key)
			// The list's offsets, uvarint deltas (sqlite/postings.go).
			prev := 0
			for i, b := 0, list; len(b) > 0; i++ {
				u, n := binary.Uvarint(b)
				b = b[n:]
				v := int(u)
				if i > 0 {
					v += prev
				}
				out[k] = append(out[k], v)
				prev = v
			}
		}
		rows.Close()
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

// TestReindexContext opens a store whose events were stored before
// request_id and user_agent were indexed (their postings and the
// migration's mark removed, as an older version left them): the migration
// indexes them from the envelopes, so filters find the old events.
func TestReindexContext(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{BucketShift: 6})
	if err != nil {
		t.Fatal(err)
	}
	org, err := s.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for batch := range 10 {
		var evs []*veritrail.Event
		for i := range 37 {
			n := batch*37 + i
			e := &veritrail.Event{ID: fmt.Sprintf("e%04d", n), Time: base.Add(time.Duration(n) * time.Second), Type: "auth.login",
				Actor: veritrail.Actor{Type: "user", ID: "u"}}
			if n%3 != 0 {
				e.Context = &veritrail.Context{RequestID: fmt.Sprintf("req-%d", n%7), UserAgent: []string{"curl/8.5.0", "Mozilla/5.0"}[n%2]}
			}
			evs = append(evs, e)
		}
		if _, err := s.Append(ctx, org.ID, evs); err != nil {
			t.Fatal(err)
		}
	}
	count := func(s veritrail.Store, name, value string) int {
		q, err := veritrail.ParseQuery(map[string][]string{name: {value}, "limit": {"1000"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		page, err := s.Query(ctx, org.ID, q)
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Events)
	}
	wantReq, wantUA := count(s, "request_id", "req-3"), count(s, "user_agent", "curl/*")
	if wantReq == 0 || wantUA == 0 {
		t.Fatalf("fresh store: request_id %d, user_agent %d", wantReq, wantUA)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.MainFile))
	if err != nil {
		t.Fatal(err)
	}
	before := postingsOf(t, db, veritrail.FieldRequestID, veritrail.FieldUserAgent)
	if len(before) == 0 {
		t.Fatal("no postings of the new fields")
	}
	if _, err := db.Exec(`DELETE FROM postings WHERE field IN (?, ?)`, int(veritrail.FieldRequestID), int(veritrail.FieldUserAgent)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version = '0014_index_context'`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err = sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, got2 := count(s, "request_id", "req-3"), count(s, "user_agent", "curl/*"); got != wantReq || got2 != wantUA {
		t.Fatalf("after the migration: request_id %d (want %d), user_agent %d (want %d)", got, wantReq, got2, wantUA)
	}
	db, err = sql.Open("sqlite", filepath.Join(dir, sqlite.MainFile)+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	after := postingsOf(t, db, veritrail.FieldRequestID, veritrail.FieldUserAgent)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("re-indexed postings differ:\n before %v\n after  %v", before, after)
	}
	// New events are indexed as before, next to the re-indexed ones.
	if _, err := s.Append(ctx, org.ID, []*veritrail.Event{{ID: "new", Time: base, Type: "auth.login", Actor: veritrail.Actor{Type: "user", ID: "u"},
		Context: &veritrail.Context{RequestID: "req-3"}}}); err != nil {
		t.Fatal(err)
	}
	if got := count(s, "request_id", "req-3"); got != wantReq+1 {
		t.Fatalf("after a new event: %d, want %d", got, wantReq+1)
	}
}
