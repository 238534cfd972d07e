package http_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/checkpoint"
	vhttp "github.com/veritrail/veritrail/http"
	"github.com/veritrail/veritrail/metrics"
	"github.com/veritrail/veritrail/sqlite"
	"github.com/veritrail/veritrail/tlog"
)

// Markers planted in organization acme's data: none may appear in a body
// answered to globex, and the content ones in no body answered to a reader
// without content access.
const (
	envMarker     = "acmeenvelopemarker"
	contentMarker = "acmecontentmarker"
)

// principal is one way of calling: a role, or an owner token narrowed to
// one scope.
type principal struct {
	name   string
	role   string
	scopes []string
}

func principals() []principal {
	var ps []principal
	for _, r := range veritrail.Roles {
		ps = append(ps, principal{name: "role " + r, role: r})
	}
	for _, s := range veritrail.AllScopes {
		ps = append(ps, principal{name: "scope " + s, role: veritrail.RoleOwner, scopes: []string{s}})
	}
	return ps
}

// endpoint is one API operation: the scope it needs, and how to call it on
// organization acme's resources (creating them as needed).
type endpoint struct {
	name    string
	method  string
	scope   string // "" = any valid token
	path    func(a *acme) string
	body    string
	ok      int  // status for a caller allowed, in its own organization
	foreign bool // names one of acme's resources: another organization gets 404
	miro    bool // answers errors with Miro's error body
}

// acme is organization acme's fixture: the resources the endpoints name.
type acme struct {
	e       *env
	eventID string
	tokenID string
	userID  string
	jobID   string
	store   veritrail.Store
}

func (a *acme) newTeam() string {
	t := &veritrail.Team{ID: veritrail.NewID("team"), OrgID: a.e.org.ID, Name: "t"}
	if err := a.store.CreateTeam(context.Background(), t); err != nil {
		a.e.t.Fatal(err)
	}
	return t.ID
}

