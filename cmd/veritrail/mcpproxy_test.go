package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/veritrail/veritrail/mcp/mcptest"
)

// These tests put the real binary between a real MCP client (the official
// Go SDK) and a real MCP server (@modelcontextprotocol/server-everything
// from npm), with a real Veritrail server receiving the records.

const testPolicy = `{"name": "eng-default", "rules": [
  {"name": "no-env", "tool": "get-env", "action": "block", "reason": "the environment holds credentials"},
  {"name": "secrets", "detect": ["aws_access_key_id", "private_key"], "action": "redact", "reason": "credentials are masked"}
]}`

type toolCallRecord struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	SessionID string `json:"session_id"`
	AgentID   string `json:"agent_id"`
	Connector string `json:"connector"`
	Tool      string `json:"tool"`
	Outcome   string `json:"outcome"`
	Status    *int64 `json:"status"`
	Actor     struct {
		Type, ID, Email string
	} `json:"actor"`
	Context struct {
		UserAgent string `json:"user_agent"`
	} `json:"context"`
	Decision *struct {
		Action, Policy, Reason string
	} `json:"decision"`
	Content struct {
		Method    string         `json:"method"`
		Arguments map[string]any `json:"arguments"`
		Response  struct {
			Content []struct {
				Type, Text string
				SHA256     string `json:"sha256"`
			} `json:"content"`
		} `json:"response"`
		Error       map[string]any   `json:"error"`
		Attachments []map[string]any `json:"attachments"`
		Client      map[string]any   `json:"client"`
	} `json:"content"`
}

// toolCalls returns the agent.tool_call records, oldest first.
func toolCalls(t *testing.T, s *server, tok string) ([]toolCallRecord, string) {
	t.Helper()
	code, b := s.do("GET", "/api/v1/events?type=agent.tool_call&order=asc&limit=1000", tok, "")
	if code != 200 {
		t.Fatalf("list: %d %s", code, b)
	}
	var page struct {
		Data []toolCallRecord `json:"data"`
	}
	json.Unmarshal(b, &page)
	return page.Data, string(b)
}

// waitToolCalls waits until n records arrived.
func waitToolCalls(t *testing.T, s *server, tok string, n int) ([]toolCallRecord, string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs, raw := toolCalls(t, s, tok)
		if len(recs) >= n {
			return recs, raw
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records arrived:\n%s", len(recs), n, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func ingestToken(t *testing.T, data string) string {
	t.Helper()
	out, _ := cli(t, "token", "create", "--org", "default", "--role", "ingest", "--name", "mcp-gateway", "--data", data)
	return lastLine(out)
}

func ownerToken(t *testing.T, data string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(data, "bootstrap-token"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func text(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func callEcho(t *testing.T, cs *sdk.ClientSession, msg string) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"message": msg}})
	if err != nil {
		t.Fatalf("echo %q: %v", msg, err)
	}
	return text(t, res)
}

// checkBlocked calls get-env and checks the gateway's MCP error.
func checkBlocked(t *testing.T, cs *sdk.ClientSession) {
	t.Helper()
	_, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != -32010 || !strings.Contains(werr.Message, "the environment holds credentials") {
		t.Fatalf("get-env was not blocked with the policy's error: %v", err)
	}
}

