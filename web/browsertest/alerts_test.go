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

// testRuleForm: a rule written in the console (rules-write) is what the
// API then shows, field by field; its routes kept their secrets through an
// edit (an alert it raises reaches the webhook, signed with the secret
// typed at creation); the replay stored nothing; and the console deletes
// it (rules-delete).
func testRuleForm(t *testing.T, srv *server, scenario func(t *testing.T, name string, extra ...string)) {
	hook := hooktest.Start(t, "console-rule-form-hook-0123456789")
	const name = "failed sign-ins, written in the console"
	scenario(t, "rules-write", "RULE_NAME", name, "HOOK_URL", hook.URL, "HOOK_SECRET", hook.Secret)

	type route struct {
		Type, URL, Secret, After string
	}
	type rule struct {
		ID, Name, Kind, Condition, Window, Severity, Owner, Runbook, Suppress, Status string
		GroupBy                                                                       []string `json:"group_by"`
		Threshold                                                                     int
		Tags                                                                          []string
		Enabled                                                                       bool
		Routes                                                                        []route
	}
	var list struct{ Data []rule }
	srv.do("GET", "/api/v1/rules", "", &list)
	var got *rule
	for i := range list.Data {
		if list.Data[i].Name == name {
			got = &list.Data[i]
		}
	}
	if got == nil {
		t.Fatalf("the console's rule is not in the API: %+v", list.Data)
	}
	want := rule{ID: got.ID, Name: name, Kind: "threshold", Condition: `outcome == "failure" && actor.type == "user"`, Window: "1h",
		Severity: "critical", Owner: "secops@acme.example", Runbook: "Call the person; reset their password if it was not them.",
		Suppress: "30m", Status: "running", GroupBy: []string{"actor.id"}, Threshold: 2, Tags: []string{"identity", "console"}, Enabled: true,
		Routes: []route{{Type: "webhook", URL: hook.URL, Secret: "(set)"}, {Type: "webhook", URL: hook.URL, Secret: "(set)", After: "15m"}}}
	if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("the rule as the API shows it:\n got %+v\nwant %+v", *got, want)
	}
	// The replay stored no alert; the rule's first alert comes from events
	// sent now, and reaches the route signed with the secret kept through
	// the edit (the receiver refuses any other signature).
	var alerts struct{ Data []struct{ ID string } }
	srv.do("GET", "/api/v1/alerts?rule_id="+got.ID, "", &alerts)
	if len(alerts.Data) != 0 {
		t.Fatalf("alerts before any event after the rule: %+v", alerts.Data)
	}
	var batch strings.Builder
	for i := range 2 {
		fmt.Fprintf(&batch, `{"type":"auth.login","actor":{"type":"user","id":"usr_console_rule","email":"rule@acme.example"},"outcome":"failure","id":"console-rule-%d-%d"}`+"\n", time.Now().UnixNano(), i)
	}
	srv.do("POST", "/api/v1/events", batch.String(), nil)
	waitUntil(t, "the alert at the route's webhook, signed with the kept secret", func() bool {
		for _, b := range hook.Bodies() {
			if b["rule"] == name {
				return true
			}
		}
		return false
	})
	if hook.Bad() != 0 {
		t.Fatalf("%d deliveries with a bad signature: the secret was not kept", hook.Bad())
	}
	scenario(t, "rules-delete", "RULE_NAME", name)
	srv.do("GET", "/api/v1/rules", "", &list)
	for _, r := range list.Data {
		if r.ID == got.ID {
			t.Fatalf("the rule deleted in the console is still listed: %+v", r)
		}
	}

	// The built-in pack, on and off from the console: its rules stay,
	// disabled, with the route as last saved (its secret kept).
	scenario(t, "rules-pack", "HOOK_URL", hook.URL, "HOOK_SECRET", hook.Secret)
	var pack struct {
		Enabled bool
		Routes  []struct {
			Type, URL, Secret string
			MinSeverity       string `json:"min_severity"`
		}
		Rules []struct{ ID string }
	}
	srv.do("GET", "/api/v1/rules/pack", "", &pack)
	if pack.Enabled || len(pack.Routes) != 1 || pack.Routes[0].URL != hook.URL || pack.Routes[0].Secret != "(set)" || pack.Routes[0].MinSeverity != "critical" {
		t.Fatalf("the pack after the console: %+v", pack)
	}
	var changes struct{ Data []struct{ Type string } }
	srv.do("GET", "/api/v1/events?type=audit.rules_pack_changed", "", &changes)
	if len(changes.Data) != 3 {
		t.Fatalf("%d pack changes recorded, want 3 (on, routes, off)", len(changes.Data))
	}
}
