package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
)

// TestReindexContext opens a database whose events were stored before
// request_id and user_agent had columns (the columns dropped and the
// migration's mark removed, as the previous schema left them): the
// migration adds them and fills them from the envelopes, so filters find
// the old events and the columns are what new events would get.
func TestReindexContext(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t)
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var orgs []*veritrail.Org
	for _, name := range []string{"acme", "globex"} {
		o, err := s.CreateOrg(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		orgs = append(orgs, o)
	}
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, o := range orgs {
		var evs []*veritrail.Event
		for n := range 4500 { // more than one chunk of the migration
			e := &veritrail.Event{ID: fmt.Sprintf("e%04d", n), Time: base.Add(time.Duration(n%90) * 24 * time.Hour / 3), Type: "auth.login",
				Actor: veritrail.Actor{Type: "user", ID: "u", Name: `say "request_id":`}}
			if n%3 != 0 {
				e.Context = &veritrail.Context{RequestID: fmt.Sprintf("req-%d", n%7), UserAgent: []string{"curl/8.5.0", "Mozilla/5.0"}[n%2]}
			}
			if n%5 == 0 && e.Context != nil {
				e.Context.UserAgent = "" // a request id alone
			}
			evs = append(evs, e)
		}
		if _, err := s.Append(ctx, o.ID, evs); err != nil {
			t.Fatal(err)
		}
	}
	count := func(s veritrail.Store, org int64, name, value string) int {
		q, err := veritrail.ParseQuery(map[string][]string{name: {value}, "order": {"seq"}, "limit": {"1000"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for {
			page, err := s.Query(ctx, org, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) == 0 {
				return n
			}
			n += len(page.Events)
			q.After = page.Next
		}
	}
	wantReq, wantUA := count(s, orgs[1].ID, "request_id", "req-3"), count(s, orgs[1].ID, "user_agent", "curl/*")
	if wantReq == 0 || wantUA == 0 {
		t.Fatalf("fresh store: request_id %d, user_agent %d", wantReq, wantUA)
	}
	s.Close()

	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	columns := func() string {
		rows, err := conn.Query(ctx, `SELECT org_id, seq, request_id, user_agent FROM events ORDER BY org_id, seq`)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for rows.Next() {
			var org, seq int64
			var req, ua []byte
			if err := rows.Scan(&org, &seq, &req, &ua); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%d/%d/%q/%q", org, seq, req, ua))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(out)
	}
	before := columns()
	for _, sql := range []string{`ALTER TABLE events DROP COLUMN request_id, DROP COLUMN user_agent`,
		`DELETE FROM schema_migrations WHERE name = 'migrations/0010_index_context.sql'`} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}

	s, err = postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if after := columns(); after != before {
		t.Fatalf("re-indexed columns differ from what the commit wrote")
	}
	if got, got2 := count(s, orgs[1].ID, "request_id", "req-3"), count(s, orgs[1].ID, "user_agent", "curl/*"); got != wantReq || got2 != wantUA {
		t.Fatalf("after the migration: request_id %d (want %d), user_agent %d (want %d)", got, wantReq, got2, wantUA)
	}
	// The guard is closed again: events still refuse changes.
	if _, err := conn.Exec(ctx, `UPDATE events SET request_id = NULL`); err == nil {
		t.Fatal("events could be updated after the migration")
	}
}
