package browsertest_test

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/sso/ssotest"
	"github.com/veritrail/veritrail/web/browsertest"
)

// TestConsoleAdmin drives the administration pages (part 2) in Chromium
// against the real server: settings, people, tokens, single sign-on
// through a real OpenID provider (zitadel/oidc's, started here), erasure,
// legal holds and forwarding, each page checked with axe-core (admin.mjs).
func TestConsoleAdmin(t *testing.T) {
	browsertest.Chromium(t)
	mail := smtptest.Start(t)
	data := filepath.Join(t.TempDir(), "data")
	owner := "vt_" + strings.Repeat("adm1nconsole", 4)
	srv := startServer(t, data, "VERITRAIL_BOOTSTRAP_TOKEN="+owner, "VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true",
		"VERITRAIL_SMTP_URL="+mail.URL(), "VERITRAIL_SMTP_CA_FILE="+mail.CAFile, "VERITRAIL_RATE_LIMIT=0")
	srv.owner = owner

	// The organization's OpenID provider: Dana is in secops (security).
	idp := ssotest.Start(t, []string{srv.url + "/auth/oidc/callback"},
		ssotest.User{ID: "sub-dana", Username: "dana", Password: "pw-dana", Email: "dana.sso@acme.example", EmailVerified: true, Name: "Dana Sso", Groups: []string{"secops"}})
	srv.do("PUT", "/api/v1/sso", fmt.Sprintf(`{"enabled":true,"issuer":%q,"client_id":%q,"client_secret":%q,"allowed_domains":["acme.example"],`+
		`"groups_claim":"groups","group_roles":[{"group":"secops","role":"security"}],"default_role":"auditor","create_users":true}`,
		idp.Issuer, idp.ClientID, idp.ClientSecret), nil)

	// A webhook receiver for the sink.
	var received atomic.Int64
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		received.Add(1)
	}))
	t.Cleanup(hook.Close)
	srv.do("POST", "/api/v1/sinks", fmt.Sprintf(`{"type":"webhook","name":"siem","url":%q,"secret":"hook-secret"}`, hook.URL+"/hook"), nil)

	// Events: an old one with content (retention), a person to erase,
	// one under a hold.
	old := time.Now().UTC().Add(-60 * 24 * time.Hour).Format(time.RFC3339)
	srv.do("POST", "/api/v1/events", fmt.Sprintf(`{"id":"old-note","type":"team.message","time":%q,"actor":{"type":"user","id":"u-old","email":"old@acme.example"},"content":{"text":"an old note"}}
{"id":"erase-me-1","type":"team.message","actor":{"type":"user","id":"u-erase","email":"erase.me@acme.example"},"content":{"text":"private words"}}
{"id":"erase-me-2","type":"team.message","actor":{"type":"user","id":"u-erase","email":"erase.me@acme.example"},"content":{"text":"more private words"}}
{"id":"held-1","type":"team.message","time":%q,"actor":{"type":"user","id":"u-held","email":"suspect@acme.example"},"content":{"text":"evidence"}}
{"id":"held-2","type":"team.message","actor":{"type":"user","id":"u-held","email":"suspect@acme.example"},"content":{"text":"more evidence"}}`+"\n", old, old), nil)
	token := func(role string) string {
		var tok struct{ Token string }
		srv.do("POST", "/api/v1/tokens", `{"name":"`+role+` admin test","role":"`+role+`"}`, &tok)
		return tok.Token
	}
	env := map[string]string{
		"BASE":          srv.url,
		"OWNER_TOKEN":   owner,
		"AUDITOR_TOKEN": token("auditor"),
		"ORG":           "default",
	}
	browser := browsertest.Start(t, "admin.mjs")
	scenario := runner(browser, env)
	hasContent := func(id string) bool {
		var ev struct {
			Content any `json:"content"`
		}
		srv.do("GET", "/api/v1/events/"+id, "", &ev)
		return ev.Content != nil
	}

	t.Run("AISwitchMoment", func(t *testing.T) { scenario(t, "ai-switch") })
	t.Run("AuditorNoSettings", func(t *testing.T) { scenario(t, "auditor-no-settings") })
	t.Run("MCPPolicyErrorAtLine", func(t *testing.T) { scenario(t, "mcp-policy") })
	t.Run("HoldStopsErasureAndRetention", func(t *testing.T) {
		scenario(t, "hold-place")
		scenario(t, "hold-erasure", "WHO", "suspect@acme.example")
	})
	t.Run("RetentionTier30Days", func(t *testing.T) {
		scenario(t, "retention-30", "OLD_ID", "old-note")
		if hasContent("old-note") {
			t.Error("the 60-day-old event kept its content after a 30-day run")
		}
		if !hasContent("held-1") || !hasContent("held-2") {
			t.Error("retention or erasure touched the held events")
		}
	})
	t.Run("EraseAPerson", func(t *testing.T) {
		scenario(t, "erase", "WHO", "erase.me@acme.example", "ERASED_ID", "erase-me-1")
		if hasContent("erase-me-1") || hasContent("erase-me-2") {
			t.Error("erased content is still there")
		}
	})
	t.Run("CreateAndRevokeToken", func(t *testing.T) { scenario(t, "tokens") })
	t.Run("InviteUserSignsInByLink", func(t *testing.T) {
		scenario(t, "invite", "EMAIL", "new.person@acme.example")
		msgs := mail.Wait(t, 1, 30*time.Second)
		link := regexp.MustCompile(`http://\S+/login/link#vts_[A-Za-z0-9_-]+`).FindString(msgs[len(msgs)-1])
		if link == "" {
			t.Fatalf("no sign-in link in:\n%s", msgs[len(msgs)-1])
		}
		scenario(t, "open-invite-link", "LINK", link, "EMAIL", "new.person@acme.example")
	})
	t.Run("SingleSignOnLandsWithMappedRole", func(t *testing.T) { scenario(t, "sso") })
	t.Run("SinkPauseResumeLag", func(t *testing.T) {
		scenario(t, "sink")
		if received.Load() == 0 {
			t.Error("the webhook received nothing")
		}
	})
	t.Run("CrossSiteFormPostRefused", func(t *testing.T) {
		// A page of another site posts a form to the console's API in the
		// signed-in browser: the cookie is not sent (SameSite=Strict) and
		// Origin is checked, so no hold is placed.
		evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<!doctype html><html lang="en"><title>x</title><form id="f" method="POST" action="%s/api/v1/holds" enctype="text/plain">`+
				`<input name='{"name":"evil","reason":"x","actor_ids":["a"],"x":"' value='"}'></form><script>document.getElementById('f').submit()</script></html>`, srv.url)
		}))
		t.Cleanup(evil.Close)
		scenario(t, "cross-site", "EVIL", strings.Replace(evil.URL, "127.0.0.1", "localhost", 1))
		var holds struct{ Data []struct{ Name string } }
		srv.do("GET", "/api/v1/holds", "", &holds)
		for _, h := range holds.Data {
			if h.Name == "evil" {
				t.Fatal("a cross-site form post placed a hold")
			}
		}
	})
}

// runner runs a scenario of browser's script with env and extra name,
// value pairs added to it.
func runner(browser *browsertest.Driver, env map[string]string) func(t *testing.T, name string, extra ...string) {
	return func(t *testing.T, name string, extra ...string) {
		t.Helper()
		e := maps.Clone(env)
		for i := 0; i+1 < len(extra); i += 2 {
			e[extra[i]] = extra[i+1]
		}
		browser.Run(t, name, e)
	}
}
