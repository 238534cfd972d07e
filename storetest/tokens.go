package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

func testTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	secret := veritrail.NewTokenSecret()
	lookup, hash := veritrail.HashToken(secret)
	tok := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: a.ID, Name: "siem", Role: veritrail.RoleAuditor,
		Scopes: []string{veritrail.ScopeAuditLogsRead}, Lookup: lookup, Hash: hash}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenByLookup(ctx, lookup)
	if err != nil || got.ID != tok.ID || got.OrgID != a.ID || !veritrail.TokenMatches(secret, got.Hash) ||
		!slices.Equal(got.Scopes, tok.Scopes) || got.Role != veritrail.RoleAuditor {
		t.Fatalf("TokenByLookup: %+v %v", got, err)
	}
	if veritrail.TokenMatches(secret+"x", got.Hash) {
		t.Fatal("a different secret matched")
	}
	if list, _ := s.ListTokens(ctx, b.ID); len(list) != 0 {
		t.Fatalf("org globex sees acme's tokens: %v", list)
	}
	if err := s.RevokeToken(ctx, b.ID, tok.ID, time.Now()); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("revoke from another org: %v, want not_found", err)
	}
	if err := s.RevokeToken(ctx, a.ID, tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TokenByLookup(ctx, lookup); got.RevokedAt == nil {
		t.Fatal("revoked token has no revoked_at")
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.TouchTokens(ctx, map[string]time.Time{tok.ID: now}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.TokenByLookup(ctx, lookup); got.LastUsedAt == nil || !got.LastUsedAt.Equal(now) {
		t.Fatalf("last used: %v", got.LastUsedAt)
	}
}
