package http_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/storetest"
)

// env is a real server on a real SQLite store.
type env struct {
	t     *testing.T
	store veritrail.Store
	srv   *httptest.Server
	api   *vhttp.Server
	org   *veritrail.Org
	owner string
	// shutdown stops the server (once; the cleanup calls it too)
	shutdown func()
}

func newEnv(t *testing.T, lim veritrail.Limits) *env {
	t.Helper()
	return newEnvConfig(t, vhttp.Config{Limits: lim})
}

// newEnvConfig is newEnv with a server configured as cfg (its store and
// metrics set here). e.shutdown stops the server before the cleanup does.
func newEnvConfig(t *testing.T, cfg vhttp.Config) *env {
	t.Helper()
	ctx := context.Background()
	m := metrics.New()
	store := openStore(t, t.TempDir(), storeOptions{Observer: cfg.Turns.Observer(m)})
	var err error
	cfg.Store, cfg.Metrics = store, m
	api := vhttp.New(cfg)
	srv := httptest.NewServer(api)
	e := &env{t: t, store: store, srv: srv, api: api}
	e.shutdown = sync.OnceFunc(func() {
		srv.Close()
		api.Shutdown(context.Background())
	})
	t.Cleanup(func() {
		e.shutdown()
		store.Close()
	})
	e.org, err = store.CreateOrg(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	enableAI(t, store, e.org.ID)
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	return e
}

// enableAI turns AI interaction logs on for an organization (they are off
// by default), as of long ago, so AI events of any time are kept.
func enableAI(t *testing.T, s veritrail.Store, org int64) {
	t.Helper()
	st := veritrail.DefaultSettings()
	st.AIInteractionLogsEnabled = true
	since := time.Unix(0, 0).UTC()
	st.AIEnabledAt = &since
	if err := s.PutOrgSettings(context.Background(), org, st); err != nil {
		t.Fatal(err)
	}
}

func (e *env) token(org *veritrail.Org, role string, scopes []string, expires *time.Time) string {
	e.t.Helper()
	secret := veritrail.NewTokenSecret()
	lookup, hash := veritrail.HashToken(secret)
	if err := e.store.CreateToken(context.Background(), &veritrail.Token{
		ID: veritrail.NewTokenID(), OrgID: org.ID, Role: role, Scopes: scopes, Lookup: lookup, Hash: hash, ExpiresAt: expires,
	}); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.body)
	}
	return m
}

