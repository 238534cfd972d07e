package http

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/mail"
)

// Console sessions: a person signs in by pasting an API token or through a
// one-time link e-mailed to a user of the organization, and gets a cookie
// holding a session secret. The cookie is HttpOnly (scripts cannot read
// it), SameSite=Strict (no other site's page can send it) and Secure behind
// HTTPS; the store keeps only its hash. Writes made with the cookie also
// need the session's CSRF token in a header and a same-origin Origin, so a
// page on a sibling host cannot write either. Every sign-in makes a new
// session and ends the one the browser had: no fixation.

// Session defaults (Config overrides them).
const (
	DefaultSessionIdle    = 30 * time.Minute
	DefaultSessionMaxAge  = 12 * time.Hour
	DefaultSignInLinkTTL  = 15 * time.Minute
	sessionTouchEvery     = time.Minute
	csrfHeader            = "X-CSRF-Token"
	signInMailsPerMinute  = 3 // per address: enough for a retry, too few to spam
	maxSignInRequestBytes = 4 << 10
)

func (s *Server) sessionIdle() time.Duration {
	if s.cfg.SessionIdle > 0 {
		return s.cfg.SessionIdle
	}
	return DefaultSessionIdle
}

func (s *Server) sessionMaxAge() time.Duration {
	if s.cfg.SessionMaxAge > 0 {
		return s.cfg.SessionMaxAge
	}
	return DefaultSessionMaxAge
}

func (s *Server) signInLinkTTL() time.Duration {
	if s.cfg.SignInLinkTTL > 0 {
		return s.cfg.SignInLinkTTL
	}
	return DefaultSignInLinkTTL
}

// secureCookies reports whether the console is served over HTTPS (by its
// public URL), where the cookie is Secure and takes the __Host- prefix
// (no Domain, Path /, never sent over plain HTTP).
func (s *Server) secureCookies() bool {
	return strings.HasPrefix(strings.ToLower(s.cfg.PublicURL), "https://")
}

func (s *Server) cookieName() string {
	if s.secureCookies() {
		return "__Host-vt_session"
	}
	return "vt_session"
}

// sessionSecret is the session cookie of r, or "".
func (s *Server) sessionSecret(r *http.Request) string {
	c, err := r.Cookie(s.cookieName())
	if err != nil || !strings.HasPrefix(c.Value, veritrail.SessionPrefix) {
		return ""
	}
	return c.Value
}

func (s *Server) setSessionCookie(w http.ResponseWriter, secret string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: secret, Path: "/", MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secureCookies(), SameSite: http.SameSiteStrictMode,
	})
}

// csrfToken is the value writes with the session's cookie must carry in
// X-CSRF-Token: derived from the secret, so nothing more is stored, and
// readable only by the console's own scripts (GET /api/v1/session).
func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("veritrail csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// safeMethod reports whether a request only reads.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin refuses a request that a browser says comes from another
// site: an Origin other than this server's, or Sec-Fetch-Site cross-site.
// Requests without either (command-line clients) pass: they carry no
// ambient cookie to abuse.
func (s *Server) sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return veritrail.Errorf(veritrail.EForbidden, "cross-site request refused (Sec-Fetch-Site: %s)", site)
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	// The public URL's origin, or the one the request was sent to (the
	// console opened as localhost rather than 127.0.0.1): a browser never
	// lets a page of another site claim either.
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if !strings.EqualFold(origin, publicOrigin(s.cfg.PublicURL)) && !strings.EqualFold(origin, scheme+"://"+r.Host) {
		return veritrail.Errorf(veritrail.EForbidden, "cross-site request refused: Origin %s is not this server", origin)
	}
	return nil
}

