package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
)

// miroList is a decoded cursor-list or list answer of the Miro-compatible
// endpoints. Cursor and NextLink are pointers so "absent" and "null" show.
type miroList struct {
	Type     string           `json:"type"`
	Limit    int              `json:"limit"`
	Size     int              `json:"size"`
	Offset   *int             `json:"offset"`
	Cursor   *string          `json:"cursor"`
	NextLink *string          `json:"nextLink"`
	PrevLink *string          `json:"prevLink"`
	Data     []map[string]any `json:"data"`
}

func (e *env) miro(path, token string) (response, miroList) {
	e.t.Helper()
	r := e.do("GET", path, token, nil)
	var l miroList
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &l); err != nil {
			e.t.Fatalf("%s: %v: %s", path, err, r.body)
		}
	}
	return r, l
}

// ingestSeeds stores testdata/seed-events.ndjson in organization acme.
func (e *env) ingestSeeds() {
	e.t.Helper()
	data, err := os.ReadFile("../testdata/seed-events.ndjson")
	if err != nil {
		e.t.Fatal(err)
	}
	if r := e.post(string(data), "Content-Type", "application/x-ndjson"); r.status != 200 {
		e.t.Fatalf("ingest: %d %s", r.status, r.body)
	}
}

// miroErrorBody checks a Miro error answer: the status, Miro's body, and a
// message that mentions want.
func miroErrorBody(t *testing.T, what string, r response, status int, code, want string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: %d, want %d: %s", what, r.status, status, r.body)
		return
	}
	m := r.json(t)
	if m["status"] != float64(status) || m["type"] != "error" || (code != "" && m["code"] != code) || m["code"] == "" ||
		!strings.Contains(fmt.Sprint(m["message"]), want) || len(m) != 4 {
		t.Errorf("%s: body %s, want Miro's error body with status %d, code %s and %q in the message", what, r.body, status, code, want)
	}
}

func findItem(data []map[string]any, id string) map[string]any {
	for _, d := range data {
		if d["id"] == id {
			return d
		}
	}
	return nil
}

