package http

import (
	"net/http"
	"slices"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Access administration: tokens, users and teams of the caller's
// organization. Every change is recorded as an audit event.

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

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in struct {
		Name      string   `json:"name"`
		Role      string   `json:"role"`
		Scopes    []string `json:"scopes"`
		ExpiresIn string   `json:"expires_in"` // Go duration, e.g. 720h
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	// The command line's token create refuses with the same words.
	expires, err := (&veritrail.TokenRequest{Name: in.Name, Role: in.Role, Scopes: in.Scopes, ExpiresIn: in.ExpiresIn}).Check(s.now())
	if err != nil {
		return err
	}
	if !veritrail.CanGrant(p.Role, in.Role) {
		return veritrail.Errorf(veritrail.EForbidden, "the %s role may not create %s tokens", p.Role, in.Role)
	}
	secret := veritrail.NewOrgTokenSecret(p.OrgID)
	lookup, hash := veritrail.HashToken(secret)
	t := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: p.OrgID, Name: in.Name, Role: in.Role, Scopes: in.Scopes,
		Lookup: lookup, Hash: hash, ExpiresAt: expires, CreatedAt: s.now().UTC()}
	if err := s.store.CreateToken(r.Context(), t); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.token_created", &veritrail.Target{Type: "api_key", ID: t.ID, Name: t.Name},
		map[string]any{"role": t.Role, "scopes": veritrail.EffectiveScopes(t.Role, t.Scopes), "expires_at": timeString(expires)}); err != nil {
		return err
	}
	out := toTokenJSON(t)
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	toks, err := s.store.ListTokens(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	out := make([]tokenJSON, len(toks))
	for i, t := range toks {
		out[i] = toTokenJSON(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	id := r.PathValue("id")
	toks, err := s.store.ListTokens(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(toks, func(t *veritrail.Token) bool { return t.ID == id })
	if i < 0 {
		return veritrail.Errorf(veritrail.ENotFound, "token %q not found", id)
	}
	if id != p.TokenID && !veritrail.CanGrant(p.Role, toks[i].Role) {
		return veritrail.Errorf(veritrail.EForbidden, "the %s role may not revoke %s tokens", p.Role, toks[i].Role)
	}
	if err := s.store.RevokeToken(r.Context(), p.OrgID, id, s.now()); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.token_revoked", &veritrail.Target{Type: "api_key", ID: id, Name: toks[i].Name},
		map[string]any{"role": toks[i].Role}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
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

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in struct {
		Email       string `json:"email"`
		Name        string `json:"name"`
		Role        string `json:"role"`
		OIDCSubject string `json:"oidc_subject"`
		OIDCIssuer  string `json:"oidc_issuer"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if in.Email == "" || !strings.Contains(in.Email, "@") || len(in.Email) > 320 {
		return veritrail.Errorf(veritrail.EInvalid, "field email: an e-mail address is required")
	}
	if !veritrail.ValidRole(in.Role) {
		return veritrail.Errorf(veritrail.EInvalid, "field role: must be one of %s", strings.Join(veritrail.Roles, ", "))
	}
	if !veritrail.CanGrant(p.Role, in.Role) {
		return veritrail.Errorf(veritrail.EForbidden, "the %s role may not create %s users", p.Role, in.Role)
	}
	if (in.OIDCSubject == "") != (in.OIDCIssuer == "") {
		return veritrail.Errorf(veritrail.EInvalid, "fields oidc_subject and oidc_issuer go together")
	}
	u := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: p.OrgID, Email: strings.ToLower(in.Email), Name: in.Name, Role: in.Role,
		OIDCSubject: in.OIDCSubject, OIDCIssuer: in.OIDCIssuer, CreatedAt: s.now().UTC()}
	if err := s.store.CreateUser(r.Context(), u); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.user_created", &veritrail.Target{Type: "user", ID: u.ID, Name: u.Email},
		map[string]any{"role": u.Role}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
	return nil
}

func toUserJSON(u *veritrail.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, OIDCSubject: u.OIDCSubject, OIDCIssuer: u.OIDCIssuer,
		CreatedAt: u.CreatedAt.UTC().Format(time.RFC3339), DisabledAt: timeString(u.DisabledAt)}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	us, err := s.store.ListUsers(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	out := make([]userJSON, len(us))
	for i, u := range us {
		out[i] = toUserJSON(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

// setUserRole answers PATCH /api/v1/users/{id} {"role"}: the caller must
// be able to grant both the user's role and the new one.
func (s *Server) setUserRole(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in struct {
		Role string `json:"role"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if !veritrail.ValidRole(in.Role) {
		return veritrail.Errorf(veritrail.EInvalid, "field role: must be one of %s", strings.Join(veritrail.Roles, ", "))
	}
	id := r.PathValue("id")
	u, err := s.store.UserByID(r.Context(), p.OrgID, id)
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return veritrail.Errorf(veritrail.ENotFound, "user %q not found", id)
	}
	if err != nil {
		return err
	}
	if !veritrail.CanGrant(p.Role, u.Role) || !veritrail.CanGrant(p.Role, in.Role) {
		return veritrail.Errorf(veritrail.EForbidden, "the %s role may not change a %s user to %s", p.Role, u.Role, in.Role)
	}
	if err := s.store.SetUserRole(r.Context(), p.OrgID, id, in.Role); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.user_role_changed", &veritrail.Target{Type: "user", ID: id, Name: u.Email},
		map[string]any{"before": u.Role, "after": in.Role}); err != nil {
		return err
	}
	u.Role = in.Role
	writeJSON(w, http.StatusOK, toUserJSON(u))
	return nil
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	id := r.PathValue("id")
	u, err := s.store.UserByID(r.Context(), p.OrgID, id)
	if veritrail.ErrorCode(err) == veritrail.ENotFound {
		return veritrail.Errorf(veritrail.ENotFound, "user %q not found", id)
	}
	if err != nil {
		return err
	}
	if !veritrail.CanGrant(p.Role, u.Role) {
		return veritrail.Errorf(veritrail.EForbidden, "the %s role may not disable %s users", p.Role, u.Role)
	}
	if err := s.store.DisableUser(r.Context(), p.OrgID, id, s.now()); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.user_disabled", &veritrail.Target{Type: "user", ID: id, Name: u.Email}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type teamJSON struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeBody(r, &in); err != nil {
		return err
	}
	if strings.TrimSpace(in.Name) == "" || len(in.Name) > 200 {
		return veritrail.Errorf(veritrail.EInvalid, "field name: 1 to 200 bytes")
	}
	t := &veritrail.Team{ID: veritrail.NewID("team"), OrgID: p.OrgID, Name: in.Name, CreatedAt: s.now().UTC()}
	if err := s.store.CreateTeam(r.Context(), t); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.team_created", &veritrail.Target{Type: "team", ID: t.ID, Name: t.Name}, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, teamJSON{t.ID, t.Name, t.CreatedAt.Format(time.RFC3339)})
	return nil
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	ts, err := s.store.ListTeams(r.Context(), p.OrgID)
	if err != nil {
		return err
	}
	out := make([]teamJSON, len(ts))
	for i, t := range ts {
		out[i] = teamJSON{t.ID, t.Name, t.CreatedAt.UTC().Format(time.RFC3339)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
	return nil
}

func (s *Server) deleteTeam(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	id := r.PathValue("id")
	if err := s.store.DeleteTeam(r.Context(), p.OrgID, id, s.now()); err != nil {
		return err
	}
	if err := s.audit(r.Context(), r, p, "audit.team_deleted", &veritrail.Target{Type: "team", ID: id}, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
