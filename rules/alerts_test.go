package rules

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

const burst = `{"name":"failed sign-ins","kind":"threshold","condition":"type == \"auth.login\" && outcome == \"failure\"",
	"group_by":["actor.id"],"threshold":3,"window":"5m","severity":"high","suppress":"1h"}`

// failures appends n failed sign-ins of actor, a second apart from at.
func (h *harness) failures(actor string, n int, at time.Duration) {
	h.t.Helper()
	var evs []*veritrail.Event
	for i := range n {
		evs = append(evs, h.ev("auth.login", actor, at+time.Duration(i)*time.Second, failed))
	}
	h.append(evs...)
}

// TestDedupAndSuppression: matches of one key go to the open alert; once
// it is resolved, matches within the suppression window are counted as
// suppressed; after it, a new alert opens. A dedup_key expression decides
// what "one key" is.
func TestDedupAndSuppression(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		h := newHarness(t, s, "dedup", nil)
		h.rule(burst)
		h.failures("u1", 3, 0)
		h.sync()
		as := h.alerts()
		if len(as) != 1 || as[0].Count != 3 {
			t.Fatalf("first burst: %+v", as)
		}
		id := as[0].ID
		// More of the same, and another group.
		h.failures("u1", 4, time.Minute)
		h.failures("u2", 3, time.Minute)
		h.sync()
		as = h.alerts()
		if len(as) != 2 {
			t.Fatalf("%d alerts, want 2 (u1 deduplicated, u2 new)", len(as))
		}
		if a, _ := s.AlertByID(context.Background(), h.org.ID, id); a.Count != 7 || a.DedupKey != "u1" || string(a.Group) != `{"actor.id":"u1"}` {
			t.Fatalf("u1's alert after dedup: count %d key %q group %s", a.Count, a.DedupKey, a.Group)
		}
		// Resolved: a burst within the hour is suppressed.
		h.clock.add(time.Minute)
		h.change(id, veritrail.AlertResolved, &AlertPatch{Note: "user locked out"})
		h.clock.add(20 * time.Minute)
		h.failures("u1", 3, 30*time.Minute)
		h.sync()
		a, _ := s.AlertByID(context.Background(), h.org.ID, id)
		if len(h.alerts()) != 2 || a.Suppressed != 3 || a.Count != 7 || a.State != veritrail.AlertResolved {
			t.Fatalf("within the suppression window: %d alerts, %+v", len(h.alerts()), a)
		}
		// After the window: a new alert.
		h.clock.add(time.Hour)
		h.failures("u1", 3, 90*time.Minute)
		h.sync()
		as = h.alerts()
		if len(as) != 3 || as[0].DedupKey != "u1" || as[0].ID == id || as[0].Count != 3 {
			t.Fatalf("after the suppression window: %+v", as)
		}

		// dedup_key: one alert per team, whoever fails.
		h2 := newHarness(t, s, "dedup-key", nil)
		h2.rule(`{"name":"team bursts","kind":"threshold","condition":"type == \"auth.login\" && outcome == \"failure\"",
			"group_by":["actor.id"],"threshold":2,"window":"5m","severity":"low","dedup_key":"context.team_id"}`)
		team := func(e *veritrail.Event) { e.Context = &veritrail.Context{TeamID: "sales"} }
		h2.append(h2.ev("auth.login", "u1", 0, failed, team), h2.ev("auth.login", "u1", time.Second, failed, team),
			h2.ev("auth.login", "u2", 2*time.Second, failed, team), h2.ev("auth.login", "u2", 3*time.Second, failed, team))
		h2.sync()
		if as := h2.alerts(); len(as) != 1 || as[0].DedupKey != "sales" || as[0].Count != 4 {
			t.Fatalf("dedup_key: %+v", as)
		}
	})
}