func jsonValue(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMiroFieldMapping checks Miro's log object built from the seed
// fixtures, with and without content access.
func TestMiroFieldMapping(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	e.ingestSeeds()
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)

	signIn := jsonValue(t, `{"id":"fx-miro-sign-in","type":"event","event":"sign_in_succeeded","category":"authentication",
		"createdAt":"2023-09-01T09:30:10.840+0000",
		"createdBy":{"type":"user","id":"3458764516184293832","email":"john.smith@example.com","name":"John Smith"},
		"object":{"id":"3458764516184293831","name":"Example Organization"},
		"context":{"ip":"192.0.2.10","team":{"id":"3458764516184293830","type":"team"},"organization":{"id":"acme","name":"acme","type":"organization"}},
		"details":{"authType":"SSO","mfaFactorType":"NONE"}}`)
	path := "/v2/audit/logs?createdAfter=2023-09-01T00:00:00.00Z&createdBefore=2023-09-02T00:00:00.00Z"
	r, l := e.miro(path, e.owner)
	if r.status != 200 || l.Type != "cursor-list" || l.Limit != 100 || l.Size != 2 || len(l.Data) != 2 || l.Cursor != nil {
		t.Fatalf("owner: %d %s", r.status, r.body)
	}
	// Sorted ascending by default, as Miro's API.
	if l.Data[0]["id"] != "fx-miro-sign-in" || l.Data[1]["id"] != "fx-miro-sign-in-failed" {
		t.Errorf("default order: %s", r.body)
	}
	if got := findItem(l.Data, "fx-miro-sign-in"); !reflect.DeepEqual(got, signIn) {
		t.Errorf("sign-in for the owner:\n got  %v\n want %v", got, signIn)
	}
	// An event without target, team or actor name: the keys are there, null.
	failed := findItem(l.Data, "fx-miro-sign-in-failed")
	if obj, ok := failed["object"]; !ok || obj != nil || failed["context"].(map[string]any)["team"] != nil ||
		!reflect.DeepEqual(failed["createdBy"], map[string]any{"type": "user", "id": "3458764516184293833", "email": "mallory@example.com", "name": nil}) {
		t.Errorf("sign-in failure: %v", failed)
	}

	// Metadata only for a reader without content access.
	r, l = e.miro(path, auditor)
	signIn["details"] = nil
	if got := findItem(l.Data, "fx-miro-sign-in"); r.status != 200 || !reflect.DeepEqual(got, signIn) {
		t.Errorf("sign-in for an auditor:\n got  %v\n want %v", got, signIn)
	}
	if strings.Contains(string(r.body), "authType") {
		t.Errorf("auditor sees details: %s", r.body)
	}

	// Content without a details member is the details; DESC sorts newest first.
	r, l = e.miro("/v2/audit/logs?createdAfter=2026-11-04T00:00:00Z&createdBefore=2026-11-06T00:00:00Z&sorting=desc", e.owner)
	ids := []string{}
	for _, d := range l.Data {
		ids = append(ids, d["id"].(string))
	}
	if r.status != 200 || strings.Join(ids, ",") != "fx-apikey-created,fx-billing-downgrade,fx-team-member-invited" {
		t.Fatalf("desc: %d %v %s", r.status, ids, r.body)
	}
	billing := findItem(l.Data, "fx-billing-downgrade")
	if !reflect.DeepEqual(billing["details"], map[string]any{"from": "enterprise", "to": "business"}) || billing["object"] != nil ||
		billing["event"] != "plan_downgraded" || billing["category"] != "billing" {
		t.Errorf("billing: %v", billing)
	}
	if d, ok := findItem(l.Data, "fx-apikey-created")["details"]; !ok || d != nil {
		t.Errorf("an event without content has details %v (present: %v), want null", d, ok)
	}

	// Miro's own v1 example: dates for the window, board_opened.
	r, l = e.miro("/v1/audit/logs?createdAfter=2018-10-10&createdBefore=2018-10-20&limit=10", e.owner)
	board := jsonValue(t, `{"id":"fx-miro-board-opened","type":"event","event":"board_opened","category":"board",
		"createdAt":"2018-10-19T23:59:45.000+0000","createdBy":{"type":"user","id":"3074457346235995512","email":null,"name":"Test"},
		"object":{"id":"3074457346235995523","name":"BoardName"},
		"context":{"ip":"10.10.10.10","team":{"id":"3074457345710755694","type":"team"},"organization":{"id":"acme","name":"acme","type":"organization"}},
		"details":{"role":"OWNER"}}`)
	if r.status != 200 || l.Type != "list" || l.Size != 1 || len(l.Data) != 1 || !reflect.DeepEqual(l.Data[0], board) {
		t.Fatalf("v1: %d %s", r.status, r.body)
	}

	// Every read is recorded, with the endpoint, its parameters and the count.
	var records struct {
		Data []struct {
			Content map[string]any `json:"content"`
		} `json:"data"`
	}
	json.Unmarshal(e.do("GET", "/api/v1/events?type=audit.query&limit=1000", e.owner, nil).body, &records)
	endpoints := map[string]int{}
	for _, rec := range records.Data {
		ep, _ := rec.Content["endpoint"].(string)
		endpoints[ep]++
		if ep == "/v1/audit/logs" {
			params, _ := rec.Content["parameters"].(map[string]any)
			if rec.Content["results"] != float64(1) || params["createdAfter"] != "2018-10-10" {
				t.Errorf("v1 record: %v", rec.Content)
			}
		}
	}
	if endpoints["/v2/audit/logs"] != 3 || endpoints["/v1/audit/logs"] != 1 {
		t.Errorf("audit records by endpoint: %v", endpoints)
	}
}

// sentinelTime formats t as Sentinel's connector does: queryTimeFormat
// "yyyy-MM-dd'T'HH:mm:ss'.00Z'" (two literal zero fractional digits).
func sentinelTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05") + ".00Z"
}

// TestMiroSentinelPoller polls /v2/audit/logs exactly as Microsoft
// Sentinel's Miro connector (CCF RestApiPoller) does, while writers append:
// consecutive 5-minute windows, each polled once every writer has written
// past its end (the connector's query delay), paged by taking $.cursor as
// the next page token until there is none. Every event must arrive exactly
// once.
func TestMiroSentinelPoller(t *testing.T) {
	for _, tc := range []struct {
		limit   int
		sorting string
	}{{500, "ASC"}, {7, "ASC"}, {7, "DESC"}} {
		t.Run(fmt.Sprintf("limit %d %s", tc.limit, tc.sorting), func(t *testing.T) {
			sentinelPoll(t, tc.limit, tc.sorting)
		})
	}
}

