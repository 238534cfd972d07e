// Package ssotest runs a real OpenID provider for tests: the example
// provider of github.com/zitadel/oidc/v3 (its pkg/op OpenID Provider with
// the example's in-memory storage and login page), in-process on a
// loopback port, with the users and one web client a test gives. Only a
// groups claim is added to what the example answers.
package ssotest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/text/language"
)

// User is a person the provider knows.
type User struct {
	ID, Username, Password, Email string
	EmailVerified                 bool
	Name                          string
	Groups                        []string
}

// Provider is a running OpenID provider.
type Provider struct {
	Issuer       string // its URL
	ClientID     string
	ClientSecret string
	srv          *httptest.Server
}

// Start starts a provider with one web client allowed to redirect to
// redirectURIs, knowing users; it stops when the test ends.
func Start(t testing.TB, redirectURIs []string, users ...User) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	p := &Provider{Issuer: issuer, ClientID: "veritrail-test", ClientSecret: "client-secret-" + fmt.Sprint(len(users)), srv: srv}
	clients := map[string]*storage.Client{}
	c := storage.WebClient(p.ClientID, p.ClientSecret, redirectURIs...)
	clients[p.ClientID] = c
	us := userStore{users: map[string]*storage.User{}, groups: map[string][]string{}}
	for _, u := range users {
		first, last, _ := strings.Cut(u.Name, " ")
		us.users[u.ID] = &storage.User{ID: u.ID, Username: u.Username, Password: u.Password, Email: u.Email,
			EmailVerified: u.EmailVerified, FirstName: first, LastName: last, PreferredLanguage: language.English}
		us.groups[u.ID] = u.Groups
	}
	st := &groupsStorage{Storage: storage.NewStorageWithClients(us, clients), groups: us.groups}
	logger := slog.New(slog.DiscardHandler)
	srv.Config.Handler = exampleop.SetupServer(issuer, st, logger, false)
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// userStore is the example storage's UserStore over the test's users.
type userStore struct {
	users  map[string]*storage.User
	groups map[string][]string
}

func (s userStore) GetUserByID(id string) *storage.User { return s.users[id] }
func (s userStore) GetUserByUsername(name string) *storage.User {
	for _, u := range s.users {
		if u.Username == name {
			return u
		}
	}
	return nil
}
func (s userStore) ExampleClientID() string { return "service" }

// groupsStorage adds a "groups" claim to the userinfo answer.
type groupsStorage struct {
	*storage.Storage
	groups map[string][]string
}

func (s *groupsStorage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, ui, tokenID, subject, origin); err != nil {
		return err
	}
	if g := s.groups[ui.Subject]; len(g) > 0 {
		ui.AppendClaims("groups", g)
	}
	return nil
}

// SignIn plays a browser without JavaScript through the provider: it
// follows authURL to the login page, posts the username and password, and
// follows the provider's redirects until one leaves the provider, which it
// returns (the relying party's callback with code and state) without
// following it. client keeps cookies if the caller wants them.
func (p *Provider) SignIn(t testing.TB, authURL, username, password string) *url.URL {
	t.Helper()
	c := &http.Client{CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !strings.HasPrefix(req.URL.String(), p.Issuer) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("provider's login page: %d %s", resp.StatusCode, body)
	}
	id := resp.Request.URL.Query().Get("authRequestID")
	if id == "" {
		t.Fatalf("provider's login page %s names no auth request", resp.Request.URL)
	}
	resp, err = c.PostForm(p.Issuer+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("provider's login answered %d, not a redirect to the relying party: %s", resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
