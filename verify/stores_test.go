package verify_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/postgres/pgtest"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/tlog"
	"github.com/veritrail/veritrail/verify"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// storeCase is a store and its verify.Source, and how to change its
// derived data from outside (as an insider with access would).
type storeCase struct {
	name   string
	open   func(t *testing.T) (store veritrail.Store, source func(t *testing.T) verify.Source)
	tamper func(t *testing.T) // after open: one derived value changed
}

// TestStoreSources checks both stores' sources through Check in process
// (so -race sees the pipeline, the index checkers and their re-reads):
// an honest store passes with every derived value compared, and an edited
// derived value fails.
func TestStoreSources(t *testing.T) {
	ctx := context.Background()
	var dir, pgURL string
	cases := []storeCase{
		{name: "sqlite",
			open: func(t *testing.T) (veritrail.Store, func(*testing.T) verify.Source) {
				dir = t.TempDir()
				s, err := sqlite.Open(ctx, dir, sqlite.Options{BucketShift: 6})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s, func(*testing.T) verify.Source { return s.VerifySource() }
			},
			tamper: func(t *testing.T) {
				db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.MainFile))
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(`DELETE FROM postings WHERE org_id = (SELECT id FROM orgs WHERE name = 'acme') AND bucket = 3 AND field = 2
					AND key = (SELECT min(key) FROM postings WHERE bucket = 3 AND field = 2)`); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "postgres",
			open: func(t *testing.T) (veritrail.Store, func(*testing.T) verify.Source) {
				pgURL = pgtest.New(t)
				s, err := postgres.Open(ctx, pgURL, postgres.Options{})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s, func(t *testing.T) verify.Source {
					src, err := postgres.OpenVerifySource(ctx, pgURL)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { src.Close() })
					return src
				}
			},
			tamper: func(t *testing.T) {
				conn, err := pgx.Connect(ctx, pgURL)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				for _, s := range []string{`SET session_replication_role = replica`,
					`UPDATE events SET ip = NULL WHERE seq = 200 AND ip IS NOT NULL`} {
					if _, err := conn.Exec(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store, source := tc.open(t)
			org, err := store.CreateOrg(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			other, err := store.CreateOrg(ctx, "other")
			if err != nil {
				t.Fatal(err)
			}
			rnd := rand.New(rand.NewPCG(3, 4))
			now := time.Now().UTC()
			const n = 700
			for b := range 3 {
				var evs []*veritrail.Event
				for i := range n / 3 {
					id := fmt.Sprintf("ev-%d-%d", b, i)
					dec := veritrail.NewDecoder(bytes.NewReader(demo.Event(nil, rnd, id, now.Add(-time.Duration(i)*time.Second))), veritrail.DefaultLimits, now)
					e, err := dec.Next()
					if err != nil {
						t.Fatal(err)
					}
					if i%5 == 0 {
						e.Actor.Name = "O\"Brien\n" + e.Actor.Name // escaped strings take the slow paths
					}
					evs = append(evs, e)
				}
				if _, err := store.Append(ctx, org.ID, evs); err != nil {
					t.Fatal(err)
				}
			}
			key, _ := tlog.GenerateKey()
			cpr, err := checkpoint.New(ctx, checkpoint.Config{Store: store, Key: key, OriginPrefix: "test.example"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cpr.Sign(ctx, org); err != nil {
				t.Fatal(err)
			}
			vkey, _ := cpr.VerifierKey(org)
			check := func() (*verify.Report, []*verify.Summary) {
				rep := &verify.Report{Max: 100}
				sums, err := verify.Check(ctx, source(t), verify.Options{Keys: []string{vkey}, Index: true}, rep)
				if err != nil {
					t.Fatal(err)
				}
				return rep, sums
			}
			rep, sums := check()
			if !rep.OK() {
				t.Fatalf("an honest store: %v", rep.Failures)
			}
			if len(sums) != 2 || sums[0].Org != "acme" || sums[0].Checked != n/3*3 || sums[0].Contents == 0 || !sums[0].IndexChecked ||
				sums[1].Org != other.Name || sums[1].NotChecked == "" {
				t.Fatalf("summaries: %+v %+v", sums[0], sums[1])
			}
			tc.tamper(t)
			rep, _ = check()
			if rep.OK() || rep.Failures[0].Kind != verify.KindIndex || rep.Failures[0].Seq < 0 {
				t.Fatalf("an edited derived value: %v", rep.Failures)
			}
		})
	}
}