func sentinelPoll(t *testing.T, limit int, sorting string) {
	const (
		window  = 5 * time.Minute
		writers = 4
		perW    = 120
		batch   = 3
		step    = 37 * time.Second // synthetic time between a writer's events
	)
	e := newEnv(t, veritrail.DefaultLimits)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	t0 := time.Date(2025, 12, 5, 10, 0, 0, 0, time.UTC)
	last := t0.Add(time.Duration(writers)*11*time.Second + perW*step)
	nWindows := int(last.Sub(t0)/window) + 2

	event := func(id string, at time.Time) string {
		return fmt.Sprintf(`{"id":%q,"type":"authentication.sign_in_succeeded","time":%q,"actor":{"type":"user","id":"u-%s"},"content":{"details":{"n":%q}}}`,
			id, at.Format(time.RFC3339Nano), id, id)
	}
	written := map[string]bool{}
	// Events on the windows' edges: at a window's start (it belongs there)
	// and a nanosecond before (it belongs to the window before).
	var edges []string
	for k := 1; k < nWindows; k++ {
		at := t0.Add(time.Duration(k) * window)
		for _, ev := range []struct {
			id string
			at time.Time
		}{{fmt.Sprintf("edge-%02d-start", k), at}, {fmt.Sprintf("edge-%02d-before", k), at.Add(-time.Nanosecond)}} {
			edges = append(edges, event(ev.id, ev.at))
			written[ev.id] = true
		}
	}
	if r := e.post(strings.Join(edges, "\n")); r.status != 200 {
		t.Fatalf("edges: %d %s", r.status, r.body)
	}

	// Writers append in time order; progress[w] is the time of w's last
	// acknowledged event (MaxInt64 once done). They keep at most three
	// windows ahead of the poller, so polls and writes interleave however
	// fast either side is.
	progress := make([]atomic.Int64, writers)
	var polling atomic.Int64 // the window being polled
	busy := 0                // windows polled while writers were writing
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for w := range writers {
		for i := range perW {
			written[fmt.Sprintf("w%d-%03d", w, i)] = true
		}
		progress[w].Store(math.MinInt64)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer progress[w].Store(math.MaxInt64)
			for i := 0; i < perW; i += batch {
				var lines []string
				var at time.Time
				for j := i; j < i+batch && j < perW; j++ {
					at = t0.Add(time.Duration(w)*11*time.Second + time.Duration(j)*step)
					lines = append(lines, event(fmt.Sprintf("w%d-%03d", w, j), at))
				}
				for at.Sub(t0) >= time.Duration(polling.Load()+3)*window {
					time.Sleep(time.Millisecond)
				}
				req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/events", strings.NewReader(strings.Join(lines, "\n")))
				req.Header.Set("Authorization", "Bearer "+ingest)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("writer %d: status %d", w, resp.StatusCode)
					return
				}
				progress[w].Store(at.UnixNano())
			}
		}()
	}
	writtenPast := func(end time.Time) bool {
		for w := range progress {
			if progress[w].Load() < end.UnixNano() {
				return false
			}
		}
		return true
	}

	got := map[string]int{}
	requests := 0
	for k := 0; k < nWindows; k++ {
		start := t0.Add(time.Duration(k) * window)
		end := start.Add(window)
		deadline := time.Now().Add(30 * time.Second)
		for !writtenPast(end) {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("writers did not pass %s", end)
			}
			time.Sleep(time.Millisecond)
		}
		polling.Store(int64(k))
		for w := range progress {
			if progress[w].Load() != math.MaxInt64 {
				busy++
				break
			}
		}
		var prev time.Time
		cursor := ""
		for pages := 0; ; pages++ {
			vals := url.Values{"createdAfter": {sentinelTime(start)}, "createdBefore": {sentinelTime(end)},
				"sorting": {sorting}, "limit": {fmt.Sprint(limit)}}
			if cursor != "" {
				vals.Set("cursor", cursor)
			}
			r, l := e.miro("/v2/audit/logs?"+vals.Encode(), e.owner)
			requests++
			if r.status != 200 || l.Type != "cursor-list" || l.Limit != limit || l.Size != len(l.Data) || l.Size > limit {
				t.Fatalf("window %d page %d: %d %s", k, pages, r.status, r.body)
			}
			for _, d := range l.Data {
				id := d["id"].(string)
				got[id]++
				at, err := time.Parse("2006-01-02T15:04:05.000-0700", d["createdAt"].(string))
				if err != nil || at.Before(start) || !at.Before(end) {
					t.Errorf("window [%s, %s): %s created at %v", start, end, id, d["createdAt"])
				}
				if !prev.IsZero() && (sorting == "ASC" && at.Before(prev) || sorting == "DESC" && at.After(prev)) {
					t.Errorf("window %d: %s at %s out of %s order", k, id, at, sorting)
				}
				prev = at
			}
			if l.Cursor == nil {
				break
			}
			if *l.Cursor == "" || pages > 1000 {
				t.Fatalf("window %d: cursor %q after %d pages", k, *l.Cursor, pages)
			}
			cursor = *l.Cursor
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s received %d times", id, n)
		}
		if !written[id] {
			t.Errorf("%s received but never written", id)
		}
	}
	for id := range written {
		if got[id] == 0 {
			t.Errorf("%s written but never received", id)
		}
	}
	if busy < nWindows/2 {
		t.Errorf("only %d of %d windows were polled while writers wrote", busy, nWindows)
	}
	t.Logf("%d events in %d windows (%d polled during writes), %d requests", len(written), nWindows, busy, requests)
}

