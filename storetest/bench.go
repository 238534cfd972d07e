package storetest

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// BenchEvents is how many events BenchStats stores: VERITRAIL_BENCH_EVENTS,
// or 200,000.
func BenchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("VERITRAIL_BENCH_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// BenchStats measures StatsStore.Stats as the console asks it (60 bars,
// the top values of six fields) over BenchEvents() sample events spread
// over 30 days, stored in s: the whole log, its last day, one filter, two
// filters, and full text.
func BenchStats(b *testing.B, s veritrail.Store) {
	ctx := context.Background()
	org, err := s.CreateOrg(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	total := BenchEvents()
	end := time.Now().UTC().Truncate(time.Second)
	step := 30 * 24 * time.Hour / time.Duration(total)
	if err := demo.Load(ctx, s, org.ID, total, "st", end.Add(-time.Duration(total)*step), step, 1, nil); err != nil {
		b.Fatal(err)
	}
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
	} {
		b.Run(fmt.Sprintf("%s/events=%d", tc.name, total), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Stats(ctx, org.ID, &veritrail.StatsQuery{Query: tc.q, Top: top}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
