package http_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	veritrail "github.com/veritrail/veritrail"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/seal"
	"github.com/veritrail/veritrail/sso"
	"github.com/veritrail/veritrail/sso/ssotest"
)

// ssoEnv is a server with single sign-on against a real OpenID provider
// (ssotest: zitadel/oidc's example provider) that knows three people.
type ssoEnv struct {
	*env
	idp    *ssotest.Provider
	key    *seal.Key
	faults *ssoFaults
}

// ssoFaults is the store the SSO tests' server uses: the real one, whose
// SSOConfig fails like an unreachable database while down is set.
type ssoFaults struct {
	veritrail.Store
	down atomic.Bool
}

func (f *ssoFaults) SSOConfig(ctx context.Context, org int64) (*veritrail.SSOConfig, error) {
	if f.down.Load() {
		return nil, veritrail.Errorf(veritrail.EUnavailable, "the database is unreachable")
	}
	return f.Store.SSOConfig(ctx, org)
}

func newSSOEnv(t *testing.T) *ssoEnv {
	t.Helper()
	ctx := context.Background()
	m := metrics.New()
	store := openStore(t, t.TempDir(), storeOptions{Observer: m})
	key, err := seal.Parse([]byte(seal.Generate()))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	idp := ssotest.Start(t, []string{base + "/auth/oidc/callback"},
		ssotest.User{ID: "sub-dana", Username: "dana", Password: "pw-dana", Email: "dana@example.com", EmailVerified: true, Name: "Dana Scully", Groups: []string{"secops"}},
		ssotest.User{ID: "sub-eve", Username: "eve", Password: "pw-eve", Email: "eve@elsewhere.test", EmailVerified: true, Name: "Eve"},
		ssotest.User{ID: "sub-finn", Username: "finn", Password: "pw-finn", Email: "finn@example.com", EmailVerified: false, Name: "Finn"})
	faults := &ssoFaults{Store: store}
	api := vhttp.New(vhttp.Config{Store: faults, Metrics: m, SealKey: key, SSO: sso.New(http.DefaultClient, nil)})
	srv.Config.Handler = api
	srv.Start()
	t.Cleanup(func() { srv.Close(); api.Shutdown(ctx); store.Close() })
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	s := &ssoEnv{env: e, idp: idp, key: key, faults: faults}
	r := e.do("PUT", "/api/v1/sso", e.owner, strings.NewReader(`{"enabled":true,"issuer":"`+idp.Issuer+`","client_id":"`+idp.ClientID+
		`","client_secret":"`+idp.ClientSecret+`","allowed_domains":["example.com"],"groups_claim":"groups",`+
		`"group_roles":[{"group":"secops","role":"security"}],"default_role":"auditor","create_users":true}`))
	if r.status != 200 {
		t.Fatalf("sso settings: %d %s", r.status, r.body)
	}
	return s
}

