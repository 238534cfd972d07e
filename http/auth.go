package http

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// missingToken begins the message of a request without a bearer token
// (Miro's error body tells it from an invalid token).
const missingToken = "missing bearer token"

// authenticate resolves the bearer token of a request to a principal. Every
// failure is 401 with a message that says what to do; nothing about other
// tokens or organizations is revealed.
func (s *Server) authenticate(r *http.Request) (*veritrail.Principal, error) {
	h := r.Header.Get("Authorization")
	if secret := s.sessionSecret(r); h == "" && secret != "" {
		return s.sessionPrincipal(r, secret)
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, veritrail.Errorf(veritrail.EUnauthorized, missingToken+": send Authorization: Bearer <token>")
	}
	return s.tokenPrincipal(r.Context(), strings.TrimSpace(secret))
}

// tokenPrincipal resolves a token secret (a bearer token, or one pasted
// into the console's sign-in page) to a principal.
func (s *Server) tokenPrincipal(ctx context.Context, secret string) (*veritrail.Principal, error) {
	lookup, _ := veritrail.HashToken(secret)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	t, err := s.store.TokenByLookup(ctx, lookup)
	if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && !veritrail.TokenMatches(secret, t.Hash)) {
		return nil, veritrail.Errorf(veritrail.EUnauthorized, "unknown token; create one with `veritrail token create`")
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if t.RevokedAt != nil {
		return nil, veritrail.Errorf(veritrail.EUnauthorized, "this token was revoked; ask an admin for a new one")
	}
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return nil, veritrail.Errorf(veritrail.EUnauthorized, "this token expired at %s; ask an admin for a new one", t.ExpiresAt.Format(time.RFC3339))
	}
	org, err := s.store.OrgByID(ctx, t.OrgID)
	if err != nil {
		if veritrail.ErrorCode(err) == veritrail.ENotFound {
			return nil, veritrail.Errorf(veritrail.EUnauthorized, "the token's organization no longer exists")
		}
		return nil, err
	}
	s.usedMu.Lock()
	s.used[t.ID] = now
	s.usedMu.Unlock()
	return &veritrail.Principal{
		OrgID: org.ID, OrgName: org.Name, TokenID: t.ID, TokenName: t.Name, Role: t.Role,
		Scopes: veritrail.EffectiveScopes(t.Role, t.Scopes),
	}, nil
}

// flushTokenUse writes last-used times every few seconds instead of on
// every request, which would put a write on every read.
func (s *Server) flushTokenUse() {
	defer close(s.done)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-s.stop:
			s.flushUsed()
			return
		}
		s.flushUsed()
	}
}

func (s *Server) flushUsed() {
	s.usedMu.Lock()
	used := s.used
	s.used = map[string]time.Time{}
	s.usedMu.Unlock()
	if len(used) == 0 {
		return
	}
	if err := s.store.TouchTokens(context.Background(), used); err != nil {
		s.log.Warn("could not record token use", slog.Any("err", err))
	}
}

func (s *Server) getMe(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{
		"organization": map[string]any{"id": p.OrgName, "name": p.OrgName},
		"token":        map[string]any{"id": p.TokenID, "name": p.TokenName},
		"role":         p.Role,
		"scopes":       p.Scopes,
	})
	return nil
}
