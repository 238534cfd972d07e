package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/hooktest"
	"github.com/veritrail/veritrail/internal/netguard"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/notify"
	"github.com/veritrail/veritrail/rules"
	"github.com/veritrail/veritrail/seal"
)

// newRulesEnv is newEnv with the rules engine and the alert dispatcher
// running, with the outbound address policy pol (tests whose receivers are
// local allow loopback).
func newRulesEnv(t *testing.T, outbound netguard.Guard) *env {
	t.Helper()
	ctx := context.Background()
	m := metrics.New()
	store := openStore(t, t.TempDir(), storeOptions{Observer: m})
	key, _ := seal.New([]byte(strings.Repeat("k", seal.KeySize)))
	quiet := slog.New(slog.DiscardHandler)
	d, err := notify.New(notify.Options{Store: store, Key: key, Outbound: outbound, Logger: quiet,
		PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rules.New(rules.Options{Store: store, Key: key, Notifier: d, Logger: quiet, PollInterval: 20 * time.Millisecond,
		RefreshInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	api := vhttp.New(vhttp.Config{Store: store, Metrics: m, Rules: eng})
	srv := httptest.NewServer(api)
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); eng.Run(rctx) }()
	go func() { defer wg.Done(); d.Run(rctx) }()
	t.Cleanup(func() {
		stop()
		wg.Wait()
		srv.Close()
		api.Shutdown(context.Background())
		store.Close()
	})
	e := &env{t: t, store: store, srv: srv, api: api}
	if e.org, err = store.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	enableAI(t, store, e.org.ID)
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	return e
}

// waitFor polls cond for up to 20 s (the engine runs in the background).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorField(t *testing.T, r response) (code, field, message string) {
	t.Helper()
	var b struct {
		Error struct {
			Code, Field, Message string
		} `json:"error"`
	}
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatalf("not an error body: %s", r.body)
	}
	return b.Error.Code, b.Error.Field, b.Error.Message
}

