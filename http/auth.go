package http

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
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
	lookup, hash := veritrail.HashToken(secret)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StoreTimeout)
	defer cancel()
	t, org, err := s.tokens.get(ctx, s.store, lookup)
	if veritrail.ErrorCode(err) == veritrail.ENotFound || (err == nil && subtle.ConstantTimeCompare(hash, t.Hash) != 1) {
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
	if org == nil {
		return nil, veritrail.Errorf(veritrail.EUnauthorized, "the token's organization no longer exists")
	}
	s.usedMu.Lock()
	s.used[t.ID] = now
	s.usedMu.Unlock()
	return &veritrail.Principal{
		OrgID: org.ID, OrgName: org.Name, TokenID: t.ID, TokenName: t.Name, Role: t.Role,
		Scopes: veritrail.EffectiveScopes(t.Role, t.Scopes),
	}, nil
}

// tokenCache keeps tokens (and their organizations) read from the store,
// so that a request does not cost two queries. An entry is trusted only
// while its organization's revocation generation is the one it was read
// under: any revocation of one of the organization's tokens, on any node
// or by any process, makes the next request read the token again
// (veritrail.TokenStore.RevocationGeneration). Expiry is checked on every
// request from the cached token. Unknown tokens are not cached, so
// made-up tokens cannot fill it.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]cachedToken // by lookup key
}

type cachedToken struct {
	t   *veritrail.Token
	org *veritrail.Org // nil: the organization no longer exists
	gen uint64         // the organization's revocation generation, read before t
}

// maxCachedTokens bounds the cache; past it, it starts again empty.
const maxCachedTokens = 10000

// get returns the token of lookup and its organization (nil if it is
// gone), from the cache while none of the organization's tokens was
// revoked since it was read.
//
// The rule that keeps it correct: a token is cached only with a
// generation read before the token itself, so a revocation after that
// read changes the generation, and one before it is in the token read.
func (c *tokenCache) get(ctx context.Context, store veritrail.Store, lookup string) (*veritrail.Token, *veritrail.Org, error) {
	c.mu.Lock()
	e, hit := c.m[lookup]
	c.mu.Unlock()
	orgID, named := veritrail.LookupOrg(lookup)
	if hit {
		orgID, named = e.t.OrgID, true
	}
	if !named {
		// A token of the older form, not cached: its organization is
		// known only from the token, read here, and the generation must
		// come before the read that is cached.
		t, err := store.TokenByLookup(ctx, lookup)
		if err != nil {
			return nil, nil, err
		}
		orgID = t.OrgID
	}
	gen, err := store.RevocationGeneration(ctx, orgID)
	if err != nil {
		return nil, nil, err
	}
	if hit && e.gen == gen {
		return e.t, e.org, nil
	}
	t, err := store.TokenByLookup(ctx, lookup)
	if err != nil {
		return nil, nil, err
	}
	org, err := store.OrgByID(ctx, t.OrgID)
	if err != nil && veritrail.ErrorCode(err) != veritrail.ENotFound {
		return nil, nil, err
	}
	if t.OrgID == orgID { // a token in another organization than its key names is not kept
		c.mu.Lock()
		if c.m == nil || len(c.m) >= maxCachedTokens {
			c.m = map[string]cachedToken{}
		}
		c.m[lookup] = cachedToken{t, org, gen}
		c.mu.Unlock()
	}
	return t, org, nil
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