// browser is a cookie-keeping client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// start asks the server to sign in to org and returns the provider's
// authorization URL.
func (e *ssoEnv) start(c *http.Client, returnTo string) string {
	e.t.Helper()
	u := e.srv.URL + "/auth/oidc/acme/login"
	if returnTo != "" {
		u += "?return_to=" + url.QueryEscape(returnTo)
	}
	resp, err := c.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.idp.Issuer) {
		e.t.Fatalf("login: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return resp.Header.Get("Location")
}

func (e *ssoEnv) callback(c *http.Client, u *url.URL) (int, string) {
	e.t.Helper()
	resp, err := c.Get(u.String())
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// failures returns the reasons of the recorded failed sign-ins.
func (e *ssoEnv) failures() string {
	r := e.do("GET", "/api/v1/events?type=auth.login&outcome=failure", e.owner, nil)
	return string(r.body)
}

func TestSSOSettings(t *testing.T) {
	e := newSSOEnv(t)
	r := e.do("GET", "/api/v1/sso", e.owner, nil)
	body := string(r.body)
	if r.status != 200 || !strings.Contains(body, `"client_secret_set":true`) || strings.Contains(body, e.idp.ClientSecret) || strings.Contains(body, "sealed") {
		t.Fatalf("sso settings answered: %s", body)
	}
	// Sealed at rest, under the organization's context.
	c, err := e.store.SSOConfig(context.Background(), e.org.ID)
	if err != nil || strings.Contains(c.ClientSecretSealed, e.idp.ClientSecret) {
		t.Fatalf("stored: %+v %v", c, err)
	}
	if pt, err := e.key.Open(c.ClientSecretSealed, veritrail.SSOSecretContext(e.org.ID)); err != nil || string(pt) != e.idp.ClientSecret {
		t.Fatalf("sealed secret opens to %q, %v", pt, err)
	}
	// Saving without a secret keeps it; the change is recorded without it.
	r = e.do("PUT", "/api/v1/sso", e.owner, strings.NewReader(`{"enabled":true,"issuer":"`+e.idp.Issuer+`","client_id":"`+e.idp.ClientID+`","default_role":"auditor"}`))
	if r.status != 200 || !strings.Contains(string(r.body), `"client_secret_set":true`) {
		t.Fatalf("put without secret: %d %s", r.status, r.body)
	}
	recs := e.do("GET", "/api/v1/events?type=settings.sso_changed", e.owner, nil)
	if !strings.Contains(string(recs.body), "settings.sso_changed") || strings.Contains(string(recs.body), e.idp.ClientSecret) {
		t.Fatalf("records: %s", recs.body)
	}
	for _, c := range []struct {
		body, want string
		status     int
	}{
		{`{"issuer":"ftp://x","client_id":"a"}`, "issuer", 400},
		{`{"issuer":"https://x.example","client_id":""}`, "client_id", 400},
		{`{"issuer":"https://x.example","client_id":"a","allowed_domains":["@x"]}`, "allowed_domains[0]", 400},
		{`{"issuer":"https://x.example","client_id":"a","group_roles":[{"group":"g","role":"king"}],"groups_claim":"groups"}`, "group_roles[0].role", 400},
		{`{"issuer":"https://x.example","client_id":"a","group_roles":[{"group":"g","role":"admin"}]}`, "groups_claim", 400},
		{`{"issuer":"https://x.example","client_id":"a","secret":"x"}`, "secret", 400},
	} {
		r := e.do("PUT", "/api/v1/sso", e.owner, strings.NewReader(c.body))
		if r.status != c.status || !strings.Contains(string(r.body), c.want) {
			t.Errorf("%s: %d %s, want %d naming %s", c.body, r.status, r.body, c.status, c.want)
		}
	}
	// An admin may not hand out owner through the provider; an auditor may
	// not touch the settings.
	admin := e.token(e.org, veritrail.RoleAdmin, nil, nil)
	if r := e.do("PUT", "/api/v1/sso", admin, strings.NewReader(`{"issuer":"https://x.example","client_id":"a","default_role":"owner"}`)); r.status != 403 {
		t.Errorf("admin maps to owner: %d %s", r.status, r.body)
	}
	aud := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	if r := e.do("GET", "/api/v1/sso", aud, nil); r.status != 403 {
		t.Errorf("auditor reads sso settings: %d", r.status)
	}
}

// TestSSORefusals: no open redirect, and state, nonce-bearing flow and
// identity checks refuse and record the failure.
func TestSSORefusals(t *testing.T) {
	e := newSSOEnv(t)
	c := browser(t)
	for _, bad := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/evil.example", "javascript:alert(1)", "evil"} {
		resp, err := c.Get(e.srv.URL + "/auth/oidc/acme/login?return_to=" + url.QueryEscape(bad))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("return_to %q: %d, want 400", bad, resp.StatusCode)
		}
	}
	if resp, _ := c.Get(e.srv.URL + "/auth/oidc/nosuch/login"); resp.StatusCode != 404 {
		t.Errorf("unknown organization: %d", resp.StatusCode)
	}
	// The authorization request carries PKCE S256, state and nonce.
	authURL := e.start(c, "/settings")
	q, _ := url.Parse(authURL)
	if q.Query().Get("code_challenge_method") != "S256" || q.Query().Get("code_challenge") == "" || q.Query().Get("nonce") == "" || q.Query().Get("state") == "" {
		t.Fatalf("authorization request: %s", authURL)
	}

	// A forged state: refused, recorded.
	back := e.idp.SignIn(t, authURL, "dana", "pw-dana")
	forged := *back
	v := forged.Query()
	v.Set("state", "forged")
	forged.RawQuery = v.Encode()
	if st, body := e.callback(c, &forged); st != 401 {
		t.Fatalf("forged state: %d %s", st, body)
	}
	// The flow cookie was used up: the genuine callback now fails too.
	if st, _ := e.callback(c, back); st != 401 {
		t.Errorf("callback after the flow was used: %d", st)
	}
	// Another browser (no flow cookie) cannot redeem a code.
	authURL = e.start(c, "")
	back = e.idp.SignIn(t, authURL, "dana", "pw-dana")
	if st, _ := e.callback(browser(t), back); st != 401 {
		t.Errorf("callback in another browser: %d", st)
	}
	// Identities the organization does not admit.
	for _, who := range []string{"eve", "finn"} {
		c := browser(t)
		back := e.idp.SignIn(t, e.start(c, ""), who, "pw-"+who)
		if st, _ := e.callback(c, back); st != 401 {
			t.Errorf("%s: %d, want 401", who, st)
		}
	}
	// The database failing while the provider sends the person back is
	// the server's fault: 503, and no failed sign-in is recorded for it
	// (before, it was refused as "not set up").
	c = browser(t)
	back = e.idp.SignIn(t, e.start(c, ""), "dana", "pw-dana")
	e.faults.down.Store(true)
	st, body := e.callback(c, back)
	e.faults.down.Store(false)
	if st != 503 {
		t.Errorf("callback while the store is down: %d %s, want 503", st, body)
	}
	f := e.failures()
	for _, want := range []string{"state mismatch", "e-mail domain not allowed", "not verified"} {
		if !strings.Contains(f, want) {
			t.Errorf("failed sign-ins lack %q: %s", want, f)
		}
	}
	if strings.Contains(f, "not set up") {
		t.Errorf("a store outage was recorded as a failed sign-in: %s", f)
	}
}