func endpoints() []endpoint {
	fixed := func(p string) func(*acme) string { return func(*acme) string { return p } }
	return []endpoint{
		{"ingest", "POST", veritrail.ScopeEventsWrite, fixed("/api/v1/events"), `{"type":"auth.login","actor":{"type":"user","id":"x"}}`, 200, false, false},
		{"list", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/events?limit=1000"), "", 200, false, false},
		// Prefixes: the audit record of a search keeps its words, and
		// must not be mistaken for a leak of the whole marker.
		{"search content", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/events?q=" + contentMarker[:14] + "*"), "", 200, false, false},
		{"search envelope", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/events?q=" + envMarker[:14] + "*"), "", 200, false, false},
		{"poll", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/events?order=seq&limit=1000"), "", 200, false, false},
		{"detail", "GET", veritrail.ScopeAuditLogsRead, func(a *acme) string { return "/api/v1/events/" + a.eventID }, "", 200, true, false},
		{"detail with proof", "GET", veritrail.ScopeAuditLogsRead, func(a *acme) string { return "/api/v1/events/" + a.eventID + "?proof=true" }, "", 200, true, false},
		{"checkpoint", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/log/checkpoint"), "", 200, false, false},
		{"checkpoints", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/log/checkpoints"), "", 200, false, false},
		{"log key", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/log/key"), "", 200, false, false},
		{"witnesses", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/log/witnesses"), "", 200, false, false},
		{"inclusion", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/log/proof/inclusion?seq=0"), "", 200, false, false},
		{"consistency", "GET", veritrail.ScopeAuditLogsRead, fixed("/api/v1/log/proof/consistency?from=0"), "", 200, false, false},
		{"me", "GET", "", fixed("/api/v1/me"), "", 200, false, false},
		{"create token", "POST", veritrail.ScopeAdmin, fixed("/api/v1/tokens"), `{"name":"n","role":"auditor"}`, 201, false, false},
		{"list tokens", "GET", veritrail.ScopeAdmin, fixed("/api/v1/tokens"), "", 200, false, false},
		{"revoke token", "DELETE", veritrail.ScopeAdmin, func(a *acme) string { return "/api/v1/tokens/" + a.tokenID }, "", 204, true, false},
		{"create user", "POST", veritrail.ScopeAdmin, fixed("/api/v1/users"), ``, 201, false, false},
		{"list users", "GET", veritrail.ScopeAdmin, fixed("/api/v1/users"), "", 200, false, false},
		{"disable user", "DELETE", veritrail.ScopeAdmin, func(a *acme) string { return "/api/v1/users/" + a.userID }, "", 204, true, false},
		{"create team", "POST", veritrail.ScopeAdmin, fixed("/api/v1/teams"), `{"name":"red team"}`, 201, false, false},
		{"list teams", "GET", veritrail.ScopeAdmin, fixed("/api/v1/teams"), "", 200, false, false},
		{"delete team", "DELETE", veritrail.ScopeAdmin, func(a *acme) string { return "/api/v1/teams/" + a.newTeam() }, "", 204, true, false},
		{name: "mcp policy", method: "GET", scope: veritrail.ScopeEventsWrite, path: fixed("/api/v1/mcp/policy"), ok: 200},
		{name: "export csv", method: "GET", scope: veritrail.ScopeExports, path: fixed("/api/v1/events/export?format=csv"), ok: 200},
		{name: "export ndjson", method: "GET", scope: veritrail.ScopeExports, path: fixed("/api/v1/events/export?format=ndjson"), ok: 200},
		{name: "create export", method: "POST", scope: veritrail.ScopeExports, path: fixed("/api/v1/exports"), body: `{"format":"json"}`, ok: 202},
		{name: "list exports", method: "GET", scope: veritrail.ScopeExports, path: fixed("/api/v1/exports"), ok: 200},
		{name: "get export", method: "GET", scope: veritrail.ScopeExports, path: func(a *acme) string { return "/api/v1/exports/" + a.jobID }, ok: 200, foreign: true},
		{name: "miro v2 audit logs", method: "GET", scope: veritrail.ScopeAuditLogsRead, miro: true, ok: 200,
			path: fixed("/v2/audit/logs?createdAfter=2000-01-01T00:00:00.00Z&createdBefore=2100-01-01T00:00:00.00Z&limit=500")},
		{name: "miro v1 audit logs", method: "GET", scope: veritrail.ScopeAuditLogsRead, miro: true, ok: 200,
			path: fixed("/v1/audit/logs?createdAfter=2000-01-01T00:00:00.00Z&createdBefore=2100-01-01T00:00:00.00Z&limit=100")},
		{name: "miro ai interaction logs", method: "GET", scope: veritrail.ScopeAIRead, miro: true, ok: 200, foreign: true,
			path: fixed("/v2/orgs/acme/ai-interaction-logs?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z")},
	}
}

// TestAccessMatrix calls every endpoint as every role and every single
// scope, of the organization that owns the data and of another one, and
// checks the exact status and that no body carries what the caller may not
// see.
func TestAccessMatrix(t *testing.T) {
	ctx := context.Background()
	m := metrics.New()
	store := openStore(t, t.TempDir(), storeOptions{Observer: m})
	key, _ := tlog.GenerateKey()
	cpr, err := checkpoint.New(ctx, checkpoint.Config{Store: store, Key: key, OriginPrefix: "test.example"})
	if err != nil {
		t.Fatal(err)
	}
	api := vhttp.New(vhttp.Config{Store: store, Metrics: m, Checkpointer: cpr})
	srv := httptest.NewServer(api)
	defer func() { srv.Close(); api.Shutdown(ctx); store.Close() }()
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	enableAI(t, store, e.org.ID)
	globex, _ := store.CreateOrg(ctx, "globex")
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	a := &acme{e: e, store: store}

	r := e.post(fmt.Sprintf(`{"id":"acme-1","type":"ai.interaction","actor":{"type":"user","id":"%s","name":"%s"},"content":{"prompt":"%s"}}`,
		envMarker, envMarker, contentMarker))
	if r.status != 200 {
		t.Fatal(string(r.body))
	}
	a.eventID = "acme-1"
	victim := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	lookup, _ := veritrail.HashToken(victim)
	vt, _ := store.TokenByLookup(ctx, lookup)
	a.tokenID = vt.ID
	u := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: e.org.ID, Email: envMarker + "@acme.example", Role: veritrail.RoleAuditor}
	store.CreateUser(ctx, u)
	a.userID = u.ID
	syncFullText(store)
	job := &veritrail.ExportJob{ID: veritrail.NewID("exp"), OrgID: e.org.ID, Format: "csv", State: veritrail.ExportPending, CreatedAt: time.Now()}
	if err := store.CreateExport(ctx, job); err != nil {
		t.Fatal(err)
	}
	a.jobID = job.ID
	// Globex has data of its own.
	gowner := e.token(globex, veritrail.RoleOwner, nil, nil)
	e.do("POST", "/api/v1/events", gowner, strings.NewReader(`{"type":"auth.login","actor":{"type":"user","id":"g"},"content":{"x":"globex"}}`))

	userN := 0
	for _, p := range principals() {
		for _, org := range []*veritrail.Org{e.org, globex} {
			own := org.ID == e.org.ID
			tok := e.token(org, p.role, p.scopes, nil)
			scopes := veritrail.EffectiveScopes(p.role, p.scopes)
			has := func(s string) bool {
				for _, x := range scopes {
					if x == s {
						return true
					}
				}
				return false
			}
			for _, ep := range endpoints() {
				want := ep.ok
				switch {
				case ep.scope != "" && !has(ep.scope):
					want = 403
				case !own && ep.foreign:
					want = 404
				}
				body := ep.body
				if ep.name == "create user" {
					userN++
					body = fmt.Sprintf(`{"email":"u%d@x.example","role":"auditor"}`, userN)
				}
				var rd *strings.Reader
				if body != "" {
					rd = strings.NewReader(body)
				}
				var resp response
				if rd != nil {
					resp = e.do(ep.method, ep.path(a), tok, rd)
				} else {
					resp = e.do(ep.method, ep.path(a), tok, nil)
				}
				where := fmt.Sprintf("%s (%s) → %s %s", p.name, org.Name, ep.method, ep.name)
				if resp.status != want {
					t.Errorf("%s: status %d, want %d: %s", where, resp.status, want, resp.body)
					continue
				}
				b := string(resp.body)
				// (A 404 may repeat the identifier the caller sent.)
				if !own && (strings.Contains(b, envMarker) || strings.Contains(b, contentMarker) ||
					(resp.status < 300 && (strings.Contains(b, a.tokenID) || strings.Contains(b, a.userID) || strings.Contains(b, a.jobID) || strings.Contains(b, "acme-1")))) {
					t.Errorf("%s: organization acme's data in globex's answer: %s", where, b)
				}
				if !has(veritrail.ScopeContentRead) && strings.Contains(b, contentMarker) {
					t.Errorf("%s: content shown without content:read: %s", where, b)
				}
				ct := resp.header.Get("Content-Type")
				if want < 300 && resp.status != 204 && !strings.HasPrefix(ct, "text/") && ct != "application/x-ndjson" && !json.Valid(resp.body) {
					t.Errorf("%s: body is not JSON: %s", where, b)
				}
				if want >= 400 && ep.miro {
					var eb struct {
						Status        int
						Code, Message string
						Type          string
					}
					if json.Unmarshal(resp.body, &eb) != nil || eb.Status != want || eb.Code == "" || eb.Message == "" || eb.Type != "error" {
						t.Errorf("%s: Miro error body %s", where, b)
					}
				} else if want >= 400 {
					var eb struct {
						Error struct{ Code, Message string } `json:"error"`
					}
					if json.Unmarshal(resp.body, &eb) != nil || eb.Error.Code == "" || eb.Error.Message == "" {
						t.Errorf("%s: error body %s", where, b)
					}
				}
			}
		}
	}
	// The content search reaches content only for content readers: an
	// auditor's search for a word that exists only in content finds nothing.
	aud := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	sec := e.token(e.org, veritrail.RoleSecurity, nil, nil)
	if r := e.do("GET", "/api/v1/events?q="+contentMarker+"&type=ai.interaction", aud, nil); strings.Contains(string(r.body), `"acme-1"`) {
		t.Errorf("an auditor's search matched content: %s", r.body)
	}
	if r := e.do("GET", "/api/v1/events?q="+contentMarker+"&type=ai.interaction", sec, nil); !strings.Contains(string(r.body), "acme-1") {
		t.Errorf("security's search missed content: %s", r.body)
	}
	if r := e.do("GET", "/api/v1/events?q="+envMarker+"&type=ai.interaction", aud, nil); !strings.Contains(string(r.body), "acme-1") {
		t.Errorf("an auditor's search missed envelope words: %s", r.body)
	}
}

func TestGrantRules(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	admin := e.token(e.org, veritrail.RoleAdmin, nil, nil)
	for role, want := range map[string]int{"owner": 403, "security": 403, "admin": 201, "auditor": 201, "ingest": 201} {
		r := e.do("POST", "/api/v1/tokens", admin, strings.NewReader(`{"role":"`+role+`"}`))
		if r.status != want {
			t.Errorf("admin creates a %s token: %d, want %d: %s", role, r.status, want, r.body)
		}
		r = e.do("POST", "/api/v1/users", admin, strings.NewReader(`{"email":"`+role+`@x.example","role":"`+role+`"}`))
		if r.status != want {
			t.Errorf("admin creates a %s user: %d, want %d: %s", role, r.status, want, r.body)
		}
	}
	// An admin cannot revoke an owner's token, but can revoke its own.
	ownerID := tokenID(t, e, e.owner)
	if r := e.do("DELETE", "/api/v1/tokens/"+ownerID, admin, nil); r.status != 403 {
		t.Errorf("admin revoked an owner token: %d", r.status)
	}
	for _, bad := range []string{`{"role":"god"}`, `{"role":"auditor","scopes":["content:read"]}`, `{"role":"auditor","scopes":["nope"]}`,
		`{"role":"auditor","expires_in":"-1h"}`, `{"role":"auditor","extra":1}`, `not json`} {
		if r := e.do("POST", "/api/v1/tokens", e.owner, strings.NewReader(bad)); r.status != 400 {
			t.Errorf("%s: %d %s", bad, r.status, r.body)
		}
	}
	// A token made through the API works, is shown once, never listed.
	r := e.do("POST", "/api/v1/tokens", e.owner, strings.NewReader(`{"name":"siem","role":"auditor","scopes":["auditlogs:read"],"expires_in":"1h"}`))
	var created struct {
		ID, Token string
		Scopes    []string
	}
	json.Unmarshal(r.body, &created)
	if !strings.HasPrefix(created.Token, "vt_") || len(created.Scopes) != 1 {
		t.Fatalf("created: %s", r.body)
	}
	if r := e.do("GET", "/api/v1/events", created.Token, nil); r.status != 200 {
		t.Fatalf("new token: %d", r.status)
	}
	if r := e.do("GET", "/api/v1/tokens", e.owner, nil); strings.Contains(string(r.body), created.Token) {
		t.Fatal("a token secret in the token list")
	}
	e.do("DELETE", "/api/v1/tokens/"+created.ID, e.owner, nil)
	if r := e.do("GET", "/api/v1/events", created.Token, nil); r.status != 401 {
		t.Fatalf("revoked token still works: %d", r.status)
	}
}

func tokenID(t *testing.T, e *env, secret string) string {
	lookup, _ := veritrail.HashToken(secret)
	tk, err := e.store.TokenByLookup(context.Background(), lookup)
	if err != nil {
		t.Fatal(err)
	}
	return tk.ID
}

func TestAuditRecords(t *testing.T) {
	e := newEnv(t, veritrail.DefaultLimits)
	aud := e.token(e.org, veritrail.RoleAuditor, nil, nil)
	e.post(`{"id":"x1","type":"auth.login","actor":{"type":"user","id":"u"},"content":{"a":1}}`)
	e.do("GET", "/api/v1/events?actor_id=u&limit=5", aud, nil)
	e.do("GET", "/api/v1/events/x1", aud, nil)
	// A refused view shows nothing, so it records nothing.
	if r := e.do("GET", "/api/v1/events/x1?proof=maybe", aud, nil); r.status != 400 {
		t.Fatalf("proof=maybe: %d %s", r.status, r.body)
	}
	e.do("POST", "/api/v1/teams", e.owner, strings.NewReader(`{"name":"blue"}`))
	r := e.do("POST", "/api/v1/tokens", e.owner, strings.NewReader(`{"role":"ingest","name":"app"}`))
	var tok struct{ ID, Token string }
	json.Unmarshal(r.body, &tok)
	e.do("DELETE", "/api/v1/tokens/"+tok.ID, e.owner, nil)

	type rec struct {
		Type    string          `json:"type"`
		Actor   veritrail.Actor `json:"actor"`
		Target  *veritrail.Target
		Content map[string]any `json:"content"`
	}
	list := func() []rec {
		r := e.do("GET", "/api/v1/events?type=audit.*&order=asc&limit=100", e.owner, nil)
		var page struct{ Data []rec }
		json.Unmarshal(r.body, &page)
		return page.Data
	}
	recs := list()
	var types []string
	for _, r := range recs {
		types = append(types, r.Type)
	}
	want := "audit.query,audit.event_viewed,audit.team_created,audit.token_created,audit.token_revoked"
	if got := strings.Join(types, ","); got != want {
		t.Fatalf("audit records %s, want %s", got, want)
	}
	q := recs[0]
	if q.Actor.Type != "api_key" || q.Actor.ID != tokenID(t, e.env(), aud) || q.Content["results"] != float64(1) ||
		q.Content["parameters"].(map[string]any)["actor_id"] != "u" {
		t.Fatalf("audit.query record: %+v", q)
	}
	if recs[1].Target == nil || recs[1].Target.ID != "x1" {
		t.Fatalf("audit.event_viewed record: %+v", recs[1])
	}
	if strings.Contains(fmt.Sprint(recs[3]), tok.Token) {
		t.Fatal("the token secret is in the audit record")
	}
	// Reading the audit records records one event, not a chain.
	before := len(list())
	time.Sleep(10 * time.Millisecond)
	after := list()
	if len(after) != before+1 || after[len(after)-1].Type != "audit.query" {
		t.Fatalf("reading audit records: %d then %d records", before, len(after))
	}
}

func (e *env) env() *env { return e }

func TestRateLimit(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	api := vhttp.New(vhttp.Config{Store: store, RateLimit: 6, Now: clock})
	srv := httptest.NewServer(api)
	defer func() { srv.Close(); api.Shutdown(ctx); store.Close() }()
	e := &env{t: t, store: store, srv: srv, api: api}
	e.org, _ = store.CreateOrg(ctx, "acme")
	e.owner = e.token(e.org, veritrail.RoleOwner, nil, nil)
	other := e.token(e.org, veritrail.RoleIngest, nil, nil)
	for i := 0; i < 6; i++ {
		r := e.do("GET", "/api/v1/me", e.owner, nil)
		if r.status != 200 || r.header.Get("X-RateLimit-Limit") != "6" || r.header.Get("X-RateLimit-Remaining") != fmt.Sprint(5-i) {
			t.Fatalf("request %d: %d %v", i, r.status, r.header)
		}
	}
	r := e.do("GET", "/api/v1/me", e.owner, nil)
	if r.status != 429 || r.header.Get("Retry-After") != "10" || r.header.Get("X-RateLimit-Reset") != "60" {
		t.Fatalf("over the limit: %d %v %s", r.status, r.header, r.body)
	}
	// Another token is not held back by the greedy one.
	if r := e.do("POST", "/api/v1/events", other, strings.NewReader(`{"type":"a.b","actor":{"type":"user","id":"u"}}`)); r.status != 200 {
		t.Fatalf("another token was limited: %d", r.status)
	}
	// The bucket refills: one request every 10 s.
	now = now.Add(10 * time.Second)
	if r := e.do("GET", "/api/v1/me", e.owner, nil); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Fatalf("after 10 s: %d %v", r.status, r.header)
	}
}
