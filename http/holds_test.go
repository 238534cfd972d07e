package http_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// TestLegalHolds: a hold keeps a person's events from erasure and from a
// shortened retention, both say what it kept, placing and releasing are
// recorded with who and why, bad holds are refused by field, and after
// the release the held content goes; the log verifies throughout.
func TestLegalHolds(t *testing.T) {
	e := newRetEnv(t)
	now := e.clock.now()
	var b strings.Builder
	for i := 0; i < 12; i++ {
		at := now.Add(-time.Duration(10+i*10) * 24 * time.Hour).Format(time.RFC3339)
		fmt.Fprintf(&b, `{"id":"h%02d","type":"team.message","time":%q,"actor":{"type":"user","id":"p%d"},"content":{"text":"note %02d"}}`+"\n", i, at, i%3, i)
	}
	if r := e.post(b.String()); r.status != 200 {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"reason":"x","actor_ids":["p1"]}`, "name"},
		{`{"name":"x","actor_ids":["p1"]}`, "reason"},
		{`{"name":"x","reason":"y"}`, "a hold needs"},
		{`{"name":"x","reason":"y","filter":"colour=red"}`, "filter"},
		{`{"name":"x","reason":"y","filter":"type=Bad Type"}`, "filter"},
		{`{"name":"x","reason":"y","since":"2026-02-01T00:00:00Z","until":"2026-01-01T00:00:00Z"}`, "since"},
		{`{"name":"x","reason":"y","actor_ids":[""]}`, "actor_ids[0]"},
		{`{"name":"x","reason":"y","actors":["p1"]}`, "actors"},
	} {
		r := e.do("POST", "/api/v1/holds", e.owner, strings.NewReader(c.body))
		if r.status != 400 || !strings.Contains(string(r.body), c.field) {
			t.Errorf("%s: %d %s, want 400 naming %s", c.body, r.status, r.body, c.field)
		}
	}
	aud := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	if r := e.do("POST", "/api/v1/holds", aud, strings.NewReader(`{"name":"x","reason":"y","actor_ids":["p1"]}`)); r.status != 403 {
		t.Errorf("auditor places a hold: %d", r.status)
	}
	if r := e.do("GET", "/api/v1/holds", aud, nil); r.status != 403 {
		t.Errorf("auditor lists holds: %d", r.status)
	}

	r := e.do("POST", "/api/v1/holds", e.owner, strings.NewReader(`{"name":"case 7","reason":"investigation of p1","actor_ids":["p1"]}`))
	var hold veritrail.Hold
	if r.status != 201 || json.Unmarshal(r.body, &hold) != nil || hold.ID == "" || hold.PlacedBy.ID == "" {
		t.Fatalf("place hold: %d %s", r.status, r.body)
	}
	list := e.do("GET", "/api/v1/holds", e.owner, nil)
	if !strings.Contains(string(list.body), `"reason":"investigation of p1"`) || !strings.Contains(string(list.body), `"placed_by":{"type":"api_key"`) {
		t.Errorf("holds list: %s", list.body)
	}

	// Erasure of p1: the preview and the erasure say the hold keeps all 4.
	pv := e.do("POST", "/api/v1/erasure/preview", e.owner, strings.NewReader(`{"actor_id":"p1"}`))
	if !strings.Contains(string(pv.body), `"content_removed":0`) || !strings.Contains(string(pv.body), `"events":4`) {
		t.Errorf("erasure preview under a hold: %d %s", pv.status, pv.body)
	}
	r = e.do("POST", "/api/v1/erasure", e.owner, strings.NewReader(`{"actor_id":"p1"}`))
	if r.status != 200 || !strings.Contains(string(r.body), `"content_removed":0`) || !strings.Contains(string(r.body), `"hold":"`+hold.ID+`"`) {
		t.Fatalf("erasure under a hold: %d %s", r.status, r.body)
	}
	for i := 1; i < 12; i += 3 {
		if env, content := e.state(fmt.Sprintf("h%02d", i)); !env || !content {
			t.Errorf("h%02d (p1, held) after erasure: envelope %v content %v", i, env, content)
		}
	}

	// A 30-day content tier: the change says the hold keeps p1's older
	// events; the run removes the others' content only.
	r = e.putSettings(`{"retention":[{"category":"*","content_days":30,"metadata_days":730}]}`)
	if r.status != 200 || !strings.Contains(string(r.body), `"retention_kept_by_holds":[{"hold":"`+hold.ID+`"`) {
		t.Fatalf("retention change under a hold: %d %s", r.status, r.body)
	}
	pr := e.do("GET", "/api/v1/retention/preview", e.owner, nil)
	// Events 10 to 120 days old; content older than 30 days goes: h03..h11
	// (9 events), of which p1's h04, h07, h10 are held.
	if !strings.Contains(string(pr.body), `"team":{"content_removed":6,"envelopes_removed":0}`) {
		t.Errorf("retention preview: %s", pr.body)
	}
	r = e.do("POST", "/api/v1/retention/run", e.owner, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"content_removed":6`) || !strings.Contains(string(r.body), `"events":3`) {
		t.Fatalf("retention run under a hold: %d %s", r.status, r.body)
	}
	for _, id := range []string{"h04", "h07", "h10", "h01"} {
		if env, content := e.state(id); !env || !content {
			t.Errorf("%s (held) after retention: envelope %v content %v", id, env, content)
		}
	}
	if _, content := e.state("h05"); content {
		t.Error("h05 (not held) kept its content")
	}
	e.verifyAll("under a hold")

	// Release: recorded; the next erasure takes p1's content.
	if r := e.do("POST", "/api/v1/holds/"+hold.ID+"/release", e.owner, strings.NewReader(`{}`)); r.status != 400 {
		t.Errorf("release without a reason: %d", r.status)
	}
	r = e.do("POST", "/api/v1/holds/"+hold.ID+"/release", e.owner, strings.NewReader(`{"reason":"case closed"}`))
	if r.status != 200 || !strings.Contains(string(r.body), `"release_reason":"case closed"`) {
		t.Fatalf("release: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/api/v1/holds/"+hold.ID+"/release", e.owner, strings.NewReader(`{"reason":"again"}`)); r.status != 409 {
		t.Errorf("release twice: %d", r.status)
	}
	r = e.do("POST", "/api/v1/erasure", e.owner, strings.NewReader(`{"actor_id":"p1"}`))
	if !strings.Contains(string(r.body), `"content_removed":4`) || !strings.Contains(string(r.body), `"kept_by_holds":[]`) {
		t.Errorf("erasure after release: %s", r.body)
	}
	recs := e.do("GET", "/api/v1/events?type=privacy.*", e.owner, nil)
	for _, want := range []string{`"type":"privacy.hold_placed"`, `"type":"privacy.hold_released"`, `"type":"privacy.erasure"`} {
		if !strings.Contains(string(recs.body), want) {
			t.Errorf("records lack %s: %s", want, recs.body)
		}
	}
	e.verifyAll("after release")
}