// publicOrigin is scheme://host[:port] of a public URL, or "".
func publicOrigin(public string) string {
	u, err := url.Parse(public)
	if err != nil || public == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

var errSessionEnded = veritrail.Errorf(veritrail.EUnauthorized, "your console session has ended; sign in again")

// sessionPrincipal resolves a session secret (the cookie of r) to the
// person it acts for. Role and scopes come from the user or token now, so
// a disabled user, a revoked token or a changed role counts at once. Writes
// must carry the CSRF token and come from this origin.
func (s *Server) sessionPrincipal(r *http.Request, secret string) (*veritrail.Principal, error) {
	ctx := r.Context()
	lookup, _ := veritrail.HashToken(secret)
	ss, err := s.store.SessionByLookup(ctx, lookup)
	if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && !veritrail.TokenMatches(secret, ss.Hash)) {
		return nil, errSessionEnded
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	end := func() (*veritrail.Principal, error) {
		if err := s.store.DeleteSession(ctx, ss.OrgID, ss.ID); err != nil {
			return nil, err
		}
		return nil, errSessionEnded
	}
	if !ss.ActiveAt(now, s.sessionIdle()) {
		return end()
	}
	if !safeMethod(r.Method) {
		if err := s.sameOrigin(r); err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(csrfToken(secret))) != 1 {
			return nil, veritrail.Errorf(veritrail.EForbidden, "this change needs the %s header of your console session", csrfHeader)
		}
	}
	org, err := s.store.OrgByID(ctx, ss.OrgID)
	if err != nil {
		if veritrail.ErrorCode(err) == veritrail.ENotFound {
			return end()
		}
		return nil, err
	}
	p := &veritrail.Principal{OrgID: org.ID, OrgName: org.Name, SessionID: ss.ID}
	switch {
	case ss.UserID != "":
		u, err := s.store.UserByID(ctx, ss.OrgID, ss.UserID)
		if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && u.DisabledAt != nil) {
			return end()
		}
		if err != nil {
			return nil, err
		}
		p.User, p.Role, p.Scopes = u, u.Role, veritrail.EffectiveScopes(u.Role, nil)
	case ss.TokenID != "":
		t, err := s.store.TokenByID(ctx, ss.OrgID, ss.TokenID)
		if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && !t.ActiveAt(now)) {
			return end()
		}
		if err != nil {
			return nil, err
		}
		p.TokenID, p.TokenName, p.Role, p.Scopes = t.ID, t.Name, t.Role, veritrail.EffectiveScopes(t.Role, t.Scopes)
	default:
		return end()
	}
	if now.Sub(ss.LastSeenAt) >= sessionTouchEvery {
		if err := s.store.TouchSession(ctx, ss.OrgID, ss.ID, now); err != nil {
			s.log.Warn("could not record session activity", slog.Any("err", err))
		}
	}
	return p, nil
}

// rateKey is whose bucket a request draws from: its token's, or for a
// user's session the session's.
func rateKey(p *veritrail.Principal) string {
	if p.TokenID != "" {
		return p.TokenID
	}
	return p.SessionID
}

// sessionJSON is what GET /api/v1/session answers.
type sessionJSON struct {
	Session struct {
		ID                 string    `json:"id"`
		Method             string    `json:"method"`
		CreatedAt          time.Time `json:"created_at"`
		ExpiresAt          time.Time `json:"expires_at"`
		IdleTimeoutSeconds int64     `json:"idle_timeout_seconds"`
	} `json:"session"`
	Organization map[string]string `json:"organization"`
	User         *userRef          `json:"user"`
	Token        *tokenRef         `json:"token"`
	Role         string            `json:"role"`
	Scopes       []string          `json:"scopes"`
	CSRFToken    string            `json:"csrf_token"`
}

type userRef struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name,omitempty"`
}

type tokenRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) describeSession(ss *veritrail.Session, p *veritrail.Principal, secret string) *sessionJSON {
	out := &sessionJSON{Organization: map[string]string{"id": p.OrgName, "name": p.OrgName}, Role: p.Role, Scopes: p.Scopes, CSRFToken: csrfToken(secret)}
	out.Session.ID, out.Session.Method = ss.ID, ss.Method
	out.Session.CreatedAt, out.Session.ExpiresAt = ss.CreatedAt, ss.ExpiresAt
	out.Session.IdleTimeoutSeconds = int64(s.sessionIdle() / time.Second)
	if p.User != nil {
		out.User = &userRef{p.User.ID, p.User.Email, p.User.Name}
	}
	if p.TokenID != "" {
		out.Token = &tokenRef{p.TokenID, p.TokenName}
	}
	if out.Scopes == nil {
		out.Scopes = []string{}
	}
	return out
}