// TestRulesAPI: rules are created, shown (secrets masked), replaced
// idempotently and deleted through the API, each change recorded; bad
// rules are refused naming the field, storing nothing; access follows
// the roles.
func TestRulesAPI(t *testing.T) {
	e := newRulesEnv(t, netguard.Guard{})
	const body = `{"name":"failed sign-ins","kind":"threshold","condition":"type == \"auth.login\" && outcome == \"failure\"",
		"group_by":["actor.id"],"threshold":3,"window":"5m","severity":"high",
		"routes":[{"type":"webhook","url":"https://siem.example/alerts","secret":"s3cr3t-s3cr3t-s3cr3t"},{"type":"slack","url":"https://hooks.slack.com/services/T0/B0/XYZ"}]}`
	r := e.do("POST", "/api/v1/rules", e.owner, strings.NewReader(body))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	created := r.json(t)
	id, _ := created["id"].(string)
	if !strings.HasPrefix(id, "rule_") || created["status"] != "running" || created["enabled"] != true || created["window"] != "5m" {
		t.Fatalf("created: %v", created)
	}
	if strings.Contains(string(r.body), "s3cr3t") || strings.Contains(string(r.body), "XYZ") {
		t.Fatalf("a secret is shown: %s", r.body)
	}
	routes := created["routes"].([]any)
	if routes[0].(map[string]any)["secret"] != "(set)" || routes[1].(map[string]any)["url"] != "https://hooks.slack.com/…" {
		t.Fatalf("routes as shown: %v", routes)
	}

	// Bad rules: the field named, nothing stored.
	for _, c := range []struct{ body, field, says string }{
		{strings.Replace(body, `"5m"`, `"5 minutes"`, 1), "window", "duration"},
		{strings.Replace(body, `type == \"auth.login\" &&`, `type == &&`, 1), "condition", "column"},
		{strings.Replace(body, `"actor.id"`, `"actor.idd"`, 1), "group_by[0]", "undefined field"},
		{strings.Replace(body, `https://siem.example/alerts`, `http://169.254.169.254/latest`, 1), "routes[0].url", "link-local"},
		{strings.Replace(body, `https://siem.example/alerts`, `http://Metadata.Google.Internal./computeMetadata/v1/`, 1), "routes[0].url", "metadata"},
		{strings.Replace(body, `https://siem.example/alerts`, `https://bob:pw@siem.example/alerts`, 1), "routes[0].url", "credentials"},
		{strings.Replace(body, `"secret":"s3cr3t-s3cr3t-s3cr3t"`, `"secret":"short"`, 1), "routes[0].secret", "16"},
		{strings.Replace(body, `"severity":"high"`, `"severity":"high","colour":"red"`, 1), "colour", "unknown field"},
		{strings.Replace(body, `"kind":"threshold"`, `"kind":"match"`, 1), "threshold", "does not apply"},
	} {
		r := e.do("POST", "/api/v1/rules", e.owner, strings.NewReader(strings.Replace(c.body, "failed sign-ins", "other", 1)))
		code, field, msg := errorField(t, r)
		if r.status != 400 || code != veritrail.EInvalid || field != c.field || !strings.Contains(msg, c.says) {
			t.Errorf("%s: %d %s %q %q, want field %q saying %q", c.field, r.status, code, field, msg, c.field, c.says)
		}
	}
	if r := e.do("POST", "/api/v1/rules", e.owner, strings.NewReader(body)); r.status != 409 {
		t.Fatalf("a second rule of the same name: %d", r.status)
	}
	list := e.do("GET", "/api/v1/rules", e.owner, nil).json(t)["data"].([]any)
	if len(list) != 1 {
		t.Fatalf("%d rules after refusals, want 1", len(list))
	}

	// PUT: the same rule changes nothing; another says so.
	r = e.do("PUT", "/api/v1/rules/"+id, e.owner, strings.NewReader(body))
	if r.status != 200 || r.json(t)["changed"] != false {
		t.Fatalf("PUT the same: %d %s", r.status, r.body)
	}
	r = e.do("PUT", "/api/v1/rules/"+id, e.owner, strings.NewReader(strings.Replace(body, `"threshold":3`, `"threshold":4`, 1)))
	if r.status != 200 || r.json(t)["changed"] != true || r.json(t)["threshold"] != 4.0 {
		t.Fatalf("PUT another: %d %s", r.status, r.body)
	}
	// Secrets written back as the API shows them ("(set)", the Slack URL's
	// host), as the console does, keep the stored ones: nothing changes.
	masked := strings.NewReplacer(`"threshold":3`, `"threshold":4`, "s3cr3t-s3cr3t-s3cr3t", "(set)",
		"https://hooks.slack.com/services/T0/B0/XYZ", "https://hooks.slack.com/…").Replace(body)
	r = e.do("PUT", "/api/v1/rules/"+id, e.owner, strings.NewReader(masked))
	if r.status != 200 || r.json(t)["changed"] != false {
		t.Fatalf("PUT with the secrets as shown: %d %s", r.status, r.body)
	}
	// Routes moved keep their own secrets (each is matched by what the
	// API shows of it, not by its place)...
	w := `{"type":"webhook","url":"https://siem.example/alerts","secret":"(set)"}`
	sl := `{"type":"slack","url":"https://hooks.slack.com/…"}`
	swapped := strings.Replace(masked, w+","+sl, sl+","+w, 1)
	r = e.do("PUT", "/api/v1/rules/"+id, e.owner, strings.NewReader(swapped))
	if r.status != 200 || r.json(t)["changed"] != true {
		t.Fatalf("routes moved, secrets as shown: %d %s", r.status, r.body)
	}
	// ...and a placeholder that matches no stored route (the webhook sent
	// elsewhere) is refused, not stored as the secret.
	elsewhere := strings.Replace(swapped, "https://siem.example/alerts", "https://other.example/alerts", 1)
	r = e.do("PUT", "/api/v1/rules/"+id, e.owner, strings.NewReader(elsewhere))
	if _, field, msg := errorField(t, r); r.status != 400 || field != "routes[1].secret" || !strings.Contains(msg, "type the secret again") {
		t.Fatalf("a masked secret no stored route matches: %d %s", r.status, r.body)
	}
	// Content: refused to a token that may not read it, the field named.
	const contentRule = `{"name":"admins","kind":"match","condition":"type == \"audit.user_created\" && content.role == \"admin\"","severity":"high"}`
	admin := e.token(e.org, veritrail.RoleAdmin, nil, nil)
	r = e.do("POST", "/api/v1/rules", admin, strings.NewReader(contentRule))
	if _, field, msg := errorField(t, r); r.status != 400 || field != "condition" || !strings.Contains(msg, "content") {
		t.Fatalf("content rule by an admin: %d %s", r.status, r.body)
	}
	security := e.token(e.org, veritrail.RoleSecurity, nil, nil)
	if r := e.do("POST", "/api/v1/rules", security, strings.NewReader(contentRule)); r.status != 201 {
		t.Fatalf("content rule by security: %d %s", r.status, r.body)
	}
	// Roles: auditors read alerts, not rules; ingest neither.
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	for _, c := range []struct {
		tok, method, path string
		want              int
	}{
		{auditor, "GET", "/api/v1/rules", 403},
		{auditor, "POST", "/api/v1/rules", 403},
		{auditor, "GET", "/api/v1/alerts", 200},
		{auditor, "PATCH", "/api/v1/alerts/alt_x", 403},
		{ingest, "GET", "/api/v1/alerts", 403},
		{admin, "GET", "/api/v1/rules/" + id, 200},
		{admin, "PATCH", "/api/v1/alerts/alt_x", 404},
	} {
		var rd io.Reader
		if c.method != "GET" {
			rd = strings.NewReader(`{"state":"acknowledged"}`)
		}
		if r := e.do(c.method, c.path, c.tok, rd); r.status != c.want {
			t.Errorf("%s %s: %d, want %d (%s)", c.method, c.path, r.status, c.want, r.body)
		}
	}
	// Another organization sees none of it.
	globex, _ := e.store.CreateOrg(context.Background(), "globex")
	gowner := e.token(globex, veritrail.RoleOwner, nil, nil)
	if r := e.do("GET", "/api/v1/rules/"+id, gowner, nil); r.status != 404 {
		t.Fatalf("another organization's rule: %d", r.status)
	}
	if r := e.do("DELETE", "/api/v1/rules/"+id, gowner, nil); r.status != 404 {
		t.Fatalf("delete another organization's rule: %d", r.status)
	}
	if r := e.do("DELETE", "/api/v1/rules/"+id, e.owner, nil); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/api/v1/rules/"+id, e.owner, nil); r.status != 404 {
		t.Fatalf("after delete: %d", r.status)
	}
	// Every change is in the log.
	types := map[string]int{}
	for _, ev := range e.events("type=audit.rule_created,audit.rule_updated,audit.rule_deleted") {
		types[ev["type"].(string)]++
	}
	// Updated twice: the threshold, then the routes moved.
	if types["audit.rule_created"] != 2 || types["audit.rule_updated"] != 2 || types["audit.rule_deleted"] != 1 {
		t.Fatalf("audit records: %v", types)
	}
}

