package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// BenchEvents is how many events BenchStats stores: VERITRAIL_BENCH_EVENTS,
// or 200,000 (the lead's figures for 10M set it).
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
	rnd := rand.New(rand.NewPCG(1, 2))
	end := time.Now().UTC().Truncate(time.Second)
	step := 30 * 24 * time.Hour / time.Duration(total)
	start := end.Add(-time.Duration(total) * step)
	var sample *veritrail.Event
	const batch = 5000
	for i := 0; i < total; i += batch {
		var body bytes.Buffer
		for j := i; j < min(i+batch, total); j++ {
			body.Write(demo.Event(nil, rnd, "st"+strconv.Itoa(j), start.Add(time.Duration(j)*step)))
			body.WriteByte('\n')
		}
		dec := veritrail.NewDecoder(&body, veritrail.Limits{MaxEventBytes: 1 << 20, MaxBatchEvents: batch + 1, MaxBodyBytes: 1 << 40, MaxFuture: time.Hour}, time.Now())
		var evs []*veritrail.Event
		for {
			e, err := dec.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			e.Prepare()
			evs = append(evs, e)
			if sample == nil && e.Actor.ID != "" && e.Tool != "" {
				sample = e
			}
		}
		if _, err := s.Append(ctx, org.ID, evs); err != nil {
			b.Fatal(err)
		}
	}
	if f, ok := s.(FullTextSyncer); ok {
		if err := f.SyncFullText(ctx); err != nil {
			b.Fatal(err)
		}
	}
	filter := func(f veritrail.Field, v string) veritrail.Filter {
		kr, err := veritrail.ParseFilterValue(f, v)
		if err != nil {
			b.Fatal(err)
		}
		return veritrail.Filter{Field: f, Ranges: []veritrail.KeyRange{kr}}
	}
	top := []veritrail.Field{veritrail.FieldActorID, veritrail.FieldType, veritrail.FieldOutcome,
		veritrail.FieldConnector, veritrail.FieldTool, veritrail.FieldDecision}
	for _, tc := range []struct {
		name string
		q    veritrail.Query
	}{
		{"all", veritrail.Query{}},
		{"last_day", veritrail.Query{Since: end.Add(-24 * time.Hour), Until: end}},
		{"outcome", veritrail.Query{Filters: []veritrail.Filter{filter(veritrail.FieldOutcome, "failure")}}},
		{"actor_and_tool", veritrail.Query{Filters: []veritrail.Filter{filter(veritrail.FieldActorID, sample.Actor.ID), filter(veritrail.FieldTool, sample.Tool)}}},
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