// getSessionOptions answers GET /api/v1/session/options: how one may sign
// in here (the sign-in page shows the e-mail form only when it works).
func (s *Server) getSessionOptions(w http.ResponseWriter, r *http.Request) error {
	methods := []string{veritrail.SignInToken}
	if s.emailSignIn() {
		methods = append(methods, veritrail.SignInEmail)
	}
	if s.ssoReady() == nil {
		methods = append(methods, veritrail.SignInOIDC) // per organization: /auth/oidc/{org}/login
	}
	writeJSON(w, http.StatusOK, map[string]any{"methods": methods})
	return nil
}

// emailSignIn reports whether sign-in links can be sent: an SMTP server,
// and a public URL to build them on.
func (s *Server) emailSignIn() bool { return s.cfg.Mail.Enabled() && s.cfg.PublicURL != "" }

// decodeSignIn reads a small JSON sign-in body into v. Only JSON is taken:
// a cross-site HTML form cannot send it without the browser asking first.
func decodeSignIn(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return veritrail.Errorf(veritrail.EUnsupported, "send the sign-in as JSON (Content-Type: application/json)")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxSignInRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return veritrail.Errorf(veritrail.EInvalidJSON, "the sign-in body is not the JSON expected: %v", err)
	}
	return nil
}

// signIn opens a new session for p, ends the one r carried (a new id at
// every sign-in: no fixation), sets the cookie, records auth.login and
// answers the session.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, p *veritrail.Principal, method string) error {
	ss, secret, err := s.openSession(w, r, p, method)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.describeSession(ss, p, secret))
	return nil
}

// openSession is signIn but the answer: the session made, the one r
// carried ended, the cookie set and auth.login recorded. Single sign-on
// answers with a page of its own (sso.go).
func (s *Server) openSession(w http.ResponseWriter, r *http.Request, p *veritrail.Principal, method string) (*veritrail.Session, string, error) {
	ctx := r.Context()
	now := s.now()
	// Sweep what expired, here rather than on a timer: sign-ins are rare,
	// and every use checks expiry anyway.
	if err := s.store.DeleteExpiredSessions(ctx, now, now.Add(-s.sessionIdle())); err != nil {
		return nil, "", err
	}
	if old := s.sessionSecret(r); old != "" {
		lookup, _ := veritrail.HashToken(old)
		if ss, err := s.store.SessionByLookup(ctx, lookup); err == nil && veritrail.TokenMatches(old, ss.Hash) {
			if err := s.store.DeleteSession(ctx, ss.OrgID, ss.ID); err != nil {
				return nil, "", err
			}
		}
	}
	secret := veritrail.NewSessionSecret(p.OrgID)
	lookup, hash := veritrail.HashToken(secret)
	ss := &veritrail.Session{
		ID: veritrail.NewID("ses"), OrgID: p.OrgID, TokenID: p.TokenID, Method: method,
		Lookup: lookup, Hash: hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.sessionMaxAge()),
	}
	if p.User != nil {
		ss.UserID, ss.Issuer, ss.Subject = p.User.ID, p.User.OIDCIssuer, p.User.OIDCSubject
	}
	if err := s.store.CreateSession(ctx, ss); err != nil {
		return nil, "", err
	}
	p.SessionID = ss.ID
	if err := s.audit(ctx, r, p, "auth.login", nil, map[string]any{"method": method}); err != nil {
		s.store.DeleteSession(context.WithoutCancel(ctx), ss.OrgID, ss.ID)
		return nil, "", err
	}
	s.setSessionCookie(w, secret, s.sessionMaxAge())
	return ss, secret, nil
}