func (e *env) do(method, path, token string, body io.Reader, hdr ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func (e *env) post(body string, hdr ...string) response {
	return e.do("POST", "/api/v1/events", e.owner, strings.NewReader(body), hdr...)
}

// count returns how many events organization acme holds, not counting the
// audit records of the reads (each poll records one, which the next poll
// returns: the count stops at a page of nothing else).
func (e *env) count() int {
	e.t.Helper()
	n := 0
	path := "/api/v1/events?order=seq&limit=1000"
	for {
		r := e.do("GET", path, e.owner, nil)
		if r.status != 200 {
			e.t.Fatalf("list: %d %s", r.status, r.body)
		}
		var page struct {
			Data []struct {
				Type string `json:"type"`
			} `json:"data"`
			Next string `json:"next_cursor"`
		}
		json.Unmarshal(r.body, &page)
		others := 0
		for _, d := range page.Data {
			if !strings.HasPrefix(d.Type, "audit.") {
				others++
			}
		}
		n += others
		if others == 0 {
			return n
		}
		path = "/api/v1/events?order=seq&limit=1000&cursor=" + page.Next
	}
}

func TestFixturesRoundTrip(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	data, err := os.ReadFile("../testdata/seed-events.ndjson")
	if err != nil {
		t.Fatalf("testdata/seed-events.ndjson: %v", err)
	}
	r := e.post(string(data), "Content-Type", "application/x-ndjson")
	if r.status != 200 {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	var res struct {
		Accepted int `json:"accepted"`
		Events   []struct {
			ID  string `json:"id"`
			Seq int64  `json:"seq"`
		} `json:"events"`
	}
	json.Unmarshal(r.body, &res)
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if res.Accepted != len(lines) || len(res.Events) != len(lines) {
		t.Fatalf("accepted %d of %d: %s", res.Accepted, len(lines), r.body)
	}
	for i, line := range lines {
		if res.Events[i].Seq != int64(i) {
			t.Errorf("event %d got seq %d", i, res.Events[i].Seq)
		}
		got := e.do("GET", "/api/v1/events/"+res.Events[i].ID, e.owner, nil)
		if got.status != 200 {
			t.Fatalf("get %s: %d %s", res.Events[i].ID, got.status, got.body)
		}
		if err := storetest.SameEvent(line, got.body); err != nil {
			t.Errorf("fixture %s: %v\n sent     %s\n returned %s", res.Events[i].ID, err, line, got.body)
		}
	}
	// The list returns the same events (audit records of the reads aside).
	list := e.do("GET", "/api/v1/events?limit=1000&type=authentication.*,board.*,agent.*,approval.*,ai.*,team.*,billing.*,auth.*", e.owner, nil)
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	json.Unmarshal(list.body, &page)
	if len(page.Data) != len(lines) {
		t.Fatalf("list returned %d events", len(page.Data))
	}
	// Resending the whole file stores nothing new.
	again := e.post(string(data))
	if again.status != 200 || strings.Count(string(again.body), `"duplicate":true`) != len(lines) {
		t.Fatalf("resend: %d %s", again.status, again.body)
	}
	if n := e.count(); n != len(lines) {
		t.Fatalf("after resend the log holds %d events", n)
	}
}

// TestBadInput checks every class of bad input over HTTP: the status, the
// error body naming event and field, and that nothing of the request is
// stored.
func TestBadInput(t *testing.T) {
	lim := veritrail.DefaultLimits
	lim.MaxEventBytes = 1024
	lim.MaxBatchEvents = 5
	lim.MaxBodyBytes = 4096
	e := newEnv(t, lim)
	good := `{"type":"auth.login","actor":{"type":"user","id":"u1"}}`
	gz := func(s string) string {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		w.Write([]byte(s))
		w.Close()
		return b.String()
	}
	for _, tc := range []struct {
		name   string
		body   string
		hdr    []string
		status int
		code   string
		msg    string
	}{
		{"malformed JSON", good + "\n{\"type\":", nil, 400, "invalid_json", "event 1"},
		{"wrong type", good + "\n" + `{"type":["x"],"actor":{"type":"user","id":"u"}}`, nil, 400, "invalid_event", `event 1: field "type"`},
		{"missing type", `[` + good + `,{"actor":{"type":"user","id":"u"}}]`, nil, 400, "invalid_event", `event 1: field "type"`},
		{"malformed type", `{"type":"Sign In","actor":{"type":"user","id":"u"}}`, nil, 400, "invalid_event", `field "type"`},
		{"invalid UTF-8", good + "\n{\"type\":\"a.b\",\"actor\":{\"type\":\"user\",\"id\":\"\xc0\xaf\"}}", nil, 400, "invalid_json", "UTF-8"},
		{"far future", `{"type":"a.b","time":"2099-01-01T00:00:00Z","actor":{"type":"user","id":"u"}}`, nil, 400, "invalid_event", "future"},
		{"oversize event", `{"type":"a.b","actor":{"type":"user","id":"u"},"content":{"x":"` + strings.Repeat("a", 2000) + `"}}`, nil, 413, "payload_too_large", "per event"},
		{"too many events", strings.Repeat(good+"\n", 6), nil, 413, "payload_too_large", "more than 5 events"},
		{"oversize body", strings.Repeat(`{"type":"a.b","actor":{"type":"user","id":"u"},"content":{"x":"`+strings.Repeat("a", 850)+`"}}`+"\n", 5), nil, 413, "payload_too_large", "4096 bytes"},
		{"gzip bomb", gz("[" + strings.Repeat(" ", 1<<20) + "]"), []string{"Content-Encoding", "gzip"}, 413, "payload_too_large", "after decompression"},
		{"corrupt gzip", "not gzip at all", []string{"Content-Encoding", "gzip"}, 400, "invalid_request", "gzip"},
		{"short gzip", "not gz", []string{"Content-Encoding", "gzip"}, 400, "invalid_request", "gzip"},
		{"unknown encoding", good, []string{"Content-Encoding", "br"}, 415, "unsupported_media_type", "gzip"},
		{"empty", "", nil, 400, "invalid_json", "empty"},
	} {
		r := e.post(tc.body, tc.hdr...)
		if r.status != tc.status {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.status, r.body)
			continue
		}
		m := r.json(t)
		errObj, _ := m["error"].(map[string]any)
		if errObj["code"] != tc.code || !strings.Contains(fmt.Sprint(errObj["message"]), tc.msg) {
			t.Errorf("%s: error %v, want code %s and message with %q", tc.name, errObj, tc.code, tc.msg)
		}
	}
	if n := e.count(); n != 0 {
		t.Fatalf("refused requests stored %d events", n)
	}
	// gzip within limits works.
	if r := e.post(gz(good), "Content-Encoding", "gzip"); r.status != 200 {
		t.Fatalf("gzip body: %d %s", r.status, r.body)
	}
	// A conflicting id refuses the request and stores nothing of it.
	e.post(`{"id":"k1","type":"a.b","actor":{"type":"user","id":"u"}}`)
	r := e.post(`{"id":"k2","type":"a.b","actor":{"type":"user","id":"u"}}` + "\n" + `{"id":"k1","type":"a.c","actor":{"type":"user","id":"u"}}`)
	if r.status != 409 || r.json(t)["error"].(map[string]any)["code"] != "conflict" {
		t.Fatalf("conflict: %d %s", r.status, r.body)
	}
	if got := e.do("GET", "/api/v1/events/k2", e.owner, nil); got.status != 404 {
		t.Fatalf("event of a refused request is readable: %d", got.status)
	}
	if n := e.count(); n != 2 {
		t.Fatalf("log holds %d events, want 2", n)
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	other, _ := e.store.CreateOrg(context.Background(), "globex")
	past := time.Now().Add(-time.Minute)
	ingest := e.token(e.org, veritrail.RoleIngest, nil, nil)
	auditor := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	security := e.token(e.org, veritrail.RoleSecurity, nil, nil)
	expired := e.token(e.org, veritrail.RoleOwner, nil, &past)
	narrow := e.token(e.org, veritrail.RoleOwner, []string{veritrail.ScopeAuditLogsRead}, nil)
	otherOwner := e.token(other, veritrail.RoleOwner, nil, nil)

	body := `{"id":"secret-1","type":"ai.interaction","actor":{"type":"user","id":"u"},"content":{"prompt":"the launch codes"}}`
	if r := e.do("POST", "/api/v1/events", ingest, strings.NewReader(body)); r.status != 200 {
		t.Fatalf("ingest token cannot write: %d %s", r.status, r.body)
	}
	for _, tc := range []struct {
		name, method, path, token string
		status                    int
	}{
		{"no token", "GET", "/api/v1/events", "", 401},
		{"unknown token", "GET", "/api/v1/events", "vt_nope", 401},
		{"expired token", "GET", "/api/v1/events", expired, 401},
		{"ingest cannot read", "GET", "/api/v1/events", ingest, 403},
		{"auditor cannot write", "POST", "/api/v1/events", auditor, 403},
		{"narrow owner cannot write", "POST", "/api/v1/events", narrow, 403},
		{"other org sees nothing", "GET", "/api/v1/events/secret-1", otherOwner, 404},
	} {
		var b io.Reader
		if tc.method == "POST" {
			b = strings.NewReader(body)
		}
		r := e.do(tc.method, tc.path, tc.token, b)
		if r.status != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.name, r.status, tc.status, r.body)
		}
		if r.status == 401 && r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
		}
	}
	// Content only for roles that may read it, in lists and details.
	for tok, wantContent := range map[string]bool{auditor: false, security: true, e.owner: true} {
		for _, path := range []string{"/api/v1/events/secret-1", "/api/v1/events"} {
			r := e.do("GET", path, tok, nil)
			if r.status != 200 {
				t.Fatalf("%s: %d", path, r.status)
			}
			if has := strings.Contains(string(r.body), "launch codes"); has != wantContent {
				t.Errorf("%s: content visible = %v, want %v", path, has, wantContent)
			}
		}
	}
	// Revocation takes effect on the next request.
	toks, _ := e.store.ListTokens(context.Background(), e.org.ID)
	for _, tk := range toks {
		if tk.Role == veritrail.RoleSecurity {
			e.store.RevokeToken(context.Background(), e.org.ID, tk.ID, time.Now())
		}
	}
	if r := e.do("GET", "/api/v1/events", security, nil); r.status != 401 {
		t.Fatalf("revoked token: %d", r.status)
	}
	if r := e.do("GET", "/api/v1/me", auditor, nil); r.status != 200 || r.json(t)["role"] != "auditor" {
		t.Fatalf("/me: %d %s", r.status, r.body)
	}
}

