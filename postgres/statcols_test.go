package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/postgres"
	"github.com/veritrail/veritrail/storetest"
)

// statsNodeEvents makes n events from start, a minute apart plus i
// seconds, spread over a few actors, outcomes and types; the first of
// every seven carries content with the word "zebra".
func statsNodeEvents(prefix string, start time.Time, n int) []*veritrail.Event {
	evs := make([]*veritrail.Event, n)
	outcomes := []string{"success", "failure", "failure"}
	types := []string{"auth.login", "file.read", "tool.call"}
	for i := range evs {
		e := &veritrail.Event{ID: fmt.Sprintf("%s%d", prefix, i), Type: types[i%len(types)],
			Time:    start.Add(time.Duration(i)*time.Minute + time.Duration(i%60)*time.Second),
			Actor:   veritrail.Actor{Type: "user", ID: fmt.Sprintf("u%d", i%4)},
			Outcome: outcomes[i%len(outcomes)], Tool: fmt.Sprintf("t%d", i%5)}
		if i%7 == 0 {
			e.Content = []byte(`{"note":"zebra crossing"}`)
		}
		e.Prepare()
		evs[i] = e
	}
	return evs
}

// TestStatsColumnsFollowOtherNodes: a node keeps columns of hours of
// events for stats with filters (statcols.go). Another node on the same
// database adding events to those hours, removing some by retention, or
// erasing content must be seen by the first node's very next stats: its
// columns are valid for the hours' change counts read from the database,
// not for what it committed itself.
func TestStatsColumnsFollowOtherNodes(t *testing.T) {
	ctx := context.Background()
	a, url, orgs := openOrgs(t, "acme")
	org := orgs[0].ID
	b := openURL(t, url).(*postgres.Store)
	t.Cleanup(func() { b.Close() })

	base := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	all := statsNodeEvents("a", base, 200) // 10:00 to about 13:20
	if _, err := a.Append(ctx, org, all); err != nil {
		t.Fatal(err)
	}
	failure := veritrail.Filter{Field: veritrail.FieldOutcome, Ranges: []veritrail.KeyRange{veritrail.Exact("failure")}}
	window := veritrail.Query{Since: base.Add(-time.Hour), Until: base.Add(6 * time.Hour)}
	queries := []veritrail.StatsQuery{
		{Query: veritrail.Query{Since: window.Since, Until: window.Until, Filters: []veritrail.Filter{failure}}, Top: veritrail.CountedFields, Interval: 10 * time.Minute},
		{Query: veritrail.Query{Since: window.Since, Until: window.Until, Text: "zebra", TextInContent: true}, Top: veritrail.CountedFields, Interval: 10 * time.Minute},
		{Query: veritrail.Query{Since: base.Add(17 * time.Minute), Until: base.Add(2*time.Hour + 3*time.Minute)}, Top: veritrail.CountedFields, Interval: time.Minute},
	}
	// zebra lists the events a text search of the content finds.
	zebra := func(evs []*veritrail.Event, erased map[string]bool) []*veritrail.Event {
		var out []*veritrail.Event
		for _, e := range evs {
			if len(e.Content) > 0 && !erased[e.ID] {
				out = append(out, e)
			}
		}
		return out
	}
	erased := map[string]bool{}
	check := func(when string, s *postgres.Store, kept []*veritrail.Event) {
		t.Helper()
		for i, sq := range queries {
			got, err := s.Stats(ctx, org, &sq)
			if err != nil {
				t.Fatalf("%s, query %d: %v", when, i, err)
			}
			matched := zebra(kept, erased)
			if sq.Query.Text == "" {
				matched = nil
				for _, e := range kept {
					if sq.Query.Match(e) {
						matched = append(matched, e)
					}
				}
			}
			want := storetest.StatsOracle(t, matched, matched, &sq) // a fixed window: all is not looked at
			if got.Total != want.Total || !slices.Equal(got.Counts, want.Counts) {
				t.Fatalf("%s, query %d: total %d %v, want %d %v", when, i, got.Total, got.Counts, want.Total, want.Counts)
			}
			for f, w := range want.Top {
				if g := got.Top[f]; !slices.Equal(g, w) && len(g)+len(w) > 0 {
					t.Fatalf("%s, query %d: top %s %v, want %v", when, i, f, g, w)
				}
			}
		}
	}
	check("first read", a, all)
	check("first read, node b", b, all)
	check("cached", a, all)

	// Node b adds events to the hours node a holds columns of.
	more := statsNodeEvents("b", base.Add(30*time.Second), 90)
	if _, err := b.Append(ctx, org, more); err != nil {
		t.Fatal(err)
	}
	all = append(all, more...)
	check("after node b's events", a, all)

	// Node b's retention removes the events before 11:00 (a day's rules
	// from a "now" 5 days after 11:00).
	cut := veritrail.DefaultSettings()
	cut.Retention = []veritrail.RetentionRule{{Category: "*", MetadataDays: 5}}
	res, err := b.Expire(ctx, org, cut.Cutoffs(base.Add(time.Hour+5*24*time.Hour)), "rec")
	if err != nil {
		t.Fatal(err)
	}
	var kept []*veritrail.Event
	for _, e := range all {
		if !e.Time.Before(base.Add(time.Hour)) {
			kept = append(kept, e)
		}
	}
	if res.Envelopes != int64(len(all)-len(kept)) || res.Envelopes == 0 {
		t.Fatalf("retention removed %d envelopes, want %d", res.Envelopes, len(all)-len(kept))
	}
	check("after node b's retention", a, kept)

	// Node b erases u1's content: node a's text stats no longer find it.
	u1 := veritrail.Filter{Field: veritrail.FieldActorID, Ranges: []veritrail.KeyRange{veritrail.Exact("u1")}}
	if _, err := b.EraseContent(ctx, org, u1, nil, "rec-erase"); err != nil {
		t.Fatal(err)
	}
	for _, e := range kept {
		if e.Actor.ID == "u1" {
			erased[e.ID] = true
		}
	}
	if len(zebra(kept, erased)) == len(zebra(kept, nil)) {
		t.Fatal("the erasure must take some content the text search found")
	}
	check("after node b's erasure", a, kept)

	// Node b's events in a new hour, and in an old one again.
	late := statsNodeEvents("c", base.Add(4*time.Hour+30*time.Minute), 20)
	late = append(late, statsNodeEvents("d", base.Add(time.Hour+5*time.Minute), 3)...)
	if _, err := b.Append(ctx, org, late); err != nil {
		t.Fatal(err)
	}
	check("after node b's late events", a, append(kept, late...))
}
