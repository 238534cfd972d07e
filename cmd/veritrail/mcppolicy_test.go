package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/veritrail/veritrail/mcp/mcptest"
)

// putMCPPolicy stores policy (JSON, or null) in the organization's
// settings, keeping the other settings as they are.
func putMCPPolicy(t *testing.T, s *server, owner, policy string) {
	t.Helper()
	code, b := s.do("GET", "/api/v1/settings", owner, "")
	var st map[string]any
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("settings: %d %s", code, b)
	}
	delete(st, "ai_interaction_logs_enabled_at")
	st["mcp_policy"] = json.RawMessage(policy)
	body, _ := json.Marshal(st)
	if code, b := s.do("PUT", "/api/v1/settings", owner, string(body)); code != 200 {
		t.Fatalf("put settings: %d %s", code, b)
	}
}

// proxyClient starts mcp-proxy (stdio, around server-everything) with args
// and connects the Go SDK client through it.
func proxyClient(t *testing.T, token string, args ...string) (*sdk.ClientSession, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(binary, append(append([]string{"mcp-proxy"}, args...), append([]string{"--"}, mcptest.StdioCommand(t)...)...)...)
	cmd.Env = append(os.Environ(), "VERITRAIL_TOKEN="+token)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "policy-test-agent", Version: "1.0"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect through the proxy: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		cs.Close()
		if t.Failed() {
			t.Logf("proxy stderr:\n%s", stderr.String())
		}
	})
	return cs, stderr
}

// callGetEnv calls get-env and returns the gateway's block error, if any.
func callGetEnv(t *testing.T, cs *sdk.ClientSession) *jsonrpc.Error {
	t.Helper()
	_, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
	var werr *jsonrpc.Error
	if errors.As(err, &werr) {
		return werr
	}
	if err != nil {
		t.Fatalf("get-env: %v", err)
	}
	return nil
}

// TestMCPProxyServerPolicy: with --policy server the gateway enforces the
// organization's policy held by the Veritrail server, follows its changes,
// keeps the last one for starts while the server is unreachable, and, fail
// closed with none kept, blocks every call.
func TestMCPProxyServerPolicy(t *testing.T) {
	mcptest.StdioCommand(t) // skips loudly without server-everything
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, nil)
	owner, ingest := ownerToken(t, data), ingestToken(t, data)
	putMCPPolicy(t, srv, owner, testPolicy)
	spool := filepath.Join(dir, "spool")

	cs, _ := proxyClient(t, ingest, "--server", srv.url, "--connector", "everything", "--policy", "server",
		"--policy-refresh", "100ms", "--spool", spool, "--actor-id", "usr_9")
	if got := callEcho(t, cs, "AKIAIOSFODNN7EXAMPLE"); got != "Echo: [REDACTED:aws_access_key_id]" {
		t.Fatalf("the server's redact rule not applied: %q", got)
	}
	checkBlocked(t, cs)

	// The policy changes on the server: get-env allowed from the next
	// refresh on, recorded under the new policy.
	putMCPPolicy(t, srv, owner, `{"name": "eng-v2", "rules": [{"name": "no-secrets", "tool": "get-secret", "action": "block"}]}`)
	deadline := time.Now().Add(20 * time.Second)
	for callGetEnv(t, cs) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the proxy still blocks get-env 20 s after the policy changed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	var recs []toolCallRecord
	var raw string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		recs, raw = toolCalls(t, srv, owner)
		if last := recs[len(recs)-1]; last.Tool == "get-env" && last.Decision != nil && last.Decision.Action == "allowed" {
			if last.Decision.Policy != "eng-v2" {
				t.Fatalf("get-env after the change: %+v", last)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the allowed get-env was not recorded:\n%s", raw)
		}
	}
	if recs[0].Decision == nil || recs[0].Decision.Action != "redacted" || recs[1].Decision.Action != "blocked" || recs[1].Decision.Policy != "no-env" {
		t.Fatalf("records under the first policy:\n%s", raw)
	}
	cs.Close()
	n := len(recs)

	// The server goes away. A proxy started now enforces the policy kept
	// in its spool (eng-v2: get-env allowed, get-secret refused by name).
	addr := strings.TrimPrefix(srv.url, "http://")
	srv.cmd.Process.Kill()
	<-srv.exited
	cs2, stderr := proxyClient(t, ingest, "--server", srv.url, "--connector", "everything", "--policy", "server",
		"--spool", spool, "--actor-id", "usr_9", "--fail", "closed")
	if werr := callGetEnv(t, cs2); werr != nil {
		t.Fatalf("kept policy not enforced: get-env blocked: %v", werr)
	}
	if !strings.Contains(stderr.String(), "enforcing the policy kept from an earlier fetch") {
		t.Fatalf("no word of the kept policy:\n%s", stderr.String())
	}
	cs2.Close()

	// Fail closed, no policy kept, server unreachable: every call blocked.
	cs3, _ := proxyClient(t, ingest, "--server", srv.url, "--connector", "everything", "--policy", "server",
		"--spool", filepath.Join(dir, "spool3"), "--fail", "closed")
	_, err := cs3.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}})
	var werr *jsonrpc.Error
	if !errors.As(err, &werr) || werr.Code != -32010 || !strings.Contains(werr.Message, "could not be fetched") {
		t.Fatalf("fail closed without a policy: %v", err)
	}
	cs3.Close()

	// Back up: the records made meanwhile arrive with the next proxy on
	// that spool (the kept-policy proxy's call, allowed under eng-v2).
	srv2 := startServer(t, data, nil, "--addr", addr)
	proxyClient(t, ingest, "--server", srv.url, "--policy", "server", "--spool", spool)
	recs, raw = waitToolCalls(t, srv2, owner, n+1)
	if r := recs[n]; r.Tool != "get-env" || r.Decision == nil || r.Decision.Policy != "eng-v2" {
		t.Fatalf("record made under the kept policy: %+v\n%s", r, raw)
	}
}

// TestMCPProxyActorChecked: an actor every record of which the server
// would refuse stops the proxy at start, naming the field.
func TestMCPProxyActorChecked(t *testing.T) {
	err := runMCPProxy(context.Background(), []string{"--server", "http://127.0.0.1:1", "--token", "t",
		"--spool", t.TempDir(), "--actor-type", "robot", "--actor-id", "r2", "--", "true"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"actor.type"`) || !strings.Contains(err.Error(), "--actor-type") {
		t.Fatalf("got %v", err)
	}
}
