// Package sso is Veritrail's OpenID Connect relying party: the
// authorization code flow with PKCE against an organization's provider,
// through github.com/coreos/go-oidc/v3 (discovery, ID token signature,
// issuer, audience, expiry) and golang.org/x/oauth2 (the code exchange,
// PKCE). It checks what those leave to the caller (state, nonce, the
// userinfo subject) and reads the identity; deciding who may sign in, and
// the session, are the HTTP layer's.
package sso

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Client is the registration at one provider.
type Client struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string
	// GroupsClaim names the claim listing the person's groups; "" reads none.
	GroupsClaim string
}

// Flow is what the relying party keeps between sending a browser to the
// provider and its return: the caller keeps it where only that browser
// brings it back (a sealed, short-lived cookie), so a code cannot be
// redeemed in another browser's flow.
type Flow struct {
	Org      int64     `json:"org"`
	State    string    `json:"state"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"` // PKCE code verifier
	ReturnTo string    `json:"return_to"`
	Expires  time.Time `json:"expires"`
}

// Identity is who the provider says signed in.
type Identity struct {
	Issuer        string
	Subject       string
	Email         string // lower case
	EmailVerified bool
	Name          string
	Groups        []string
}

// Errors of Finish. A caller records them as failed sign-ins; none carries
// a secret.
var (
	ErrState   = errors.New("sso: the state does not match this browser's sign-in")
	ErrExpired = errors.New("sso: the sign-in took too long; start again")
	ErrNonce   = errors.New("sso: the ID token's nonce does not match this sign-in")
	ErrDenied  = errors.New("sso: the provider refused the sign-in")
)

// RP is a relying party for any number of providers, sharing one HTTP
// client (the outbound policy's) and a cache of their discovery documents
// and keys.
type RP struct {
	client *http.Client
	now    func() time.Time

	mu        sync.Mutex
	providers map[string]cachedProvider
}

type cachedProvider struct {
	p  *gooidc.Provider
	at time.Time
}

// providerTTL is how long a discovery document is trusted before it is
// fetched again (keys rotate within it through go-oidc's key set, which
// refetches on an unknown key id).
const providerTTL = 10 * time.Minute

// FlowTTL bounds a sign-in at the provider.
const FlowTTL = 10 * time.Minute

// New returns a relying party whose every request to a provider goes
// through client.
func New(client *http.Client, now func() time.Time) *RP {
	if now == nil {
		now = time.Now
	}
	return &RP{client: client, now: now, providers: map[string]cachedProvider{}}
}

func (rp *RP) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(context.WithValue(ctx, oauth2.HTTPClient, rp.client), rp.client)
}

// provider returns the issuer's provider, discovering it when not cached.
func (rp *RP) provider(ctx context.Context, issuer string) (*gooidc.Provider, error) {
	rp.mu.Lock()
	c, ok := rp.providers[issuer]
	rp.mu.Unlock()
	if ok && rp.now().Sub(c.at) < providerTTL {
		return c.p, nil
	}
	// The provider keeps the context for its key set: no request deadline.
	p, err := gooidc.NewProvider(rp.ctx(context.WithoutCancel(ctx)), issuer)
	if err != nil {
		return nil, fmt.Errorf("sso: discovery of %s: %w", issuer, err)
	}
	rp.mu.Lock()
	rp.providers[issuer] = cachedProvider{p, rp.now()}
	rp.mu.Unlock()
	return p, nil
}

func (rp *RP) config(p *gooidc.Provider, c *Client) *oauth2.Config {
	return &oauth2.Config{
		ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: c.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: []string{gooidc.ScopeOpenID, "email", "profile"},
	}
}

// Begin starts a sign-in of org: the provider's authorization URL to send
// the browser to, and the flow to keep for its return. returnTo is where
// the console goes after (a path of this server; the caller checks it).
func (rp *RP) Begin(ctx context.Context, c *Client, org int64, returnTo string) (string, *Flow, error) {
	p, err := rp.provider(ctx, c.Issuer)
	if err != nil {
		return "", nil, err
	}
	f := &Flow{Org: org, State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: returnTo, Expires: rp.now().Add(FlowTTL)}
	u := rp.config(p, c).AuthCodeURL(f.State, gooidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return u, f, nil
}

// Finish completes a sign-in from the provider's answer (the callback's
// state, code, and error if the provider sent one): state checked against
// the flow, the code exchanged with the PKCE verifier, the ID token
// verified (signature, issuer, audience, expiry) and its nonce checked,
// the userinfo read for what the token lacks.
func (rp *RP) Finish(ctx context.Context, c *Client, f *Flow, state, code, providerError string) (*Identity, error) {
	if f == nil || subtle.ConstantTimeCompare([]byte(state), []byte(f.State)) != 1 || f.State == "" {
		return nil, ErrState
	}
	if !rp.now().Before(f.Expires) {
		return nil, ErrExpired
	}
	if providerError != "" {
		return nil, fmt.Errorf("%w: %s", ErrDenied, truncate(providerError, 100))
	}
	p, err := rp.provider(ctx, c.Issuer)
	if err != nil {
		return nil, err
	}
	ctx = rp.ctx(ctx)
	tok, err := rp.config(p, c).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("%w: the code exchange failed: %s", ErrDenied, truncate(re.ErrorCode+" "+re.ErrorDescription, 200))
		}
		return nil, fmt.Errorf("sso: code exchange: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: no ID token in the provider's answer", ErrDenied)
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: c.ClientID, Now: rp.now}).Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the ID token does not verify: %v", ErrDenied, err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, ErrNonce
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	// What the ID token lacks (providers differ) comes from userinfo,
	// which must be about the same subject.
	if _, ok := claims["email"]; !ok || (c.GroupsClaim != "" && claims[c.GroupsClaim] == nil) {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("sso: userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return nil, fmt.Errorf("%w: userinfo is about another subject", ErrDenied)
		}
		more := map[string]any{}
		if err := ui.Claims(&more); err != nil {
			return nil, err
		}
		for k, v := range more {
			if _, ok := claims[k]; !ok {
				claims[k] = v
			}
		}
	}
	id := &Identity{Issuer: idt.Issuer, Subject: idt.Subject}
	id.Email, _ = claims["email"].(string)
	id.Email = strings.ToLower(id.Email)
	id.Name, _ = claims["name"].(string)
	switch v := claims["email_verified"].(type) {
	case bool:
		id.EmailVerified = v
	case string: // some providers send it as a string
		id.EmailVerified = v == "true"
	}
	if c.GroupsClaim != "" {
		id.Groups = stringList(claims[c.GroupsClaim])
	}
	return id, nil
}

// stringList reads a claim that is a list of strings or one string.
func stringList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// Marshal and UnmarshalFlow carry a flow in a cookie (sealed by the caller).
func (f *Flow) Marshal() []byte { b, _ := json.Marshal(f); return b }

// UnmarshalFlow reads a flow written by Marshal.
func UnmarshalFlow(b []byte) (*Flow, error) {
	var f Flow
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

func random() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
