package http

import (
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/sso"
)

// Single sign-on: an organization's people sign in to the console through
// its OpenID provider (package sso, the relying party). The admin API
// keeps the settings (client secret sealed under the master key, never
// answered); /auth/oidc/{org}/login starts the code flow with PKCE, keeping
// state, nonce and verifier in a sealed cookie that only this browser
// brings back; /auth/oidc/callback finishes it, maps the identity to a user
// of the organization (found by issuer and subject, else linked by e-mail,
// else created when the organization allows it) and opens a console
// session. Every sign-in and every refusal after the organization is known
// is recorded as auth.login (outcome success or failure).

// ssoFlowCookie holds the sealed sso.Flow between login and callback. It is
// SameSite=Lax, unlike the session cookie: the provider's redirect back is
// a cross-site navigation, on which a Strict cookie is not sent.
const ssoFlowCookie = "veritrail_sso_flow"

// ssoFlowContext is the sealing context of the flow cookie.
const ssoFlowContext = "sso-flow"

func (s *Server) ssoRoutes() {
	s.api("GET /api/v1/sso", "sso.get", veritrail.ScopeAdmin, s.getSSO)
	s.api("PUT /api/v1/sso", "sso.put", veritrail.ScopeAdmin, s.putSSO)
	s.methods("/api/v1/sso", "GET, PUT")
	s.public("GET /auth/oidc/{org}/login", "sso.login", s.ssoLogin)
	s.public("GET /auth/oidc/callback", "sso.callback", s.ssoCallback)
}

// ssoJSON is the settings as answered: the secret only said to be set.
type ssoJSON struct {
	*veritrail.SSOConfig
	ClientSecretSealed string `json:"client_secret_sealed,omitempty"` // shadows the stored one: never answered
	ClientSecretSet    bool   `json:"client_secret_set"`
	RedirectURL        string `json:"redirect_url"`
	LoginURL           string `json:"login_url"`
}

func (s *Server) describeSSO(r *http.Request, org string, c *veritrail.SSOConfig) *ssoJSON {
	return &ssoJSON{SSOConfig: c, ClientSecretSet: c.ClientSecretSealed != "",
		RedirectURL: s.baseURL(r) + "/auth/oidc/callback", LoginURL: s.baseURL(r) + "/auth/oidc/" + url.PathEscape(org) + "/login"}
}

func (s *Server) ssoReady() error {
	if s.cfg.SSO == nil || s.cfg.SealKey == nil {
		return veritrail.Errorf(veritrail.EUnavailable, "single sign-on is not available on this server (no master key or outbound client)")
	}
	return nil
}

func (s *Server) getSSO(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	c, err := s.store.SSOConfig(r.Context(), p.OrgID)
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		c, err = &veritrail.SSOConfig{OrgID: p.OrgID, AllowedDomains: []string{}, GroupRoles: []veritrail.GroupRole{}}, nil
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.describeSSO(r, p.OrgName, c))
	return nil
}

