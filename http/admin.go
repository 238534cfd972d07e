package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Access administration: tokens, users and teams of the caller's
// organization. Every change is recorded as an audit event.

// decodeBody reads a small JSON request body strictly.
func decodeBody(r *http.Request, v any) error {
	const max = 64 << 10
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return veritrail.Errorf(veritrail.EInvalid, "request body: %v", err)
	}
	if len(b) > max {
		return veritrail.Errorf(veritrail.ETooLarge, "request body: larger than %d bytes", max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		if dec.More() {
			return veritrail.Errorf(veritrail.EInvalidJSON, "request body: one JSON object expected, more follows at byte %d", dec.InputOffset())
		}
		return nil
	case errors.Is(err, io.EOF):
		return veritrail.Errorf(veritrail.EInvalidJSON, "request body: empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return veritrail.Errorf(veritrail.EInvalidJSON, "request body: the JSON ends early, at byte %d", len(b))
	case errors.As(err, &syntax):
		return veritrail.Errorf(veritrail.EInvalidJSON, "request body: not valid JSON at byte %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		return veritrail.Errorf(veritrail.EInvalid, "request body: field %s: %s expected, got %s (byte %d)", typ.Field, typ.Type, typ.Value, typ.Offset)
	}
	return veritrail.Errorf(veritrail.EInvalid, "request body: %v", strings.TrimPrefix(err.Error(), "json: "))
}

type tokenJSON struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Role       string   `json:"role"`
	Scopes     []string `json:"scopes"`
	CreatedAt  string   `json:"created_at"`
	ExpiresAt  *string  `json:"expires_at"`
	LastUsedAt *string  `json:"last_used_at"`
	RevokedAt  *string  `json:"revoked_at"`
	Token      string   `json:"token,omitempty"` // only when created
}

func timeString(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func toTokenJSON(t *veritrail.Token) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, Role: t.Role, Scopes: veritrail.EffectiveScopes(t.Role, t.Scopes),
		CreatedAt: t.CreatedAt.UTC().Format(time.RFC3339), ExpiresAt: timeString(t.ExpiresAt),
		LastUsedAt: timeString(t.LastUsedAt), RevokedAt: timeString(t.RevokedAt)}
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	var in struct {
		Name      string   `json:"name"`
		Role      string   `json:"role"`
		Scopes    []string `json:"scopes"`
		ExpiresIn string   `json:"expires_in"` // Go duration, e.g. 720h
	}
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	// The command line's token create refuses with the same words.
	expires, err := (&veritrail.TokenRequest{Name: in.Name, Role: in.Role, Scopes: in.Scopes, ExpiresIn: in.ExpiresIn}).Check(s.now())
	if err != nil {
		writeError(w, err)
		return
	}
	if !veritrail.CanGrant(p.Role, in.Role) {
		writeError(w, veritrail.Errorf(veritrail.EForbidden, "a %s may not create %s tokens", p.Role, in.Role))
		return
	}
	secret := veritrail.NewTokenSecret()
	lookup, hash := veritrail.HashToken(secret)
	t := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: p.OrgID, Name: in.Name, Role: in.Role, Scopes: in.Scopes,
		Lookup: lookup, Hash: hash, ExpiresAt: expires, CreatedAt: s.now().UTC()}
	if err := s.store.CreateToken(r.Context(), t); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.token_created", &veritrail.Target{Type: "api_key", ID: t.ID, Name: t.Name},
		map[string]any{"role": t.Role, "scopes": veritrail.EffectiveScopes(t.Role, t.Scopes), "expires_at": timeString(expires)}); err != nil {
		writeError(w, err)
		return
	}
	out := toTokenJSON(t)
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	toks, err := s.store.ListTokens(r.Context(), p.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]tokenJSON, len(toks))
	for i, t := range toks {
		out[i] = toTokenJSON(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	id := r.PathValue("id")
	toks, err := s.store.ListTokens(r.Context(), p.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(toks, func(t *veritrail.Token) bool { return t.ID == id })
	if i < 0 {
		writeError(w, veritrail.Errorf(veritrail.ENotFound, "token %q not found", id))
		return
	}
	if id != p.TokenID && !veritrail.CanGrant(p.Role, toks[i].Role) {
		writeError(w, veritrail.Errorf(veritrail.EForbidden, "a %s may not revoke %s tokens", p.Role, toks[i].Role))
		return
	}
	if err := s.store.RevokeToken(r.Context(), p.OrgID, id, s.now()); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.token_revoked", &veritrail.Target{Type: "api_key", ID: id, Name: toks[i].Name},
		map[string]any{"role": toks[i].Role}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type userJSON struct {
	ID          string  `json:"id"`
	Email       string  `json:"email"`
	Name        string  `json:"name"`
	Role        string  `json:"role"`
	OIDCSubject string  `json:"oidc_subject,omitempty"`
	OIDCIssuer  string  `json:"oidc_issuer,omitempty"`
	CreatedAt   string  `json:"created_at"`
	DisabledAt  *string `json:"disabled_at"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	var in struct {
		Email       string `json:"email"`
		Name        string `json:"name"`
		Role        string `json:"role"`
		OIDCSubject string `json:"oidc_subject"`
		OIDCIssuer  string `json:"oidc_issuer"`
	}
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	if in.Email == "" || !strings.Contains(in.Email, "@") || len(in.Email) > 320 {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "field email: an e-mail address is required"))
		return
	}
	if !veritrail.ValidRole(in.Role) {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "field role: must be one of %s", strings.Join(veritrail.Roles, ", ")))
		return
	}
	if !veritrail.CanGrant(p.Role, in.Role) {
		writeError(w, veritrail.Errorf(veritrail.EForbidden, "a %s may not create %s users", p.Role, in.Role))
		return
	}
	if (in.OIDCSubject == "") != (in.OIDCIssuer == "") {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "fields oidc_subject and oidc_issuer go together"))
		return
	}
	u := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: p.OrgID, Email: strings.ToLower(in.Email), Name: in.Name, Role: in.Role,
		OIDCSubject: in.OIDCSubject, OIDCIssuer: in.OIDCIssuer, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(r.Context(), u); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.user_created", &veritrail.Target{Type: "user", ID: u.ID, Name: u.Email},
		map[string]any{"role": u.Role}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
}

func toUserJSON(u *veritrail.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, OIDCSubject: u.OIDCSubject, OIDCIssuer: u.OIDCIssuer,
		CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339), DisabledAt: timeString(u.DisabledAt)}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	us, err := s.store.ListUsers(r.Context(), p.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]userJSON, len(us))
	for i, u := range us {
		out[i] = toUserJSON(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	id := r.PathValue("id")
	us, err := s.store.ListUsers(r.Context(), p.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(us, func(u *veritrail.User) bool { return u.ID == id })
	if i < 0 {
		writeError(w, veritrail.Errorf(veritrail.ENotFound, "user %q not found", id))
		return
	}
	if !veritrail.CanGrant(p.Role, us[i].Role) {
		writeError(w, veritrail.Errorf(veritrail.EForbidden, "a %s may not disable %s users", p.Role, us[i].Role))
		return
	}
	if err := s.store.DisableUser(r.Context(), p.OrgID, id, s.now()); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.user_disabled", &veritrail.Target{Type: "user", ID: id, Name: us[i].Email}, nil); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type teamJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &in); err != nil {
		writeError(w, err)
		return
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 200 {
		writeError(w, veritrail.Errorf(veritrail.EInvalid, "field name: 1 to 200 bytes"))
		return
	}
	t := &veritrail.Team{ID: veritrail.NewID("team"), OrgID: p.OrgID, Name: in.Name, CreatedAt: s.now().UTC()}
	if err := s.store.CreateTeam(r.Context(), t); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.team_created", &veritrail.Target{Type: "team", ID: t.ID, Name: t.Name}, nil); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, teamJSON{t.ID, t.Name, t.CreatedAt.Format(time.RFC3339)})
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	ts, err := s.store.ListTeams(r.Context(), p.OrgID)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]teamJSON, len(ts))
	for i, t := range ts {
		out[i] = teamJSON{t.ID, t.Name, t.CreatedAt.UTC().Format(time.RFC3339)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (s *Server) deleteTeam(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	id := r.PathValue("id")
	if err := s.store.DeleteTeam(r.Context(), p.OrgID, id, s.now()); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.audit(r.Context(), r, p, "audit.team_deleted", &veritrail.Target{Type: "team", ID: id}, nil); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
