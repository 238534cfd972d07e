package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testRules checks RuleStore: rules by organization with unique names,
// and the evaluator's cursor, a compare-and-set that stores alerts,
// deliveries, records and the snapshot with it, all or nothing.
func testRules(t *testing.T, open Opener) {
	s := openStore(t, open)
	ctx := context.Background()
	a, b := newOrg(t, s, "rules-a"), newOrg(t, s, "rules-b")
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	mk := func(org int64, id, name string, at time.Time) *veritrail.Rule {
		t.Helper()
		r := &veritrail.Rule{ID: id, OrgID: org, Name: name, Spec: []byte(`{"name":"` + name + `"}`), Author: "tok_1", SinceSeq: 7,
			CreatedAt: at, UpdatedAt: at}
		if err := s.CreateRule(ctx, r); err != nil {
			t.Fatalf("CreateRule %s: %v", id, err)
		}
		return r
	}
	mk(a.ID, "rule_1", "burst", t0)
	mk(a.ID, "rule_2", "export", t0.Add(time.Second))
	mk(b.ID, "rule_3", "burst", t0) // names are unique per organization only
	if err := s.CreateRule(ctx, &veritrail.Rule{ID: "rule_4", OrgID: a.ID, Name: "burst", Spec: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("duplicate name: %v, want conflict", err)
	}
	if err := s.CreateRule(ctx, &veritrail.Rule{ID: "rule_5", OrgID: 999999, Name: "x", Spec: []byte(`{}`), CreatedAt: t0, UpdatedAt: t0}); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("rule of a missing organization: %v, want not found", err)
	}
	got, err := s.RuleByID(ctx, a.ID, "rule_1")
	if err != nil || got.Name != "burst" || string(got.Spec) != `{"name":"burst"}` || got.Author != "tok_1" || got.SinceSeq != 7 ||
		!got.CreatedAt.Equal(t0) || !got.UpdatedAt.Equal(t0) {
		t.Fatalf("RuleByID: %+v %v", got, err)
	}
	if l, err := s.ListRules(ctx, a.ID); err != nil || len(l) != 2 || l[0].ID != "rule_1" || l[1].ID != "rule_2" {
		t.Fatalf("ListRules: %v %v", l, err)
	}
	// Scoped by organization, every method.
	if _, err := s.RuleByID(ctx, b.ID, "rule_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("another organization's rule: %v", err)
	}
	if err := s.UpdateRule(ctx, &veritrail.Rule{ID: "rule_1", OrgID: b.ID, Name: "stolen", Spec: []byte(`{}`), UpdatedAt: t0}); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("update another organization's rule: %v", err)
	}
	if err := s.DeleteRule(ctx, b.ID, "rule_1"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("delete another organization's rule: %v", err)
	}
	// Update: name, spec, author, start, time; the name stays unique.
	up := &veritrail.Rule{ID: "rule_2", OrgID: a.ID, Name: "burst", Spec: []byte(`{}`), UpdatedAt: t0}
	if err := s.UpdateRule(ctx, up); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("rename onto a taken name: %v, want conflict", err)
	}
	up.Name, up.Spec, up.Author, up.SinceSeq, up.UpdatedAt = "exports", []byte(`{"v":2}`), "usr_9", 40, t0.Add(time.Hour)
	if err := s.UpdateRule(ctx, up); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RuleByID(ctx, a.ID, "rule_2"); got.Name != "exports" || string(got.Spec) != `{"v":2}` || got.Author != "usr_9" ||
		got.SinceSeq != 40 || !got.UpdatedAt.Equal(t0.Add(time.Hour)) || !got.CreatedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("after update: %+v", got)
	}
	if err := s.DeleteRule(ctx, a.ID, "rule_2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RuleByID(ctx, a.ID, "rule_2"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("deleted rule: %v", err)
	}

	// The cursor.
	st, err := s.RuleState(ctx, a.ID)
	if err != nil || st.Cursor != -1 || st.SnapshotSeq != -1 || st.Snapshot != nil {
		t.Fatalf("RuleState before any commit: %+v %v", st, err)
	}
	al := testAlert(a.ID, "alt_1", "rule_1", "u1", t0)
	c := &veritrail.RuleCommit{From: -1, To: 10, Snapshot: []byte(`{"w":1}`), NewAlerts: []*veritrail.Alert{al},
		Deliveries: []*veritrail.Delivery{testDelivery(a.ID, "dlv_1", "alt_1", 0, t0)}, Records: []*veritrail.Event{testRecord(t, "alt_1", t0)}}
	if err := s.CommitRules(ctx, a.ID, c); err != nil {
		t.Fatalf("first commit: %v", err)
	}
	if st, _ := s.RuleState(ctx, a.ID); st.Cursor != 10 || st.SnapshotSeq != 10 || string(st.Snapshot) != `{"w":1}` {
		t.Fatalf("after the first commit: %+v", st)
	}
	if st, _ := s.RuleState(ctx, b.ID); st.Cursor != -1 {
		t.Fatalf("another organization's cursor moved: %+v", st)
	}
	// A commit from a stale position stores nothing.
	stale := &veritrail.RuleCommit{From: -1, To: 12, NewAlerts: []*veritrail.Alert{testAlert(a.ID, "alt_2", "rule_1", "u2", t0)},
		Deliveries: []*veritrail.Delivery{testDelivery(a.ID, "dlv_2", "alt_2", 0, t0)}, Records: []*veritrail.Event{testRecord(t, "alt_2", t0)}}
	if err := s.CommitRules(ctx, a.ID, stale); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("commit from a stale cursor: %v, want conflict", err)
	}
	stale.From = 4
	if err := s.CommitRules(ctx, a.ID, stale); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("commit from a stale cursor: %v, want conflict", err)
	}
	if _, err := s.AlertByID(ctx, a.ID, "alt_2"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("a refused commit stored its alert: %v", err)
	}
	if ds, _ := s.ListDeliveries(ctx, a.ID, "alt_2"); len(ds) != 0 {
		t.Fatalf("a refused commit stored its deliveries: %v", ds)
	}
	if recs, _ := s.AlertRecords(ctx, 100); len(recs) != 1 {
		t.Fatalf("records after a refused commit: %d, want 1", len(recs))
	}
	// Without a snapshot the saved one stays (with its seq); merges save
	// the evaluator's fields only.
	merged := *al
	merged.Count, merged.Suppressed, merged.EventIDs, merged.LastSeq = 5, 2, []string{"e1", "e2", "e3"}, 11
	merged.LastSeen, merged.UpdatedAt, merged.RecordedAt = t0.Add(time.Minute), t0.Add(time.Minute), t0.Add(time.Minute)
	merged.State, merged.Note, merged.Severity = veritrail.AlertResolved, "not saved", "low" // not the evaluator's
	if err := s.CommitRules(ctx, a.ID, &veritrail.RuleCommit{From: 10, To: 11, Merged: []*veritrail.Alert{&merged}}); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.RuleState(ctx, a.ID); st.Cursor != 11 || st.SnapshotSeq != 10 || string(st.Snapshot) != `{"w":1}` {
		t.Fatalf("after a commit without a snapshot: %+v", st)
	}
	got2, err := s.AlertByID(ctx, a.ID, "alt_1")
	if err != nil || got2.Count != 5 || got2.Suppressed != 2 || len(got2.EventIDs) != 3 || got2.LastSeq != 11 ||
		!got2.LastSeen.Equal(t0.Add(time.Minute)) || got2.State != veritrail.AlertOpen || got2.Note != "" || got2.Severity != "high" {
		t.Fatalf("after a merge: %+v %v", got2, err)
	}
	if err := s.CommitRules(ctx, a.ID, &veritrail.RuleCommit{From: 11, To: 9}); err == nil {
		t.Fatal("the cursor moved backwards")
	}
	if err := s.CommitRules(ctx, 999999, &veritrail.RuleCommit{From: -1, To: 1}); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("commit for a missing organization: %v, want not found", err)
	}

	// Concurrent evaluators from one position: exactly one wins.
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.CommitRules(ctx, a.ID, &veritrail.RuleCommit{From: 11, To: 20 + int64(i)})
			mu.Lock()
			defer mu.Unlock()
			switch veritrail.ErrorCode(err) {
			case "":
				wins++
			case veritrail.EConflict:
			default:
				t.Errorf("concurrent commit: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent commits from one position won, want 1", wins)
	}
}