// TestRestartInWindow: a restart in the middle of a window neither misses
// the alert nor raises it twice: after a clean stop, after a crash before
// what was found was stored, with and without saved windows.
func TestRestartInWindow(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		for _, c := range []struct {
			name     string
			snapshot bool // windows saved before the restart
			crash    bool // what the second batch found is lost with the process
		}{{"clean", false, false}, {"saved windows", true, false}, {"crash", false, true}, {"crash, saved windows", true, true}} {
			t.Run(c.name, func(t *testing.T) {
				h := newHarness(t, s, "restart-"+strings.ReplaceAll(strings.ReplaceAll(c.name, " ", ""), ",", ""), nil)
				h.rule(burst)
				h.failures("u1", 2, 0) // two of three
				h.failures("u9", 1, 0)
				h.sync()
				if c.snapshot {
					h.clock.add(2 * time.Hour) // the next store saves the windows
					h.failures("u9", 1, time.Second)
					h.sync()
				}
				h.failures("u1", 1, 10*time.Second) // the third: fires
				if c.crash {
					// The evaluator judges it, then the process dies before
					// storing anything.
					o := h.e.evals[h.org.ID]
					if _, err := o.step(context.Background()); err != nil || len(o.pending) != 1 {
						t.Fatalf("step: %v, %d pending", err, len(o.pending))
					}
				}
				h.restart()
				h.sync()
				as := h.alerts()
				if len(as) != 1 || as[0].Count != 3 || as[0].DedupKey != "u1" {
					t.Fatalf("after the restart: %+v", as)
				}
				// The window goes on: one more match counts on it.
				h.failures("u1", 1, 20*time.Second)
				h.restart()
				h.sync()
				h.sync()
				as = h.alerts()
				if len(as) != 1 || as[0].Count != 4 {
					t.Fatalf("the window after the restart: %+v", as)
				}
				opened := 0
				for _, r := range h.records() {
					if r.Type == "alert.opened" {
						opened++
					}
				}
				if opened != 1 {
					t.Fatalf("%d alert.opened records, want 1", opened)
				}
			})
		}
	})
}

