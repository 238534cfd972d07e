package http_test

import (
	"bytes"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// demoAnchor is the newest time of the sample organization's events in the
// API tests: fixed, so counts over the demo are the same on every run.
var demoAnchor = time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)

// ingestDemo stores the sample organization's month of events (20,000,
// the demo of veritrail serve --demo) in organization acme, through the
// API.
func (e *env) ingestDemo() {
	e.t.Helper()
	var body bytes.Buffer
	flush := func() {
		if body.Len() == 0 {
			return
		}
		if r := e.post(body.String(), "Content-Type", "application/x-ndjson"); r.status != 200 {
			e.t.Fatalf("demo ingest: %d %.500s", r.status, r.body)
		}
		body.Reset()
	}
	n := 0
	err := demo.Generate(demo.Options{Seed: 1, Anchor: demoAnchor}, func(line []byte) error {
		body.Write(line)
		body.WriteByte('\n')
		if n++; n%5000 == 0 {
			flush()
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
	flush()
}

// The keys every Miro-compatible item carries, as docs/SIEM.md lists them
// (null when the event has none or the reader may not see it); nested
// objects list theirs after a dot.
var (
	miroLogKeys = map[string][]string{
		"":          {"category", "context", "createdAt", "createdBy", "details", "event", "id", "object", "type"},
		"createdBy": {"email", "id", "name", "type"},
		"object":    {"id", "name"},
		"context":   {"ip", "organization", "team"},
	}
	miroAILogKeys = map[string][]string{
		"":       {"actor", "aiFeatureName", "createdAt", "details", "id", "logType", "messageId", "object", "sessionId", "storedAt"},
		"actor":  {"email", "id", "name", "type"},
		"object": {"id", "name", "type"},
	}
)

// checkKeys fails unless item has exactly the keys of want (nested objects
// too, when not null).
func checkKeys(t *testing.T, what string, item map[string]any, want map[string][]string) {
	t.Helper()
	for path, keys := range want {
		m := item
		if path != "" {
			v, ok := item[path]
			if !ok {
				t.Fatalf("%s %v: no %s", what, item["id"], path)
			}
			if v == nil {
				continue
			}
			m = v.(map[string]any)
		}
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, keys) {
			t.Fatalf("%s %v: %s has keys %v, want %v (%v)", what, item["id"], cmpPath(path), got, keys, item)
		}
	}
}

func cmpPath(p string) string {
	if p == "" {
		return "the item"
	}
	return p
}

// TestMiroItemsHaveEveryKey reads the whole demo, and the server's own
// records, through the three Miro-compatible endpoints, as an owner (who
// sees content) and as an auditor (who does not): every item has every
// documented key, object and details included.
func TestMiroItemsHaveEveryKey(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	e.ingestDemo()
	e.ingestSeeds()
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	// Server records: searches, detail views, token changes.
	e.do("GET", "/api/v1/events?q=export&limit=5", auditor, nil)
	e.do("GET", "/api/v1/events/fx-miro-sign-in", auditor, nil)
	e.do("POST", "/api/v1/tokens", e.owner, strings.NewReader(`{"role":"auditor","name":"siem"}`))

	window := url.Values{"createdAfter": {"2000-01-01"}, "createdBefore": {time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	for _, who := range []struct{ name, token string }{{"owner", e.owner}, {"auditor", auditor}} {
		total, records, withObject, withDetails := 0, 0, 0, 0
		cursor := ""
		for {
			vals := maps.Clone(window)
			vals.Set("limit", "1000")
			if cursor != "" {
				vals.Set("cursor", cursor)
			}
			r, l := e.miro("/v2/audit/logs?"+vals.Encode(), who.token)
			if r.status != 200 {
				t.Fatalf("v2 as %s: %d %s", who.name, r.status, r.body)
			}
			for _, item := range l.Data {
				checkKeys(t, "v2 item as "+who.name, item, miroLogKeys)
				total++
				if item["category"] == "audit" {
					records++
				}
				if item["object"] != nil {
					withObject++
				}
				if item["details"] != nil {
					withDetails++
				}
			}
			if l.Cursor == nil {
				break
			}
			cursor = *l.Cursor
		}
		if total < 20000 || records < 3 || withObject == 0 || withObject == total {
			t.Fatalf("v2 as %s: %d items, %d server records, %d with an object", who.name, total, records, withObject)
		}
		if (who.token == auditor) != (withDetails == 0) {
			t.Fatalf("v2 as %s: %d of %d items with details", who.name, withDetails, total)
		}

		// The older API, a page of each kind: the newest (server records)
		// and the oldest (the demo's first events).
		for _, offset := range []string{"0", "20000"} {
			vals := maps.Clone(window)
			vals.Set("limit", "1000")
			vals.Set("offset", offset)
			r, l := e.miro("/v1/audit/logs?"+vals.Encode(), who.token)
			if r.status != 200 || len(l.Data) == 0 {
				t.Fatalf("v1 as %s, offset %s: %d %.300s", who.name, offset, r.status, r.body)
			}
			for _, item := range l.Data {
				checkKeys(t, "v1 item as "+who.name, item, miroLogKeys)
			}
		}

		ai, cursor := 0, ""
		for {
			path := "/v2/orgs/acme/ai-interaction-logs?limit=100"
			if cursor != "" {
				path += "&cursor=" + cursor
			}
			r, l := e.miro(path, who.token)
			if r.status != 200 {
				t.Fatalf("AI logs as %s: %d %s", who.name, r.status, r.body)
			}
			for _, item := range l.Data {
				checkKeys(t, "AI log as "+who.name, item, miroAILogKeys)
				ai++
			}
			if l.Cursor == nil {
				break
			}
			cursor = *l.Cursor
		}
		if ai < 100 {
			t.Fatalf("AI logs as %s: %d items", who.name, ai)
		}
	}
}