// putSSO replaces the settings; client_secret, when given, is sealed (when
// absent the stored one is kept). Records settings.sso_changed, without
// the secret.
func (s *Server) putSSO(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	if err := s.ssoReady(); err != nil {
		return err
	}
	var in struct {
		Enabled        bool                  `json:"enabled"`
		Issuer         string                `json:"issuer"`
		ClientID       string                `json:"client_id"`
		ClientSecret   *string               `json:"client_secret"`
		AllowedDomains []string              `json:"allowed_domains"`
		GroupsClaim    string                `json:"groups_claim"`
		GroupRoles     []veritrail.GroupRole `json:"group_roles"`
		DefaultRole    string                `json:"default_role"`
		CreateUsers    bool                  `json:"create_users"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	c := &veritrail.SSOConfig{OrgID: p.OrgID, Enabled: in.Enabled, Issuer: strings.TrimRight(strings.TrimSpace(in.Issuer), "/"),
		ClientID: strings.TrimSpace(in.ClientID), AllowedDomains: in.AllowedDomains, GroupsClaim: in.GroupsClaim,
		GroupRoles: in.GroupRoles, DefaultRole: in.DefaultRole, CreateUsers: in.CreateUsers, UpdatedAt: s.now().UTC()}
	if c.AllowedDomains == nil {
		c.AllowedDomains = []string{}
	}
	if c.GroupRoles == nil {
		c.GroupRoles = []veritrail.GroupRole{}
	}
	if err := c.Validate(); err != nil {
		return err
	}
	// Nobody hands out through a provider a role they could not grant.
	for i, g := range c.GroupRoles {
		if !veritrail.CanGrant(p.Role, g.Role) {
			return veritrail.Errorf(veritrail.EForbidden, "group_roles[%d].role: a %s may not grant the role %s", i, p.Role, g.Role)
		}
	}
	if c.DefaultRole != "" && !veritrail.CanGrant(p.Role, c.DefaultRole) {
		return veritrail.Errorf(veritrail.EForbidden, "default_role: a %s may not grant the role %s", p.Role, c.DefaultRole)
	}
	before, err := s.store.SSOConfig(r.Context(), p.OrgID)
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return err
	}
	switch {
	case in.ClientSecret != nil && *in.ClientSecret != "":
		c.ClientSecretSealed = s.cfg.SealKey.Seal([]byte(*in.ClientSecret), veritrail.SSOSecretContext(p.OrgID))
	case in.ClientSecret == nil && before != nil:
		c.ClientSecretSealed = before.ClientSecretSealed
	}
	if c.Enabled && c.ClientSecretSealed == "" {
		return veritrail.Errorf(veritrail.EInvalid, "client_secret: give the client secret registered at the provider")
	}
	if err := s.store.PutSSOConfig(r.Context(), c); err != nil {
		return err
	}
	details := map[string]any{"after": s.describeSSO(r, p.OrgName, c), "client_secret_changed": in.ClientSecret != nil}
	if before != nil {
		details["before"] = s.describeSSO(r, p.OrgName, before)
	}
	if err := s.audit(r.Context(), r, p, "settings.sso_changed", &veritrail.Target{Type: "sso", ID: p.OrgName}, details); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.describeSSO(r, p.OrgName, c))
	return nil
}

// localPath checks that a return address is a path of this server, never
// another site (no scheme, no host, not "//host" nor "/\host" that
// browsers read as one), so sign-in cannot be an open redirect.
func localPath(v string) (string, error) {
	if v == "" {
		return "/", nil
	}
	u, err := url.Parse(v)
	if err != nil || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.HasPrefix(v, "/\\") ||
		u.Scheme != "" || u.Host != "" || u.User != nil || strings.ContainsAny(v, "\\\r\n\t") {
		return "", veritrail.Errorf(veritrail.EInvalid, "parameter return_to: must be a path of this server such as /settings, got %q", truncate(v, 200))
	}
	return v, nil
}

// ssoClient returns org's relying-party registration, its secret opened.
func (s *Server) ssoClient(ctx context.Context, r *http.Request, org int64) (*veritrail.SSOConfig, *sso.Client, error) {
	c, err := s.store.SSOConfig(ctx, org)
	if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && !c.Enabled) {
		return nil, nil, veritrail.Errorf(veritrail.ENotFound, "single sign-on is not set up for this organization")
	}
	if err != nil {
		return nil, nil, err
	}
	secret, err := s.cfg.SealKey.Open(c.ClientSecretSealed, veritrail.SSOSecretContext(org))
	if err != nil {
		return nil, nil, withCause(fmt.Errorf("sso client secret of org %d: %w", org, err),
			veritrail.Errorf(veritrail.EUnavailable, "single sign-on is misconfigured on this server; ask an administrator"))
	}
	return c, &sso.Client{Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: string(secret),
		RedirectURL: s.baseURL(r) + "/auth/oidc/callback", GroupsClaim: c.GroupsClaim}, nil
}

// ssoLogin answers GET /auth/oidc/{org}/login?return_to=/path: it sends
// the browser to the organization's provider.
func (s *Server) ssoLogin(w http.ResponseWriter, r *http.Request) error {
	if err := s.ssoReady(); err != nil {
		return err
	}
	for name := range r.URL.Query() {
		if name != "return_to" {
			return veritrail.Errorf(veritrail.EInvalid, "unknown parameter %q; only return_to", name)
		}
	}
	returnTo, err := localPath(r.URL.Query().Get("return_to"))
	if err != nil {
		return err
	}
	org, err := s.store.OrgByName(r.Context(), r.PathValue("org"))
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return veritrail.Errorf(veritrail.ENotFound, "single sign-on is not set up for this organization")
	}
	if err != nil {
		return err
	}
	_, client, err := s.ssoClient(r.Context(), r, org.ID)
	if err != nil {
		return err
	}
	authURL, f, err := s.cfg.SSO.Begin(r.Context(), client, org.ID, returnTo)
	if err != nil {
		return withCause(err, veritrail.Errorf(veritrail.EUnavailable, "the organization's OpenID provider cannot be reached; try again later"))
	}
	http.SetCookie(w, &http.Cookie{Name: ssoFlowCookie, Value: s.cfg.SealKey.Seal(f.Marshal(), ssoFlowContext), Path: "/auth/oidc/",
		MaxAge: int(sso.FlowTTL.Seconds()), HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// errSignIn is what a refused single sign-on answers: the same words
// whatever the reason (recorded in the organization's log instead).
var errSignIn = veritrail.Errorf(veritrail.EUnauthorized, "single sign-on did not succeed; start again from the sign-in page, or ask an administrator")

// ssoCallback answers GET /auth/oidc/callback, the provider's redirect back.
func (s *Server) ssoCallback(w http.ResponseWriter, r *http.Request) error {
	if err := s.ssoReady(); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	ck, err := r.Cookie(ssoFlowCookie)
	if err != nil {
		return veritrail.Errorf(veritrail.EUnauthorized, "this sign-in was not started in this browser (or took too long); start again from the sign-in page")
	}
	// The flow is used once, whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: ssoFlowCookie, Value: "", Path: "/auth/oidc/", MaxAge: -1, HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode})
	plain, err := s.cfg.SealKey.Open(ck.Value, ssoFlowContext)
	if err != nil {
		return veritrail.Errorf(veritrail.EUnauthorized, "this sign-in was not started in this browser; start again from the sign-in page")
	}
	f, err := sso.UnmarshalFlow(plain)
	if err != nil {
		return veritrail.Errorf(veritrail.EUnauthorized, "this sign-in was not started in this browser; start again from the sign-in page")
	}
	ctx := r.Context()
	org, err := s.store.OrgByID(ctx, f.Org)
	if err != nil {
		return err
	}
	fail := func(reason string, actor veritrail.Actor, cause error) error {
		s.recordSignInFailure(r, org, actor, reason)
		if cause != nil {
			return withCause(fmt.Errorf("sso sign-in to %s refused (%s): %w", org.Name, reason, cause), errSignIn)
		}
		return errSignIn
	}
	anon := veritrail.Actor{Type: veritrail.ActorUser}
	cfg, client, err := s.ssoClient(ctx, r, org.ID)
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return fail("single sign-on not set up", anon, nil)
	}
	if err != nil {
		// A store outage or an unreadable secret is the server's fault,
		// not a refused sign-in: answered as such, not recorded as one.
		return err
	}
	q := r.URL.Query()
	id, err := s.cfg.SSO.Finish(ctx, client, f, q.Get("state"), q.Get("code"), q.Get("error"))
	switch {
	case errors.Is(err, sso.ErrState):
		return fail("state mismatch", anon, nil)
	case errors.Is(err, sso.ErrNonce):
		return fail("nonce mismatch", anon, nil)
	case errors.Is(err, sso.ErrExpired):
		return fail("sign-in expired", anon, nil)
	case errors.Is(err, sso.ErrDenied):
		return fail("refused by the provider or its token", anon, err)
	case err != nil:
		return fail("provider unreachable", anon, err)
	}
	who := veritrail.Actor{Type: veritrail.ActorUser, ID: id.Subject, Email: id.Email, Name: id.Name}
	if id.Email == "" || !id.EmailVerified {
		return fail("e-mail address missing or not verified", who, nil)
	}
	if !cfg.EmailAllowed(id.Email) {
		return fail("e-mail domain not allowed", who, nil)
	}
	role, ok := cfg.RoleFor(id.Groups)
	if !ok {
		return fail("no role for the person's groups", who, nil)
	}
	u, err := s.ssoUser(ctx, cfg, id, role)
	if err != nil {
		if veritrail.ErrorCode(err) == veritrail.ENotFound || veritrail.ErrorCode(err) == veritrail.EConflict || veritrail.ErrorCode(err) == veritrail.EForbidden {
			return fail(veritrail.ErrorMessage(err), who, nil)
		}
		return err
	}
	p := &veritrail.Principal{OrgID: org.ID, OrgName: org.Name, Role: u.Role, Scopes: veritrail.EffectiveScopes(u.Role, nil)}
	if !p.Can(veritrail.ScopeAuditLogsRead) {
		return fail("role cannot use the console", who, nil)
	}
	return s.ssoSignIn(w, r, p, u, f.ReturnTo)
}

// ssoUser finds, links or creates the user an identity signs in as.
func (s *Server) ssoUser(ctx context.Context, cfg *veritrail.SSOConfig, id *sso.Identity, role string) (*veritrail.User, error) {
	u, err := s.store.UserByOIDC(ctx, cfg.OrgID, id.Issuer, id.Subject)
	if err == nil {
		if u.DisabledAt != nil {
			return nil, veritrail.Errorf(veritrail.EForbidden, "user disabled")
		}
		return u, nil
	}
	if veritrail.ErrorCode(err) != veritrail.ENotFound {
		return nil, err
	}
	// A user created beforehand (invited) is linked by address, once.
	users, err := s.store.UsersByEmail(ctx, id.Email)
	if err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(users, func(u *veritrail.User) bool { return u.OrgID == cfg.OrgID }); i >= 0 {
		u = users[i]
		if u.DisabledAt != nil {
			return nil, veritrail.Errorf(veritrail.EForbidden, "user disabled")
		}
		if err := s.store.LinkUserOIDC(ctx, cfg.OrgID, u.ID, id.Issuer, id.Subject); err != nil {
			return nil, err
		}
		u.OIDCIssuer, u.OIDCSubject = id.Issuer, id.Subject
		return u, nil
	}
	if !cfg.CreateUsers {
		return nil, veritrail.Errorf(veritrail.ENotFound, "no user with this address, and the organization does not create users at sign-in")
	}
	u = &veritrail.User{ID: veritrail.NewID("usr"), OrgID: cfg.OrgID, Email: id.Email, Name: id.Name, Role: role,
		OIDCIssuer: id.Issuer, OIDCSubject: id.Subject, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// recordSignInFailure records a refused sign-in in the organization's log
// (auth.login, outcome failure, and why). A failure to record is logged:
// the sign-in is refused anyway.
func (s *Server) recordSignInFailure(r *http.Request, org *veritrail.Org, who veritrail.Actor, reason string) {
	e, err := veritrail.NewRecord(s.now(), "auth.login", who, nil, veritrail.OutcomeFailure, map[string]any{"method": "oidc", "reason": reason})
	if err != nil {
		return
	}
	e.Context = requestContext(r)
	if _, err := s.store.Append(context.WithoutCancel(r.Context()), org.ID, []*veritrail.Event{e}); err != nil {
		s.log.Error("failed sign-in not recorded", slog.Any("err", err))
	}
}

// landingPage answers a page that moves the browser to path (same origin)
// by itself: after the provider's cross-site redirect, a navigation this
// page starts is same-site again, so the console's SameSite=Strict session
// cookie goes with it.
func landingPage(w http.ResponseWriter, path string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	p := html.EscapeString(path)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=%s"><title>Signed in</title></head>`+
		`<body><main><p>Signed in. <a href="%s">Continue to the console</a>.</p></main></body></html>`, p, p)
}
