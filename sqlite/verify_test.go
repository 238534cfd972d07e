package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/verify"
)

// TestVerifyCounts checks that verify --data compares the stored counts
// of events (event_counts, what stats read) with the envelopes: an honest
// store passes, and a count changed, removed or added is reported as
// such, naming what it counts.
func TestVerifyCounts(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		tamper string // run on the store's file
		want   string // in the failure's detail
	}{
		{name: "honest"},
		{name: "a count raised",
			tamper: `UPDATE event_counts SET n = n + 1 WHERE (field, width, slot, key) IN (SELECT field, width, slot, key FROM event_counts WHERE field = 0 AND width = 3600 LIMIT 1)`,
			want:   "events in the hour from"},
		{name: "a value's count lowered",
			tamper: `UPDATE event_counts SET n = n - 1 WHERE (field, width, slot, key) IN (SELECT field, width, slot, key FROM event_counts WHERE field > 0 AND width = 86400 AND n > 1 ORDER BY key LIMIT 1)`,
			want:   "in the day from"},
		{name: "a count removed",
			tamper: `DELETE FROM event_counts WHERE (field, width, slot, key) IN (SELECT field, width, slot, key FROM event_counts WHERE field = 0 AND width = 60 LIMIT 1)`,
			want:   "events in the minute from"},
		{name: "a value added",
			tamper: `INSERT INTO event_counts SELECT org_id, field, width, slot, CAST('nobody@example.com' AS BLOB), 3 FROM event_counts WHERE field > 0 LIMIT 1`,
			want:   `"nobody@example.com"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			const n = 500
			s, _ := demoStore(t, dir, 6, n, "c-", time.Now().Add(-3*24*time.Hour), 9*time.Minute)
			if tc.tamper != "" {
				db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.MainFile))
				if err != nil {
					t.Fatal(err)
				}
				res, err := db.Exec(tc.tamper)
				db.Close()
				if err != nil {
					t.Fatal(err)
				}
				if k, _ := res.RowsAffected(); k != 1 {
					t.Fatalf("the tamper changed %d rows", k)
				}
			}
			rep := &verify.Report{Max: 100}
			sums, err := verify.Check(ctx, s.VerifySource(), verify.Options{Index: true}, rep)
			if err != nil {
				t.Fatal(err)
			}
			if sums[0].Checked != n || !sums[0].IndexChecked {
				t.Fatalf("summary: %+v", sums[0])
			}
			if tc.want == "" {
				if !rep.OK() {
					t.Fatalf("an honest store: %v", rep.Failures)
				}
				return
			}
			if len(rep.Failures) != 1 || rep.Failures[0].Kind != verify.KindCounts || !strings.Contains(rep.Failures[0].Detail, tc.want) {
				t.Fatalf("want one %s naming %s, got %v", verify.KindCounts, tc.want, rep.Failures)
			}
			t.Log(rep.Failures[0])
			// Without the index check the counts are not compared.
			rep = &verify.Report{}
			if _, err := verify.Check(ctx, s.VerifySource(), verify.Options{}, rep); err != nil || !rep.OK() {
				t.Fatalf("without the index check: %v %v", err, rep.Failures)
			}
		})
	}
}

// TestVerifyIndexEntryMoved checks that an index entry moved to another
// event of its bucket (a search for the value would find the wrong event
// and miss the right one) is found, though the bucket holds as many
// entries of each key as before: the checksums cover each entry's offset.
//
// Every commit writes the postings tail out (tail.go), so the entry is in
// a flushed postings row.
func TestVerifyIndexEntryMoved(t *testing.T) {
	defer sqlite.SetTailLimits(1, time.Hour)()
	ctx := context.Background()
	dir := t.TempDir()
	const n = 300
	s, _ := demoStore(t, dir, 6, n, "m-", time.Now().Add(-time.Hour), time.Second)
	db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.MainFile))
	if err != nil {
		t.Fatal(err)
	}
	// A list of one offset below 62 is one byte (a uvarint): moved by one.
	var bucket, field, run int64
	var key, list []byte
	if err := db.QueryRow(`SELECT bucket, field, key, run, list FROM postings WHERE bucket = 1 AND field > 0 AND field < 100
		AND length(list) = 1 AND unicode(CAST(list AS TEXT)) < 62 ORDER BY field, key LIMIT 1`).Scan(&bucket, &field, &key, &run, &list); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE postings SET list = ? WHERE bucket = ? AND field = ? AND key = ? AND run = ?`, []byte{list[0] + 1}, bucket, field, key, run); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rep := &verify.Report{Max: 100}
	if _, err := verify.Check(ctx, s.VerifySource(), verify.Options{Index: true}, rep); err != nil {
		t.Fatal(err)
	}
	from := bucket<<6 + int64(list[0])
	named := false
	for _, f := range rep.Failures {
		named = named || f.Kind == verify.KindIndex && (f.Seq == from || f.Seq == from+1)
	}
	if !named {
		t.Fatalf("an entry of field %d moved from seq %d to %d: want an index failure naming either, got %v", field, from, from+1, rep.Failures)
	}
	t.Log(rep.Failures)
}

