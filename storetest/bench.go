package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/internal/testenv"
)

// BenchEvents is how many events BenchStats stores: VERITRAIL_BENCH_EVENTS,
// or 200,000.
func BenchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("VERITRAIL_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// benchEnd is when BenchStats' sample events end: a fixed time, so that
// a store built once (BenchFixture) serves later runs unchanged.
var benchEnd = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// benchOrg is the organization BenchStats' sample events belong to.
const benchOrg = "bench"

// LoadBenchStats stores BenchEvents() sample events spread over the 30
// days before benchEnd in a new organization of s, as BenchStats expects
// them.
func LoadBenchStats(ctx context.Context, s veritrail.Store) error {
	org, err := s.CreateOrg(ctx, benchOrg)
	if err != nil {
		return err
	}
	total := BenchEvents()
	step := 30 * 24 * time.Hour / time.Duration(total)
	return demo.Load(ctx, s, org.ID, total, "st", benchEnd.Add(-time.Duration(total)*step), step, 1, nil)
}

// BenchStats measures StatsStore.Stats as the console asks it (60 bars,
// the top values of six fields) over the sample events of
// LoadBenchStats, stored in s unless it holds them already (a store
// built before, see BenchFixture): the whole log, its last day, one
// filter, two filters, full text, and the whole log again.
func BenchStats(b *testing.B, s veritrail.Store) {
	ctx := context.Background()
	org, err := s.OrgByName(ctx, benchOrg)
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		if err = LoadBenchStats(ctx, s); err == nil {
			org, err = s.OrgByName(ctx, benchOrg)
		}
	}
	if err != nil {
		b.Fatal(err)
	}
	total := BenchEvents()
	end := benchEnd
	if f, ok := s.(FullTextSyncer); ok {
		if err := f.SyncFullText(ctx); err != nil {
			b.Fatal(err)
		}
	}
	// The two filters: the most frequent actor and tool.
	common, err := s.Stats(ctx, org.ID, &veritrail.StatsQuery{Top: []veritrail.Field{veritrail.FieldActorID, veritrail.FieldTool}})
	if err != nil {
		b.Fatal(err)
	}
	filter := func(f veritrail.Field) veritrail.Filter {
		if len(common.Top[f]) == 0 {
			b.Fatalf("no %v in the sample events", f)
		}
		return veritrail.Filter{Field: f, Ranges: []veritrail.KeyRange{veritrail.Exact(common.Top[f][0].Key)}}
	}
	failure, err := veritrail.ParseFilterValue(veritrail.FieldOutcome, "failure")
	if err != nil {
		b.Fatal(err)
	}
	top := []veritrail.Field{veritrail.FieldActorID, veritrail.FieldType, veritrail.FieldOutcome,
		veritrail.FieldConnector, veritrail.FieldTool, veritrail.FieldDecision}
	for _, tc := range []struct {
		name string
		q    veritrail.Query
	}{
		{"all", veritrail.Query{}},
		{"last_day", veritrail.Query{Since: end.Add(-24 * time.Hour), Until: end}},
		{"outcome", veritrail.Query{Filters: []veritrail.Filter{{Field: veritrail.FieldOutcome, Ranges: []veritrail.KeyRange{failure}}}}},
		{"actor_and_tool", veritrail.Query{Filters: []veritrail.Filter{filter(veritrail.FieldActorID), filter(veritrail.FieldTool)}}},
		{"text", veritrail.Query{Text: "export"}},
		// The whole log again, after the filtered queries: a store that
		// keeps what they read in memory may count it from there.
		{"all_again", veritrail.Query{}},
	} {
		b.Run(fmt.Sprintf("%s/events=%d", tc.name, total), func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := s.Stats(ctx, org.ID, &veritrail.StatsQuery{Query: tc.q, Top: top}); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			// The median call besides the mean: the first call may build
			// what stores keep in memory (columns) and weigh on the mean.
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2])/float64(time.Millisecond), "p50-ms")
		})
	}
}

// BenchFixture returns the directory a store of the sample events of
// LoadBenchStats is kept in between runs, under root (when empty, the
// benchmark cache: VERITRAIL_BENCH_CACHE, else veritrail/bench in the
// user's cache directory), named by engine, the number of events and a digest of the
// source files (non-test Go and SQL) of the packages in srcDirs: a change
// to the store's code, its schema or the sample events builds it anew.
// When the directory is not complete yet, build fills it (build gets a
// fresh directory beside it, renamed once build returns); copies of other
// versions of the same engine and number of events are removed first, as
// each can take gigabytes at 10M events.
func BenchFixture(b *testing.B, root, engine string, srcDirs []string, build func(dir string) error) string {
	b.Helper()
	h := sha256.New()
	for _, d := range srcDirs {
		for _, pat := range []string{"*.go", "*.sql", "migrations/*.sql"} {
			files, err := filepath.Glob(filepath.Join(d, pat))
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range files {
				if strings.HasSuffix(f, "_test.go") {
					continue
				}
				body, err := os.ReadFile(f)
				if err != nil {
					b.Fatal(err)
				}
				fmt.Fprintf(h, "%s %d\n", filepath.Base(f), len(body))
				h.Write(body)
			}
		}
	}
	if root == "" {
		root = testenv.CacheDir("VERITRAIL_BENCH_CACHE", "bench")
	}
	prefix := fmt.Sprintf("%s-stats-%d-", engine, BenchEvents())
	dir := filepath.Join(root, prefix+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
		b.Logf("benchmark store reused: %s", dir)
		return dir
	}
	stale, _ := filepath.Glob(filepath.Join(root, prefix+"*"))
	for _, d := range stale {
		if err := os.RemoveAll(d); err != nil {
			b.Fatal(err)
		}
	}
	building := dir + ".building"
	if err := os.MkdirAll(building, 0o755); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := build(building); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(building, "complete"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(building, dir); err != nil {
		b.Fatal(err)
	}
	b.Logf("benchmark store of %d events built in %v: %s", BenchEvents(), time.Since(start).Round(time.Second), dir)
	return dir
}
