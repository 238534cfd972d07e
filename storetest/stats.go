package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

var statsTop = []veritrail.Field{veritrail.FieldActorID, veritrail.FieldType, veritrail.FieldOutcome,
	veritrail.FieldConnector, veritrail.FieldTool, veritrail.FieldDecision, veritrail.FieldIP, veritrail.FieldStatus}

// statsOracle computes what Stats must answer for sq in a log of the
// events all, of which matched are those a list of sq.Query returns.
func statsOracle(t *testing.T, all, matched []*veritrail.Event, sq *veritrail.StatsQuery) *veritrail.Stats {
	t.Helper()
	var oldest, newest time.Time
	for _, e := range all {
		if oldest.IsZero() || e.Time.Before(oldest) {
			oldest = e.Time
		}
		if e.Time.After(newest) {
			newest = e.Time
		}
	}
	want, err := sq.Plan(oldest, newest)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]map[string]int64, len(sq.Top))
	for i := range counts {
		counts[i] = map[string]int64{}
	}
	for _, e := range matched {
		bar := want.Bar(e.Time.UnixNano())
		if bar < 0 {
			continue
		}
		want.Counts[bar]++
		want.Total++
		for i, f := range sq.Top {
			if k, ok := e.IndexKey(f); ok {
				counts[i][k]++
			}
		}
	}
	for i, f := range sq.Top {
		want.SetTop(f, counts[i], sq.TopLimit)
	}
	return want
}

func sameStats(got, want *veritrail.Stats) error {
	if !got.Since.Equal(want.Since) || !got.Until.Equal(want.Until) || !got.Start.Equal(want.Start) || got.Interval != want.Interval {
		return fmt.Errorf("window: got %v..%v from %v by %v, want %v..%v from %v by %v",
			got.Since, got.Until, got.Start, got.Interval, want.Since, want.Until, want.Start, want.Interval)
	}
	if got.Total != want.Total || !slices.Equal(got.Counts, want.Counts) {
		return fmt.Errorf("counts: got total %d %v, want %d %v", got.Total, got.Counts, want.Total, want.Counts)
	}
	for f, w := range want.Top {
		g, ok := got.Top[f]
		if !ok {
			return fmt.Errorf("top %s: missing", f)
		}
		if !slices.Equal(g, w) && !(len(g) == 0 && len(w) == 0) {
			return fmt.Errorf("top %s: got %v, want %v", f, g, w)
		}
	}
	return nil
}

