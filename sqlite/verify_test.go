package sqlite_test

import (
	"context"
	"database/sql"
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