// postSession answers POST /api/v1/session {"token": "vt_…"}: sign-in with
// an API token (the owner's first sign-in, or anyone holding a reader's
// token). The session acts for the token: its role and scopes.
func (s *Server) postSession(w http.ResponseWriter, r *http.Request) error {
	if err := s.sameOrigin(r); err != nil {
		return err
	}
	var in struct {
		Token string `json:"token"`
	}
	if err := decodeSignIn(r, &in); err != nil {
		return err
	}
	in.Token = strings.TrimSpace(in.Token)
	if in.Token == "" {
		return &veritrail.Error{Code: veritrail.EInvalid, Message: `field "token": paste an API token (vt_…)`, Index: -1, Field: "token"}
	}
	p, err := s.tokenPrincipal(r.Context(), in.Token)
	if err != nil {
		return err
	}
	if !p.Can(veritrail.ScopeAuditLogsRead) {
		return veritrail.Errorf(veritrail.EForbidden, "this token (role %s) cannot read the audit log, so it cannot sign in to the console", p.Role)
	}
	return s.signIn(w, r, p, veritrail.SignInToken)
}

// postSessionEmail answers POST /api/v1/session/email {"email"}: it e-mails
// a one-time sign-in link to every enabled user with that address, one per
// organization. The answer is the same whether or not anyone has the
// address, and the mail goes out after it, so neither the words nor the
// time of the answer tell who has an account.
func (s *Server) postSessionEmail(w http.ResponseWriter, r *http.Request) error {
	if err := s.sameOrigin(r); err != nil {
		return err
	}
	var in struct {
		Email string `json:"email"`
	}
	if err := decodeSignIn(r, &in); err != nil {
		return err
	}
	in.Email = strings.ToLower(strings.TrimSpace(in.Email))
	if !mail.ValidAddress(in.Email) {
		return &veritrail.Error{Code: veritrail.EInvalid, Message: `field "email": not an e-mail address such as dana@example.com`, Index: -1, Field: "email"}
	}
	if !s.emailSignIn() {
		return veritrail.Errorf(veritrail.EUnavailable, "e-mail sign-in is not set up on this server (VERITRAIL_SMTP_URL and VERITRAIL_PUBLIC_URL); sign in with an API token")
	}
	if s.signInMails.allow(discardHeaders{}, in.Email) {
		// Links are built on the public URL, never on the request's Host,
		// which whoever asks chooses: a link to their host would hand
		// them the secret.
		base := strings.TrimRight(s.cfg.PublicURL, "/")
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			s.sendSignInLinks(base, in.Email)
		}()
	} else {
		s.log.Warn("sign-in e-mails to one address over the limit; not sent", slog.Int("per_minute", signInMailsPerMinute))
	}
	writeJSON(w, http.StatusAccepted, map[string]any{
		"message": fmt.Sprintf("If %s belongs to a user, a sign-in link is on its way. It works once, within %s.", in.Email, s.signInLinkTTL()),
	})
	return nil
}

// discardHeaders is a ResponseWriter for a rate limiter whose headers are
// not the client's business (they would tell whether a mail was sent).
type discardHeaders struct{}

func (discardHeaders) Header() http.Header         { return http.Header{} }
func (discardHeaders) Write(b []byte) (int, error) { return len(b), nil }
func (discardHeaders) WriteHeader(int)             {}

