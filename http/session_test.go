package http_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/mail"
)

func (c *clock) advance(d time.Duration) { c.set(c.now().Add(d)) }

type consoleEnv struct {
	*env
	clock *clock
}

// sessionsOnSQLite skips a session test in the PostgreSQL rerun: what it
// checks is the HTTP layer's, and the store methods under it pass the same
// conformance suite on both stores (storetest: Sessions, Lookups).
func sessionsOnSQLite(t *testing.T) {
	if onPostgres {
		t.Skip("store-independent: runs on SQLite")
	}
}

func newConsoleEnv(t *testing.T, cfg vhttp.Config) *consoleEnv {
	t.Helper()
	c := &clock{t: time.Now().UTC()}
	store := openStore(t, t.TempDir(), storeOptions{})
	cfg.Store, cfg.Now = store, c.now
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	srv := httptest.NewUnstartedServer(nil)
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + srv.Listener.Addr().String()
	}
	api := vhttp.New(cfg)
	srv.Config.Handler = api
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		api.Shutdown(context.Background())
		store.Close()
	})
	e := &env{t: t, store: store, srv: srv, api: api}
	var err error
	if e.org, err = store.CreateOrg(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	return &consoleEnv{e, c}
}

// browser sends what a browser on the console's page sends: the cookie,
// the console's origin, and for writes the CSRF header.
func (e *consoleEnv) browser(method, path, cookie, csrf, body string, hdr ...string) response {
	e.t.Helper()
	h := []string{"Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin", "Content-Type", "application/json"}
	if cookie != "" {
		h = append(h, "Cookie", cookie)
	}
	if csrf != "" {
		h = append(h, "X-CSRF-Token", csrf)
	}
	return e.do(method, path, "", strings.NewReader(body), append(h, hdr...)...)
}

// signIn signs in with a token and returns the cookie and CSRF token.
func (e *consoleEnv) signIn(token, oldCookie string) (cookie, csrf string) {
	e.t.Helper()
	r := e.browser("POST", "/api/v1/session", oldCookie, "", `{"token":"`+token+`"}`)
	if r.status != 200 {
		e.t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	return sessionCookie(e.t, r), r.json(e.t)["csrf_token"].(string)
}

func sessionCookie(t *testing.T, r response) string {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if strings.HasSuffix(c.Name, "vt_session") && c.Value != "" {
			return c.Name + "=" + c.Value
		}
	}
	t.Fatalf("no session cookie in %v", r.header["Set-Cookie"])
	return ""
}