func TestListParameters(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	var b strings.Builder
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := range 25 {
		fmt.Fprintf(&b, `{"id":"e%02d","type":"auth.login","time":"%s","actor":{"type":"user","id":"u%d","email":"U%d@example.com"},"outcome":"%s"}`+"\n",
			i, base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339), i%3, i%3, []string{"success", "failure"}[i%2])
	}
	if r := e.post(b.String()); r.status != 200 {
		t.Fatal(string(r.body))
	}
	ids := func(r response) []string {
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		json.Unmarshal(r.body, &page)
		var out []string
		for _, d := range page.Data {
			out = append(out, d.ID)
		}
		return out
	}
	// Follow the Link header: 25 events, pages of 10, newest first.
	var got []string
	path := "/api/v1/events?limit=10&type=auth.*"
	linkRE := regexp.MustCompile(`^<([^>]+)>; rel="next"$`)
	for pages := 0; path != ""; pages++ {
		r := e.do("GET", path, e.owner, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		got = append(got, ids(r)...)
		path = ""
		if l := r.header.Get("Link"); l != "" {
			m := linkRE.FindStringSubmatch(l)
			if m == nil || !strings.HasPrefix(m[1], e.srv.URL+"/api/v1/events?") {
				t.Fatalf("bad Link header %q", l)
			}
			path = strings.TrimPrefix(m[1], e.srv.URL)
		}
		if pages > 5 {
			t.Fatal("too many pages")
		}
	}
	if len(got) != 25 || got[0] != "e24" || got[24] != "e00" {
		t.Fatalf("paged %v", got)
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"actor_email=u1@EXAMPLE.com&order=asc&limit=3", "e01,e04,e07"},
		{"since=2026-06-01T00:10:00.00Z&until=2026-06-01T00:13:00Z&order=asc", "e10,e11,e12"},
		{"outcome=failure&actor_id=u0&order=asc", "e03,e09,e15,e21"},
		{"actor_id=u0&actor_id=u1&since=2026-06-01T00:20:00Z", "e24,e22,e21"},
		{"type=auth.login,auth.logout&since=2026-06-01T00:23:00Z", "e24,e23"},
	} {
		r := e.do("GET", "/api/v1/events?"+tc.query, e.owner, nil)
		if got := strings.Join(ids(r), ","); r.status != 200 || got != tc.want {
			t.Errorf("%s: %d %q, want %q (%s)", tc.query, r.status, got, tc.want, r.body)
		}
	}
	// Polling always carries a cursor, and the cursor waits for new events.
	// A reader's polls are recorded (audit.query) once per window, so the
	// poll after the first returns that poll's record, and the polls after
	// it are empty (pollaudit.go): a poller reading until empty stops.
	poll := "/api/v1/events?order=seq&limit=100&type=auth.*,audit.query"
	r := e.do("GET", poll, e.owner, nil)
	next := r.json(t)["next_cursor"]
	if next == nil || next == "" {
		t.Fatalf("polling without next_cursor: %s", r.body)
	}
	for i := 0; i < 3; i++ {
		r = e.do("GET", poll+"&cursor="+next.(string), e.owner, nil)
		var page struct {
			Data []struct {
				Type    string         `json:"type"`
				Content map[string]any `json:"content"`
			} `json:"data"`
			Next string `json:"next_cursor"`
		}
		json.Unmarshal(r.body, &page)
		if want := max(0, 1-i); len(page.Data) != want || (want == 1 && page.Data[0].Type != "audit.query") || page.Next == "" {
			t.Fatalf("caught-up poll %d: %s, want %d record(s) of the polls before", i, r.body, want)
		}
		next = page.Next
	}
	e.post(`{"id":"late","type":"auth.login","time":"2020-01-01T00:00:00Z","actor":{"type":"user","id":"u"}}`)
	r = e.do("GET", poll+"&cursor="+next.(string), e.owner, nil)
	if got := strings.Join(ids(r), ","); !strings.Contains(got, "late") {
		t.Fatalf("poll after a late event: %q", got)
	}
	for _, bad := range []string{"usr=x", "limit=0", "limit=1001", "order=sideways", "since=yesterday", "status=abc",
		"since=2026-06-02T00:00:00Z&until=2026-06-01T00:00:00Z", "cursor=garbage", "q=%21%21"} {
		r := e.do("GET", "/api/v1/events?"+bad, e.owner, nil)
		if r.status != 400 {
			t.Errorf("%s: %d, want 400: %s", bad, r.status, r.body)
		}
		if _, ok := r.json(t)["error"]; !ok {
			t.Errorf("%s: no error object: %s", bad, r.body)
		}
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	if r := e.do("DELETE", "/api/v1/events", e.owner, nil); r.status != 405 || r.header.Get("Allow") == "" || !strings.Contains(string(r.body), `"code":"method_not_allowed"`) {
		t.Errorf("405: %d %v %s", r.status, r.header, r.body)
	}
	if r := e.do("GET", "/api/v1/nothing", e.owner, nil); r.status != 404 || r.json(t)["error"] == nil {
		t.Errorf("404: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/healthz", "", nil); r.status != 200 {
		t.Errorf("healthz: %d", r.status)
	}
	if r := e.do("GET", "/readyz", "", nil); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	e.post(`{"type":"a.b","actor":{"type":"user","id":"u"}}`)
	e.do("GET", "/api/v1/events", e.owner, nil)
	r := e.do("GET", "/metrics", "", nil)
	for _, name := range []string{"veritrail_ingest_events_total", "veritrail_commit_batch_events", "veritrail_commit_duration_seconds",
		"veritrail_commit_queue_depth", "veritrail_query_duration_seconds", "veritrail_http_requests_total"} {
		if !strings.Contains(string(r.body), name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

func TestHasMore(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	e.ingestSeeds()
	page := func(path string) (more bool, next string, n int) {
		r := e.do("GET", path, e.owner, nil)
		var p struct {
			Data    []json.RawMessage `json:"data"`
			Next    string            `json:"next_cursor"`
			HasMore *bool             `json:"has_more"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil || p.HasMore == nil {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		return *p.HasMore, p.Next, len(p.Data)
	}
	// Polling: full pages have more; the page that catches up does not,
	// though its cursor is given (and it holds the previous read's record).
	more, next, n := page("/api/v1/events?order=seq&limit=5")
	if !more || n != 5 || next == "" {
		t.Fatalf("first poll: more=%v n=%d", more, n)
	}
	for i := 0; more; i++ {
		if i > 5 {
			t.Fatal("the poll never caught up")
		}
		more, next, n = page("/api/v1/events?order=seq&limit=5&cursor=" + next)
	}
	if next == "" || n == 0 || n >= 5 {
		t.Errorf("caught-up poll: n=%d next=%q", n, next)
	}
	// Time order: more while a next cursor is given.
	if more, next, _ := page("/api/v1/events?limit=1000"); more || next != "" {
		t.Errorf("a last page in time order: more=%v next=%q", more, next)
	}
	if more, _, _ := page("/api/v1/events?limit=2"); !more {
		t.Error("a full page in time order: has_more false")
	}
}

// TestConflictIndexWithAIOff: an error names the event's position in the
// request, counting events that were not recorded (AI logs off).
func TestConflictIndexWithAIOff(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	if err := e.store.PutOrgSettings(context.Background(), e.org.ID, veritrail.DefaultSettings()); err != nil {
		t.Fatal(err)
	}
	e.api.ForgetSettings(e.org.ID)
	if r := e.post(`{"id":"k1","type":"a.b","actor":{"type":"user","id":"u"}}`); r.status != 200 {
		t.Fatalf("post: %d %s", r.status, r.body)
	}
	r := e.post(`{"id":"ai1","type":"ai.interaction","actor":{"type":"user","id":"u"}}` + "\n" +
		`{"id":"k1","type":"a.c","actor":{"type":"user","id":"u"}}`)
	if r.status != 409 {
		t.Fatalf("conflict: %d %s", r.status, r.body)
	}
	errObj, _ := r.json(t)["error"].(map[string]any)
	if errObj["index"] != float64(1) || !strings.HasPrefix(fmt.Sprint(errObj["message"]), "event 1:") {
		t.Fatalf("conflict names the wrong event: %s", r.body)
	}
}
