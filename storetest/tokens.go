package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// testTokens checks TokenStore: a token is found by its lookup key whatever
// its organization (the token decides it), holds only the hash, lists
// newest first, and is revoked only through its own organization.
func testTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	expires := t0.Add(90 * 24 * time.Hour)
	secret := veritrail.NewTokenSecret()
	lookup, hash := veritrail.HashToken(secret)
	tok := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: a.ID, Name: "siem", Role: veritrail.RoleAuditor,
		Scopes: []string{veritrail.ScopeAuditLogsRead}, Lookup: lookup, Hash: hash, CreatedAt: t0, ExpiresAt: &expires}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenByLookup(ctx, lookup)
	if err != nil || got.ID != tok.ID || got.OrgID != a.ID || got.Name != "siem" || !veritrail.TokenMatches(secret, got.Hash) ||
		!slices.Equal(got.Scopes, tok.Scopes) || got.Role != veritrail.RoleAuditor || !got.CreatedAt.Equal(t0) ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(expires) || got.RevokedAt != nil || got.LastUsedAt != nil {
		t.Fatalf("TokenByLookup: %+v %v", got, err)
	}
	if veritrail.TokenMatches(secret+"x", got.Hash) {
		t.Fatal("a different secret matched")
	}
	if _, err := s.TokenByLookup(ctx, "0000000000000000"); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("unknown lookup: %v, want not_found", err)
	}

	// A second token: newer, no scopes (the role's), never expires.
	secret2 := veritrail.NewTokenSecret()
	lookup2, hash2 := veritrail.HashToken(secret2)
	tok2 := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: a.ID, Name: "ingest", Role: veritrail.RoleIngest,
		Lookup: lookup2, Hash: hash2, CreatedAt: t0.Add(time.Minute)}
	if err := s.CreateToken(ctx, tok2); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TokenByLookup(ctx, lookup2); err != nil || len(got.Scopes) != 0 || got.ExpiresAt != nil {
		t.Errorf("token without scopes or expiry read back as %+v %v", got, err)
	}
	// A lookup key names one token: a second token under it is refused.
	clash := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: b.ID, Role: veritrail.RoleAuditor, Lookup: lookup, Hash: hash, CreatedAt: t0}
	if err := s.CreateToken(ctx, clash); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Errorf("second token with a taken lookup: %v, want conflict", err)
	}
	secret3 := veritrail.NewTokenSecret()
	lookup3, hash3 := veritrail.HashToken(secret3)
	sameID := &veritrail.Token{ID: tok.ID, OrgID: a.ID, Role: veritrail.RoleAuditor, Lookup: lookup3, Hash: hash3, CreatedAt: t0}
	if err := s.CreateToken(ctx, sameID); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Errorf("second token with a taken id: %v, want conflict", err)
	}
	lost := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: a.ID + b.ID + 1000, Role: veritrail.RoleAuditor, Lookup: lookup3, Hash: hash3, CreatedAt: t0}
	if err := s.CreateToken(ctx, lost); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("token of a missing organization: %v, want not_found", err)
	}

	if list, err := s.ListTokens(ctx, a.ID); err != nil || len(list) != 2 || list[0].ID != tok2.ID || list[1].ID != tok.ID {
		t.Fatalf("ListTokens(acme) not the two tokens newest first: %v %v", list, err)
	}
	if list, _ := s.ListTokens(ctx, b.ID); len(list) != 0 {
		t.Fatalf("org globex sees acme's tokens: %v", list)
	}

	// Revocation: only through the token's organization; the first time stays.
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
	if err := s.RevokeToken(ctx, b.ID, tok.ID, t1); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("revoke from another org: %v, want not_found", err)
	}
	if got, _ := s.TokenByLookup(ctx, lookup); got.RevokedAt != nil {
		t.Fatal("a refused revocation revoked the token")
	}
	if err := s.RevokeToken(ctx, a.ID, "tok_missing", t1); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Errorf("revoke a missing token: %v, want not_found", err)
	}
	gen0, err := s.RevocationGeneration(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, a.ID, tok.ID, t1); err != nil {
		t.Fatal(err)
	}
	// Token caches trust what they hold while the generation stays.
	if gen1, err := s.RevocationGeneration(ctx, a.ID); err != nil || gen1 == gen0 {
		t.Fatalf("revocation generation %d before a revocation and %d (%v) after: it must change", gen0, gen1, err)
	}
	if err := s.RevokeToken(ctx, a.ID, tok.ID, t2); err != nil {
		t.Errorf("revoke a revoked token: %v", err)
	}
	if got, _ := s.TokenByLookup(ctx, lookup); got.RevokedAt == nil || !got.RevokedAt.Equal(t1) {
		t.Fatalf("revoked_at %v, want %v (the first time)", got.RevokedAt, t1)
	}
	if got, _ := s.TokenByLookup(ctx, lookup2); got.RevokedAt != nil {
		t.Error("revoking one token revoked another")
	}

	// Last-used times: batched by callers (several nodes), so a late batch
	// with an older time never moves one back; unknown ids are ignored.
	used := t0.Add(3 * time.Hour)
	if err := s.TouchTokens(ctx, map[string]time.Time{tok.ID: used, tok2.ID: t1, "tok_missing": used}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchTokens(ctx, map[string]time.Time{tok.ID: t1}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TokenByLookup(ctx, lookup); got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("last used %v, want %v", got.LastUsedAt, used)
	}
	if got, _ := s.TokenByLookup(ctx, lookup2); got.LastUsedAt == nil || !got.LastUsedAt.Equal(t1) {
		t.Errorf("second token last used %v, want %v", got.LastUsedAt, t1)
	}
	if err := s.TouchTokens(ctx, nil); err != nil {
		t.Errorf("TouchTokens with nothing: %v", err)
	}
}
