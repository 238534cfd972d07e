package rules

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/mail"
	"github.com/veritrail/veritrail/sink/webhook"
)

// receiver is an HTTP destination started by the test: it keeps what it
// was sent and answers as the real one does (failing first when told).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	failN  int // answer 503 to this many requests first
	answer func(w http.ResponseWriter)
}

type received struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, answer func(w http.ResponseWriter)) *receiver {
	r := &receiver{answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		if r.failN > 0 {
			r.failN--
			r.mu.Unlock()
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			r.mu.Unlock()
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, received{req.URL.Path, req.Header.Clone(), b})
		r.mu.Unlock()
		if r.answer != nil {
			r.answer(w)
			return
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) all() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// object decodes a JSON object, failing the test if it is not one.
func object(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, b)
	}
	return m
}

func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok || s == "" {
		t.Fatalf("%q is not a non-empty string in %v", key, m)
	}
	return s
}

func list(t *testing.T, m map[string]any, key string) []any {
	t.Helper()
	l, ok := m[key].([]any)
	if !ok {
		t.Fatalf("%q is not a list in %v", key, m)
	}
	return l
}

// checkWebhook checks a webhook route's body and signature (docs/API.md).
func checkWebhook(t *testing.T, r received, secret, event, state string) map[string]any {
	t.Helper()
	if !webhook.Verify([]byte(secret), r.body, r.header.Get(webhook.SignatureHeader)) {
		t.Fatalf("the signature does not verify: %q", r.header.Get(webhook.SignatureHeader))
	}
	if r.header.Get("X-Veritrail-Delivery") == "" || r.header.Get("X-Veritrail-Event") != "alert."+event {
		t.Fatalf("headers: %v", r.header)
	}
	m := object(t, r.body)
	str(t, m, "alert_id")
	str(t, m, "rule")
	str(t, m, "rule_id")
	if m["severity"] != "high" || m["state"] != state || m["event"] != event || len(list(t, m, "event_ids")) == 0 || m["count"] == nil {
		t.Fatalf("webhook body: %v", m)
	}
	return m
}

// checkSlack checks an incoming-webhook message: text, and Block Kit
// blocks within Slack's limits.
func checkSlack(t *testing.T, r received, want string) {
	t.Helper()
	m := object(t, r.body)
	if !strings.Contains(str(t, m, "text"), want) {
		t.Fatalf("Slack text %q does not say %q", m["text"], want)
	}
	for _, b := range list(t, m, "blocks") {
		b := b.(map[string]any)
		switch b["type"] {
		case "header":
			tx := b["text"].(map[string]any)
			if tx["type"] != "plain_text" || len(tx["text"].(string)) > 150 {
				t.Fatalf("header block: %v", b)
			}
		case "section":
			fields, _ := b["fields"].([]any)
			if tx, ok := b["text"].(map[string]any); ok && tx["type"] != "mrkdwn" {
				t.Fatalf("section text: %v", b)
			}
			if len(fields) > 10 {
				t.Fatalf("%d fields in a section (Slack takes 10)", len(fields))
			}
			for _, f := range fields {
				if f.(map[string]any)["type"] != "mrkdwn" {
					t.Fatalf("section field: %v", f)
				}
			}
		case "context":
			if len(list(t, b, "elements")) == 0 {
				t.Fatalf("context block: %v", b)
			}
		default:
			t.Fatalf("unexpected block %v", b)
		}
	}
}