func testStats(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	noise := newOrg(t, s, "noise")
	rnd := rng(t.Name())
	evs := genEvents(rnd, scale(2500), "e")
	appendInVariedBatches(t, s, org.ID, evs, rnd)
	appendInVariedBatches(t, s, noise.ID, genEvents(rnd, 300, "n"), rnd)

	filter := func(f veritrail.Field, vals ...string) veritrail.Filter {
		fl := veritrail.Filter{Field: f}
		for _, v := range vals {
			kr, err := veritrail.ParseFilterValue(f, v)
			if err != nil {
				t.Fatal(err)
			}
			fl.Ranges = append(fl.Ranges, kr)
		}
		return fl
	}
	first := evs[0].Time
	queries := []veritrail.Query{
		{}, // the whole log: the window comes from its oldest and newest events
		{Since: first.Add(13 * time.Hour), Until: first.Add(61*time.Hour + 17*time.Second)},
		{Filters: []veritrail.Filter{filter(veritrail.FieldOutcome, "failure")}},
		{Filters: []veritrail.Filter{filter(veritrail.FieldActorID, "u1", "u2"), filter(veritrail.FieldOutcome, "success")}, Since: first.Add(24 * time.Hour)},
		{Filters: []veritrail.Filter{filter(veritrail.FieldType, "auth.*"), filter(veritrail.FieldIP, "10.0.0.0/8")}, Until: first.Add(5 * 24 * time.Hour)},
		{Filters: []veritrail.Filter{filter(veritrail.FieldStatus, "4xx")}},
		{Filters: []veritrail.Filter{filter(veritrail.FieldTool, "no-such-tool")}},
		{Since: first.Add(-48 * time.Hour), Until: first.Add(-24 * time.Hour)}, // before every event
	}
	for i, q := range queries {
		for _, sq := range []veritrail.StatsQuery{
			{Query: q, Top: statsTop, TopLimit: 3, Bars: 7},
			{Query: q, Top: statsTop[:2], Interval: 6 * time.Hour},
		} {
			got, err := s.Stats(ctx, org.ID, &sq)
			if err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
			if err := sameStats(got, statsOracle(t, evs, matching(evs, &q), &sq)); err != nil {
				t.Fatalf("query %d (filters %s, since %v, until %v, bars %d, interval %v): %v", i, describe(q.Filters), q.Since, q.Until, sq.Bars, sq.Interval, err)
			}
		}
	}
	// Too many bars for the window is refused, naming the parameter.
	if _, err := s.Stats(ctx, org.ID, &veritrail.StatsQuery{Interval: time.Second}); veritrail.ErrorCode(err) != veritrail.EInvalid {
		t.Fatalf("a bar per second over 10 days: %v, want invalid_request", err)
	}
	// An organization without events has no bars.
	empty := newOrg(t, s, "empty")
	st, err := s.Stats(ctx, empty.ID, &veritrail.StatsQuery{Top: statsTop})
	if err != nil || st.Total != 0 || len(st.Counts) != 0 {
		t.Fatalf("empty organization: %+v, %v", st, err)
	}

	// Full text: stats agree with what a list returns.
	if fs, ok := s.(FullTextSyncer); ok {
		if err := fs.SyncFullText(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, text := range []string{"u3", "create_issue", "agent*"} {
		q := veritrail.Query{Text: text, Order: veritrail.OrderAsc}
		ids := pageAll(t, s, org.ID, &q)
		if len(ids) == 0 {
			t.Fatalf("q=%s matches nothing: the test needs matches", text)
		}
		byID := map[string]*veritrail.Event{}
		for _, e := range evs {
			byID[e.ID] = e
		}
		listed := make([]*veritrail.Event, len(ids))
		for i, id := range ids {
			listed[i] = byID[id]
		}
		sq := veritrail.StatsQuery{Query: q, Top: statsTop}
		got, err := s.Stats(ctx, org.ID, &sq)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameStats(got, statsOracle(t, evs, listed, &sq)); err != nil {
			t.Fatalf("q=%s: %v", text, err)
		}
	}

	// What retention removed is no longer counted (over a fixed window:
	// where the whole log begins after a removal is the store's choice).
	st0 := veritrail.DefaultSettings()
	st0.Retention = []veritrail.RetentionRule{{Category: "*", ContentDays: 2, MetadataDays: 3}}
	now := first.Add(6*24*time.Hour + time.Nanosecond)
	if _, err := s.Expire(ctx, org.ID, st0.Cutoffs(now), "rec-stats"); err != nil {
		t.Fatal(err)
	}
	var kept []*veritrail.Event
	for _, e := range evs {
		if !e.Time.Before(now.Add(-3 * 24 * time.Hour)) {
			kept = append(kept, e)
		}
	}
	if len(kept) == len(evs) || len(kept) == 0 {
		t.Fatalf("retention kept %d of %d events: the test needs some removed", len(kept), len(evs))
	}
	window := veritrail.Query{Since: first.Add(-time.Hour), Until: first.Add(11 * 24 * time.Hour)}
	for _, sq := range []veritrail.StatsQuery{
		{Query: window, Top: statsTop[:2]},
		{Query: window, Top: statsTop},
		{Query: veritrail.Query{Since: window.Since, Until: window.Until, Filters: []veritrail.Filter{filter(veritrail.FieldOutcome, "success")}}, Top: statsTop[:3]},
	} {
		got, err := s.Stats(ctx, org.ID, &sq)
		if err != nil {
			t.Fatal(err)
		}
		if err := sameStats(got, statsOracle(t, kept, matching(kept, &sq.Query), &sq)); err != nil {
			t.Fatalf("after retention (filters %s): %v", describe(sq.Query.Filters), err)
		}
	}
}

// matching returns the events of evs a list of q returns, in any order
// (for q without text).
func matching(evs []*veritrail.Event, q *veritrail.Query) []*veritrail.Event {
	var out []*veritrail.Event
	for _, e := range evs {
		if q.Match(e) {
			out = append(out, e)
		}
	}
	return out
}