func TestMCPProxyStdio(t *testing.T) {
	serverCmd := mcptest.StdioCommand(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, nil)
	owner, ingest := ownerToken(t, data), ingestToken(t, data)
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(testPolicy), 0o600)

	args := []string{"mcp-proxy", "--server", srv.url, "--connector", "everything", "--policy", policy,
		"--spool", filepath.Join(dir, "spool"), "--actor-id", "usr_5521", "--actor-email", "priya@example.com", "--hold-timeout", "5s", "--"}
	cmd := exec.Command(binary, append(args, serverCmd...)...)
	cmd.Env = append(os.Environ(), "VERITRAIL_TOKEN="+ingest) // the token from the environment, not argv
	var proxyErr syncBuffer
	cmd.Stderr = &proxyErr
	client := sdk.NewClient(&sdk.Implementation{Name: "veritrail-test-agent", Version: "1.0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v\n%s", err, proxyErr.String())
	}
	defer func() {
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", proxyErr.String())
		}
	}()

	// Tools listed through the proxy, as the server has them.
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	for _, want := range []string{"echo", "get-env", "get-tiny-image"} {
		if !slices.Contains(names, want) {
			t.Fatalf("tool %s not listed: %v", want, names)
		}
	}

	if got := callEcho(t, cs, "hello veritrail"); got != "Echo: hello veritrail" {
		t.Fatalf("echo answered %q", got)
	}
	checkBlocked(t, cs)
	// The key never reaches the server, nor the record.
	if got := callEcho(t, cs, "my key is AKIAIOSFODNN7EXAMPLE ok"); got != "Echo: my key is [REDACTED:aws_access_key_id] ok" {
		t.Fatalf("echo of a key answered %q", got)
	}
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "get-tiny-image", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}

	recs, raw := waitToolCalls(t, srv, owner, 4)
	if strings.Contains(raw, "AKIAIOSFODNN7EXAMPLE") {
		t.Fatalf("the AWS key was recorded:\n%s", raw)
	}
	echo, blocked, redacted, image := recs[0], recs[1], recs[2], recs[3]
	if echo.Tool != "echo" || echo.Connector != "everything" || echo.Outcome != "success" || echo.Actor.ID != "usr_5521" ||
		echo.Actor.Email != "priya@example.com" || echo.AgentID != "veritrail-test-agent" || echo.Context.UserAgent != "veritrail-test-agent/1.0" ||
		echo.Content.Method != "tools/call" || echo.Content.Arguments["message"] != "hello veritrail" ||
		len(echo.Content.Response.Content) != 1 || echo.Content.Response.Content[0].Text != "Echo: hello veritrail" ||
		echo.Decision == nil || echo.Decision.Action != "allowed" || echo.Decision.Policy != "eng-default" || !strings.HasPrefix(echo.SessionID, "mcp-") {
		t.Fatalf("echo record: %+v", echo)
	}
	if blocked.Tool != "get-env" || blocked.Outcome != "failure" || blocked.Status == nil || *blocked.Status != -32010 ||
		blocked.Decision == nil || blocked.Decision.Action != "blocked" || blocked.Decision.Policy != "no-env" ||
		blocked.Decision.Reason != "the environment holds credentials" {
		t.Fatalf("blocked record: %+v", blocked)
	}
	if redacted.Decision == nil || redacted.Decision.Action != "redacted" || redacted.Decision.Policy != "secrets" ||
		redacted.Content.Arguments["message"] != "my key is [REDACTED:aws_access_key_id] ok" {
		t.Fatalf("redacted record: %+v", redacted)
	}
	if len(image.Content.Attachments) != 1 || image.Content.Attachments[0]["mime"] != "image/png" || len(image.Content.Attachments[0]["sha256"].(string)) != 64 {
		t.Fatalf("image record: %+v", image.Content)
	}

	// The Veritrail server goes away mid-session (kill -9): calls go on,
	// their records wait in the spool and arrive once it is back.
	addr := strings.TrimPrefix(srv.url, "http://")
	srv.cmd.Process.Kill()
	<-srv.exited
	for i := range 3 {
		if got := callEcho(t, cs, fmt.Sprintf("while down %d", i)); got != fmt.Sprintf("Echo: while down %d", i) {
			t.Fatalf("echo while the server was down: %q", got)
		}
	}
	checkBlocked(t, cs)
	srv2 := startServer(t, data, nil, "--addr", addr)
	recs, _ = waitToolCalls(t, srv2, owner, 8)
	var down []string
	for _, r := range recs[4:] {
		if r.Tool == "echo" {
			down = append(down, r.Content.Arguments["message"].(string))
		}
	}
	if len(recs) != 8 || strings.Join(down, ",") != "while down 0,while down 1,while down 2" || recs[7].Decision.Action != "blocked" {
		t.Fatalf("records after the restart: %d %v", len(recs), down)
	}
	// Each record once: resends after the restart are recognized.
	ids := map[string]bool{}
	for _, r := range recs {
		if ids[r.ID] {
			t.Fatalf("record %s twice", r.ID)
		}
		ids[r.ID] = true
	}
	if err := cs.Close(); err != nil {
		t.Logf("close: %v", err)
	}
}

// bearer adds a token to every request.
type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

func TestMCPProxyHTTP(t *testing.T) {
	upstream := mcptest.StartHTTP(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, nil)
	owner, ingest := ownerToken(t, data), ingestToken(t, data)
	policy := filepath.Join(dir, "policy.json")
	os.WriteFile(policy, []byte(testPolicy), 0o600)
	// The agent's bearer token maps to a person; only its SHA-256 is on disk.
	const agentToken = "agent-token-for-dana"
	ids := filepath.Join(dir, "identities.json")
	os.WriteFile(ids, []byte(`[{"token_sha256": "`+sha256Hex(agentToken)+`", "actor": {"type": "user", "id": "usr_dana", "email": "dana@example.com"}}]`), 0o600)

	listen := freeAddr(t)
	cmd := exec.Command(binary, "mcp-proxy", "--server", srv.url, "--connector", "everything-http", "--policy", policy,
		"--spool", filepath.Join(dir, "spool"), "--listen", listen, "--upstream", upstream, "--identities", ids)
	cmd.Env = append(os.Environ(), "VERITRAIL_TOKEN="+ingest)
	startProcess(t, cmd, "proxy")
	endpoint := "http://" + listen + "/mcp"
	waitListening(t, listen)

	// Without a known token: 401, nothing reaches the server.
	resp, err := http.Post(endpoint, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := sdk.NewClient(&sdk.Implementation{Name: "veritrail-http-agent", Version: "2.0"}, nil)
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: endpoint,
		HTTPClient: &http.Client{Transport: bearer{agentToken, http.DefaultTransport}}}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil || len(tools.Tools) < 5 {
		t.Fatalf("tools: %v %v", tools, err)
	}
	if got := callEcho(t, cs, "over http"); got != "Echo: over http" {
		t.Fatalf("echo: %q", got)
	}
	checkBlocked(t, cs)
	if got := callEcho(t, cs, "key AKIAIOSFODNN7EXAMPLE"); got != "Echo: key [REDACTED:aws_access_key_id]" {
		t.Fatalf("echo of a key: %q", got)
	}
	recs, raw := waitToolCalls(t, srv, owner, 3)
	if strings.Contains(raw, "AKIAIOSFODNN7EXAMPLE") || strings.Contains(raw, agentToken) {
		t.Fatalf("a secret was recorded:\n%s", raw)
	}
	sid := cs.ID()
	for i, r := range recs {
		if r.Actor.ID != "usr_dana" || r.Actor.Email != "dana@example.com" || r.Connector != "everything-http" || (sid != "" && r.SessionID != sid) {
			t.Fatalf("record %d: %+v (session %q)", i, r, sid)
		}
	}
	if recs[0].Content.Response.Content[0].Text != "Echo: over http" || recs[1].Decision.Action != "blocked" || recs[2].Decision.Action != "redacted" {
		t.Fatalf("records: %s", raw)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get((&url.URL{Scheme: "http", Host: addr, Path: "/"}).String())
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