// TestSSOSignIn: a person signs in through the provider and lands in a
// console session with the role their group maps to, created as a user
// with the provider's issuer and subject; a second sign-in is a new
// session; sign-out ends it; disabling the user ends every session.
func TestSSOSignIn(t *testing.T) {
	e := newSSOEnv(t)
	c := browser(t)
	back := e.idp.SignIn(t, e.start(c, "/settings?tab=x"), "dana", "pw-dana")
	st, body := e.callback(c, back)
	if st != 200 || !strings.Contains(body, `url=/settings?tab=x`) {
		t.Fatalf("callback: %d %s", st, body)
	}
	session := func(c *http.Client) (int, map[string]any) {
		resp, err := c.Get(e.srv.URL + "/api/v1/session")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, s1 := session(c)
	if code != 200 || s1["role"] != "security" || s1["user"].(map[string]any)["email"] != "dana@example.com" ||
		s1["session"].(map[string]any)["method"] != "oidc" {
		t.Fatalf("session after single sign-on: %d %v", code, s1)
	}
	users, _ := e.store.ListUsers(context.Background(), e.org.ID)
	if len(users) != 1 || users[0].OIDCSubject != "sub-dana" || users[0].OIDCIssuer != e.idp.Issuer || users[0].Role != "security" {
		t.Fatalf("user made at first sign-in: %+v", users)
	}
	rec := e.do("GET", "/api/v1/events?type=auth.login&outcome=success", e.owner, nil)
	if !strings.Contains(string(rec.body), `"method":"oidc"`) || !strings.Contains(string(rec.body), `"email":"dana@example.com"`) {
		t.Errorf("sign-in not recorded: %s", rec.body)
	}
	// Again: the same user, a new session id (no fixation).
	back = e.idp.SignIn(t, e.start(c, ""), "dana", "pw-dana")
	if st, body := e.callback(c, back); st != 200 {
		t.Fatalf("second callback: %d %s", st, body)
	}
	_, s2 := session(c)
	id1, id2 := s1["session"].(map[string]any)["id"], s2["session"].(map[string]any)["id"]
	if id1 == id2 || id2 == nil {
		t.Errorf("second sign-in kept session %v", id1)
	}
	if users, _ := e.store.ListUsers(context.Background(), e.org.ID); len(users) != 1 {
		t.Errorf("second sign-in made another user: %d", len(users))
	}
	// Sign-out (with the CSRF token, from this origin) ends it.
	req, _ := http.NewRequest("DELETE", e.srv.URL+"/api/v1/session", nil)
	req.Header.Set("X-CSRF-Token", s2["csrf_token"].(string))
	req.Header.Set("Origin", e.srv.URL)
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 204 {
		t.Fatalf("sign-out: %v %v", resp.StatusCode, err)
	}
	if code, _ := session(c); code != 401 {
		t.Errorf("session after sign-out: %d", code)
	}
	// Disabled: a live session dies, and single sign-on refuses.
	back = e.idp.SignIn(t, e.start(c, ""), "dana", "pw-dana")
	e.callback(c, back)
	if code, _ := session(c); code != 200 {
		t.Fatalf("third sign-in: %d", code)
	}
	if r := e.do("DELETE", "/api/v1/users/"+users[0].ID, e.owner, nil); r.status != 204 {
		t.Fatalf("disable: %d %s", r.status, r.body)
	}
	if code, _ := session(c); code != 401 {
		t.Errorf("session of a disabled user: %d", code)
	}
	back = e.idp.SignIn(t, e.start(c, ""), "dana", "pw-dana")
	if st, _ := e.callback(c, back); st != 401 {
		t.Errorf("single sign-on of a disabled user: %d", st)
	}
	if !strings.Contains(e.failures(), "user disabled") {
		t.Errorf("refusal of the disabled user not recorded: %s", e.failures())
	}
}
