package http_test

import (
	"encoding/json"
	"strings"
	"testing"

	veritrail "github.com/veritrail/veritrail"
)

func (e *env) setDLP(t *testing.T, dlpJSON string) {
	t.Helper()
	body := `{"ai_interaction_logs_enabled":true,"retention":[{"category":"*","content_days":90,"metadata_days":730}],"dlp":` + dlpJSON + `}`
	if r := e.do("PUT", "/api/v1/settings", e.owner, strings.NewReader(body)); r.status != 200 {
		t.Fatalf("settings: %d %s", r.status, r.body)
	}
	// Ingest caches settings for a moment; a new server would not.
	e.api.ForgetSettings(e.org.ID)
}

type storedEvent struct {
	Decision *veritrail.Decision `json:"decision"`
	Content  map[string]any      `json:"content"`
}

func (e *env) getEvent(t *testing.T, id string) (storedEvent, string) {
	t.Helper()
	r := e.do("GET", "/api/v1/events/"+id, e.owner, nil)
	if r.status != 200 {
		t.Fatalf("get %s: %d %s", id, r.status, r.body)
	}
	var ev storedEvent
	json.Unmarshal(r.body, &ev)
	return ev, string(r.body)
}

const secretEvent = `{"id":"%s","time":"2026-11-03T10:06:10Z","type":"ai.interaction","actor":{"type":"user","id":"u1"},` +
	`"content":{"prompt":"why does key AKIAIOSFODNN7EXAMPLE fail? mail me at sam@example.com","response":"fine"}}`

func TestIngestDLP(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	post := func(id string) {
		t.Helper()
		if r := e.post(strings.ReplaceAll(secretEvent, "%s", id)); r.status != 200 {
			t.Fatalf("post: %d %s", r.status, r.body)
		}
	}

	// Off (the default): stored as sent.
	if r := e.do("GET", "/api/v1/settings", e.owner, nil); !strings.Contains(string(r.body), `"dlp":{"mode":"off"}`) {
		t.Fatalf("default settings: %s", r.body)
	}
	post("off-1")
	if _, raw := e.getEvent(t, "off-1"); !strings.Contains(raw, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(raw, "decision") {
		t.Fatalf("off changed the event: %s", raw)
	}

	// Redact: masked before it is stored, decision redacted.
	e.setDLP(t, `{"mode":"redact"}`)
	post("redact-1")
	ev, raw := e.getEvent(t, "redact-1")
	if strings.Contains(raw, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(raw, "sam@example.com") {
		t.Fatalf("secret stored: %s", raw)
	}
	if ev.Content["prompt"] != "why does key [REDACTED:aws_access_key_id] fail? mail me at [REDACTED:email]" {
		t.Fatalf("prompt: %v", ev.Content["prompt"])
	}
	if ev.Decision == nil || ev.Decision.Action != "redacted" || ev.Decision.Policy != "dlp" ||
		ev.Decision.Reason != "masked in content: aws_access_key_id (1), email (1)" {
		t.Fatalf("decision: %+v", ev.Decision)
	}
	// A resend is the same event (redaction is deterministic).
	r := e.post(strings.ReplaceAll(secretEvent, "%s", "redact-1"))
	if r.status != 200 || !strings.Contains(string(r.body), `"duplicate":true`) {
		t.Fatalf("resend: %d %s", r.status, r.body)
	}
	// Searchable by decision.
	if r := e.do("GET", "/api/v1/events?decision=redacted", e.owner, nil); !strings.Contains(string(r.body), "redact-1") {
		t.Fatalf("decision filter: %s", r.body)
	}

	// Only some detectors.
	e.setDLP(t, `{"mode":"redact","detectors":["email"]}`)
	post("redact-2")
	if _, raw := e.getEvent(t, "redact-2"); !strings.Contains(raw, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(raw, "sam@example.com") {
		t.Fatalf("detector subset: %s", raw)
	}

	// Record: kept as sent, findings recorded.
	e.setDLP(t, `{"mode":"record"}`)
	post("record-1")
	ev, raw = e.getEvent(t, "record-1")
	if !strings.Contains(raw, "AKIAIOSFODNN7EXAMPLE") || ev.Decision == nil || ev.Decision.Action != "allowed" ||
		!strings.Contains(raw, `"findings":[{"count":1,"detector":"aws_access_key_id","path":"prompt"}`) {
		t.Fatalf("record: %s", raw)
	}

	// Block: the content is withheld; a sender's weaker decision is kept aside.
	e.setDLP(t, `{"mode":"block"}`)
	body := strings.ReplaceAll(secretEvent, "%s", "block-1")
	body = strings.Replace(body, `"content"`, `"decision":{"action":"allowed","policy":"app"},"content"`, 1)
	if r := e.post(body); r.status != 200 {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	ev, raw = e.getEvent(t, "block-1")
	if strings.Contains(raw, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(raw, "why does key") || ev.Decision.Action != "blocked" {
		t.Fatalf("block: %s", raw)
	}
	if od, _ := ev.Content["dlp"].(map[string]any)["original_decision"].(map[string]any); od["policy"] != "app" {
		t.Fatalf("original decision lost: %s", raw)
	}
	// Clean events are untouched whatever the mode.
	if r := e.post(`{"id":"clean-1","type":"auth.login","actor":{"type":"user","id":"u1"},"content":{"x":"nothing here"}}`); r.status != 200 {
		t.Fatal(r.status)
	}
	if ev, raw := e.getEvent(t, "clean-1"); ev.Decision != nil || ev.Content["dlp"] != nil {
		t.Fatalf("clean event changed: %s", raw)
	}

	// Bad settings name the field.
	for body, field := range map[string]string{
		`{"mode":"shred"}`:                     "dlp.mode",
		`{"mode":"redact","detectors":["pw"]}`: "dlp.detectors[0]",
	} {
		r := e.do("PUT", "/api/v1/settings", e.owner, strings.NewReader(`{"retention":[{"category":"*","content_days":1,"metadata_days":2}],"dlp":`+body+`}`))
		if r.status != 400 || !strings.Contains(string(r.body), field) {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
}