// TestRecords: an alert and every change of its state are alert.*
// events in the organization's log, carrying the rule, the matched event
// ids and the counts.
func TestRecords(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		h := newHarness(t, s, "records", nil)
		r := h.rule(burst)
		h.failures("u1", 3, 0)
		h.sync()
		a := h.alerts()[0]
		h.clock.add(time.Minute)
		h.change(a.ID, veritrail.AlertAcknowledged, &AlertPatch{Note: "looking"})
		h.clock.add(time.Minute)
		h.change(a.ID, veritrail.AlertSnoozed, &AlertPatch{SnoozeFor: ptr(veritrail.Duration(time.Hour))})
		h.clock.add(2 * time.Hour)
		h.e.chores(context.Background()) // the snooze ends
		if got, _ := s.AlertByID(context.Background(), h.org.ID, a.ID); got.State != veritrail.AlertOpen {
			t.Fatalf("after the snooze: %s", got.State)
		}
		h.change(a.ID, veritrail.AlertResolved, nil)
		h.change(a.ID, veritrail.AlertOpen, nil)
		recs := h.records()
		var types []string
		for _, ev := range recs {
			types = append(types, ev.Type)
			if ev.Target == nil || ev.Target.Type != "alert" || ev.Target.ID != a.ID {
				t.Errorf("%s: target %+v", ev.Type, ev.Target)
			}
		}
		want := []string{"alert.opened", "alert.acknowledged", "alert.snoozed", "alert.unsnoozed", "alert.resolved", "alert.reopened"}
		if !slices.Equal(types, want) {
			t.Fatalf("records %v, want %v", types, want)
		}
		var opened map[string]any
		if err := json.Unmarshal(recs[0].Content, &opened); err != nil {
			t.Fatal(err)
		}
		ids, _ := opened["event_ids"].([]any)
		if opened["rule_id"] != r.ID || opened["rule"] != "failed sign-ins" || opened["count"] != 3.0 || len(ids) != 3 ||
			opened["alert_id"] != a.ID || opened["severity"] != "high" || opened["kind"] != "threshold" {
			t.Fatalf("alert.opened content: %v", opened)
		}
		if recs[0].Actor.Type != veritrail.ActorSystem || recs[1].Actor.ID != "tok_oncall" {
			t.Fatalf("actors: %+v %+v", recs[0].Actor, recs[1].Actor)
		}
		var ack map[string]any
		json.Unmarshal(recs[1].Content, &ack)
		if ack["previous_state"] != "open" || ack["state"] != "acknowledged" || ack["note"] != "looking" || ack["count"] != 3.0 {
			t.Fatalf("alert.acknowledged content: %v", ack)
		}
		// Not judged again: a rule on every event does not loop on them.
		h.rule(`{"name":"everything","kind":"match","condition":"true","severity":"informational"}`)
		h.sync()
		if n := len(h.alerts()); n != 1 {
			t.Fatalf("%d alerts: alert records were judged", n)
		}
		// A change that does not apply is refused, naming why.
		_, _, err := h.e.ChangeAlert(context.Background(), h.org.ID, veritrail.Actor{ID: "tok_x"}, a.ID, &AlertPatch{State: "closed"})
		if ve := (*veritrail.Error)(nil); !asError(err, &ve) || ve.Field != "state" {
			t.Fatalf("unknown state: %v", err)
		}
		h.change(a.ID, veritrail.AlertResolved, nil)
		_, _, err = h.e.ChangeAlert(context.Background(), h.org.ID, veritrail.Actor{ID: "tok_x"}, a.ID, &AlertPatch{State: "acknowledged"})
		if veritrail.ErrorCode(err) != veritrail.EConflict {
			t.Fatalf("acknowledging a resolved alert: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func asError(err error, target **veritrail.Error) bool {
	e, ok := err.(*veritrail.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestContentAccess: a rule that reads content is refused for an author
// who may not read it, and stops (saying why) when its author loses the
// access.
func TestContentAccess(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		ctx := context.Background()
		h := newHarness(t, s, "content", nil)
		const spec = `{"name":"admins","kind":"match","condition":"type == \"audit.user_created\" && content.role == \"admin\"","severity":"high"}`
		_, _, err := h.e.Build(ctx, h.org.ID, "tok_admin", false, []byte(spec), nil)
		if ve := (*veritrail.Error)(nil); !asError(err, &ve) || ve.Field != "condition" || !strings.Contains(ve.Message, "content") {
			t.Fatalf("a content rule by an author without content access: %v", err)
		}
		tok := &veritrail.Token{ID: "tok_sec", OrgID: h.org.ID, Name: "sec", Role: veritrail.RoleSecurity, Lookup: "abcd", Hash: []byte("h"), CreatedAt: t0}
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		r := h.ruleBy("tok_sec", true, spec)
		h.append(h.ev("audit.user_created", "tok_root", 0, content(map[string]any{"role": "admin"})),
			h.ev("audit.user_created", "tok_root", time.Second, content(map[string]any{"role": "auditor"})))
		h.sync()
		if as := h.alerts(); len(as) != 1 {
			t.Fatalf("%d alerts, want 1", len(as))
		}
		// The author's token is revoked: the rule stops, and says why.
		if err := s.RevokeToken(ctx, h.org.ID, "tok_sec", t0); err != nil {
			t.Fatal(err)
		}
		h.append(h.ev("audit.user_created", "tok_root", 2*time.Second, content(map[string]any{"role": "admin"})))
		h.e.evals[h.org.ID].lastRules = time.Time{}
		h.sync()
		if as := h.alerts(); len(as) != 1 || as[0].Count != 1 {
			t.Fatalf("after the author lost access: %+v", as)
		}
		v, err := h.e.View(r)
		if err != nil || v.Status != "error" || !strings.Contains(v.Error, "content") {
			t.Fatalf("view of a rule whose author lost access: %+v %v", v, err)
		}
	})
}

// TestReplay: Test replays stored events through rules and lists what
// they would have raised, storing and sending nothing.
func TestReplay(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		h := newHarness(t, s, "replay", nil)
		h.failures("u1", 3, 0)
		h.failures("u2", 2, 0)
		h.failures("u3", 3, 24*time.Hour)
		body := json.RawMessage(strings.ReplaceAll(burst, `"suppress":"1h"`,
			`"suppress":"1h","routes":[{"type":"webhook","url":"http://127.0.0.1:1/never","secret":"0123456789abcdef"}]`))
		res, err := h.e.Test(context.Background(), h.org.ID, false, []json.RawMessage{body}, t0.Add(-time.Hour), t0.Add(2*time.Hour), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Alerts) != 1 || res.Alerts[0].DedupKey != "u1" || res.Alerts[0].Count != 3 || res.Scanned != 5 {
			t.Fatalf("replay: %+v", res)
		}
		if len(h.alerts()) != 0 {
			t.Fatal("a replay stored alerts")
		}
		// Errors name the rule and the field.
		_, err = h.e.Test(context.Background(), h.org.ID, false, []json.RawMessage{body, json.RawMessage(`{"name":"x","kind":"match","condition":"type ==","severity":"low"}`)},
			t0, t0.Add(time.Hour), 10)
		if ve := (*veritrail.Error)(nil); !asError(err, &ve) || ve.Field != "rules[1].condition" || !strings.Contains(ve.Message, "column") {
			t.Fatalf("a bad rule in a replay: %v", err)
		}
	})
}