func TestSessionWithToken(t *testing.T) {
	sessionsOnSQLite(t)
	e := newConsoleEnv(t, vhttp.Config{})
	r := e.browser("POST", "/api/v1/session", "", "", `{"token":"`+e.owner+`"}`)
	if r.status != 200 {
		t.Fatalf("sign-in: %d %s", r.status, r.body)
	}
	set := r.header.Get("Set-Cookie")
	for _, want := range []string{"vt_session=vts_", "Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} {
		if !strings.Contains(set, want) {
			t.Errorf("cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("cookie %q is Secure on plain HTTP (the browser would drop it)", set)
	}
	m := r.json(t)
	if m["role"] != "owner" || m["csrf_token"] == "" || m["session"].(map[string]any)["method"] != "token" {
		t.Fatalf("session: %s", r.body)
	}
	cookie, csrf := sessionCookie(t, r), m["csrf_token"].(string)

	// The cookie reads like a token, and the read is recorded as the
	// session's.
	if r := e.browser("GET", "/api/v1/events?limit=1", cookie, "", ""); r.status != 200 {
		t.Fatalf("list with the cookie: %d %s", r.status, r.body)
	}
	q := e.do("GET", "/api/v1/events?type=audit.query&limit=1", e.owner, nil).json(t)
	rec := q["data"].([]any)[0].(map[string]any)
	if !strings.Contains(string(mustJSON(rec["content"])), `"console_session":"ses_`) {
		t.Errorf("the console's read is not recorded with its session: %v", rec)
	}

	// Writes need the CSRF token and this origin.
	if r := e.browser("DELETE", "/api/v1/session", cookie, "", ""); r.status != 403 {
		t.Errorf("sign-out without the CSRF header: %d, want 403", r.status)
	}
	if r := e.browser("DELETE", "/api/v1/session", cookie, "wrong", ""); r.status != 403 {
		t.Errorf("sign-out with a wrong CSRF header: %d, want 403", r.status)
	}
	if r := e.browser("DELETE", "/api/v1/session", cookie, csrf, "", "Origin", "https://evil.example"); r.status != 403 {
		t.Errorf("sign-out from another origin: %d, want 403", r.status)
	}
	if r := e.browser("DELETE", "/api/v1/session", cookie, csrf, "", "Sec-Fetch-Site", "cross-site"); r.status != 403 {
		t.Errorf("cross-site sign-out: %d, want 403", r.status)
	}
	if r := e.browser("GET", "/api/v1/session", cookie, "", ""); r.status != 200 {
		t.Fatalf("session after refused writes: %d", r.status)
	}
	r = e.browser("DELETE", "/api/v1/session", cookie, csrf, "")
	if r.status != 204 || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %d %v", r.status, r.header["Set-Cookie"])
	}
	if r := e.browser("GET", "/api/v1/events?limit=1", cookie, "", ""); r.status != 401 {
		t.Fatalf("after sign-out: %d, want 401", r.status)
	}
	// Sign-in and sign-out are in the log.
	for _, typ := range []string{"auth.login", "auth.logout"} {
		if got := e.do("GET", "/api/v1/events?type="+typ, e.owner, nil).json(t)["data"].([]any); len(got) != 1 {
			t.Errorf("%s records: %d, want 1", typ, len(got))
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestSessionRefusals(t *testing.T) {
	sessionsOnSQLite(t)
	e := newConsoleEnv(t, vhttp.Config{})
	for _, tc := range []struct {
		name, body string
		hdr        []string
		status     int
		says       string
	}{
		{"unknown token", `{"token":"vt_nope"}`, nil, 401, "unknown token"},
		{"no token", `{"token":" "}`, nil, 400, "paste an API token"},
		{"ingest token", `{"token":"` + e.token(e.org, veritrail.RoleIngest, nil, nil) + `"}`, nil, 403, "cannot read the audit log"},
		{"unknown field", `{"token":"x","user":"y"}`, nil, 400, "user"},
		{"cross-site", `{"token":"` + e.owner + `"}`, []string{"Origin", "https://evil.example"}, 403, "cross-site"},
		{"a form", `token=x`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "JSON"},
	} {
		r := e.browser("POST", "/api/v1/session", "", "", tc.body, tc.hdr...)
		if r.status != tc.status || !strings.Contains(string(r.body), tc.says) || r.header.Get("Set-Cookie") != "" {
			t.Errorf("%s: %d %s, want %d saying %q and no cookie", tc.name, r.status, r.body, tc.status, tc.says)
		}
	}
	// A bearer token is not a session.
	if r := e.do("GET", "/api/v1/session", e.owner, nil); r.status != 404 {
		t.Errorf("GET /session with a token: %d, want 404", r.status)
	}
	// A cookie that is not a session.
	if r := e.browser("GET", "/api/v1/events", "vt_session=vts_forged", "", ""); r.status != 401 {
		t.Errorf("forged cookie: %d, want 401", r.status)
	}
}

func TestSessionNoFixation(t *testing.T) {
	sessionsOnSQLite(t)
	e := newConsoleEnv(t, vhttp.Config{})
	first, _ := e.signIn(e.owner, "")
	second, _ := e.signIn(e.owner, first)
	if first == second {
		t.Fatal("signing in again kept the session id")
	}
	if r := e.browser("GET", "/api/v1/session", first, "", ""); r.status != 401 {
		t.Errorf("the session the browser had before signing in still works: %d", r.status)
	}
	if r := e.browser("GET", "/api/v1/session", second, "", ""); r.status != 200 {
		t.Errorf("new session: %d", r.status)
	}
}

func TestSessionTimeouts(t *testing.T) {
	sessionsOnSQLite(t)
	e := newConsoleEnv(t, vhttp.Config{SessionIdle: 30 * time.Minute, SessionMaxAge: 2 * time.Hour})
	cookie, _ := e.signIn(e.owner, "")
	// Activity keeps it alive past the idle timeout ...
	for range 5 {
		e.clock.advance(20 * time.Minute)
		if r := e.browser("GET", "/api/v1/session", cookie, "", ""); r.status != 200 {
			t.Fatalf("active session after %v: %d", 20*time.Minute, r.status)
		}
	}
	// ... but not past its absolute end.
	e.clock.advance(25 * time.Minute)
	if r := e.browser("GET", "/api/v1/session", cookie, "", ""); r.status != 401 {
		t.Fatalf("session past its absolute end: %d, want 401", r.status)
	}
	// Idle for longer than the idle timeout: ended.
	cookie, _ = e.signIn(e.owner, "")
	e.clock.advance(31 * time.Minute)
	if r := e.browser("GET", "/api/v1/session", cookie, "", ""); r.status != 401 {
		t.Fatalf("idle session: %d, want 401", r.status)
	}
	// Revoking the token ends its sessions.
	tok := e.token(e.org, veritrail.RoleSecurity, nil, nil)
	cookie, _ = e.signIn(tok, "")
	me := e.browser("GET", "/api/v1/session", cookie, "", "").json(t)
	id := me["token"].(map[string]any)["id"].(string)
	if err := e.store.RevokeToken(context.Background(), e.org.ID, id, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	if r := e.browser("GET", "/api/v1/session", cookie, "", ""); r.status != 401 {
		t.Fatalf("session of a revoked token: %d, want 401", r.status)
	}
}

func TestSessionEmailedLink(t *testing.T) {
	sessionsOnSQLite(t)
	smtp := smtptest.Start(t)
	e := newConsoleEnv(t, vhttp.Config{Mail: &mail.Config{URL: smtp.URL(), From: "veritrail@example.com", CAFile: smtp.CAFile}})
	ctx := context.Background()
	other, err := e.store.CreateOrg(ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	dana := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: e.org.ID, Email: "dana@example.com", Name: "Dana", Role: veritrail.RoleSecurity}
	danaB := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: other.ID, Email: "dana@example.com", Name: "Dana", Role: veritrail.RoleAuditor}
	gone := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: e.org.ID, Email: "gone@example.com", Role: veritrail.RoleSecurity}
	for _, u := range []*veritrail.User{dana, danaB, gone} {
		if err := e.store.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.DisableUser(ctx, e.org.ID, gone.ID, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", "/api/v1/session/options", "", nil); !strings.Contains(string(r.body), `"email"`) {
		t.Fatalf("options: %s", r.body)
	}
	// The answer is the same for an address that has users, one that has
	// none and one whose user is disabled.
	var answers []string
	for _, addr := range []string{"Dana@Example.com", "nobody@example.com", "gone@example.com"} {
		r := e.browser("POST", "/api/v1/session/email", "", "", `{"email":"`+addr+`"}`)
		if r.status != 202 {
			t.Fatalf("%s: %d %s", addr, r.status, r.body)
		}
		answers = append(answers, strings.ToLower(string(r.body)))
	}
	if strings.Replace(answers[0], "dana@example.com", "X", 1) != strings.Replace(answers[1], "nobody@example.com", "X", 1) ||
		strings.Replace(answers[1], "nobody@example.com", "X", 1) != strings.Replace(answers[2], "gone@example.com", "X", 1) {
		t.Fatalf("answers differ by account: %q", answers)
	}
	// A request sent with another Host still gets links to the public URL.
	if r := e.browser("POST", "/api/v1/session/email", "", "", `{"email":"dana@example.com"}`, "Host", "evil.example"); r.status != 202 && r.status != 403 {
		t.Fatalf("another Host: %d %s", r.status, r.body)
	}
	if r := e.browser("POST", "/api/v1/session/email", "", "", `{"email":"not an address"}`); r.status != 400 || !strings.Contains(string(r.body), `"field":"email"`) {
		t.Fatalf("bad address: %d %s", r.status, r.body)
	}
	msgs := smtp.Wait(t, 2, 5*time.Minute)
	time.Sleep(500 * time.Millisecond) // the others would have arrived by now
	if msgs = smtp.Messages(); len(msgs) != 2 || !strings.Contains(msgs[0], "X-Rcpt-To: dana@example.com") || !strings.Contains(msgs[1], "X-Rcpt-To: dana@example.com") {
		t.Fatalf("want two messages, both to dana: %q", msgs)
	}
	for _, m := range msgs {
		if strings.Contains(m, "evil.example") || !strings.Contains(m, e.srv.URL+"/login/link#") {
			t.Fatalf("a link not built on the public URL:\n%s", m)
		}
	}
	links := regexp.MustCompile(`/login/link#(vts_[A-Za-z0-9_-]+)`).FindAllStringSubmatch(msgs[0], -1)
	if len(links) != 2 || !strings.Contains(msgs[0], "Organization acme (role security)") || !strings.Contains(msgs[0], "Organization globex (role auditor)") {
		t.Fatalf("want a link per organization:\n%s", msgs[0])
	}
	acme := links[0][1]

	r := e.browser("POST", "/api/v1/session/link", "", "", `{"link":"`+acme+`"}`)
	if r.status != 200 {
		t.Fatalf("link: %d %s", r.status, r.body)
	}
	m := r.json(t)
	if m["user"].(map[string]any)["email"] != "dana@example.com" || m["role"] != "security" || m["token"] != nil {
		t.Fatalf("session of the link: %s", r.body)
	}
	cookie := sessionCookie(t, r)
	// What the person reads is recorded under their name.
	e.browser("GET", "/api/v1/events?limit=1", cookie, "", "")
	recs := e.do("GET", "/api/v1/events?actor_email=dana@example.com", e.owner, nil).json(t)["data"].([]any)
	if len(recs) != 2 || recs[0].(map[string]any)["type"] != "audit.query" || recs[1].(map[string]any)["type"] != "auth.login" {
		t.Fatalf("the user's records: %v", recs)
	}
	// One time only.
	if r := e.browser("POST", "/api/v1/session/link", "", "", `{"link":"`+acme+`"}`); r.status != 401 {
		t.Fatalf("second use of a link: %d, want 401", r.status)
	}
	// Expired links do not work.
	e.clock.advance(16 * time.Minute)
	if r := e.browser("POST", "/api/v1/session/link", "", "", `{"link":"`+links[1][1]+`"}`); r.status != 401 {
		t.Fatalf("expired link: %d, want 401", r.status)
	}
	// A disabled user's session is dead at once.
	if r := e.browser("GET", "/api/v1/session", cookie, "", ""); r.status != 200 {
		t.Fatalf("user session: %d", r.status)
	}
	if err := e.store.DisableUser(ctx, e.org.ID, dana.ID, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	if r := e.browser("GET", "/api/v1/session", cookie, "", ""); r.status != 401 {
		t.Fatalf("session of a disabled user: %d, want 401", r.status)
	}
}

func TestSessionEmailNotConfigured(t *testing.T) {
	sessionsOnSQLite(t)
	e := newConsoleEnv(t, vhttp.Config{})
	if r := e.do("GET", "/api/v1/session/options", "", nil); strings.Contains(string(r.body), `"email"`) {
		t.Fatalf("options offer e-mail without SMTP: %s", r.body)
	}
	if r := e.browser("POST", "/api/v1/session/email", "", "", `{"email":"dana@example.com"}`); r.status != 503 {
		t.Fatalf("e-mail sign-in without SMTP: %d %s", r.status, r.body)
	}
}

func TestSecureCookieBehindHTTPS(t *testing.T) {
	sessionsOnSQLite(t)
	e := newConsoleEnv(t, vhttp.Config{PublicURL: "https://audit.example.com"})
	r := e.do("POST", "/api/v1/session", "", strings.NewReader(`{"token":"`+e.owner+`"}`), "Content-Type", "application/json", "Origin", "https://audit.example.com")
	set := r.header.Get("Set-Cookie")
	if r.status != 200 || !strings.HasPrefix(set, "__Host-vt_session=") || !strings.Contains(set, "Secure") {
		t.Fatalf("cookie behind HTTPS: %d %q", r.status, set)
	}
	// The console's origin is the public URL's or the request's own.
	if r := e.do("POST", "/api/v1/session", "", strings.NewReader(`{"token":"`+e.owner+`"}`), "Content-Type", "application/json", "Origin", e.srv.URL); r.status != 200 {
		t.Fatalf("origin of the request's host: %d", r.status)
	}
	if r := e.do("POST", "/api/v1/session", "", strings.NewReader(`{"token":"`+e.owner+`"}`), "Content-Type", "application/json", "Origin", "https://audit.example.com.evil.example"); r.status != 403 {
		t.Fatalf("another origin: %d", r.status)
	}
}

func TestConsolePages(t *testing.T) {
	sessionsOnSQLite(t)
	e := newConsoleEnv(t, vhttp.Config{})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/events" {
		t.Fatalf("/: %d to %q, want a redirect to /events", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/events", "/events/evt_123", "/log", "/login", "/login/link"} {
		r := e.do("GET", p+"?outcome=failure", "", nil)
		csp := r.header.Get("Content-Security-Policy")
		if r.status != 200 || !strings.Contains(string(r.body), `<script type="importmap">`) || !strings.Contains(csp, "script-src 'self' 'sha256-") ||
			!strings.Contains(csp, "frame-ancestors 'none'") || r.header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: %d, CSP %q\n%s", p, r.status, csp, r.body)
		}
	}
	page := string(e.do("GET", "/events", "", nil).body)
	asset := regexp.MustCompile(`src="(/assets/[0-9a-f]+/)app\.js"`).FindStringSubmatch(page)
	if asset == nil {
		t.Fatalf("no app.js in the page:\n%s", page)
	}
	r := e.do("GET", asset[1]+"app.js", "", nil, "Accept-Encoding", "gzip")
	if r.status != 200 || r.header.Get("Content-Encoding") != "gzip" || !strings.Contains(r.header.Get("Cache-Control"), "immutable") ||
		!strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("asset: %d %v", r.status, r.header)
	}
	if r := e.do("GET", "/assets/0000000000000000/app.js", "", nil); r.status != 404 {
		t.Fatalf("asset of another version: %d, want 404", r.status)
	}
	if r := e.do("GET", asset[1]+"nope.js", "", nil); r.status != 404 {
		t.Fatalf("missing asset: %d, want 404", r.status)
	}
}

func TestStatsEndpoint(t *testing.T) {
	e := newConsoleEnv(t, vhttp.Config{})
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var lines []string
	for i := range 90 {
		outcome := "success"
		if i%3 == 0 {
			outcome = "failure"
		}
		lines = append(lines, `{"id":"s`+itoa(i)+`","type":"auth.login","time":"`+base.Add(time.Duration(i)*time.Minute).Format(time.RFC3339)+
			`","actor":{"type":"user","id":"u`+itoa(i%4)+`"},"outcome":"`+outcome+`","status":`+itoa(200+i%2*203)+`,"context":{"ip":"10.0.0.`+itoa(i%2)+`"}}`)
	}
	if r := e.post(strings.Join(lines, "\n"), "Content-Type", "application/x-ndjson"); r.status != 200 {
		t.Fatalf("ingest: %d %s", r.status, r.body)
	}
	r := e.do("GET", "/api/v1/events/stats?type=auth.login&since=2026-06-01T00:00:00Z&until=2026-06-01T01:30:00Z&interval=15m&top=outcome,ip,status&top_limit=1", e.owner, nil)
	if r.status != 200 {
		t.Fatalf("stats: %d %s", r.status, r.body)
	}
	var st struct {
		Total           int64
		IntervalSeconds int64 `json:"interval_seconds"`
		Since, Until    string
		Buckets         []struct {
			Start string
			Count int64
		}
		Top map[string][]struct {
			Value string
			Count int64
		}
	}
	json.Unmarshal(r.body, &st)
	if st.Total != 90 || st.IntervalSeconds != 900 || len(st.Buckets) != 6 || st.Buckets[0].Start != "2026-06-01T00:00:00Z" || st.Buckets[5].Count != 15 {
		t.Fatalf("stats: %s", r.body)
	}
	if o := st.Top["outcome"]; len(o) != 1 || o[0].Value != "success" || o[0].Count != 60 {
		t.Fatalf("top outcome: %s", r.body)
	}
	if ip := st.Top["ip"]; len(ip) != 1 || ip[0].Value != "10.0.0.0" || ip[0].Count != 45 {
		t.Fatalf("top ip (shown as an address): %s", r.body)
	}
	if s := st.Top["status"]; len(s) != 1 || s[0].Value != "200" {
		t.Fatalf("top status (shown as a number): %s", r.body)
	}
	// Recorded as a read.
	rec := e.do("GET", "/api/v1/events?type=audit.query&limit=1", e.owner, nil).json(t)["data"].([]any)[0].(map[string]any)
	if !strings.Contains(string(mustJSON(rec["content"])), `"stats":true`) {
		t.Fatalf("stats read not recorded: %v", rec)
	}
	for _, tc := range []struct{ query, says string }{
		{"interval=0.5s", "parameter interval"},
		{"interval=fortnight", "parameter interval"},
		{"bars=0", "parameter bars"},
		{"top=nope", "parameter top"},
		{"top_limit=1000", "parameter top_limit"},
		{"cursor=abc", "parameter cursor"},
		{"limit=5", "parameter limit"},
		{"colour=red", "colour"},
		{"since=2026-01-01T00:00:00Z&until=2026-06-02T00:00:00Z&interval=1s", "bars"},
	} {
		r := e.do("GET", "/api/v1/events/stats?"+tc.query, e.owner, nil)
		if r.status != 400 || !strings.Contains(string(r.body), tc.says) {
			t.Errorf("%s: %d %s, want 400 naming %s", tc.query, r.status, r.body, tc.says)
		}
	}
	if r := e.do("GET", "/api/v1/events/stats", e.token(e.org, veritrail.RoleIngest, nil, nil), nil); r.status != 403 {
		t.Errorf("stats with an ingest token: %d, want 403", r.status)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestEventStream(t *testing.T) {
	e := newConsoleEnv(t, vhttp.Config{StreamPoll: 20 * time.Millisecond})
	open := func(query, lastID string) (*bufio.Reader, func()) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/events/stream?"+query, nil)
		req.Header.Set("Authorization", "Bearer "+e.owner)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream: %d %v", resp.StatusCode, resp.Header)
		}
		return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
	}
	// next reads the next message: its id and the ids of its events.
	next := func(rd *bufio.Reader) (string, []string) {
		var id string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended: %v", err)
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				var page struct{ Data []struct{ ID string } }
				if err := json.Unmarshal([]byte(line[6:]), &page); err != nil {
					t.Fatalf("data: %v: %s", err, line)
				}
				var ids []string
				for _, ev := range page.Data {
					ids = append(ids, ev.ID)
				}
				return id, ids
			}
		}
	}
	rd, stop := open("type=auth.*", "")
	e.post(`{"id":"a1","type":"auth.login","actor":{"type":"user","id":"u"}}`)
	e.post(`{"id":"x1","type":"board.opened","actor":{"type":"user","id":"u"}}`)
	e.post(`{"id":"a2","type":"auth.logout","actor":{"type":"user","id":"u"}}`)
	var got []string
	var last string
	for len(got) < 2 {
		id, ids := next(rd)
		got, last = append(got, ids...), id
	}
	stop()
	if strings.Join(got, ",") != "a1,a2" {
		t.Fatalf("streamed %v, want a1,a2 (the filter applies)", got)
	}
	// A reconnect with Last-Event-ID goes on after the last event received.
	e.post(`{"id":"a3","type":"auth.login","actor":{"type":"user","id":"u"}}`)
	rd, stop = open("type=auth.*", last)
	defer stop()
	if _, ids := next(rd); strings.Join(ids, ",") != "a3" {
		t.Fatalf("resumed with %v, want a3", ids)
	}
	// Opening a stream is one recorded read.
	recs := e.do("GET", "/api/v1/events?type=audit.query", e.owner, nil).json(t)["data"].([]any)
	follows := 0
	for _, r := range recs {
		if strings.Contains(string(mustJSON(r.(map[string]any)["content"])), `"follow":true`) {
			follows++
		}
	}
	if follows != 2 {
		t.Fatalf("%d stream reads recorded, want 2", follows)
	}
	if r := e.do("GET", "/api/v1/events/stream?since=2026-01-01", e.owner, nil); r.status != 400 {
		t.Fatalf("stream with since: %d", r.status)
	}
}
