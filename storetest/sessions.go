package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

func newSession(org int64, user, token string, now time.Time) (*veritrail.Session, string) {
	secret := veritrail.NewSessionSecret(org)
	lookup, hash := veritrail.HashToken(secret)
	method := veritrail.SignInEmail
	if token != "" {
		method = veritrail.SignInToken
	}
	return &veritrail.Session{
		ID: veritrail.NewID("ses"), OrgID: org, UserID: user, TokenID: token, Method: method,
		Lookup: lookup, Hash: hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(12 * time.Hour),
	}, secret
}

// testLookups covers what the console reads to resolve a session: users
// by id and by e-mail address, and tokens by id.
func testLookups(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	ua := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: a.ID, Email: "Dana@Example.com", Name: "Dana", Role: veritrail.RoleSecurity}
	ub := &veritrail.User{ID: veritrail.NewID("usr"), OrgID: b.ID, Email: "dana@example.com", Name: "Dana B", Role: veritrail.RoleAuditor,
		OIDCIssuer: "https://id.example", OIDCSubject: "248289761001"}
	for _, u := range []*veritrail.User{ua, ub} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.UserByID(ctx, b.ID, ub.ID)
	if err != nil || got.Email != "dana@example.com" || got.Role != veritrail.RoleAuditor || got.OIDCSubject != "248289761001" || got.OIDCIssuer != "https://id.example" || got.DisabledAt != nil {
		t.Fatalf("UserByID: %+v, %v", got, err)
	}
	if _, err := s.UserByID(ctx, a.ID, ub.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("UserByID in another organization: %v, want not_found", err)
	}
	us, err := s.UsersByEmail(ctx, "DANA@example.COM")
	if err != nil || len(us) != 2 || us[0].ID != ua.ID || us[1].ID != ub.ID {
		t.Fatalf("UsersByEmail: %v, %v", us, err)
	}
	if us, err := s.UsersByEmail(ctx, "nobody@example.com"); err != nil || len(us) != 0 {
		t.Fatalf("UsersByEmail of nobody: %v, %v", us, err)
	}
	if err := s.DisableUser(ctx, a.ID, ua.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UserByID(ctx, a.ID, ua.ID); err != nil || got.DisabledAt == nil {
		t.Fatalf("disabled user: %+v, %v", got, err)
	}

	secret := veritrail.NewTokenSecret()
	lookup, hash := veritrail.HashToken(secret)
	tok := &veritrail.Token{ID: veritrail.NewTokenID(), OrgID: a.ID, Name: "console", Role: veritrail.RoleSecurity, Lookup: lookup, Hash: hash}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if got, err := s.TokenByID(ctx, a.ID, tok.ID); err != nil || got.Lookup != lookup || got.Role != veritrail.RoleSecurity || !veritrail.TokenMatches(secret, got.Hash) {
		t.Fatalf("TokenByID: %+v, %v", got, err)
	}
	if _, err := s.TokenByID(ctx, b.ID, tok.ID); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("TokenByID in another organization: %v, want not_found", err)
	}
}

