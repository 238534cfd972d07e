package sso_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/veritrail/veritrail/sso"
	"github.com/veritrail/veritrail/sso/ssotest"
)

const callback = "http://127.0.0.1:9/auth/oidc/callback" // never reached: SignIn stops at it

func setup(t *testing.T) (*sso.RP, *sso.Client, *ssotest.Provider) {
	idp := ssotest.Start(t, []string{callback},
		ssotest.User{ID: "sub-dana", Username: "dana", Password: "pw-dana", Email: "Dana@Example.com", EmailVerified: true, Name: "Dana Scully", Groups: []string{"staff", "secops"}})
	c := &sso.Client{Issuer: idp.Issuer, ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, RedirectURL: callback, GroupsClaim: "groups"}
	return sso.New(http.DefaultClient, nil), c, idp
}

// TestSignIn runs the whole code flow with PKCE against the provider.
func TestSignIn(t *testing.T) {
	rp, c, idp := setup(t)
	ctx := context.Background()
	authURL, f, err := rp.Begin(ctx, c, 7, "/settings")
	if err != nil {
		t.Fatal(err)
	}
	back := idp.SignIn(t, authURL, "dana", "pw-dana")
	q := back.Query()
	if q.Get("state") != f.State || q.Get("code") == "" {
		t.Fatalf("callback %s for state %s", back, f.State)
	}
	// The flow survives its cookie.
	f2, err := sso.UnmarshalFlow(f.Marshal())
	if err != nil || f2.State != f.State || f2.Nonce != f.Nonce || f2.Verifier != f.Verifier || f2.Org != 7 || f2.ReturnTo != "/settings" || !f2.Expires.Equal(f.Expires) {
		t.Fatalf("flow round trip: %+v %v", f2, err)
	}
	id, err := rp.Finish(ctx, c, f2, q.Get("state"), q.Get("code"), "")
	if err != nil {
		t.Fatal(err)
	}
	if id.Issuer != idp.Issuer || id.Subject != "sub-dana" || id.Email != "dana@example.com" || !id.EmailVerified || !slices.Equal(id.Groups, []string{"staff", "secops"}) {
		t.Fatalf("identity: %+v", id)
	}
	// A code works once.
	if _, err := rp.Finish(ctx, c, f2, q.Get("state"), q.Get("code"), ""); !errors.Is(err, sso.ErrDenied) {
		t.Errorf("second use of a code: %v, want ErrDenied", err)
	}
}

// TestRefused: state, nonce and PKCE mismatches, an expired flow and a
// provider's error are refused.
func TestRefused(t *testing.T) {
	rp, c, idp := setup(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(f *sso.Flow, state *string)
		want   error
	}{
		{"state", func(f *sso.Flow, state *string) { *state = "forged" }, sso.ErrState},
		{"no state", func(f *sso.Flow, state *string) { *state, f.State = "", "" }, sso.ErrState},
		{"nonce", func(f *sso.Flow, state *string) { f.Nonce = "another" }, sso.ErrNonce},
		{"pkce", func(f *sso.Flow, state *string) { f.Verifier = "another-verifier-another-verifier-another-verifier" }, sso.ErrDenied},
		{"expired", func(f *sso.Flow, state *string) { f.Expires = time.Now().Add(-time.Second) }, sso.ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			authURL, f, err := rp.Begin(ctx, c, 7, "/")
			if err != nil {
				t.Fatal(err)
			}
			q := idp.SignIn(t, authURL, "dana", "pw-dana").Query()
			state := q.Get("state")
			tc.change(f, &state)
			if id, err := rp.Finish(ctx, c, f, state, q.Get("code"), ""); !errors.Is(err, tc.want) {
				t.Fatalf("finish: %+v %v, want %v", id, err, tc.want)
			}
		})
	}
	_, f, _ := rp.Begin(ctx, c, 7, "/")
	if _, err := rp.Finish(ctx, c, f, f.State, "", "access_denied"); !errors.Is(err, sso.ErrDenied) {
		t.Errorf("provider error: %v", err)
	}
	// Another client's secret: the exchange is refused.
	bad := *c
	bad.ClientSecret = "wrong"
	authURL, f, _ := rp.Begin(ctx, &bad, 7, "/")
	q := idp.SignIn(t, authURL, "dana", "pw-dana").Query()
	if _, err := rp.Finish(ctx, &bad, f, q.Get("state"), q.Get("code"), ""); !errors.Is(err, sso.ErrDenied) {
		t.Errorf("wrong client secret: %v", err)
	}
}