func testAlert(org int64, id, rule, key string, at time.Time) *veritrail.Alert {
	return &veritrail.Alert{ID: id, OrgID: org, RuleID: rule, Rule: "burst", Severity: "high", DedupKey: key, Group: []byte(`{"actor.id":"` + key + `"}`),
		State: veritrail.AlertOpen, Count: 3, EventIDs: []string{"e1", "e2", "e3"}, FirstSeen: at.Add(-time.Minute), LastSeen: at, LastSeq: 9,
		OpenedAt: at, UpdatedAt: at, StateAt: at, StateBy: "veritrail", RecordedAt: at}
}

func testDelivery(org int64, id, alert string, route int, at time.Time) *veritrail.Delivery {
	return &veritrail.Delivery{ID: id, OrgID: org, AlertID: alert, RuleID: "rule_1", RouteIndex: route, Destination: "webhook",
		Route: []byte(`{"route":{"type":"webhook"}}`), Event: "opened", State: veritrail.DeliveryPending, DueAt: at, CreatedAt: at}
}

func testRecord(t *testing.T, alert string, at time.Time) *veritrail.Event {
	t.Helper()
	ev, err := veritrail.NewRecord(at, "alert.opened", veritrail.SystemActor("rules"), &veritrail.Target{Type: "alert", ID: alert},
		veritrail.OutcomeSuccess, map[string]any{"alert_id": alert})
	if err != nil {
		t.Fatal(err)
	}
	return ev
}