func testSessions(t *testing.T, open Opener) {
	ctx := context.Background()
	s := openStore(t, open)
	a, b := newOrg(t, s, "acme"), newOrg(t, s, "globex")
	now := time.Now().UTC().Truncate(time.Microsecond)

	ss, secret := newSession(a.ID, "usr_1", "", now)
	ss.Method, ss.Issuer, ss.Subject = veritrail.SignInOIDC, "https://id.example", "sub-1"
	if err := s.CreateSession(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, ss); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("same session again: %v, want conflict", err)
	}
	lookup, _ := veritrail.HashToken(secret)
	got, err := s.SessionByLookup(ctx, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != ss.ID || got.OrgID != a.ID || got.UserID != "usr_1" || got.Method != veritrail.SignInOIDC ||
		got.Issuer != "https://id.example" || got.Subject != "sub-1" || !veritrail.TokenMatches(secret, got.Hash) ||
		!got.CreatedAt.Equal(now) || !got.LastSeenAt.Equal(now) || !got.ExpiresAt.Equal(ss.ExpiresAt) {
		t.Fatalf("stored session %+v, want %+v", got, ss)
	}
	if _, err := s.SessionByLookup(ctx, fmt.Sprintf("%d/0000000000000000", a.ID)); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("unknown session: %v, want not_found", err)
	}

	// Activity moves the idle clock forward only.
	later := now.Add(5 * time.Minute)
	if err := s.TouchSession(ctx, a.ID, ss.ID, later); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, a.ID, ss.ID, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.SessionByLookup(ctx, lookup); !got.LastSeenAt.Equal(later) {
		t.Fatalf("last seen %v, want %v", got.LastSeenAt, later)
	}

	// Another organization cannot end it.
	if err := s.DeleteSession(ctx, b.ID, ss.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByLookup(ctx, lookup); err != nil {
		t.Fatalf("session ended through another organization: %v", err)
	}
	if err := s.DeleteSession(ctx, a.ID, ss.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByLookup(ctx, lookup); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("ended session: %v, want not_found", err)
	}
	if err := s.DeleteSession(ctx, a.ID, ss.ID); err != nil {
		t.Fatalf("ending an ended session: %v", err)
	}

	// A user's sessions end together, in that organization only.
	var lookups []string
	for _, org := range []int64{a.ID, a.ID, b.ID} {
		ss, secret := newSession(org, "usr_2", "", now)
		if err := s.CreateSession(ctx, ss); err != nil {
			t.Fatal(err)
		}
		l, _ := veritrail.HashToken(secret)
		lookups = append(lookups, l)
	}
	tok, tokSecret := newSession(a.ID, "", "tok_1", now)
	if err := s.CreateSession(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteUserSessions(ctx, a.ID, "usr_2"); err != nil || n != 2 {
		t.Fatalf("DeleteUserSessions: %d, %v; want 2", n, err)
	}
	if n, err := s.DeleteUserSessions(ctx, a.ID, ""); err != nil || n != 0 {
		t.Fatalf("DeleteUserSessions of no user (token sessions): %d, %v; want 0", n, err)
	}
	for i, l := range lookups {
		_, err := s.SessionByLookup(ctx, l)
		if i < 2 && veritrail.ErrorCode(err) != veritrail.ENotFound || i == 2 && err != nil {
			t.Fatalf("session %d after DeleteUserSessions: %v", i, err)
		}
	}

	// Expired sessions and links are swept: absolutely, or idle.
	old, _ := newSession(a.ID, "usr_3", "", now.Add(-13*time.Hour))
	idle, _ := newSession(a.ID, "usr_4", "", now.Add(-2*time.Hour))
	for _, x := range []*veritrail.Session{old, idle} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteExpiredSessions(ctx, now, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*veritrail.Session{old, idle} {
		if _, err := s.SessionByLookup(ctx, x.Lookup); veritrail.ErrorCode(err) != veritrail.ENotFound {
			t.Fatalf("expired session %s kept: %v", x.UserID, err)
		}
	}
	tokLookup, _ := veritrail.HashToken(tokSecret)
	if _, err := s.SessionByLookup(ctx, tokLookup); err != nil {
		t.Fatalf("live session swept: %v", err)
	}

	// Sign-in links are one-time, even under concurrent use.
	linkSecret := veritrail.NewSessionSecret(a.ID)
	ll, lh := veritrail.HashToken(linkSecret)
	link := &veritrail.SignInLink{OrgID: a.ID, UserID: "usr_1", Lookup: ll, Hash: lh, CreatedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	if err := s.CreateSignInLink(ctx, link); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSignInLink(ctx, link); veritrail.ErrorCode(err) != veritrail.EConflict {
		t.Fatalf("same link again: %v, want conflict", err)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := s.ConsumeSignInLink(ctx, ll)
			switch {
			case err == nil:
				wins.Add(1)
				if l.UserID != "usr_1" || l.OrgID != a.ID || !veritrail.TokenMatches(linkSecret, l.Hash) || !l.ExpiresAt.Equal(link.ExpiresAt) {
					t.Errorf("consumed link %+v", l)
				}
			case veritrail.ErrorCode(err) != veritrail.ENotFound:
				t.Errorf("consume: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d callers consumed one link, want 1", wins.Load())
	}
	expired := &veritrail.SignInLink{OrgID: a.ID, UserID: "usr_1", Lookup: fmt.Sprintf("%d/00112233aabbccdd", a.ID), Hash: lh, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}
	if err := s.CreateSignInLink(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteExpiredSessions(ctx, now, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeSignInLink(ctx, expired.Lookup); veritrail.ErrorCode(err) != veritrail.ENotFound {
		t.Fatalf("expired link kept: %v", err)
	}
}
