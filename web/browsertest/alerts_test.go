package browsertest_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/hooktest"
)

// testAlerts: a rule raises an alert from events sent to the server; the
// Alerts page lists it and the rules, its detail shows the events that
// fired it each verified in the browser, and acknowledging and resolving
// it there change it, notify its route and are recorded in the log. An
// auditor sees the alert but cannot change it or see the rules.
func testAlerts(t *testing.T, srv *server, scenario func(t *testing.T, name string, extra ...string)) {
	hook := hooktest.Start(t, "console-alert-hook-0123456789")
	hookStates := func() []string {
		var out []string
		for _, m := range hook.Bodies() {
			out = append(out, fmt.Sprint(m["state"]))
		}
		return out
	}

	const rule = "production database password read"
	var created struct{ ID string }
	srv.do("POST", "/api/v1/rules", fmt.Sprintf(`{"name":%q,"kind":"match",
		"condition":"type == \"secret.read\" && target.id == \"prod-db-password\"","severity":"high",
		"owner":"security@acme.example","runbook":"Ask who read it and why; rotate it if nobody knows.",
		"routes":[{"type":"webhook","url":%q,"secret":%q}]}`, rule, hook.URL, hook.Secret), &created)
	// The rule judges events from its creation on: three reads of the
	// password (one alert: a match rule's alerts share one dedup key), and
	// one of another secret that does not match.
	var sent []string
	var batch strings.Builder
	for i, target := range []string{"prod-db-password", "staging-api-key", "prod-db-password", "prod-db-password"} {
		id := fmt.Sprintf("secret-read-%d-%d", time.Now().UnixNano(), i)
		fmt.Fprintf(&batch, `{"id":%q,"type":"secret.read","actor":{"type":"user","id":"usr_ops%d","email":"ops%d@acme.example"},"target":{"type":"secret","id":%q},"outcome":"success"}`+"\n",
			id, i, i, target)
		if target == "prod-db-password" {
			sent = append(sent, id)
		}
	}
	srv.do("POST", "/api/v1/events", batch.String(), nil)

	type alert struct {
		ID, State, Rule, Note string
		EventIDs              []string `json:"event_ids"`
		Deliveries            []struct{ State string }
	}
	var got alert
	waitUntil(t, "the alert with its three events, delivered to the webhook", func() bool {
		var list struct{ Data []alert }
		srv.do("GET", "/api/v1/alerts?rule_id="+created.ID, "", &list)
		if len(list.Data) != 1 || len(list.Data[0].EventIDs) != 3 {
			return false
		}
		srv.do("GET", "/api/v1/alerts/"+list.Data[0].ID, "", &got)
		return len(got.Deliveries) > 0 && got.Deliveries[0].State == "delivered"
	})
	if !slices.Equal(slices.Sorted(slices.Values(got.EventIDs)), slices.Sorted(slices.Values(sent))) {
		t.Fatalf("the alert's events %v, want %v", got.EventIDs, sent)
	}

	scenario(t, "alerts", "ALERT_ID", got.ID, "ALERT_RULE", rule, "ALERT_EVENTS", strings.Join(sent, ","), "RULE_ID", created.ID)

	// What the page did is what the API and the log say.
	srv.do("GET", "/api/v1/alerts/"+got.ID, "", &got)
	if got.State != "resolved" || got.Note != "rotated the password" {
		t.Fatalf("after the page: state %q, note %q", got.State, got.Note)
	}
	waitUntil(t, "the alert's records in the log", func() bool {
		var recs struct {
			Data []struct{ Type string }
		}
		srv.do("GET", "/api/v1/events?order=asc&type=alert.*&target_id="+got.ID, "", &recs)
		var types []string
		for _, r := range recs.Data {
			types = append(types, r.Type)
		}
		// alert.updated may come between (more matches after it opened).
		types = slices.DeleteFunc(types, func(s string) bool { return s == "alert.updated" })
		return slices.Equal(types, []string{"alert.opened", "alert.acknowledged", "alert.resolved"})
	})
	waitUntil(t, "the route told of each change", func() bool {
		st := hookStates()
		return len(st) >= 3 && st[0] == "open" && slices.Equal(st[len(st)-2:], []string{"acknowledged", "resolved"})
	})

	scenario(t, "alerts-auditor", "ALERT_ID", got.ID, "ALERT_RULE", rule)
}

// waitUntil polls cond for up to two minutes (the machine may be loaded).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
