package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/veritrail/veritrail/postgres/pgtest"
)

// These tests drive the real binary: build it once, start servers as
// separate processes, and use the CLI beside them as an operator would.

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "veritrail-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "veritrail")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Main(m) // runs the tests, then stops PostgreSQL if one was started
	os.RemoveAll(dir)
	os.Exit(code)
}

type server struct {
	t      *testing.T
	cmd    *exec.Cmd
	url    string
	data   string
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
}

// syncBuffer is a bytes.Buffer safe to read while the process writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startServer(t *testing.T, data string, env []string, args ...string) *server {
	t.Helper()
	addr := freeAddr(t)
	for i, a := range args {
		if a == "--addr" && i+1 < len(args) {
			addr = args[i+1] // the caller chose it (a later flag wins)
		}
	}
	cmd := exec.Command(binary, append([]string{"serve", "--addr", addr, "--data", data}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	s := &server{t: t, cmd: cmd, url: "http://" + addr, data: data, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.exited = exited
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			t.Fatalf("server exited: %v\n%s", cmd.ProcessState, s.stderr)
		default:
		}
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy: %s", s.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits: a clean stop exits 0.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.exited
	if !s.cmd.ProcessState.Success() {
		s.t.Fatalf("server did not stop cleanly: %v\n%s", s.cmd.ProcessState, s.stderr)
	}
}

func (s *server) do(method, path, token, body string) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func cli(t *testing.T, args ...string) (string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("veritrail %v: %v\n%s%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String(), stderr.String()
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func TestServeBootstrapAndCLI(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, data, nil)

	// The owner token is printed once and written 0600.
	path := filepath.Join(data, "bootstrap-token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("bootstrap-token mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	owner := strings.TrimSpace(string(b))
	if !strings.HasPrefix(owner, "vt_") || !strings.Contains(srv.stdout.String(), owner) {
		t.Fatalf("token %q not printed: %s", owner, srv.stdout)
	}
	if code, body := srv.do("GET", "/api/v1/me", owner, ""); code != 200 || !strings.Contains(string(body), `"owner"`) {
		t.Fatalf("/me: %d %s", code, body)
	}

	// The CLI works on the same store while the server runs.
	out, _ := cli(t, "org", "create", "acme", "--data", data)
	if lastLine(out) != "acme" {
		t.Fatalf("org create printed %q", out)
	}
	out, _ = cli(t, "token", "create", "--org", "acme", "--role", "ingest", "--name", "app", "--data", data)
	ingest := lastLine(out)
	if !strings.HasPrefix(ingest, "vt_") {
		t.Fatalf("token create: last line %q", ingest)
	}
	out, _ = cli(t, "token", "create", "--org", "acme", "--role", "auditor", "--data", data)
	auditor := lastLine(out)
	// Access changes made from the command line are in the audit log too.
	for deadline := time.Now().Add(5 * time.Second); ; {
		_, b := srv.do("GET", "/api/v1/events?type=audit.token_created,audit.org_created", auditor, "")
		if bytes.Count(b, []byte(`"audit.token_created"`)) == 2 && bytes.Contains(b, []byte(`"audit.org_created"`)) &&
			bytes.Contains(b, []byte(`"veritrail-cli"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit records of the CLI's changes: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := srv.do("POST", "/api/v1/events", ingest, `{"id":"a1","type":"auth.login","actor":{"type":"user","id":"u1"}}`); code != 200 {
		t.Fatalf("ingest with a CLI token: %d %s", code, body)
	}
	code, body := srv.do("GET", "/api/v1/events/a1", auditor, "")
	if code != 200 {
		t.Fatalf("read with a CLI token: %d %s", code, body)
	}
	// Organization acme's event is not default's.
	if code, _ := srv.do("GET", "/api/v1/events/a1", owner, ""); code != 404 {
		t.Fatalf("default's owner read acme's event: %d", code)
	}
	out, _ = cli(t, "org", "list", "--data", data)
	if !strings.Contains(out, "default") || !strings.Contains(out, "acme") {
		t.Fatalf("org list: %s", out)
	}
	out, _ = cli(t, "token", "list", "--org", "acme", "--data", data)
	if strings.Contains(out, ingest) || !strings.Contains(out, "ingest") {
		t.Fatalf("token list shows secrets or misses tokens: %s", out)
	}

	// A second server on the same data directory is refused.
	second := exec.Command(binary, "serve", "--addr", freeAddr(t), "--data", data)
	if msg, err := second.CombinedOutput(); err == nil || !strings.Contains(string(msg), "another Veritrail server") {
		t.Fatalf("second server: %v %s", err, msg)
	}

	// SIGTERM stops it cleanly; a restart serves the same data, and the
	// bootstrap is not repeated.
	srv.stop()
	srv2 := startServer(t, data, nil)
	if code, _ := srv2.do("GET", "/api/v1/events/a1", auditor, ""); code != 200 {
		t.Fatalf("event lost across restart: %d", code)
	}
	if strings.Contains(srv2.stdout.String(), "vt_") {
		t.Fatalf("restart printed a token again: %s", srv2.stdout)
	}
	cli(t, "token", "revoke", "--org", "acme", "--data", data, tokenID(t, data, "auditor"))
	if code, _ := srv2.do("GET", "/api/v1/events/a1", auditor, ""); code != 401 {
		t.Fatalf("revoked token still works: %d", code)
	}
	srv2.stop()
}

func tokenID(t *testing.T, data, role string) string {
	out, _ := cli(t, "token", "list", "--org", "acme", "--data", data)
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 2 && f[1] == role || len(f) > 2 && f[2] == role {
			return f[0]
		}
	}
	t.Fatalf("no %s token in %s", role, out)
	return ""
}

func TestServeSuppliedTokenAndDemo(t *testing.T) {
	data := t.TempDir()
	const tok = "vt_supplied-for-tests-0123456789"
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok}, "--demo")
	if _, err := os.Stat(filepath.Join(data, "bootstrap-token")); !os.IsNotExist(err) {
		t.Fatalf("a supplied token must not be written to disk: %v", err)
	}
	code, body := srv.do("GET", "/api/v1/events?limit=1000&order=seq", tok, "")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	var page struct {
		Data []json.RawMessage `json:"data"`
	}
	json.Unmarshal(body, &page)
	if len(page.Data) != 1000 {
		t.Fatalf("demo data: %d events on the first page", len(page.Data))
	}
	// Every category of the example events is there.
	for _, typ := range []string{"authentication.*", "board.*", "team.*", "billing.*", "integration.*", "approval.*", "agent.*", "ai.*", "task.*"} {
		code, body := srv.do("GET", "/api/v1/events?limit=1&type="+typ, tok, "")
		if code != 200 || !bytes.Contains(body, []byte(`"seq"`)) {
			t.Errorf("demo has no %s events: %d %s", typ, code, body)
		}
	}
	for _, d := range []string{"allowed", "blocked", "redacted"} {
		if _, body := srv.do("GET", "/api/v1/events?limit=1&decision="+d, tok, ""); !bytes.Contains(body, []byte(`"seq"`)) {
			t.Errorf("demo has no %s decisions", d)
		}
	}
	srv.stop()
	// A restart with --demo does not load it twice.
	srv = startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + tok}, "--demo")
	if !strings.Contains(srv.stderr.String(), "already loaded") {
		t.Errorf("demo reloaded: %s", srv.stderr)
	}
	srv.stop()
}

// TestTokensNeverInTheClear creates tokens through the API and the CLI,
// uses them, and then searches every file of the data directory and all
// the server printed for each of them.
func TestTokensNeverInTheClear(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	const boot = "vt_bootstrap-secret-for-this-test-0123456789"
	srv := startServer(t, data, []string{"VERITRAIL_BOOTSTRAP_TOKEN=" + boot}, "--log-level", "debug")
	secrets := []string{boot}
	for _, role := range []string{"admin", "auditor", "ingest", "security"} {
		code, b := srv.do("POST", "/api/v1/tokens", boot, `{"name":"t-`+role+`","role":"`+role+`","expires_in":"24h"}`)
		var tok struct{ Token string }
		json.Unmarshal(b, &tok)
		if code != 201 || tok.Token == "" {
			t.Fatalf("create %s: %d %s", role, code, b)
		}
		secrets = append(secrets, tok.Token)
	}
	out, _ := cli(t, "token", "create", "--org", "default", "--role", "auditor", "--data", data)
	secrets = append(secrets, lastLine(out))
	for _, s := range secrets {
		srv.do("GET", "/api/v1/me", s, "")
		srv.do("POST", "/api/v1/events", s, `{"type":"auth.login","actor":{"type":"user","id":"u"}}`)
		srv.do("GET", "/api/v1/events?limit=5", s, "")
	}
	// A bad token is not echoed either.
	srv.do("GET", "/api/v1/me", secrets[1]+"x", "")
	time.Sleep(1200 * time.Millisecond) // let the outbox and the last-used flush run
	srv.stop()

	var hay [][]byte
	hay = append(hay, []byte(srv.stdout.String()), []byte(srv.stderr.String()))
	files := 0
	filepath.Walk(data, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			b, _ := os.ReadFile(path)
			hay = append(hay, b)
			files++
		}
		return nil
	})
	if files < 3 {
		t.Fatalf("only %d files in the data directory", files)
	}
	for _, s := range secrets {
		for _, h := range hay {
			// Neither the token nor its secret part (without the prefix).
			if bytes.Contains(h, []byte(s)) || bytes.Contains(h, []byte(strings.TrimPrefix(s, "vt_"))) {
				t.Fatalf("a token appears in the clear in the data directory or the server's output")
			}
		}
	}
	if !strings.Contains(srv.stderr.String(), "request") {
		t.Fatal("the server logged nothing at debug level: the search above proved little")
	}
}