// sendSignInLinks makes a link per enabled user with the address and mails
// them in one message. Failures are logged, never answered (see above).
func (s *Server) sendSignInLinks(base, email string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	users, err := s.store.UsersByEmail(ctx, email)
	if err != nil {
		s.log.Error("sign-in link: looking up the address", slog.Any("err", err))
		return
	}
	var body strings.Builder
	now := s.now()
	n := 0
	for _, u := range users {
		if u.DisabledAt != nil {
			continue
		}
		org, err := s.store.OrgByID(ctx, u.OrgID)
		if err != nil {
			s.log.Error("sign-in link: organization", slog.Any("err", err))
			continue
		}
		secret := veritrail.NewSessionSecret(u.OrgID)
		lookup, hash := veritrail.HashToken(secret)
		l := &veritrail.SignInLink{OrgID: u.OrgID, UserID: u.ID, Lookup: lookup, Hash: hash, CreatedAt: now, ExpiresAt: now.Add(s.signInLinkTTL())}
		if err := s.store.CreateSignInLink(ctx, l); err != nil {
			s.log.Error("sign-in link: storing it", slog.Any("err", err))
			continue
		}
		// The secret rides in the fragment: it never reaches a server's
		// logs, and a mail scanner fetching the page does not use it up
		// (the page asks the person to confirm).
		fmt.Fprintf(&body, "Organization %s (role %s):\n%s/login/link#%s\n\n", org.Name, u.Role, base, secret)
		n++
	}
	if n == 0 {
		return
	}
	msg := &mail.Message{To: email, Subject: "Sign in to Veritrail",
		Body: fmt.Sprintf("Someone (hopefully you) asked to sign in to the Veritrail console with this address.\n\n%s"+
			"Each link works once, until %s. If you did not ask, ignore this message: nobody can use it without your mailbox.\n",
			body.String(), now.Add(s.signInLinkTTL()).UTC().Format(time.RFC1123))}
	if err := mail.Send(ctx, s.cfg.Mail, msg); err != nil {
		s.log.Error("sign-in e-mail not sent", slog.Any("err", err))
	}
}

// postSessionLink answers POST /api/v1/session/link {"link": "vts_…"}: it
// uses up a one-time link and signs its user in.
func (s *Server) postSessionLink(w http.ResponseWriter, r *http.Request) error {
	if err := s.sameOrigin(r); err != nil {
		return err
	}
	var in struct {
		Link string `json:"link"`
	}
	if err := decodeSignIn(r, &in); err != nil {
		return err
	}
	bad := veritrail.Errorf(veritrail.EUnauthorized, "this sign-in link does not work: it was used already, it expired, or it was cut short; ask for a new one")
	secret := strings.TrimSpace(in.Link)
	if !strings.HasPrefix(secret, veritrail.SessionPrefix) {
		return bad
	}
	ctx := r.Context()
	lookup, _ := veritrail.HashToken(secret)
	l, err := s.store.ConsumeSignInLink(ctx, lookup)
	if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && (!veritrail.TokenMatches(secret, l.Hash) || !s.now().Before(l.ExpiresAt))) {
		return bad
	}
	if err != nil {
		return err
	}
	u, err := s.store.UserByID(ctx, l.OrgID, l.UserID)
	if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && u.DisabledAt != nil) {
		return bad
	}
	if err != nil {
		return err
	}
	org, err := s.store.OrgByID(ctx, l.OrgID)
	if err != nil {
		return err
	}
	p := &veritrail.Principal{OrgID: org.ID, OrgName: org.Name, User: u, Role: u.Role, Scopes: veritrail.EffectiveScopes(u.Role, nil)}
	if !p.Can(veritrail.ScopeAuditLogsRead) {
		return veritrail.Errorf(veritrail.EForbidden, "your role (%s) cannot read the audit log, so it cannot sign in to the console", u.Role)
	}
	return s.signIn(w, r, p, veritrail.SignInEmail)
}

// getSession answers GET /api/v1/session: who is signed in, and the CSRF
// token the console sends with its writes.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	secret := s.sessionSecret(r)
	if p.SessionID == "" || secret == "" {
		return veritrail.Errorf(veritrail.ENotFound, "no console session: this request carries an API token (see GET /api/v1/me)")
	}
	lookup, _ := veritrail.HashToken(secret)
	ss, err := s.store.SessionByLookup(r.Context(), lookup)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.describeSession(ss, p, secret))
	return nil
}

// deleteSession answers DELETE /api/v1/session: sign-out.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	if p.SessionID == "" {
		return veritrail.Errorf(veritrail.EInvalid, "no console session to end: this request carries an API token")
	}
	if err := s.store.DeleteSession(r.Context(), p.OrgID, p.SessionID); err != nil {
		return err
	}
	s.clearSessionCookie(w)
	if err := s.audit(r.Context(), r, p, "auth.logout", nil, nil); err != nil {
		s.log.Error("sign-out not recorded", slog.Any("err", err))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
