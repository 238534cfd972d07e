package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/veritrail/veritrail/seal"
)

// TestSecretsNeverShown runs a server configured with every kind of
// secret (bootstrap token, master key, link key, an SMTP password, a
// sink's signing secret, tokens made through the API, and tokens that are
// wrong by a character), drives it through success and failure (ingest,
// queries, refused requests, an export whose e-mail cannot be sent, a sink
// whose destination is down), and then searches all it printed at debug
// level, every answer it gave and its metrics for each secret. A token
// appears in one place only: the answer that created it.
func TestSecretsNeverShown(t *testing.T) {
	dir := t.TempDir()
	mk := filepath.Join(dir, "master-key")
	master := seal.Generate()
	os.WriteFile(mk, []byte(master+"\n"), 0o600)
	const (
		boot     = "vt_bootstrap-secret-of-the-scan-0123456789"
		linkKey  = "link-key-secret-of-the-scan-0123456789abcdef"
		smtpPass = "smtp-password-of-the-scan-4242"
		hookKey  = "whsec-secret-of-the-scan-4242"
		routeKey = "route-secret-of-the-scan-4242"
		slackKey = "slackpathsecretofthescan4242"
	)
	srv := startServer(t, filepath.Join(dir, "data"), []string{
		"VERITRAIL_BOOTSTRAP_TOKEN=" + boot, "VERITRAIL_MASTER_KEY_FILE=" + mk, "VERITRAIL_LINK_KEY=" + linkKey,
		"VERITRAIL_SMTP_URL=smtp://veritrail:" + smtpPass + "@127.0.0.1:1", "VERITRAIL_RATE_LIMIT=0",
		"VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true",
	}, "--log-level", "debug")
	secrets := []string{boot, master, linkKey, smtpPass, hookKey, routeKey, slackKey}
	var answers [][]byte
	do := func(method, path, token, body string) (int, []byte) {
		code, b := srv.do(method, path, token, body)
		answers = append(answers, b)
		return code, b
	}
	var created []string
	for _, role := range []string{"admin", "ingest", "auditor"} {
		code, b := srv.do("POST", "/api/v1/tokens", boot, `{"name":"scan-`+role+`","role":"`+role+`"}`)
		var tok struct{ Token string }
		json.Unmarshal(b, &tok)
		if code != 201 || tok.Token == "" {
			t.Fatalf("create %s: %d %s", role, code, b)
		}
		created = append(created, tok.Token)
	}
	secrets = append(secrets, created...)
	if code, b := do("POST", "/api/v1/sinks", boot, `{"name":"down","type":"webhook","url":"http://127.0.0.1:1/hook","secret":"`+hookKey+`"}`); code != 201 {
		t.Fatalf("create sink: %d %s", code, b)
	}
	// An alert rule whose routes (a signed webhook, a Slack URL, whose
	// path is its secret, and e-mail) are all down: every sign-in raises
	// an alert whose deliveries fail and are logged.
	if code, b := do("POST", "/api/v1/rules", boot, `{"name":"every sign-in","kind":"match","condition":"type == \"auth.login\"",
		"severity":"high","routes":[{"type":"webhook","url":"http://127.0.0.1:1/alerts","secret":"`+routeKey+`"},
		{"type":"slack","url":"http://127.0.0.1:1/services/T0/B0/`+slackKey+`"},{"type":"email","to":["soc@example.com"]}]}`); code != 201 {
		t.Fatalf("create rule: %d %s", code, b)
	}
	for _, tok := range append([]string{boot}, created...) {
		do("POST", "/api/v1/events", tok, `{"type":"auth.login","actor":{"type":"user","id":"u"},"content":{"k":"v"}}`)
		do("POST", "/api/v1/events", tok, `{"type":"auth.login","actor":{"type":"user","id":"\ud800"}}`)
		do("GET", "/api/v1/events?limit=5&q=login", tok, "")
		do("GET", "/api/v1/me", tok, "")
		do("GET", "/api/v1/sinks", tok, "")
		// Wrong by one character, and sent where a token is not expected.
		do("GET", "/api/v1/me", tok[:len(tok)-1]+"x", "")
		do("GET", "/api/v1/events?cursor="+tok, tok, "")
	}
	if code, b := do("POST", "/api/v1/exports", boot, `{"format":"ndjson","notify":"auditor@example.com"}`); code/100 != 2 {
		t.Fatalf("export: %d %s", code, b)
	}
	time.Sleep(3 * time.Second) // the export runs and its e-mail fails; the sink fails
	do("GET", "/api/v1/exports", boot, "")
	do("GET", "/api/v1/sinks", boot, "")
	resp, err := http.Get(srv.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	srv.stop()

	logs := srv.stdout.String() + srv.stderr.String()
	// The failures were logged (the search below looks where secrets
	// would leak): requests at debug level, the sink's and the e-mail's
	// failures, both of a destination at 127.0.0.1:1, and the alert
	// routes'.
	if !strings.Contains(logs, "request") || strings.Count(logs, "127.0.0.1:1") < 2 || !strings.Contains(logs, "alert delivery failed") {
		t.Fatalf("the server did not log the requests and both failures: the search proves little\n%s", logs)
	}
	for _, s := range secrets {
		needles := [][]byte{[]byte(s)}
		if strings.HasPrefix(s, "vt_") {
			needles = append(needles, []byte(strings.TrimPrefix(s, "vt_"))) // the secret part alone
		}
		for _, n := range needles {
			if bytes.Contains([]byte(logs), n) {
				t.Errorf("secret %.12s… appears in the server's log", s)
			}
			if bytes.Contains(metrics, n) {
				t.Errorf("secret %.12s… appears in the metrics", s)
			}
			for _, a := range answers {
				if bytes.Contains(a, n) {
					t.Errorf("secret %.12s… appears in an answer: %.200s", s, a)
				}
			}
		}
	}
}
