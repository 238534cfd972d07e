package http_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/demo"
)

// readPage reads one page of GET /api/v1/events as token: its events' ids
// and seqs, and next_cursor; it fails on any answer but 200.
func (e *env) readPage(path, token string) (ids []string, seqs []int64, next string) {
	e.t.Helper()
	r := e.do("GET", path, token, nil)
	if r.status != 200 {
		e.t.Fatalf("%s: %d %s", path, r.status, r.body)
	}
	var page struct {
		Data []struct {
			ID  string `json:"id"`
			Seq int64  `json:"seq"`
		} `json:"data"`
		Next string `json:"next_cursor"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil {
		e.t.Fatal(err)
	}
	for _, d := range page.Data {
		ids, seqs = append(ids, d.ID), append(seqs, d.Seq)
	}
	return ids, seqs, page.Next
}

// listAll pages GET /api/v1/events?<query> (following next_cursor, limit
// 1000) and returns the events' ids.
func (e *env) listAll(query string) []string {
	e.t.Helper()
	var all []string
	path := "/api/v1/events?limit=1000&" + query
	for range 100 {
		ids, _, next := e.readPage(path, e.owner)
		all = append(all, ids...)
		if next == "" || len(ids) == 0 {
			return all
		}
		path = "/api/v1/events?limit=1000&" + query + "&cursor=" + next
	}
	e.t.Fatalf("%s: paging did not end", query)
	return nil
}

// demoEvents are the demo's events as ingest reads them: the oracle of
// the search tests (veritrail.Query.Match).
func demoEvents(t *testing.T) []*veritrail.Event {
	var evs []*veritrail.Event
	lim := veritrail.Limits{MaxEventBytes: 1 << 20, MaxBatchEvents: 1, MaxBodyBytes: 1 << 20, MaxFuture: 24 * time.Hour}
	err := demo.Generate(demo.Options{Seed: 1, Anchor: demoAnchor}, func(line []byte) error {
		e, err := veritrail.NewDecoder(bytes.NewReader(line), lim, time.Now()).Next()
		evs = append(evs, e)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func matching(t *testing.T, evs []*veritrail.Event, query string) int {
	t.Helper()
	vals, _ := url.ParseQuery(query)
	q, err := veritrail.ParseQuery(vals, true)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if q.Match(e) {
			n++
		}
	}
	return n
}

// TestSearchPivots searches the demo the way an investigator pivots:
// one class of activity across sources, exclusions, the request and the
// user agent of an event, relative windows.
func TestSearchPivots(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	e.ingestDemo()
	evs := demoEvents(t)

	// Sign-ins live under auth.* and authentication.*: one class holds
	// both, and more (a sign-in is a sign-in whatever its category).
	auth := len(e.listAll("type=auth.*&outcome=failure"))
	authn := len(e.listAll("type=authentication.*&outcome=failure"))
	class := len(e.listAll("class=authentication&outcome=failure"))
	if auth == 0 || authn == 0 || class != auth+authn || class != matching(t, evs, "class=authentication&outcome=failure") {
		t.Errorf("failed sign-ins: auth.* %d, authentication.* %d, class %d (want %d)", auth, authn, class, matching(t, evs, "class=authentication&outcome=failure"))
	}
	for _, q := range []string{"class=3002", "class=Authentication", "class=authentication,group_management", "class=!api_activity&type=!audit.*"} {
		if got, want := len(e.listAll(q)), matching(t, evs, q); got != want || got == 0 {
			t.Errorf("%s: %d events, want %d", q, got, want)
		}
	}

	// Exclusions: one's own reads (audit.*) are left out; values and
	// exclusions combine; an event without the field is not excluded.
	total := len(e.listAll("type=!audit.*"))
	if total != len(evs) {
		t.Errorf("type=!audit.*: %d events, want the demo's %d", total, len(evs))
	}
	for _, q := range []string{"type=auth.*,!auth.logout", "outcome=!success&type=!audit.*", "type=auth.*&type=!auth.login,!auth.logout",
		"actor_type=!user,!agent&type=!audit.*", "status=!2xx&type=!audit.*"} {
		if got, want := len(e.listAll(q)), matching(t, evs, q); got != want || got == 0 {
			t.Errorf("%s: %d events, want %d", q, got, want)
		}
	}

	// The request and the client of an event: every event of that request
	// or agent, and the server's own record of a read made with them.
	var pick *veritrail.Event
	for _, ev := range evs {
		if ev.Context != nil && ev.Context.RequestID != "" && ev.Context.UserAgent != "" {
			pick = ev
			break
		}
	}
	req := "request_id=" + url.QueryEscape(pick.Context.RequestID)
	if got := e.listAll(req); len(got) != matching(t, evs, req) || !strings.Contains(strings.Join(got, ","), pick.ID) {
		t.Errorf("%s: %v, want %s among %d", req, got, pick.ID, matching(t, evs, req))
	}
	ua := "user_agent=" + url.QueryEscape(pick.Context.UserAgent) + "&type=!audit.*"
	if got, want := len(e.listAll(ua)), matching(t, evs, ua); got != want || got == 0 {
		t.Errorf("%s: %d events, want %d", ua, got, want)
	}
	r := e.do("GET", "/api/v1/events?type=auth.*&limit=1", e.owner, nil, "X-Request-Id", "inv-7f3a", "User-Agent", "investigator-cli/1.2")
	if r.status != 200 {
		t.Fatal(r.status)
	}
	for _, q := range []string{"request_id=inv-7f3a", "user_agent=investigator-cli/*", "user_agent=investigator-cli/1.2&type=audit.query"} {
		if got := e.listAll(q); len(got) != 1 {
			t.Errorf("%s: %v, want the record of that read", q, got)
		}
	}

	// Relative windows, against the server's clock: events an hour, three
	// days and ten days old.
	now := time.Now().UTC()
	for _, ago := range []struct {
		id string
		d  time.Duration
	}{{"rel-1h", time.Hour}, {"rel-3d", 72 * time.Hour}, {"rel-10d", 240 * time.Hour}} {
		if r := e.post(fmt.Sprintf(`{"id":%q,"type":"rel.test","time":%q,"actor":{"type":"user","id":"u"}}`, ago.id, now.Add(-ago.d).Format(time.RFC3339Nano))); r.status != 200 {
			t.Fatalf("%s: %d %s", ago.id, r.status, r.body)
		}
	}
	for q, want := range map[string]string{
		"since=-24h":                      "rel-1h",
		"since=-7d&until=-1d":             "rel-3d",
		"since=now-2w&until=now-1w":       "rel-10d",
		"since=-2w&until=now&order=asc":   "rel-10d,rel-3d,rel-1h",
		"since=-1d12h&until=-30m":         "rel-1h",
		"until=-5d&since=2000-01-01":      "rel-10d",
		"since=-11d&until=-71h&order=asc": "rel-10d,rel-3d",
	} {
		if got := strings.Join(e.listAll("type=rel.test&"+q), ","); got != want {
			t.Errorf("%s: %s, want %s", q, got, want)
		}
	}
	// Pages of a relative window keep the first page's window: the cursor
	// carries the time it was read against.
	var paged []string
	path := "/api/v1/events?type=rel.test&since=-2w&order=asc&limit=1"
	for range 5 {
		r := e.do("GET", path, e.owner, nil)
		m := r.json(t)
		if r.status != 200 {
			t.Fatalf("paging a relative window: %d %s", r.status, r.body)
		}
		for _, d := range m["data"].([]any) {
			paged = append(paged, d.(map[string]any)["id"].(string))
		}
		next, _ := m["next_cursor"].(string)
		if next == "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
		path = "/api/v1/events?type=rel.test&since=-2w&order=asc&limit=1&cursor=" + next
	}
	if strings.Join(paged, ",") != "rel-10d,rel-3d,rel-1h" {
		t.Errorf("paged %v", paged)
	}

	// Refusals say what to do.
	for q, want := range map[string]string{
		"since=2026-06-01T10:00:00%2002:00": "did you mean 2026-06-01T10:00:00+02:00? A + in a URL's query must be encoded as %2B",
		"since=2026-06-01T10:00:00+02:00":   "did you mean 2026-06-01T10:00:00+02:00?",
		"since=-3x":                         "parameter since",
		"class=signins":                     "authentication, entity_management",
		"type=!":                            "excludes the value after it",
		"request_id=":                       "parameter request_id: empty value",
	} {
		r := e.do("GET", "/api/v1/events?"+q, e.owner, nil)
		if r.status != 400 || !strings.Contains(string(r.body), want) {
			t.Errorf("%s: %d %s, want 400 with %q", q, r.status, r.body, want)
		}
	}
}