// checkTeams checks a Teams (Workflows) webhook message: one Adaptive
// Card attachment.
func checkTeams(t *testing.T, r received, want string) {
	t.Helper()
	m := object(t, r.body)
	at := list(t, m, "attachments")
	if m["type"] != "message" || len(at) != 1 {
		t.Fatalf("Teams message: %v", m)
	}
	a := at[0].(map[string]any)
	card, _ := a["content"].(map[string]any)
	if a["contentType"] != "application/vnd.microsoft.card.adaptive" || card == nil || card["type"] != "AdaptiveCard" ||
		card["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" || card["version"] == nil {
		t.Fatalf("Teams attachment: %v", a)
	}
	body := list(t, card, "body")
	first := body[0].(map[string]any)
	if first["type"] != "TextBlock" || !strings.Contains(first["text"].(string), want) {
		t.Fatalf("Teams card body: %v", body)
	}
}

// checkPagerDuty checks an Events API v2 event.
func checkPagerDuty(t *testing.T, r received, key, action, dedup string) {
	t.Helper()
	m := object(t, r.body)
	if m["routing_key"] != key || m["event_action"] != action || m["dedup_key"] != dedup {
		t.Fatalf("PagerDuty event: %v", m)
	}
	if action != "trigger" {
		return
	}
	p, _ := m["payload"].(map[string]any)
	if p == nil || len(str(t, p, "summary")) > 1024 || str(t, p, "source") == "" {
		t.Fatalf("PagerDuty payload: %v", m)
	}
	if sev := p["severity"]; sev != "critical" && sev != "error" && sev != "warning" && sev != "info" {
		t.Fatalf("PagerDuty severity %v", sev)
	}
	if _, err := time.Parse(time.RFC3339, str(t, p, "timestamp")); err != nil {
		t.Fatalf("PagerDuty timestamp: %v", err)
	}
}

// checkJira checks a create-issue request (REST API v2).
func checkJira(t *testing.T, r received, user, token string) {
	t.Helper()
	if r.path != "/rest/api/2/issue" || r.header.Get("Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+token)) {
		t.Fatalf("Jira request: %s %v", r.path, r.header)
	}
	f, _ := object(t, r.body)["fields"].(map[string]any)
	if f == nil {
		t.Fatalf("Jira body: %s", r.body)
	}
	proj, _ := f["project"].(map[string]any)
	it, _ := f["issuetype"].(map[string]any)
	if proj["key"] != "SEC" || it["name"] != "Task" || len(str(t, f, "summary")) > 255 || str(t, f, "description") == "" {
		t.Fatalf("Jira fields: %v", f)
	}
	for _, l := range list(t, f, "labels") {
		if strings.ContainsAny(l.(string), " \t") {
			t.Fatalf("a Jira label with a space: %q", l)
		}
	}
}

// TestRoutesAndEscalation: every route type gets what its destination
// documents, from a receiver the test starts (e-mail by a real SMTP
// server); deliveries retry; an escalation step goes out only if nobody
// acknowledged the alert in time, and PagerDuty hears of the
// acknowledgement and resolution of the incidents it opened.
func TestRoutesAndEscalation(t *testing.T) {
	smtp := smtptest.Start(t)
	stores(t, func(t *testing.T, open opener) {
		s := open(t)
		ctx := context.Background()
		m := &mail.Config{URL: smtp.URL(), From: "veritrail@acme.example", CAFile: smtp.CAFile}
		h := newHarness(t, s, "routes", m)
		hook := newReceiver(t, nil)
		hook.failN = 1 // down at first: retried
		slack := newReceiver(t, nil)
		teams := newReceiver(t, func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) })
		pd := newReceiver(t, func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusAccepted)
			w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"x"}`))
		})
		jira := newReceiver(t, func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusCreated)
			w.Write([]byte(`{"id":"10001","key":"SEC-24","self":"https://acme.atlassian.net/rest/api/2/issue/10001"}`))
		})
		const secret, pdKey, jiraToken = "hook-secret-0123456789", "R0UT1NGK3Y0123456789ABCDEFGHIJKL", "jira-api-token"
		to := fmt.Sprintf("routes-%s@acme.example", strings.ReplaceAll(t.Name(), "/", "-"))
		spec := strings.NewReplacer("HOOK", hook.srv.URL+"/alerts", "SLACK", slack.srv.URL+"/services/T0/B0/x", "TEAMS", teams.srv.URL+"/workflows/y",
			"PD", pd.srv.URL+"/v2/enqueue", "JIRA", jira.srv.URL, "SECRET", secret, "ROUTINGKEY", pdKey, "TOKEN", jiraToken, "TO", to).Replace(`{
			"name":"failed sign-ins","kind":"threshold","condition":"type == \"auth.login\" && outcome == \"failure\"",
			"group_by":["actor.id"],"threshold":3,"window":"5m","severity":"high","owner":"secops","runbook":"Lock the account.",
			"tags":["identity","sign in"],
			"routes":[
				{"type":"webhook","url":"HOOK","secret":"SECRET"},
				{"type":"slack","url":"SLACK"},
				{"type":"teams","url":"TEAMS"},
				{"type":"email","to":["TO"]},
				{"type":"jira","url":"JIRA","project":"SEC","user":"bot@acme.example","token":"TOKEN"},
				{"type":"pagerduty","url":"PD","routing_key":"ROUTINGKEY","after":"15m"},
				{"type":"webhook","url":"HOOK","secret":"SECRET","min_severity":"critical"}
			]}`)
		h.rule(spec)
		h.failures("u1", 3, 0)
		h.sync()
		a := h.alerts()[0]
		h.tick()
		// The webhook was down: retried after its backoff.
		if n := len(hook.all()); n != 0 {
			t.Fatalf("webhook got %d before its retry", n)
		}
		h.clock.add(5 * time.Second)
		h.tick()
		hooks := hook.all()
		if len(hooks) != 1 { // the critical-only route took nothing
			t.Fatalf("webhook: %d requests, want 1", len(hooks))
		}
		body := checkWebhook(t, hooks[0], secret, "opened", "open")
		if body["alert_id"] != a.ID || body["organization"] != "routes" || body["owner"] != "secops" || body["url"] != "https://audit.acme.example/api/v1/alerts/"+a.ID {
			t.Fatalf("webhook body: %v", body)
		}
		if got := slack.all(); len(got) != 1 {
			t.Fatalf("Slack: %d messages", len(got))
		} else {
			checkSlack(t, got[0], "failed sign-ins")
		}
		if got := teams.all(); len(got) != 1 {
			t.Fatalf("Teams: %d messages", len(got))
		} else {
			checkTeams(t, got[0], "failed sign-ins")
		}
		if got := jira.all(); len(got) != 1 {
			t.Fatalf("Jira: %d requests", len(got))
		} else {
			checkJira(t, got[0], "bot@acme.example", jiraToken)
		}
		if got := pd.all(); len(got) != 0 {
			t.Fatalf("PagerDuty paged before the escalation was due: %d", len(got))
		}
		var msg string
		for _, mm := range smtp.Wait(t, 1, 10*time.Second) {
			if strings.Contains(mm, to) {
				msg = mm
			}
		}
		if !regexp.MustCompile(`(?m)^Subject: .*failed sign-ins`).MatchString(msg) || !strings.Contains(msg, a.ID) || !strings.Contains(msg, "Lock the account.") {
			t.Fatalf("e-mail:\n%s", msg)
		}
		ds, _ := s.ListDeliveries(ctx, h.org.ID, a.ID)
		for _, d := range ds {
			switch {
			case d.Destination == "pagerduty":
				if d.State != veritrail.DeliveryPending || !d.Escalation {
					t.Fatalf("the escalation step: %+v", d)
				}
			case d.State != veritrail.DeliveryDelivered:
				t.Fatalf("delivery to %s: %s (%s)", d.Destination, d.State, d.LastError)
			case d.Destination == "jira" && d.Result != "SEC-24":
				t.Fatalf("the ticket's key: %q", d.Result)
			case d.Destination == "webhook" && d.Attempts != 2:
				t.Fatalf("webhook attempts %d, want 2", d.Attempts)
			}
		}

		// A second alert, acknowledged within 15 minutes: never paged.
		h.failures("u2", 3, time.Minute)
		h.sync()
		b := h.alerts()[0]
		h.tick()
		h.clock.add(5 * time.Minute)
		h.change(b.ID, veritrail.AlertAcknowledged, nil)
		h.tick()
		// 16 minutes on: the first alert escalates, the second does not.
		h.clock.add(11 * time.Minute)
		h.tick()
		got := pd.all()
		if len(got) != 1 {
			t.Fatalf("PagerDuty: %d events, want 1", len(got))
		}
		checkPagerDuty(t, got[0], pdKey, "trigger", a.ID)
		ds, _ = s.ListDeliveries(ctx, h.org.ID, b.ID)
		for _, d := range ds {
			if d.Destination == "pagerduty" && d.State != veritrail.DeliverySkipped {
				t.Fatalf("the acknowledged alert's escalation: %+v", d)
			}
		}
		// PagerDuty hears of what happens to its incident, by dedup key.
		h.change(a.ID, veritrail.AlertAcknowledged, nil)
		h.tick()
		h.change(a.ID, veritrail.AlertResolved, nil)
		h.tick()
		got = pd.all()
		if len(got) != 3 {
			t.Fatalf("PagerDuty: %d events, want trigger, acknowledge, resolve", len(got))
		}
		checkPagerDuty(t, got[1], pdKey, "acknowledge", a.ID)
		checkPagerDuty(t, got[2], pdKey, "resolve", a.ID)
		var states []string
		for _, r := range hook.all() {
			if object(t, r.body)["alert_id"] == a.ID {
				states = append(states, object(t, r.body)["event"].(string))
			}
		}
		if strings.Join(states, ",") != "opened,acknowledged,resolved" {
			t.Fatalf("webhook events of the first alert: %v", states)
		}
		if n := len(jira.all()); n != 2 { // one issue per alert
			t.Fatalf("Jira: %d issues, want 2", n)
		}
	})
}