// TestLease: an evaluator that does not hold its organization's lease
// judges nothing; the one that does takes over from the stored cursor.
func TestLease(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		h := newHarness(t, s, "lease", nil)
		held := false
		h.e.cfg.MayEvaluate = func(context.Context, int64) bool { return held }
		h.rule(burst)
		h.failures("u1", 3, 0)
		h.sync()
		if n := len(h.alerts()); n != 0 {
			t.Fatalf("%d alerts without the lease", n)
		}
		held = true
		h.sync()
		if n := len(h.alerts()); n != 1 {
			t.Fatalf("%d alerts with the lease, want 1", n)
		}
	})
}

// TestRunFollowsCommits: the running engine is woken by the store's
// commit announcements, not by polling (its poll here is an hour), and
// stores its position when stopped.
func TestRunFollowsCommits(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		h := newHarness(t, s, "follow", nil)
		h.rule(burst)
		e, err := New(Options{Store: s, Key: h.key, PollInterval: time.Hour, RefreshInterval: time.Hour, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		count := func() int64 {
			if as := h.alerts(); len(as) > 0 {
				return as[0].Count
			}
			return 0
		}
		for _, want := range []int64{3, 6} { // the second burst comes while the evaluator waits
			h.failures("u1", 3, 0)
			deadline := time.Now().Add(20 * time.Second)
			for count() != want {
				if time.Now().After(deadline) {
					t.Fatal("no alert: the engine was not woken by the commit")
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		cancel()
		<-done
		st, err := s.RuleState(context.Background(), h.org.ID)
		head, _, _ := s.LogHead(context.Background(), h.org.ID)
		if err != nil || st.Snapshot == nil || st.Cursor < 6 || st.Cursor > head-1 {
			t.Fatalf("after stopping: %+v (head %d) %v", st, head, err)
		}
	})
}

// TestStoreTiming: what may open an alert is stored within ApplyInterval;
// additions to an alert known to be open wait for AdvanceInterval (sparing
// the store's writer); a person resolving the alert makes its key's next
// matches prompt again. Repeated firings fold into one finding.
func TestStoreTiming(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		h := newHarness(t, open(t), "store-timing", nil)
		h.rule(burst)
		ctx := context.Background()
		count := func(key string) (n int64, alerts int) {
			for _, a := range h.alerts() {
				if a.DedupKey == key {
					n, alerts = max(n, a.Count), alerts+1
				}
			}
			return n, alerts
		}
		// judge judges what was appended, then stores if it is time to,
		// after advancing the clock by d.
		judge := func(d time.Duration) {
			t.Helper()
			o := h.e.evals[h.org.ID]
			if _, err := o.step(ctx); err != nil {
				t.Fatal(err)
			}
			h.clock.add(d)
			if err := o.flush(ctx, false, false); err != nil {
				t.Fatal(err)
			}
		}
		h.failures("u1", 3, 0)
		h.sync()
		if n, _ := count("u1"); n != 3 {
			t.Fatalf("the alert counts %d, want 3", n)
		}
		// Three more for the open alert: one pending finding, stored only
		// after AdvanceInterval.
		h.failures("u1", 3, 10*time.Second)
		judge(300 * time.Millisecond)
		if o := h.e.evals[h.org.ID]; len(o.pending) != 1 {
			t.Fatalf("%d pending findings for one key, want 1", len(o.pending))
		}
		if n, _ := count("u1"); n != 3 {
			t.Fatalf("additions stored within ApplyInterval: count %d", n)
		}
		judge(2 * time.Second)
		if n, _ := count("u1"); n != 6 {
			t.Fatalf("after AdvanceInterval the alert counts %d, want 6", n)
		}
		// A new key is stored at once.
		h.failures("u2", 3, 20*time.Second)
		judge(300 * time.Millisecond)
		if _, n := count("u2"); n != 1 {
			t.Fatalf("a new key's alert not stored within ApplyInterval: %d alerts", n)
		}
		// Resolved by a person (past its suppression): the next matches of
		// its key may open an alert, so they are prompt again.
		var id string
		for _, a := range h.alerts() {
			if a.DedupKey == "u1" {
				id = a.ID
			}
		}
		if _, _, err := h.e.ChangeAlert(ctx, h.org.ID, veritrail.Actor{ID: "tok_x"}, id, &AlertPatch{State: veritrail.AlertResolved}); err != nil {
			t.Fatal(err)
		}
		h.clock.add(2 * time.Hour)
		h.failures("u1", 3, 2*time.Hour)
		judge(300 * time.Millisecond)
		if _, n := count("u1"); n != 2 {
			t.Fatalf("after the resolution, %d alerts for u1, want 2 (a new one within ApplyInterval)", n)
		}
	})
}

// TestKeepCompiled: writing a rule compiles that rule alone; the others,
// unchanged, are kept as they were compiled (with their windows), and a
// rule written again is compiled again.
func TestKeepCompiled(t *testing.T) {
	stores(t, func(t *testing.T, open opener) {
		h := newHarness(t, open(t), "acme", nil)
		ctx := context.Background()
		first := h.rule(`{"name":"failures","kind":"threshold","condition":"outcome == \"failure\"","group_by":["actor.id"],"threshold":3,"window":"5m","severity":"high"}`)
		h.sync()
		compiledOf := func(id string) *compiled {
			t.Helper()
			for _, c := range h.e.evals[h.org.ID].rules {
				if c.rule.ID == id {
					return c
				}
			}
			t.Fatalf("rule %s is not running", id)
			return nil
		}
		before := compiledOf(first.ID)
		h.append(h.ev("auth.login", "u1", time.Second, failed), h.ev("auth.login", "u1", 2*time.Second, failed))
		h.sync()

		second := h.rule(`{"name":"deletions","kind":"match","condition":"type == \"board.board_deleted\"","severity":"low"}`)
		h.sync()
		if compiledOf(first.ID) != before {
			t.Fatal("writing another rule compiled an unchanged one again")
		}
		compiledOf(second.ID)
		// Its window was kept too: the third failure fires.
		h.append(h.ev("auth.login", "u1", 3*time.Second, failed))
		h.sync()
		if as := h.alerts(); len(as) != 1 || as[0].RuleID != first.ID || as[0].Count != 3 {
			t.Fatalf("alerts after the third failure: %+v", as)
		}

		first.UpdatedAt = first.UpdatedAt.Add(time.Second)
		if err := h.s.UpdateRule(ctx, first); err != nil {
			t.Fatal(err)
		}
		h.sync()
		if compiledOf(first.ID) == before {
			t.Fatal("a rule written again was not compiled again")
		}
	})
}
