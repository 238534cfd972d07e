package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testAlerts checks AlertStore: alerts by organization, newest first;
// changes of state as compare-and-set; the delivery queue (claims, order
// per route, the bound); records waiting to be appended.
func testAlerts(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	a, b := newOrg(t, s, "alerts-a"), newOrg(t, s, "alerts-b")
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	alerts := []*veritrail.Alert{
		testAlert(a.ID, "alt_01", "rule_1", "u1", t0),
		testAlert(a.ID, "alt_02", "rule_1", "u2", t0),
		testAlert(a.ID, "alt_03", "rule_2", "u1", t0),
		testAlert(a.ID, "alt_04", "rule_1", "u1", t0), // u1 again, newer
	}
	alerts[2].Severity = "critical"
	if err := s.CommitRules(ctx, a.ID, &veritrail.RuleCommit{From: -1, To: 5, NewAlerts: alerts}); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitRules(ctx, b.ID, &veritrail.RuleCommit{From: -1, To: 5, NewAlerts: []*veritrail.Alert{testAlert(b.ID, "alt_05", "rule_9", "u1", t0)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AlertByID(ctx, a.ID, "alt_01")
	if err != nil || got.RuleID != "rule_1" || got.Rule != "burst" || got.Severity != "high" || got.DedupKey != "u1" ||
		string(got.Group) != `{"actor.id":"u1"}` || got.State != veritrail.AlertOpen || got.Count != 3 || len(got.EventIDs) != 3 ||
		!got.FirstSeen.Equal(t0.Add(-time.Minute)) || !got.OpenedAt.Equal(t0) || got.SnoozedUntil != nil || got.StateBy != "veritrail" {
		t.Fatalf("AlertByID: %+v %v", got, err)
	}
	if _, err := s.AlertByID(ctx, b.ID, "alt_01"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("another organization's alert: %v", err)
	}
	ids := func(as []*veritrail.Alert) string {
		out := ""
		for _, a := range as {
			out += a.ID + " "
		}
		return out
	}
	// The newest alert of each key, none for keys without, none of
	// another organization's.
	key := func(rule, k string) veritrail.AlertKey { return veritrail.AlertKey{RuleID: rule, DedupKey: k} }
	for _, c := range []struct {
		org  int64
		keys []veritrail.AlertKey
		want string
	}{
		{a.ID, []veritrail.AlertKey{key("rule_1", "u1")}, "alt_04 "},
		{a.ID, []veritrail.AlertKey{key("rule_1", "u1"), key("rule_1", "u2"), key("rule_2", "u1"), key("rule_2", "u2"), key("rule_9", "u1")}, "alt_04 alt_03 alt_02 "},
		{a.ID, []veritrail.AlertKey{key("rule_1", "u1"), key("rule_1", "u1")}, "alt_04 "},
		{a.ID, []veritrail.AlertKey{key("rule_1", "")}, ""},
		{a.ID, nil, ""},
		{b.ID, []veritrail.AlertKey{key("rule_1", "u1"), key("rule_9", "u1")}, "alt_05 "},
	} {
		l, err := s.LatestAlerts(ctx, c.org, c.keys)
		slices.SortFunc(l, func(x, y *veritrail.Alert) int { return strings.Compare(y.ID, x.ID) })
		if err != nil || ids(l) != c.want {
			t.Errorf("LatestAlerts(%d, %v) = %s %v, want %s", c.org, c.keys, ids(l), err, c.want)
		}
	}
	if l, err := s.LatestAlerts(ctx, a.ID, []veritrail.AlertKey{key("rule_1", "u2")}); err != nil || len(l) != 1 ||
		l[0].RuleID != "rule_1" || l[0].DedupKey != "u2" || l[0].Count != 3 || l[0].State != veritrail.AlertOpen {
		t.Fatalf("LatestAlerts, the alert itself: %+v %v", l, err)
	}
	many := make([]veritrail.AlertKey, veritrail.MaxAlertKeys+1)
	for i := range many {
		many[i] = key("rule_1", fmt.Sprint("k", i))
	}
	many[len(many)-1] = key("rule_1", "u1")
	if l, err := s.LatestAlerts(ctx, a.ID, many[1:]); err != nil || ids(l) != "alt_04 " {
		t.Fatalf("LatestAlerts of MaxAlertKeys keys: %s %v", ids(l), err)
	}
	if _, err := s.LatestAlerts(ctx, a.ID, many); veritrail.ErrorCode(err) != veritrail.EInvalid {
		t.Fatalf("LatestAlerts beyond MaxAlertKeys: %v", err)
	}
	for _, c := range []struct {
		f    veritrail.AlertFilter
		want string
	}{
		{veritrail.AlertFilter{}, "alt_04 alt_03 alt_02 alt_01 "},
		{veritrail.AlertFilter{Limit: 2}, "alt_04 alt_03 "},
		{veritrail.AlertFilter{Before: "alt_03", Limit: 2}, "alt_02 alt_01 "},
		{veritrail.AlertFilter{RuleID: "rule_1"}, "alt_04 alt_02 alt_01 "},
		{veritrail.AlertFilter{Severity: "critical"}, "alt_03 "},
		{veritrail.AlertFilter{State: veritrail.AlertResolved}, ""},
	} {
		l, err := s.ListAlerts(ctx, a.ID, c.f)
		if err != nil || ids(l) != c.want {
			t.Errorf("ListAlerts(%+v) = %s %v, want %s", c.f, ids(l), err, c.want)
		}
	}

	// Changes of state.
	until := t0.Add(time.Hour)
	snooze := &veritrail.AlertChange{AlertID: "alt_01", From: veritrail.AlertOpen, To: veritrail.AlertSnoozed, SnoozedUntil: &until,
		By: "tok_7", At: t0.Add(time.Minute), Note: "after lunch", Record: testRecord(t, "alt_01", t0),
		Deliveries: []*veritrail.Delivery{testDelivery(a.ID, "dlv_s", "alt_01", 0, t0)}}
	if err := s.ChangeAlert(ctx, b.ID, snooze); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("change another organization's alert: %v", err)
	}
	if err := s.ChangeAlert(ctx, a.ID, snooze); err != nil {
		t.Fatal(err)
	}
	if err := s.ChangeAlert(ctx, a.ID, snooze); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("change from a state the alert left: %v, want conflict", err)
	}
	got, _ = s.AlertByID(ctx, a.ID, "alt_01")
	if got.State != veritrail.AlertSnoozed || got.SnoozedUntil == nil || !got.SnoozedUntil.Equal(until) || got.StateBy != "tok_7" ||
		!got.StateAt.Equal(t0.Add(time.Minute)) || got.Note != "after lunch" || got.Count != 3 {
		t.Fatalf("after snoozing: %+v", got)
	}
	if due, err := s.SnoozesDue(ctx, until.Add(-time.Second), 10); err != nil || len(due) != 0 {
		t.Fatalf("snoozes due before their time: %v %v", due, err)
	}
	if due, err := s.SnoozesDue(ctx, until, 10); err != nil || len(due) != 1 || due[0].ID != "alt_01" || due[0].OrgID != a.ID {
		t.Fatalf("snoozes due: %v %v", due, err)
	}
	ds, _ := s.ListDeliveries(ctx, a.ID, "alt_01")
	if len(ds) != 1 || ds[0].ID != "dlv_s" {
		t.Fatalf("the change's delivery: %v", ds)
	}
	ds[0].State, ds[0].FinishedAt = veritrail.DeliveryDelivered, &t0
	if err := s.FinishDelivery(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if recs, _ := s.AlertRecords(ctx, 10); len(recs) != 1 || recs[0].OrgID != a.ID || recs[0].ID == "" {
		t.Fatalf("the change's record: %v", recs)
	}
	if err := s.ChangeAlert(ctx, a.ID, &veritrail.AlertChange{AlertID: "alt_01", From: veritrail.AlertSnoozed, To: veritrail.AlertOpen, At: t0}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.AlertByID(ctx, a.ID, "alt_01"); got.State != veritrail.AlertOpen || got.SnoozedUntil != nil {
		t.Fatalf("after the snooze: %+v", got)
	}

	// Records: listed oldest first, across organizations, forgotten by id.
	recs, err := s.AlertRecords(ctx, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("AlertRecords: %v %v", recs, err)
	}
	if err := s.AlertRecorded(ctx, b.ID, []string{recs[0].ID}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.AlertRecords(ctx, 10); len(again) != 1 {
		t.Fatal("another organization forgot a record")
	}
	if ev, err := veritrail.NewDecoder(bytes.NewReader(recs[0].Event), veritrail.DefaultLimits, t0).Next(); err != nil || ev.Type != "alert.opened" {
		t.Fatalf("a record does not decode as the event: %v %v", ev, err)
	}
	if err := s.AlertRecorded(ctx, a.ID, []string{recs[0].ID}); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.AlertRecords(ctx, 10); len(again) != 0 {
		t.Fatalf("records after AlertRecorded: %v", again)
	}

	testDeliveries(t, s, a.ID, b.ID, t0)
}

func testDeliveries(t *testing.T, s veritrail.Store, org, other int64, t0 time.Time) {
	ctx := context.Background()
	// Queue: alt_02 route 0 opened (due now), then acknowledged; route 1
	// an escalation due later; alt_03 route 0 due now.
	d1 := testDelivery(org, "dlv_a", "alt_02", 0, t0)
	d2 := testDelivery(org, "dlv_b", "alt_02", 0, t0.Add(time.Second))
	d2.Event = "acknowledged"
	esc := testDelivery(org, "dlv_c", "alt_02", 1, t0.Add(15*time.Minute))
	esc.Escalation, esc.CreatedAt = true, t0
	d3 := testDelivery(org, "dlv_d", "alt_03", 0, t0)
	st, _ := s.RuleState(ctx, org)
	if err := s.CommitRules(ctx, org, &veritrail.RuleCommit{From: st.Cursor, To: st.Cursor + 1, Deliveries: []*veritrail.Delivery{d1, d2, esc, d3}}); err != nil {
		t.Fatal(err)
	}
	claimIDs := func(now time.Time, n int) string {
		t.Helper()
		ds, err := s.ClaimDeliveries(ctx, now, now.Add(time.Minute), n)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range ds {
			out = append(out, d.ID+" ")
		}
		slices.Sort(out)
		return strings.Join(out, "")
	}
	// At t0+2s: dlv_a and dlv_d are due; dlv_b waits for dlv_a (same
	// alert and route); the escalation is not due.
	if got := claimIDs(t0.Add(2*time.Second), 10); got != "dlv_a dlv_d " {
		t.Fatalf("first claim: %q", got)
	}
	if got := claimIDs(t0.Add(3*time.Second), 10); got != "" {
		t.Fatalf("claimed twice: %q", got)
	}
	// A failed attempt puts dlv_a back, due later: dlv_b still waits.
	d1.Attempts, d1.LastError, d1.DueAt = 1, "HTTP 503", t0.Add(time.Minute)
	if err := s.FinishDelivery(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if got := claimIDs(t0.Add(10*time.Second), 10); got != "" {
		t.Fatalf("claimed before its retry, or out of order: %q", got)
	}
	// A claim that lapsed (its claimer died) is claimed again.
	if got := claimIDs(t0.Add(5*time.Minute), 10); got != "dlv_a dlv_d " {
		t.Fatalf("after the claims lapsed: %q", got)
	}
	now := t0.Add(5 * time.Minute)
	d1.State, d1.Attempts, d1.FinishedAt = veritrail.DeliveryDelivered, 2, &now
	d3.State, d3.FinishedAt = veritrail.DeliveryDelivered, &now
	for _, d := range []*veritrail.Delivery{d1, d3} {
		if err := s.FinishDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if got := claimIDs(now, 10); got != "dlv_b " {
		t.Fatalf("after dlv_a was delivered: %q", got)
	}
	d2.State, d2.FinishedAt = veritrail.DeliveryDelivered, &now
	if err := s.FinishDelivery(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if got := claimIDs(t0.Add(20*time.Minute), 10); got != "dlv_c " {
		t.Fatalf("the escalation when due: %q", got)
	}
	ds, err := s.ListDeliveries(ctx, org, "alt_02")
	if err != nil || len(ds) != 3 || ds[0].ID != "dlv_a" || ds[0].State != veritrail.DeliveryDelivered || ds[0].Attempts != 2 ||
		ds[0].FinishedAt == nil || ds[1].ID != "dlv_c" || !ds[1].Escalation || string(ds[0].Route) != `{"route":{"type":"webhook"}}` {
		t.Fatalf("ListDeliveries: %+v %v", ds, err)
	}
	if ds, _ := s.ListDeliveries(ctx, other, "alt_02"); len(ds) != 0 {
		t.Fatalf("another organization's deliveries: %v", ds)
	}
	gone := *d1
	gone.OrgID = other
	if err := s.FinishDelivery(ctx, &gone); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("finish another organization's delivery: %v", err)
	}

	esc.State, esc.FinishedAt = veritrail.DeliveryDelivered, &now
	if err := s.FinishDelivery(ctx, esc); err != nil {
		t.Fatal(err)
	}

	// Concurrent claimers: each delivery goes to one.
	var many []*veritrail.Delivery
	for i := range 40 {
		many = append(many, testDelivery(org, fmt.Sprintf("dlv_m%02d", i), fmt.Sprintf("alt_m%02d", i), 0, t0))
	}
	st, _ = s.RuleState(ctx, org)
	if err := s.CommitRules(ctx, org, &veritrail.RuleCommit{From: st.Cursor, To: st.Cursor, Deliveries: many}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ds, err := s.ClaimDeliveries(ctx, t0.Add(time.Hour), t0.Add(2*time.Hour), 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("%d deliveries claimed, want 40", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}

	// The bound: past MaxPendingDeliveries pending, deliveries are
	// stored as dropped.
	var flood []*veritrail.Delivery
	for i := range veritrail.MaxPendingDeliveries + 1 {
		flood = append(flood, testDelivery(other, fmt.Sprintf("dlv_f%05d", i), "alt_f", i, t0))
	}
	st, _ = s.RuleState(ctx, other)
	if err := s.CommitRules(ctx, other, &veritrail.RuleCommit{From: st.Cursor, To: st.Cursor, Deliveries: flood}); err != nil {
		t.Fatal(err)
	}
	ds, err = s.ListDeliveries(ctx, other, "alt_f")
	if err != nil || len(ds) != veritrail.MaxPendingDeliveries+1 {
		t.Fatalf("flood: %d deliveries, %v", len(ds), err)
	}
	dropped := 0
	for _, d := range ds {
		if d.State == veritrail.DeliveryDropped {
			dropped++
			if d.LastError == "" || d.FinishedAt == nil {
				t.Errorf("a dropped delivery does not say why: %+v", d)
			}
		}
	}
	if dropped != 1 {
		t.Errorf("%d deliveries dropped past the bound, want 1", dropped)
	}
}