// TestVerifyChunks checks the SQLite source where verification reads a
// log in pieces: the readers' chunks (600 events are read in chunks of
// 150 by two readers) and the level-0 tiles (256 leaves). Events read
// over ranges split at those boundaries are exactly those read at once,
// with their content and stored leaf; and an event edited, removed or
// moved on either side of a chunk boundary is named by its seq.
func TestVerifyChunks(t *testing.T) {
	ctx := context.Background()
	const n = 600
	type read struct {
		seq                      int64
		env, content, salt, leaf []byte
	}
	readAll := func(t *testing.T, r verify.LogReader, bounds []int64) []read {
		var out []read
		for i := 0; i+1 < len(bounds); i++ {
			err := r.Events(ctx, bounds[i], bounds[i+1], func(ev *verify.Event) error {
				out = append(out, read{ev.Seq, bytes.Clone(ev.Envelope), bytes.Clone(ev.Content), bytes.Clone(ev.Salt), bytes.Clone(ev.Leaf)})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	t.Run("ranges", func(t *testing.T) {
		s, _ := demoStore(t, t.TempDir(), 6, n, "k-", time.Now().Add(-time.Hour), time.Second)
		src := s.VerifySource()
		logs, err := src.Logs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := src.Open(ctx, logs[0])
		if err != nil {
			t.Fatal(err)
		}
		if cr, ok := r.(verify.ConcurrentReader); !ok || cr.ConcurrentReads() < 2 {
			t.Fatal("the SQLite source reads with one reader")
		}
		whole := readAll(t, r, []int64{0, verify.ToEnd})
		pieces := readAll(t, r, []int64{0, 149, 150, 255, 256, 257, 300, 512, 599, verify.ToEnd})
		contents := 0
		for i, w := range whole {
			if w.seq != int64(i) || len(w.leaf) != 32 || w.env == nil {
				t.Fatalf("event %d read as %+v", i, w)
			}
			if w.content != nil {
				contents++
			}
		}
		if len(whole) != n || contents == 0 {
			t.Fatalf("%d events, %d contents read", len(whole), contents)
		}
		if len(pieces) != len(whole) {
			t.Fatalf("%d events read in pieces, %d at once", len(pieces), len(whole))
		}
		for i := range whole {
			w, p := whole[i], pieces[i]
			if w.seq != p.seq || !bytes.Equal(w.env, p.env) || !bytes.Equal(w.content, p.content) || (w.content == nil) != (p.content == nil) ||
				!bytes.Equal(w.salt, p.salt) || !bytes.Equal(w.leaf, p.leaf) {
				t.Fatalf("seq %d read in pieces differs from read at once", w.seq)
			}
		}
		// A cancelled read stops with the context's error.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := r.Events(cctx, 0, verify.ToEnd, func(*verify.Event) error { return nil }); err == nil {
			t.Fatal("a cancelled read of 600 events ended without an error")
		}
		if c, ok := r.(interface{ Close() error }); ok {
			c.Close()
		}
	})
	for _, tc := range []struct {
		name  string
		stmts func(org int64) []string
		seq   int64
		kind  string
	}{
		{"the last event of a chunk edited", func(org int64) []string {
			return []string{fmt.Sprintf(`UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), '"seq":149', '"seq":149 ') AS BLOB) WHERE rid = %d`, org<<40|149)}
		}, 149, verify.KindLeaf},
		{"the first event of a chunk edited", func(org int64) []string {
			return []string{fmt.Sprintf(`UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), '"seq":150', '"seq":150 ') AS BLOB) WHERE rid = %d`, org<<40|150)}
		}, 150, verify.KindLeaf},
		{"the first event of a chunk removed", func(org int64) []string {
			return []string{fmt.Sprintf(`DELETE FROM events WHERE rid = %d`, org<<40|300)}
		}, 300, verify.KindMissing},
		{"two events swapped across a chunk boundary", func(org int64) []string {
			return []string{
				fmt.Sprintf(`UPDATE events SET rid = -1 WHERE rid = %d`, org<<40|449),
				fmt.Sprintf(`UPDATE events SET rid = %d WHERE rid = %d`, org<<40|449, org<<40|450),
				fmt.Sprintf(`UPDATE events SET rid = %d WHERE rid = -1`, org<<40|450)}
		}, 449, verify.KindLeaf},
		{"a content at a tile boundary edited", func(org int64) []string {
			return []string{fmt.Sprintf(`UPDATE contents SET body = CAST(substr(CAST(body AS TEXT), 1, length(body) - 1) || ',"x":1}' AS BLOB) WHERE rid = (SELECT min(rid) FROM contents WHERE rid >= %d)`, org<<40|256)}
		}, -1, verify.KindContentDigest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, org := demoStore(t, dir, 6, n, "k-", time.Now().Add(-time.Hour), time.Second)
			db, err := sql.Open("sqlite", filepath.Join(dir, sqlite.MainFile))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			var triggers []string
			rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'trigger'`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var name string
				rows.Scan(&name)
				triggers = append(triggers, name)
			}
			rows.Close()
			var want int64 = tc.seq
			for _, st := range append(func() (d []string) {
				for _, tr := range triggers {
					d = append(d, `DROP TRIGGER `+tr)
				}
				return d
			}(), tc.stmts(org.ID)...) {
				if _, err := db.Exec(st); err != nil {
					t.Fatalf("%s: %v", st, err)
				}
			}
			if want < 0 {
				db.QueryRow(`SELECT min(rid) - ? FROM contents WHERE rid >= ?`, org.ID<<40, org.ID<<40|256).Scan(&want)
			}
			rep := &verify.Report{Max: 100}
			sums, err := verify.Check(ctx, s.VerifySource(), verify.Options{Index: true}, rep)
			if err != nil {
				t.Fatal(err)
			}
			if sums[0].Checked != n {
				t.Fatalf("summary: %+v", sums[0])
			}
			if rep.OK() || rep.Failures[0].Seq != want || rep.Failures[0].Kind != tc.kind {
				t.Fatalf("want the first failure at seq %d of kind %s, got %v", want, tc.kind, rep.Failures)
			}
		})
	}
}
