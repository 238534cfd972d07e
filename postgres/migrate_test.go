package postgres_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/storetest"
)

// previous is a database made and filled by the schema before it was made
// distributable (testdata/README.md says how).
const previous = "testdata/main-0004.sql.gz"

// Its two tokens, of the form that names no organization.
const (
	previousDefaultToken = "vt_legacy-bootstrap-token-0123456789abcdef"
	previousGlobexToken  = "vt_gJ7cUBCu1HJUZQ8wQCwk4E5SFmUxzf9whOLYWX_o9l8"
)

// TestConformanceOnPreviousSchema runs the store suite on databases made
// by the previous schema (its tables, partitions and applied migrations,
// emptied of rows) and migrated by this code.
func TestConformanceOnPreviousSchema(t *testing.T) {
	storetest.Run(t, func(t *testing.T) veritrail.Store {
		ctx := context.Background()
		url := pgtest.New(t)
		pgtest.Load(t, url, previous)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `TRUNCATE orgs, meta, tokens, users, teams, settings, log_heads, tiles, events, contents, event_ids,
			checkpoints, witness_log, removals, exports, export_files, leases, sinks RESTART IDENTITY`); err != nil {
			t.Fatal(err)
		}
		return openURL(t, url)
	})
}

// TestMigrateFromPreviousSchema opens a filled database of the previous
// schema with this code: the migration keeps every row, and everything
// works on it: its tokens, its logs (appends continue them, checkpoints
// continue their history), queries, retention, exports, sinks and leases.
func TestMigrateFromPreviousSchema(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t)
	pgtest.Load(t, url, previous)
	s := openURL(t, url).(*postgres.Store)
	defer s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)

	// Tokens made before still authenticate, through their routes.
	orgs := map[string]int64{}
	for name, secret := range map[string]string{"default": previousDefaultToken, "globex": previousGlobexToken} {
		o, err := s.OrgByName(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		orgs[name] = o.ID
		lookup, _ := veritrail.HashToken(secret)
		tok, err := s.TokenByLookup(ctx, lookup)
		if err != nil || tok.OrgID != o.ID || !veritrail.TokenMatches(secret, tok.Hash) {
			t.Fatalf("token of %s made before the migration: %+v %v", name, tok, err)
		}
	}
	// A new token names its organization.
	secret := veritrail.NewOrgTokenSecret(orgs["globex"])
	lookup, hash := veritrail.HashToken(secret)
	if err := s.CreateToken(ctx, &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: orgs["globex"], Role: veritrail.RoleAuditor, Lookup: lookup, Hash: hash}); err != nil {
		t.Fatal(err)
	}
	if tok, err := s.TokenByLookup(ctx, lookup); err != nil || tok.OrgID != orgs["globex"] {
		t.Fatalf("new token: %+v %v", tok, err)
	}

	for name, org := range orgs {
		// The checkpoint history became one chain.
		rows, err := conn.Query(ctx, `SELECT size, prev_size FROM checkpoints WHERE org_id = $1 ORDER BY size`, org)
		if err != nil {
			t.Fatal(err)
		}
		type link struct{ size, prev *int64 }
		chain, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (l link, err error) {
			err = r.Scan(&l.size, &l.prev)
			return l, err
		})
		if err != nil || len(chain) < 2 {
			t.Fatalf("%s: checkpoints %v %v, want the history of several", name, chain, err)
		}
		for i, l := range chain {
			if i == 0 && l.prev != nil || i > 0 && (l.prev == nil || *l.prev != *chain[i-1].size) {
				t.Fatalf("%s: checkpoint %d follows %v, want the one before it", name, *l.size, l.prev)
			}
		}

		// Queries over the events stored before (no envelope was removed).
		before, _, err := s.LogHead(ctx, org)
		if err != nil || before < 35 {
			t.Fatalf("%s: log of %d (%v), want the 35 events and the audit records", name, before, err)
		}
		page, err := s.Query(ctx, org, &veritrail.Query{Order: veritrail.OrderSeq, Limit: 1000})
		if err != nil || int64(len(page.Events)) != before {
			t.Fatalf("%s: %d events (%v), want the log's %d", name, len(page.Events), err, before)
		}
		f := veritrail.Filter{Field: veritrail.FieldType, Ranges: []veritrail.KeyRange{veritrail.Exact("file.write")}}
		if page, err := s.Query(ctx, org, &veritrail.Query{Filters: []veritrail.Filter{f}, Limit: 100}); err != nil || len(page.Events) != 10 {
			t.Fatalf("%s: %d events of type file.write (%v), want 10", name, len(page.Events), err)
		}
		if page, err := s.Query(ctx, org, &veritrail.Query{Text: "round", TextInContent: true, Limit: 100}); err != nil || len(page.Events) == 0 {
			t.Fatalf("%s: full text found %d (%v)", name, len(page.Events), err)
		}

		// Appends continue the log; a checkpoint continues the history.
		var evs []*veritrail.Event
		for i := range 5 {
			e := &veritrail.Event{ID: "after-" + string(rune('a'+i)), Type: "auth.login", Time: time.Now().UTC().Add(-time.Minute),
				Actor: veritrail.Actor{Type: "user", ID: "u1"}, Content: []byte(`{"n":1}`)}
			e.Prepare()
			evs = append(evs, e)
		}
		res, err := s.Append(ctx, org, evs)
		if err != nil || res[0].Seq != before || res[4].Seq != before+4 {
			t.Fatalf("%s: append after the migration: %+v %v, want seqs from %d", name, res, err, before)
		}
		size, root, err := s.LogHead(ctx, org)
		if err != nil || size != before+5 {
			t.Fatalf("%s: head %d %v", name, size, err)
		}
		// The stats' counts cover the events stored before (built by the
		// migration) and those appended since.
		var all, writes int64
		if err := conn.QueryRow(ctx, `SELECT coalesce(sum(n) FILTER (WHERE field = 0), 0), coalesce(sum(n) FILTER (WHERE field = 1 AND key = 'file.write'), 0)
			FROM event_counts WHERE org_id = $1`, org).Scan(&all, &writes); err != nil {
			t.Fatal(err)
		}
		if all != size || writes != 10 {
			t.Fatalf("%s: event_counts hold %d events, %d of type file.write; want %d and 10", name, all, writes, size)
		}
		if err := s.AddCheckpoint(ctx, org, &veritrail.Checkpoint{Size: size, Root: root, Note: []byte("note"), SignedAt: time.Now()}); err != nil {
			t.Fatalf("%s: checkpoint after the migration: %v", name, err)
		}
		last := chain[len(chain)-1]
		if err := s.AddCheckpoint(ctx, org, &veritrail.Checkpoint{Size: *last.size - 1, Root: root, Note: []byte("note"), SignedAt: time.Now()}); veritrail.ErrorCode(err) != veritrail.EConflict {
			t.Fatalf("%s: a checkpoint smaller than the latest: %v, want conflict", name, err)
		}
	}

	// Retention removes globex's expired content (default's was removed
	// before the migration) through the guard triggers' gate.
	// (The default rules, at the time the database was made: content
	// kept 90 days.)
	cut := veritrail.DefaultSettings().Cutoffs(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	res, err := s.Expire(ctx, orgs["globex"], cut, "evt_record")
	if err != nil || res.Contents != 5 {
		t.Fatalf("retention after the migration: %+v %v, want 5 contents removed", res, err)
	}

	// The export file made before, the sink, and leases.
	jobs, err := s.ListExports(ctx, orgs["default"])
	if err != nil || len(jobs) != 1 || jobs[0].State != veritrail.ExportReady {
		t.Fatalf("exports: %+v %v", jobs, err)
	}
	f, err := s.OpenExportFile(ctx, orgs["default"], jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(f); err != nil || int64(len(b)) != jobs[0].SizeBytes {
		t.Fatalf("export file: %d bytes %v, want %d", len(b), err, jobs[0].SizeBytes)
	}
	if sinks, err := s.ListSinks(ctx, orgs["default"]); err != nil || len(sinks) != 1 {
		t.Fatalf("sinks: %v %v", sinks, err)
	}
	// The lease a node of the previous version held has expired.
	if ok, err := s.Lease(ctx, "checkpoints", "new-node", time.Minute); err != nil || !ok {
		t.Fatalf("lease: %v %v", ok, err)
	}
}