// TestMiroV1OffsetPoller pages /v1/audit/logs by offset, following
// nextLink until it is null.
func TestMiroV1OffsetPoller(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := from.Add(time.Hour)
	var lines []string
	add := func(id string, at time.Time) {
		lines = append(lines, fmt.Sprintf(`{"id":%q,"type":"board.board_opened","time":%q,"actor":{"type":"user","id":"u"},"content":{"details":{"role":"OWNER"}}}`,
			id, at.Format(time.RFC3339Nano)))
	}
	want := map[string]bool{}
	for i := range 23 {
		id := fmt.Sprintf("in-%02d", i)
		add(id, from.Add(time.Duration(i)*2*time.Minute))
		want[id] = true
	}
	// Two at the same time: ties are broken by seq, never split or doubled.
	add("in-tie", from.Add(10*time.Minute))
	want["in-tie"] = true
	add("out-before", from.Add(-time.Nanosecond))
	add("out-end", until)
	if r := e.post(strings.Join(lines, "\n")); r.status != 200 {
		t.Fatal(string(r.body))
	}
	size := len(want)

	base := "/v1/audit/logs?createdAfter=2026-01-01T00:00:00.000Z&createdBefore=2026-01-01T01:00:00.000Z&limit=5"
	got := map[string]int{}
	path, offset, pages := base, 0, 0
	var prev string
	for path != "" {
		r, l := e.miro(path, auditor)
		if r.status != 200 || l.Type != "list" || l.Limit != 5 || l.Size != size || l.Offset == nil || *l.Offset != offset {
			t.Fatalf("offset %d: %d %s", offset, r.status, r.body)
		}
		if len(l.Data) != min(5, size-offset) {
			t.Fatalf("offset %d: %d items", offset, len(l.Data))
		}
		for _, d := range l.Data {
			got[d["id"].(string)]++
			if prev != "" && d["createdAt"].(string) > prev {
				t.Errorf("not newest first: %v after %s", d["createdAt"], prev)
			}
			prev = d["createdAt"].(string)
			if v, ok := d["details"]; !ok || v != nil {
				t.Errorf("auditor: details %v (present: %v), want null", v, ok)
			}
		}
		switch {
		case offset == 0 && l.PrevLink != nil:
			t.Errorf("prevLink at offset 0: %s", *l.PrevLink)
		case offset > 0 && (l.PrevLink == nil || !sameLink(*l.PrevLink, e.srv.URL+base+fmt.Sprintf("&offset=%d", offset-5))):
			t.Errorf("prevLink at offset %d: %v", offset, l.PrevLink)
		}
		path = ""
		if l.NextLink != nil {
			if !strings.HasPrefix(*l.NextLink, e.srv.URL+"/v1/audit/logs?") {
				t.Fatalf("nextLink is not absolute: %s", *l.NextLink)
			}
			path = strings.TrimPrefix(*l.NextLink, e.srv.URL)
			offset += 5
		}
		if pages++; pages > 10 {
			t.Fatal("too many pages")
		}
	}
	if offset+5 < size || pages != (size+4)/5 {
		t.Errorf("stopped at offset %d after %d pages; size %d", offset, pages, size)
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("%s received %d times", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("received %v", got)
	}
	// Past the end: nothing, no next, a previous.
	r, l := e.miro(base+"&offset=30", auditor)
	if r.status != 200 || len(l.Data) != 0 || l.Size != size || l.NextLink != nil || l.PrevLink == nil || !strings.HasSuffix(*l.PrevLink, "offset=25") {
		t.Errorf("past the end: %d %s", r.status, r.body)
	}
	if !strings.Contains(string(r.body), `"nextLink":null`) || !strings.Contains(string(r.body), `"data":[]`) {
		t.Errorf("past the end: %s", r.body)
	}
	for _, bad := range []string{"&offset=-1", "&offset=x", "&cursor=abc", "&sorting=ASC", "&limit=1001"} {
		r := e.do("GET", base+bad, auditor, nil)
		miroErrorBody(t, bad, r, 400, "invalidParameters", strings.Trim(strings.SplitN(bad, "=", 2)[0], "&"))
	}
}

// sameLink reports whether two absolute URLs are the same, however their
// query strings are escaped and ordered.
func sameLink(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme+ua.Host+ua.Path == ub.Scheme+ub.Host+ub.Path &&
		reflect.DeepEqual(ua.Query(), ub.Query())
}

// TestMiroAIInteractionLogs checks the AI interaction logs endpoint.
func TestMiroAIInteractionLogs(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	e.ingestSeeds()
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	other, err := e.store.CreateOrg(context.Background(), "globex")
	if err != nil {
		t.Fatal(err)
	}
	otherOwner := e.token(other, veritrail.RoleOwner, nil, nil)

	r, l := e.miro("/v2/orgs/acme/ai-interaction-logs", e.owner)
	if r.status != 200 || l.Type != "cursor-list" || l.Limit != 100 || l.Size != 2 || l.Cursor != nil {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	if l.Data[0]["id"] != "fx-ai-interaction" || l.Data[1]["id"] != "fx-ai-prompt-redacted" {
		t.Fatalf("only ai.* events, oldest first: %s", r.body)
	}
	item := l.Data[0]
	storedAt, err := time.Parse("2006-01-02T15:04:05.000-0700", fmt.Sprint(item["storedAt"]))
	if err != nil || time.Since(storedAt) > time.Minute {
		t.Errorf("storedAt %v", item["storedAt"])
	}
	delete(item, "storedAt")
	want := jsonValue(t, `{"id":"fx-ai-interaction","createdAt":"2026-11-03T10:05:00.000+0000","sessionId":"ai-sess-31",
		"messageId":"fx-ai-interaction","object":{"id":"uXjVK-board-42","type":"board","name":"Q4 planning"},
		"aiFeatureName":"ai_generate_sticky_notes","actor":{"type":"user","id":"usr_8830","email":"sam@example.com","name":"Sam Lee"},
		"logType":"interaction","details":{"model":"gpt-4.1","prompt":"Generate me 1 sticker summarising the Q4 risks",
		"response":"Top Q4 risk: vendor migration slips past freeze","system_context":{"board_context":{"selected_items":3}},
		"attachments":[{"mime":"image/png","sha256":"9c56cc51b374c3ba189210d5b6d4bf57790d351c96c47c02190ecf1e430635ab","bytes":48213}]}}`)
	if !reflect.DeepEqual(item, want) {
		t.Errorf("fx-ai-interaction:\n got  %v\n want %v", item, want)
	}

	// Without content access: no details, and the feature is content too.
	r, l = e.miro("/v2/orgs/acme/ai-interaction-logs", auditor)
	if r.status != 200 || l.Size != 2 || l.Data[0]["details"] != nil || l.Data[0]["aiFeatureName"] != nil ||
		strings.Contains(string(r.body), "sticker") || strings.Contains(string(r.body), "ai_generate") {
		t.Errorf("auditor: %d %s", r.status, r.body)
	}

	// Window, filters and paging.
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"from=2026-11-03T10:06:00.00Z", "fx-ai-prompt-redacted"},
		{"to=2026-11-03T10:06:10Z", "fx-ai-interaction"},
		{"from=2026-11-03T10:05:00Z&to=2026-11-03T10:06:10.000000001Z&sorting=desc", "fx-ai-prompt-redacted,fx-ai-interaction"},
		{"emails=SAM@example.com", "fx-ai-interaction,fx-ai-prompt-redacted"},
		{"emails=nobody@example.com,other@example.com", ""},
		{"object_ids=uXjVK-board-42", "fx-ai-interaction"},
	} {
		r, l := e.miro("/v2/orgs/acme/ai-interaction-logs?"+tc.query, e.owner)
		var ids []string
		for _, d := range l.Data {
			ids = append(ids, d["id"].(string))
		}
		if r.status != 200 || strings.Join(ids, ",") != tc.want {
			t.Errorf("%s: %d %v, want %s", tc.query, r.status, ids, tc.want)
		}
	}
	var paged []string
	path := "/v2/orgs/acme/ai-interaction-logs?limit=1"
	for range 3 {
		r, l := e.miro(path, e.owner)
		if r.status != 200 || l.Size > 1 {
			t.Fatalf("paging: %d %s", r.status, r.body)
		}
		for _, d := range l.Data {
			paged = append(paged, d["id"].(string))
		}
		if l.Cursor == nil {
			break
		}
		path = "/v2/orgs/acme/ai-interaction-logs?limit=1&cursor=" + *l.Cursor
	}
	if strings.Join(paged, ",") != "fx-ai-interaction,fx-ai-prompt-redacted" {
		t.Errorf("paged %v", paged)
	}

	// Another organization's name, existing or not, is not found; so is
	// this organization's name for another organization's token.
	for _, tc := range []struct{ path, token string }{
		{"/v2/orgs/globex/ai-interaction-logs", e.owner},
		{"/v2/orgs/nope/ai-interaction-logs", e.owner},
		{"/v2/orgs/acme/ai-interaction-logs", otherOwner},
	} {
		r := e.do("GET", tc.path, tc.token, nil)
		miroErrorBody(t, tc.path, r, 404, "notFound", "not found")
		if strings.Contains(string(r.body), "fx-") {
			t.Errorf("%s: leaks events: %s", tc.path, r.body)
		}
	}
	if r := e.do("GET", "/v2/orgs/globex/ai-interaction-logs", otherOwner, nil); r.status != 200 || strings.Contains(string(r.body), "fx-") {
		t.Errorf("globex reads its own (empty) logs: %d %s", r.status, r.body)
	}
	miroErrorBody(t, "limit 101", e.do("GET", "/v2/orgs/acme/ai-interaction-logs?limit=101", e.owner, nil), 400, "invalidParameters", "limit")
	if r, _ := e.miro("/v2/orgs/acme/ai-interaction-logs?limit=100", e.owner); r.status != 200 {
		t.Errorf("limit 100: %d", r.status)
	}
	miroErrorBody(t, "bad from", e.do("GET", "/v2/orgs/acme/ai-interaction-logs?from=yesterday", e.owner, nil), 400, "invalidParameters", "from")
	miroErrorBody(t, "unknown", e.do("GET", "/v2/orgs/acme/ai-interaction-logs?createdAfter=2026-01-01", e.owner, nil), 400, "invalidParameters", "createdAfter")
	miroErrorBody(t, "ingest token", e.do("GET", "/v2/orgs/acme/ai-interaction-logs", ingest, nil), 403, "insufficientPermissions", "aiinteractionlogs:read")
	// A cursor of the audit logs is not one of the AI logs.
	_, v2 := e.miro("/v2/audit/logs?createdAfter=2026-01-01&createdBefore=2027-01-01&limit=1", e.owner)
	if v2.Cursor == nil {
		t.Fatal("no cursor")
	}
	miroErrorBody(t, "foreign cursor", e.do("GET", "/v2/orgs/acme/ai-interaction-logs?cursor="+*v2.Cursor, e.owner, nil), 400, "invalidParameters", "cursor")
}