// events lists acme's events matching the query, oldest first.
func (e *env) events(query string) []map[string]any {
	e.t.Helper()
	r := e.do("GET", "/api/v1/events?order=asc&limit=1000&"+query, e.owner, nil)
	if r.status != 200 {
		e.t.Fatalf("events: %d %s", r.status, r.body)
	}
	var page struct {
		Data []map[string]any `json:"data"`
	}
	json.Unmarshal(r.body, &page)
	return page.Data
}

// TestAlertsAPI: events that trip a rule raise an alert that the API lists
// in the documented shape, a signed webhook receives, and people
// acknowledge and resolve; each step is an alert.* event in the log.
func TestAlertsAPI(t *testing.T) {
	e := newRulesEnv(t, netguard.Guard{AllowLoopback: true})
	hook := hooktest.Start(t, "hook-secret-0123456789")
	rule := fmt.Sprintf(`{"name":"failed sign-ins","kind":"threshold","condition":"type == \"auth.login\" && outcome == \"failure\"",
		"group_by":["actor.id"],"threshold":3,"window":"5m","severity":"high",
		"routes":[{"type":"webhook","url":%q,"secret":%q}]}`, hook.URL, hook.Secret)
	r := e.do("POST", "/api/v1/rules", e.owner, strings.NewReader(rule))
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	ruleID := r.json(t)["id"].(string)
	// Near miss first: two failures, and a success.
	e.post(`{"type":"auth.login","actor":{"type":"user","id":"u1"},"outcome":"failure"}
{"type":"auth.login","actor":{"type":"user","id":"u1"},"outcome":"failure"}
{"type":"auth.login","actor":{"type":"user","id":"u1"},"outcome":"success"}`)
	r = e.post(`{"type":"auth.login","actor":{"type":"user","id":"u1"},"outcome":"failure"}`)
	if r.status != 200 {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	var alerts []map[string]any
	waitFor(t, "the alert", func() bool {
		r := e.do("GET", "/api/v1/alerts", e.owner, nil)
		var page struct {
			Data []map[string]any `json:"data"`
		}
		json.Unmarshal(r.body, &page)
		alerts = page.Data
		return len(alerts) > 0
	})
	a := alerts[0]
	for _, k := range []string{"id", "rule_id", "rule", "severity", "state", "count", "event_ids", "first_seen", "last_seen"} {
		if _, ok := a[k]; !ok {
			t.Fatalf("alert without %q: %v", k, a)
		}
	}
	if len(alerts) != 1 || a["rule_id"] != ruleID || a["rule"] != "failed sign-ins" || a["severity"] != "high" || a["state"] != "open" ||
		a["count"] != 3.0 || len(a["event_ids"].([]any)) != 3 {
		t.Fatalf("alerts: %v", alerts)
	}
	id := a["id"].(string)
	waitFor(t, "the webhook", func() bool { return len(hook.Bodies()) > 0 })
	b := hook.Bodies()[0]
	if b["alert_id"] != id || b["rule"] != "failed sign-ins" || b["severity"] != "high" || b["state"] != "open" || len(b["event_ids"].([]any)) != 3 || hook.Bad() != 0 {
		t.Fatalf("webhook body: %v", b)
	}
	// The alert with its deliveries.
	waitFor(t, "the delivery's state", func() bool {
		r = e.do("GET", "/api/v1/alerts/"+id, e.owner, nil)
		d := r.json(t)["deliveries"].([]any)
		return r.status == 200 && len(d) == 1 && d[0].(map[string]any)["state"] == "delivered" && d[0].(map[string]any)["destination"] == "webhook"
	})
	// State changes.
	for _, c := range []struct {
		body   string
		status int
		field  string
	}{
		{`{"state":"closed"}`, 400, "state"},
		{`{"state":"snoozed"}`, 400, "snooze_for"},
		{`{"state":"acknowledged","note":"on it"}`, 200, ""},
		{`{"state":"resolved"}`, 200, ""},
		{`{"state":"acknowledged"}`, 409, ""},
		{`{"state":"open"}`, 200, ""},
	} {
		r := e.do("PATCH", "/api/v1/alerts/"+id, e.owner, strings.NewReader(c.body))
		if r.status != c.status {
			t.Fatalf("PATCH %s: %d %s", c.body, r.status, r.body)
		}
		if c.field != "" {
			if _, field, _ := errorField(t, r); field != c.field {
				t.Fatalf("PATCH %s: field %q, want %q", c.body, field, c.field)
			}
		}
	}
	waitFor(t, "the webhook to hear of each change", func() bool { return len(hook.Bodies()) == 4 })
	var events []string
	for _, b := range hook.Bodies() {
		events = append(events, b["event"].(string))
	}
	if strings.Join(events, ",") != "opened,acknowledged,resolved,reopened" {
		t.Fatalf("webhook events %v", events)
	}
	recs := e.events("type=alert.*&target_id=" + id)
	var types []string
	for _, ev := range recs {
		types = append(types, ev["type"].(string))
	}
	if strings.Join(types, ",") != "alert.opened,alert.acknowledged,alert.resolved,alert.reopened" {
		t.Fatalf("alert records %v", types)
	}
	if recs[0]["content"].(map[string]any)["rule_id"] != ruleID {
		t.Fatalf("alert.opened content: %v", recs[0]["content"])
	}
	// Filters and paging.
	if r := e.do("GET", "/api/v1/alerts?state=resolved", e.owner, nil); len(r.json(t)["data"].([]any)) != 0 {
		t.Fatalf("state=resolved: %s", r.body)
	}
	if r := e.do("GET", "/api/v1/alerts?colour=red", e.owner, nil); r.status != 400 {
		t.Fatalf("unknown parameter: %d", r.status)
	}

	// A test replay finds the burst again, stores nothing.
	r = e.do("POST", "/api/v1/rules/test", e.owner, strings.NewReader(`{"rules":[`+rule+`],"since":"1h"}`))
	if r.status != 200 {
		t.Fatalf("test: %d %s", r.status, r.body)
	}
	var res rules.TestResult
	json.Unmarshal(r.body, &res)
	if len(res.Alerts) != 1 || res.Alerts[0].Count != 3 || res.Scanned < 4 {
		t.Fatalf("test replay: %s", r.body)
	}
	if n := len(e.do("GET", "/api/v1/alerts", e.owner, nil).json(t)["data"].([]any)); n != 1 {
		t.Fatalf("%d alerts after a test replay", n)
	}
}

// TestRulesPack: the built-in pack is off until turned on; on, it watches
// the server's own records (a token with admin scope, AI logging switched
// off); off again, it stops.
func TestRulesPack(t *testing.T) {
	e := newRulesEnv(t, netguard.Guard{AllowLoopback: true})
	r := e.do("GET", "/api/v1/rules/pack", e.owner, nil)
	if r.status != 200 || r.json(t)["enabled"] != false || len(r.json(t)["rules"].([]any)) < 10 {
		t.Fatalf("pack before: %d %s", r.status, r.body)
	}
	if n := len(e.do("GET", "/api/v1/rules", e.owner, nil).json(t)["data"].([]any)); n != 0 {
		t.Fatalf("%d rules before the pack is on", n)
	}
	hook := hooktest.Start(t, "hook-secret-0123456789")
	r = e.do("PUT", "/api/v1/rules/pack", e.owner, strings.NewReader(fmt.Sprintf(
		`{"enabled":true,"routes":[{"type":"webhook","url":%q,"secret":%q,"min_severity":"high"}]}`, hook.URL, hook.Secret)))
	if r.status != 200 || r.json(t)["enabled"] != true {
		t.Fatalf("pack on: %d %s", r.status, r.body)
	}
	// The routes written back as shown keep their secret: nothing changes
	// (no record), and the alerts below reach the receiver, which refuses
	// any other signature.
	shown, _ := json.Marshal(map[string]any{"enabled": true, "routes": r.json(t)["routes"]})
	if !strings.Contains(string(shown), `"secret":"(set)"`) {
		t.Fatalf("the pack's routes as shown: %s", shown)
	}
	if r := e.do("PUT", "/api/v1/rules/pack", e.owner, strings.NewReader(string(shown))); r.status != 200 {
		t.Fatalf("pack with its routes as shown: %d %s", r.status, r.body)
	}
	if n := len(e.events("type=audit.rules_pack_changed")); n != 1 {
		t.Fatalf("%d pack changes recorded, want 1 (writing the routes back as shown changes nothing)", n)
	}
	// The server's own records trip the pack.
	if r := e.do("POST", "/api/v1/tokens", e.owner, strings.NewReader(`{"name":"ops","role":"admin"}`)); r.status != 201 {
		t.Fatalf("token: %d %s", r.status, r.body)
	}
	st := e.do("GET", "/api/v1/settings", e.owner, nil).json(t)
	st["ai_interaction_logs_enabled"] = false
	delete(st, "ai_interaction_logs_enabled_at")
	b, _ := json.Marshal(st)
	if r := e.do("PUT", "/api/v1/settings", e.owner, strings.NewReader(string(b))); r.status != 200 {
		t.Fatalf("settings: %d %s", r.status, r.body)
	}
	want := []string{"builtin: AI interaction logging switched off", "builtin: new token with admin scope"}
	waitFor(t, "the pack's alerts", func() bool {
		var names []string
		for _, b := range hook.Bodies() {
			names = append(names, b["rule"].(string))
		}
		slices.Sort(names)
		return slices.Equal(names, want)
	})
	if hook.Bad() != 0 {
		t.Fatalf("%d deliveries with a bad signature", hook.Bad())
	}
	// Off: the pack's rules stay, disabled.
	r = e.do("PUT", "/api/v1/rules/pack", e.owner, strings.NewReader(`{"enabled":false}`))
	if r.status != 200 || r.json(t)["enabled"] != false {
		t.Fatalf("pack off: %d %s", r.status, r.body)
	}
	for _, v := range e.do("GET", "/api/v1/rules", e.owner, nil).json(t)["data"].([]any) {
		if v.(map[string]any)["status"] != "disabled" {
			t.Fatalf("a pack rule still runs: %v", v)
		}
	}
	if r := e.do("PUT", "/api/v1/rules/pack", e.owner, strings.NewReader(`{"enabled":true,"routes":[{"type":"pager"}]}`)); r.status != 400 {
		t.Fatalf("a bad pack route: %d %s", r.status, r.body)
	} else if _, field, _ := errorField(t, r); field != "routes[0].type" {
		t.Fatalf("a bad pack route: field %q", field)
	}
}
