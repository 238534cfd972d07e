package browsertest_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/veritrail/veritrail/demo"
	"github.com/veritrail/veritrail/internal/smtptest"
	"github.com/veritrail/veritrail/web/browsertest"
)

// The console's browser tests run against the real binary, built once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "veritrail-console-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "veritrail")
	if out, err := exec.Command("go", "build", "-o", binary, "github.com/veritrail/veritrail/cmd/veritrail").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type server struct {
	t     *testing.T
	url   string
	owner string
}

// startServer runs `veritrail serve` on a free port until the test ends.
func startServer(t *testing.T, data string, env ...string) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(binary, "serve", "--addr", addr, "--data", data)
	cmd.Env = append(os.Environ(), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	s := &server{t: t, url: "http://" + addr}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("server exited:\n%s", logs.String())
		default:
		}
		if resp, err := http.Get(s.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not start")
		}
	}
}

// do calls the API with the owner's token.
func (s *server) do(method, path, body string, into any) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.owner)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			s.t.Fatal(err)
		}
	}
}

// TestConsole drives the web console in Chromium against the real server
// (this binary, with sample events and a real SMTP server), one subtest
// per thing the console must show (console.mjs). Every page is checked
// with axe-core and photographed (the log says where).
func TestConsole(t *testing.T) {
	browsertest.Chromium(t)
	mail := smtptest.Start(t)
	data := filepath.Join(t.TempDir(), "data")
	owner := "vt_" + strings.Repeat("c0nsole", 6)
	srv := startServer(t, data, "VERITRAIL_BOOTSTRAP_TOKEN="+owner,
		"VERITRAIL_SMTP_URL="+mail.URL(), "VERITRAIL_SMTP_CA_FILE="+mail.CAFile, "VERITRAIL_RATE_LIMIT=0",
		"VERITRAIL_ALLOW_LOOPBACK_DESTINATIONS=true") // the alert route's receiver is local
	srv.owner = owner

	// The sample organization's people, agents and tools.
	var body strings.Builder
	n := 0
	err := demo.Generate(demo.Options{Seed: 1, Anchor: time.Now().UTC().Truncate(time.Minute), Count: 4000}, func(line []byte) error {
		body.Write(line)
		body.WriteByte('\n')
		if n++; n%1000 == 0 {
			srv.do("POST", "/api/v1/events", body.String(), nil)
			body.Reset()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	token := func(role string) string {
		var tok struct{ Token string }
		srv.do("POST", "/api/v1/tokens", `{"name":"`+role+` console test","role":"`+role+`"}`, &tok)
		return tok.Token
	}
	type event struct {
		ID      string         `json:"id"`
		Seq     int64          `json:"seq"`
		Content map[string]any `json:"content"`
	}
	var page struct{ Data []event }
	// A tool call with its arguments, response and API requests; another
	// that succeeded, to change a byte of.
	srv.do("GET", "/api/v1/events?type=agent.tool_call&outcome=success&limit=50", "", &page)
	var withContent, tampered event
	for _, e := range page.Data {
		if _, ok := e.Content["api_requests"]; ok && withContent.ID == "" {
			withContent = e
		} else if tampered.ID == "" {
			tampered = e
		}
	}
	if withContent.ID == "" || tampered.ID == "" {
		t.Fatalf("the sample events hold no tool call with API requests: %v", page.Data)
	}
	var stats struct {
		Top map[string][]struct{ Value string } `json:"top"`
	}
	srv.do("GET", "/api/v1/events/stats?outcome=failure&top=actor_email", "", &stats)
	if len(stats.Top["actor_email"]) == 0 {
		t.Fatal("no person with failed events in the sample")
	}
	srv.do("POST", "/api/v1/users", `{"email":"dana.incident@acme.example","name":"Dana Incident","role":"security"}`, nil)

	env := map[string]string{
		"BASE":           srv.url,
		"OWNER_TOKEN":    owner,
		"SECURITY_TOKEN": token("security"),
		"AUDITOR_TOKEN":  token("auditor"),
		"INGEST_TOKEN":   token("ingest"),
		"EVENT_ID":       withContent.ID,
		"TAMPERED_ID":    tampered.ID,
		"EMAIL":          "dana.incident@acme.example",
		"USER_NAME":      "Dana Incident",
		"FILTER_EMAIL":   stats.Top["actor_email"][0].Value,
		"SEARCH_WORDS":   "onboarding flow",
		"EXPORT_VIEW":    "outcome=failure",
	}
	browser := browsertest.Start(t, "console.mjs")
	scenario := runner(browser, env)

	t.Run("SignInWithToken", func(t *testing.T) { scenario(t, "sign-in-token") })
	t.Run("SignInWithEmailedLink", func(t *testing.T) {
		scenario(t, "request-link")
		msgs := mail.Wait(t, 1, 5*time.Minute)
		link := regexp.MustCompile(`http://\S+/login/link#vts_[A-Za-z0-9_-]+`).FindString(msgs[len(msgs)-1])
		if link == "" || !strings.Contains(msgs[len(msgs)-1], "X-Rcpt-To: dana.incident@acme.example") {
			t.Fatalf("no sign-in link to dana in:\n%s", msgs[len(msgs)-1])
		}
		scenario(t, "open-link", "LINK", link)
		// The sign-in is in the log, attributed to the person, and so is
		// what they read through the console.
		var got struct {
			Data []struct{ Actor struct{ Type, Email string } }
		}
		srv.do("GET", "/api/v1/events?type=auth.login&actor_email=dana.incident@acme.example", "", &got)
		if len(got.Data) != 1 || got.Data[0].Actor.Type != "user" {
			t.Fatalf("auth.login of the user: %+v", got.Data)
		}
		srv.do("GET", "/api/v1/events?type=audit.query&actor_email=dana.incident@acme.example&limit=1", "", &got)
		if len(got.Data) == 0 {
			t.Fatal("the user's reads through the console are not recorded under their name")
		}
	})
	t.Run("FilterByUserOutcomeAndText", func(t *testing.T) { scenario(t, "filters") })
	t.Run("ContentAsSecurity", func(t *testing.T) { scenario(t, "content-security") })
	t.Run("ContentHiddenForAuditor", func(t *testing.T) { scenario(t, "content-auditor") })
	t.Run("VerifiedOnHonestLog", func(t *testing.T) { scenario(t, "verified-true") })
	t.Run("NotVerifiedAfterOneByteChanged", func(t *testing.T) {
		changeOneByte(t, data, tampered.Seq)
		scenario(t, "verified-false")
	})
	t.Run("LiveTail", func(t *testing.T) { scenario(t, "live-tail") })
	t.Run("ZoomHistogram", func(t *testing.T) { scenario(t, "zoom") })
	t.Run("ScrollEveryRow", func(t *testing.T) { scenario(t, "scroll") })
	t.Run("ExportTheView", func(t *testing.T) { scenario(t, "export") })
	t.Run("LogPage", func(t *testing.T) { scenario(t, "log-page") })
	// Last: the alert.* records its changes append would otherwise land
	// in the other scenarios' views.
	t.Run("Alerts", func(t *testing.T) { testAlerts(t, srv, scenario) })
	t.Run("RulesWrittenInTheConsole", func(t *testing.T) { testRuleForm(t, srv, scenario) })
}

// changeOneByte turns "success" into "Success" in one stored envelope, as
// an insider with the database file could, while the server runs: the
// append-only trigger is dropped for the one statement and put back.
func changeOneByte(t *testing.T, data string, seq int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "veritrail.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var org int64
	if err := db.QueryRow(`SELECT id FROM orgs WHERE name = 'default'`).Scan(&org); err != nil {
		t.Fatal(err)
	}
	rid := org<<40 | seq
	for _, s := range []string{
		`BEGIN IMMEDIATE`,
		`DROP TRIGGER events_no_update`,
		fmt.Sprintf(`UPDATE events SET envelope = CAST(replace(CAST(envelope AS TEXT), '"outcome":"success"', '"outcome":"Success"') AS BLOB) WHERE rid = %d`, rid),
		`CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'veritrail: events are append-only'); END`,
		`COMMIT`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var env []byte
	if err := db.QueryRow(`SELECT envelope FROM events WHERE rid = ?`, rid).Scan(&env); err != nil || !strings.Contains(string(env), `"Success"`) {
		t.Fatalf("the envelope did not change: %s %v", env, err)
	}
}