// TestMiroErrors checks Miro's error body, the parameters' forms, and the
// rate-limit headers on the Miro-compatible endpoints.
func TestMiroErrors(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, t.TempDir(), storeOptions{})
	api := vhttp.New(vhttp.Config{Store: store, RateLimit: 6000})
	srv := httptest.NewServer(api)
	defer func() { srv.Close(); api.Shutdown(ctx); store.Close() }()
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	e.post(`{"id":"at-1015","type":"authentication.sign_in_succeeded","time":"2025-12-05T10:15:00Z","actor":{"type":"user","id":"u"}}`)

	r := e.do("GET", "/v2/audit/logs?createdAfter=2025-12-05T10:15:00.00Z&createdBefore=2025-12-05T10:20:00.00Z", "", nil)
	miroErrorBody(t, "no token", r, 401, "tokenNotProvided", "")
	if r.header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	miroErrorBody(t, "unknown token", e.do("GET", "/v1/audit/logs", "vt_nope", nil), 401, "invalidToken", "")

	window := "createdAfter=2025-12-05T10:15:00.00Z&createdBefore=2025-12-05T10:20:00.00Z"
	for _, tc := range []struct{ query, want string }{
		{"createdAfter=2025-12-05T10:15&createdBefore=2025-12-05T10:20:00Z", "createdAfter"},
		{"createdAfter=2025-12-05T10:15:00Z&createdBefore=soon", "createdBefore"},
		{"createdAfter=2025-12-05T10:15:00Z", "createdBefore"},
		{"createdAfter=2025-12-05T10:20:00Z&createdBefore=2025-12-05T10:15:00Z", "createdAfter"},
		{window + "&createdafter=x", "createdafter"},
		{window + "&since=2025-01-01", "since"},
		{window + "&limit=0", "limit"},
		{window + "&limit=1001", "limit"},
		{window + "&limit=ten", "limit"},
		{window + "&sorting=sideways", "sorting"},
		{window + "&cursor=garbage", "cursor"},
		{window + "&limit=1&limit=2", "limit"},
	} {
		r := e.do("GET", "/v2/audit/logs?"+tc.query, e.owner, nil)
		miroErrorBody(t, tc.query, r, 400, "invalidParameters", tc.want)
		if r.header.Get("X-RateLimit-Limit") != "6000" {
			t.Errorf("%s: no X-RateLimit-Limit", tc.query)
		}
	}
	// Every ISO 8601 form of 10:15 UTC finds the event at 10:15 (the
	// window's start is inclusive); one nanosecond later does not.
	for _, after := range []string{"2025-12-05T10:15:00.00Z", "2025-12-05T10:15:00Z", "2025-12-05T10:15:00.000000000Z",
		"2025-12-05T11:15:00.000+01:00", "2025-12-05T10:15:00.000+0000", "2025-12-05T11:15:00+01:00"} {
		for _, escaped := range []bool{true, false} {
			v := after
			if escaped {
				v = url.QueryEscape(after)
			}
			r, l := e.miro("/v2/audit/logs?createdAfter="+v+"&createdBefore=2025-12-05T10:20:00.00Z", e.owner)
			if r.status != 200 || l.Size != 1 {
				t.Errorf("createdAfter=%s: %d %s", v, r.status, r.body)
			}
			if r.header.Get("X-RateLimit-Limit") != "6000" || r.header.Get("X-RateLimit-Remaining") == "" {
				t.Errorf("no rate-limit headers: %v", r.header)
			}
		}
	}
	if _, l := e.miro("/v2/audit/logs?createdAfter=2025-12-05T10:15:00.000000001Z&createdBefore=2025-12-05T10:20:00Z", e.owner); l.Size != 0 {
		t.Errorf("createdAfter is past the event: %d", l.Size)
	}
	if _, l := e.miro("/v2/audit/logs?createdAfter=2025-12-05T10:10:00Z&createdBefore=2025-12-05T10:15:00.00Z", e.owner); l.Size != 0 {
		t.Errorf("createdBefore is exclusive: %d", l.Size)
	}
	// A cursor belongs to its window and sorting.
	e.post(`{"id":"at-1016","type":"authentication.sign_in_succeeded","time":"2025-12-05T10:16:00Z","actor":{"type":"user","id":"u"}}`)
	_, l := e.miro("/v2/audit/logs?"+window+"&limit=1", e.owner)
	if l.Cursor == nil || l.Size != 1 {
		t.Fatalf("no cursor: %+v", l)
	}
	r, next := e.miro("/v2/audit/logs?"+window+"&limit=1&sorting=asc&cursor="+*l.Cursor, e.owner)
	if r.status != 200 || next.Size != 1 || next.Data[0]["id"] != "at-1016" || next.Cursor != nil {
		t.Errorf("second page: %d %s", r.status, r.body)
	}
	for _, other := range []string{"&sorting=DESC", "&createdBefore=2025-12-05T10:25:00Z"} {
		q := "/v2/audit/logs?" + window + "&limit=1&cursor=" + *l.Cursor + other
		if other != "&sorting=DESC" {
			q = "/v2/audit/logs?createdAfter=2025-12-05T10:15:00Z&limit=1&cursor=" + *l.Cursor + other
		}
		miroErrorBody(t, other, e.do("GET", q, e.owner, nil), 400, "invalidParameters", "cursor")
	}
}
