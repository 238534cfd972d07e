package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

var statsTop = []veritrail.Field{veritrail.FieldActorID, veritrail.FieldType, veritrail.FieldOutcome,
	veritrail.FieldConnector, veritrail.FieldTool, veritrail.FieldDecision, veritrail.FieldIP, veritrail.FieldStatus}

// StatsOracle computes what Stats must answer for sq in a log of the
// events all, of which matched are those a list of sq.Query returns.
func StatsOracle(t *testing.T, all, matched []*veritrail.Event, sq *veritrail.StatsQuery) *veritrail.Stats {
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
			if err := sameStats(got, StatsOracle(t, evs, matching(evs, &q), &sq)); err != nil {
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
		// Every top field counted, and some not (PostgreSQL counts these
		// two ways).
		for _, top := range [][]veritrail.Field{statsTop, veritrail.CountedFields} {
			sq := veritrail.StatsQuery{Query: q, Top: top}
			got, err := s.Stats(ctx, org.ID, &sq)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameStats(got, StatsOracle(t, evs, listed, &sq)); err != nil {
				t.Fatalf("q=%s, top %v: %v", text, top, err)
			}
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
		if err := sameStats(got, StatsOracle(t, kept, matching(kept, &sq.Query), &sq)); err != nil {
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

// testStatsCounts holds the stats a store answers from counts it keeps
// (queries without filters whose top fields are veritrail.CountedFields),
// and some filtered ones, to the counts made from the events themselves: after ingest in batches
// of varied sizes with times in any order, after retention removed
// envelopes (some kept by a hold), and after erasure removed content.
// The windows and intervals make a store use every slot width it keeps
// and count the edges from the events.
func testStatsCounts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	org := newOrg(t, s, "acme")
	noise := newOrg(t, s, "noise")
	rnd := rng(t.Name())
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	evs := genEvents(rnd, scale(3000), "c")
	for _, e := range evs {
		// Any instant of 12 days, in no order, some in one minute.
		e.Time = base.Add(time.Duration(rnd.Int64N(int64(12 * 24 * time.Hour))))
		if rnd.IntN(8) == 0 {
			e.Time = base.Add(5*24*time.Hour + time.Duration(rnd.Int64N(int64(time.Minute))))
		}
	}
	seqs := map[string]int64{}
	sizes := []int{1, 7, 64, 500}
	for i := 0; i < len(evs); {
		n := min(sizes[rnd.IntN(len(sizes))], len(evs)-i)
		for j, r := range mustAppend(t, s, org.ID, evs[i:i+n]...) {
			seqs[evs[i+j].ID] = r.Seq
		}
		i += n
	}
	appendInVariedBatches(t, s, noise.ID, genEvents(rnd, 200, "n"), rnd)

	top := veritrail.CountedFields
	odd := veritrail.Query{Since: base.Add(13*time.Hour + 17*time.Second + 5), Until: base.Add(5*24*time.Hour + 3*time.Hour + time.Minute + 1)}
	days := veritrail.Query{Since: base.Add(24 * time.Hour), Until: base.Add(11 * 24 * time.Hour)}
	window := veritrail.Query{Since: base.Add(-time.Hour), Until: base.Add(13 * 24 * time.Hour)}
	queries := []veritrail.StatsQuery{
		{Query: odd, Top: top},
		{Query: odd, Top: top, TopLimit: 3, Bars: 7},
		{Query: odd, Top: top[:2], Interval: time.Hour},
		{Query: odd, Top: top, Interval: 24 * time.Hour},
		{Query: odd, Top: top, Interval: 30 * time.Minute, TopLimit: 100},
		{Query: days, Top: top, Interval: 24 * time.Hour},
		{Query: days, Top: top, Interval: 2 * time.Hour},
		{Query: window, Top: top, Bars: 100},
		{Query: veritrail.Query{Since: base.Add(5*24*time.Hour - time.Minute), Until: base.Add(5*24*time.Hour + 2*time.Minute)}, Top: top, Interval: time.Minute},
		{Query: veritrail.Query{Since: base.Add(3*24*time.Hour + 10*time.Minute), Until: base.Add(3*24*time.Hour + 50*time.Minute)}, Top: top}, // inside one hour
	}
	// Filtered queries count from the index (SQLite keeps what it derives
	// of a bucket in memory between queries): they must follow the
	// removals and the new events as the counts do.
	failure := veritrail.Filter{Field: veritrail.FieldOutcome, Ranges: []veritrail.KeyRange{veritrail.Exact("failure")}}
	notU3 := veritrail.Filter{Field: veritrail.FieldActorID, Exclude: []veritrail.KeyRange{veritrail.Exact("u3")}}
	fourxx, err := veritrail.ParseFilterValue(veritrail.FieldStatus, "4xx")
	if err != nil {
		t.Fatal(err)
	}
	queries = append(queries,
		veritrail.StatsQuery{Query: veritrail.Query{Filters: []veritrail.Filter{failure}, Since: window.Since, Until: window.Until}, Top: statsTop},
		veritrail.StatsQuery{Query: veritrail.Query{Filters: []veritrail.Filter{notU3}, Since: odd.Since, Until: odd.Until}, Top: statsTop, TopLimit: 100},
		// Every top field counted: PostgreSQL counts these from the
		// columns it keeps per hour, which must follow the changes too.
		veritrail.StatsQuery{Query: veritrail.Query{Filters: []veritrail.Filter{failure}, Since: window.Since, Until: window.Until}, Top: top},
		veritrail.StatsQuery{Query: veritrail.Query{Filters: []veritrail.Filter{notU3, {Field: veritrail.FieldStatus, Ranges: []veritrail.KeyRange{fourxx}}}, Since: odd.Since, Until: odd.Until}, Top: top, TopLimit: 100, Interval: time.Hour},
	)
	check := func(when string, kept []*veritrail.Event, qs []veritrail.StatsQuery) {
		t.Helper()
		for i, sq := range qs {
			got, err := s.Stats(ctx, org.ID, &sq)
			if err != nil {
				t.Fatalf("%s, query %d: %v", when, i, err)
			}
			if err := sameStats(got, StatsOracle(t, kept, matching(kept, &sq.Query), &sq)); err != nil {
				t.Fatalf("%s, query %d (since %v, until %v, bars %d, interval %v): %v", when, i, sq.Query.Since, sq.Query.Until, sq.Bars, sq.Interval, err)
			}
		}
	}
	// The whole log too, while its window is that of the events.
	check("after ingest", evs, append(queries, veritrail.StatsQuery{Top: top}, veritrail.StatsQuery{Top: top, Interval: time.Hour}))

	// Retention: envelopes older than 7 days go, but for u1's, held.
	now := base.Add(12 * 24 * time.Hour)
	cut := veritrail.DefaultSettings()
	cut.Retention = []veritrail.RetentionRule{{Category: "*", ContentDays: 3, MetadataDays: 5}}
	cutoffs := cut.Cutoffs(now)
	held := &veritrail.HeldSet{Through: 1 << 62}
	for _, e := range evs {
		if e.Actor.ID == "u1" {
			held.Events = append(held.Events, veritrail.HeldEvent{Seq: seqs[e.ID], TimeNS: e.Time.UnixNano(), Category: e.Category()})
		}
	}
	slices.SortFunc(held.Events, func(a, b veritrail.HeldEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	cutoffs.Held = held
	res, err := s.Expire(ctx, org.ID, cutoffs, "rec-counts")
	if err != nil {
		t.Fatal(err)
	}
	var kept []*veritrail.Event
	for _, e := range evs {
		if !e.Time.Before(now.Add(-5*24*time.Hour)) || e.Actor.ID == "u1" {
			kept = append(kept, e)
		}
	}
	if res.Envelopes != int64(len(evs)-len(kept)) || len(held.Events) == 0 {
		t.Fatalf("retention removed %d envelopes, want %d (%d held)", res.Envelopes, len(evs)-len(kept), len(held.Events))
	}
	check("after retention", kept, queries)

	// Erasure takes content only: every count stays.
	u2 := veritrail.Filter{Field: veritrail.FieldActorID, Ranges: []veritrail.KeyRange{veritrail.Exact("u2")}}
	if er, err := s.EraseContent(ctx, org.ID, u2, nil, "rec-erase"); err != nil {
		t.Fatal(err)
	} else if er.Envelopes != 0 {
		t.Fatalf("erasure removed %d envelopes", er.Envelopes)
	}
	check("after erasure", kept, queries)

	// A second retention run over the same cutoffs changes nothing; a
	// later one, the hold released, takes the rest of the old events.
	if res, err := s.Expire(ctx, org.ID, cutoffs, "rec-again"); err != nil || res.Envelopes != 0 {
		t.Fatalf("second retention run: %+v, %v", res, err)
	}
	check("after a second run", kept, queries)
	cutoffs = cut.Cutoffs(now)
	if _, err := s.Expire(ctx, org.ID, cutoffs, "rec-released"); err != nil {
		t.Fatal(err)
	}
	kept = kept[:0]
	for _, e := range evs {
		if !e.Time.Before(now.Add(-5 * 24 * time.Hour)) {
			kept = append(kept, e)
		}
	}
	check("after the hold's release", kept, queries)
	// New events are counted beside what retention left.
	more := genEvents(rnd, 300, "m")
	for _, e := range more {
		e.Time = base.Add(10*24*time.Hour + time.Duration(rnd.Int64N(int64(48*time.Hour))))
	}
	appendInVariedBatches(t, s, org.ID, more, rnd)
	check("after more events", append(kept, more...), queries)
}
