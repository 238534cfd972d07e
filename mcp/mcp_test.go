package mcp

import (
	"context"
	"encoding/json"

	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	veritrail "github.com/veritrail/veritrail"
)

// memRecorder keeps records in memory; block makes the next Append wait
// for its context (a disk that hangs once).
type memRecorder struct {
	mu     sync.Mutex
	events []*veritrail.Event
	block  atomic.Bool
}

func (m *memRecorder) Append(ctx context.Context, evs ...*veritrail.Event) error {
	if m.block.CompareAndSwap(true, false) {
		<-ctx.Done()
		m.mu.Lock()
		m.events = append(m.events, evs...) // it lands late
		m.mu.Unlock()
		return ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events = append(m.events, evs...)
	return nil
}

func (m *memRecorder) all() []*veritrail.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*veritrail.Event(nil), m.events...)
}

func (m *memRecorder) wait(t *testing.T, n int) []*veritrail.Event {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if evs := m.all(); len(evs) >= n {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records", len(m.all()), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPolicyParse(t *testing.T) {
	for body, want := range map[string]string{
		`{"rules":[{"action":"deny"}]}`:                               "rules[0].action",
		`{"rules":[{"action":"redact"}]}`:                             "rules[0].action: a redact rule needs",
		`{"rules":[{"action":"block","match":"("}]}`:                  "rules[0].match",
		`{"rules":[{"action":"block","detect":["password"]}]}`:        "rules[0].detect[0]",
		`{"rules":[{"action":"block","method":"tools/list"}]}`:        "rules[0].method",
		`{"default":"maybe"}`:                                         "default",
		`{"rules":[{"action":"block","tool":"x","unknown_field":1}]}`: "unknown field",
	} {
		if _, err := ParsePolicy([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
}

func TestPolicyEvaluate(t *testing.T) {
	p, err := ParsePolicy([]byte(`{"name":"eng","rules":[
		{"name":"exports","tool":"export_*","actor":"*@contractor.example","action":"block","reason":"contractors may not export"},
		{"name":"mask","detect":["email"],"action":"redact"},
		{"name":"big","tool":"export_*","match":"^\\d{5,}$","action":"block","reason":"bulk export"},
		{"name":"ok-reads","method":"resources/read","action":"allow"},
		{"name":"github-only","connector":"github","tool":"delete_*","action":"block","reason":"no deletes"}
	]}`))
	if err != nil {
		t.Fatal(err)
	}
	args := func(s string) any {
		var v any
		json.Unmarshal([]byte(s), &v)
		return v
	}
	for _, tc := range []struct {
		call             Call
		action, policy   string
		redactor, reason bool
	}{
		{Call{Connector: "crm", Method: MethodToolsCall, Tool: "export_contacts", Actor: veritrail.Actor{Email: "eve@contractor.example"}}, "blocked", "exports", false, true},
		{Call{Connector: "crm", Method: MethodToolsCall, Tool: "export_contacts", Actor: veritrail.Actor{Email: "dana@example.com"}, Arguments: args(`{"limit":"50000"}`)}, "blocked", "big", true, true},
		{Call{Connector: "crm", Method: MethodToolsCall, Tool: "export_contacts", Actor: veritrail.Actor{Email: "dana@example.com"}, Arguments: args(`{"limit":"50"}`)}, "allowed", "eng", true, true},
		{Call{Connector: "fs", Method: MethodResourcesRead, Tool: "file:///etc/hosts"}, "allowed", "ok-reads", true, false},
		{Call{Connector: "github", Method: MethodToolsCall, Tool: "delete_repo"}, "blocked", "github-only", true, false},
		{Call{Connector: "gitlab", Method: MethodToolsCall, Tool: "delete_repo"}, "allowed", "eng", true, false},
	} {
		v := p.Evaluate(&tc.call)
		if v.Action != tc.action || v.Policy != tc.policy || (v.Redactor != nil) != tc.redactor || (tc.reason && v.Reason == "") {
			t.Errorf("%+v: got %+v", tc.call, v)
		}
	}
	// Default block.
	p2, _ := ParsePolicy([]byte(`{"default":"block","rules":[{"tool":"echo","action":"allow"}]}`))
	if v := p2.Evaluate(&Call{Tool: "rm"}); v.Action != "blocked" || v.Policy != "policy" {
		t.Errorf("default block: %+v", v)
	}
}

// upstreamServer is an in-process MCP server on the Go SDK.
func upstreamServer(t *testing.T, opts *sdk.StreamableHTTPOptions, calls *atomic.Int64) *httptest.Server {
	t.Helper()
	server := sdk.NewServer(&sdk.Implementation{Name: "go-upstream", Version: "1.0"}, nil)
	type in struct {
		Message string `json:"message"`
	}
	sdk.AddTool(server, &sdk.Tool{Name: "echo", Description: "echoes"}, func(ctx context.Context, req *sdk.CallToolRequest, a in) (*sdk.CallToolResult, any, error) {
		calls.Add(1)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "Echo: " + a.Message}}}, nil, nil
	})
	sdk.AddTool(server, &sdk.Tool{Name: "secret", Description: "leaks"}, func(ctx context.Context, req *sdk.CallToolRequest, a in) (*sdk.CallToolResult, any, error) {
		calls.Add(1)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"}}}, nil, nil
	})
	srv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return server }, opts))
	t.Cleanup(srv.Close)
	return srv
}

func gatewayFront(t *testing.T, upstream string, rec Recorder, policy string) *httptest.Server {
	t.Helper()
	p, err := ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGateway(Config{Connector: "go-upstream", Policy: p, Recorder: rec, Transport: "http", Upstream: upstream})
	proxy, err := NewHTTPProxy(g, upstream, HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	return front
}

const unitPolicy = `{"rules":[{"name":"secrets","detect":["aws_access_key_id"],"action":"redact"},{"name":"no-rm","tool":"rm","action":"block","reason":"no"}]}`

// TestStatelessProtocol drives the 2026-07-28 stateless form (server/discover,
// per-request _meta, Mcp-Method / Mcp-Name headers, no session) through the
// proxy, with JSON and with SSE answers.
func TestStatelessProtocol(t *testing.T) {
	for _, jsonResp := range []bool{true, false} {
		var calls atomic.Int64
		up := upstreamServer(t, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: jsonResp}, &calls)
		rec := &memRecorder{}
		front := gatewayFront(t, up.URL, rec, unitPolicy)
		ctx := context.Background()
		client := sdk.NewClient(&sdk.Implementation{Name: "stateless-agent", Version: "3.1"}, nil)
		cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: front.URL, DisableStandaloneSSE: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
			t.Fatalf("negotiated %s, want the stateless 2026-07-28", v)
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi"}})
		if err != nil || res.Content[0].(*sdk.TextContent).Text != "Echo: hi" {
			t.Fatalf("echo: %v %v", res, err)
		}
		// A secret in the result is masked before the agent sees it.
		res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "secret", Arguments: map[string]any{"message": ""}})
		if err != nil || res.Content[0].(*sdk.TextContent).Text != "AWS_ACCESS_KEY_ID=[REDACTED:aws_access_key_id]" {
			t.Fatalf("secret: %v %v", res, err)
		}
		cs.Close()
		evs := rec.wait(t, 2)
		echo, secret := evs[0], evs[1]
		if echo.Tool != "echo" || echo.SessionID != "" || echo.AgentID != "stateless-agent" || echo.Context.UserAgent != "stateless-agent/3.1" ||
			!strings.Contains(string(echo.Content), `"protocol_version":"2026-07-28"`) || !strings.Contains(string(echo.Content), `"text":"Echo: hi"`) {
			t.Fatalf("echo record: %+v %s", echo, echo.Content)
		}
		if secret.Decision == nil || secret.Decision.Action != "redacted" || strings.Contains(string(secret.Content), "AKIAIOSFODNN7EXAMPLE") ||
			!strings.Contains(string(secret.Content), `"path":"response.content[0].text"`) {
			t.Fatalf("secret record: %+v %s", secret.Decision, secret.Content)
		}
	}
}

// TestHeaderMismatch: the body decides, and a header that disagrees with
// it (which could route a blocked call past a rule) is refused.
func TestHeaderMismatch(t *testing.T) {
	var calls atomic.Int64
	up := upstreamServer(t, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true}, &calls)
	rec := &memRecorder{}
	front := gatewayFront(t, up.URL, rec, unitPolicy)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"rm","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"x","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`
	for _, tc := range []struct {
		method, name string
		status       int
		code         float64
	}{
		{"tools/call", "echo", 400, CodeHeaderMismatch},
		{"tools/list", "rm", 400, CodeHeaderMismatch},
		{"tools/call", "=?base64?cm0=?=", 200, CodeBlocked}, // "rm", base64-wrapped: consistent, then blocked
	} {
		req, _ := http.NewRequest("POST", front.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", tc.method)
		req.Header.Set("Mcp-Name", tc.name)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Error struct {
				Code float64 `json:"code"`
			} `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != tc.status || m.Error.Code != tc.code {
			t.Errorf("%s/%s: %d %v", tc.method, tc.name, resp.StatusCode, m.Error.Code)
		}
	}
	if calls.Load() != 0 {
		t.Fatal("a call reached the server")
	}
	if evs := rec.all(); len(evs) != 1 || evs[0].Decision.Action != "blocked" {
		t.Fatalf("records: %v", evs)
	}
}

// TestFailModes: a record that is not durable in time lets the answer go
// (fail-open) or withholds it (fail-closed), and says so in a record.
func TestFailModes(t *testing.T) {
	for _, closed := range []bool{false, true} {
		rec := &memRecorder{}
		g := NewGateway(Config{Recorder: rec, HoldTimeout: 50 * time.Millisecond, FailClosed: closed})
		s := NewSession("s1", veritrail.Actor{Type: "user", ID: "u1"})
		fwd, reply := g.FromClient(s, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"x"}}}`))
		if fwd == nil || reply != nil {
			t.Fatal("not forwarded")
		}
		rec.block.Store(true)
		out := g.FromServer(s, []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"Echo: x"}]}}`), 0)
		var m message
		json.Unmarshal(out, &m)
		if closed != (m.Error != nil && m.Error.Code == CodeAuditUnavailable) || closed == (len(m.Result) > 0) {
			t.Fatalf("closed=%v: answered %s", closed, out)
		}
		evs := rec.wait(t, 2)
		var note *veritrail.Event
		for _, e := range evs {
			if e.Type == "agent.capture_delayed" {
				note = e
			}
		}
		if note == nil || note.Target.ID != evs[0].ID || (closed && note.Decision.Action != "blocked") || (!closed && note.Decision.Action != "allowed") {
			t.Fatalf("closed=%v: records %+v", closed, evs)
		}
	}
}

// TestStdioEnd: a call without an answer when the server exits is
// recorded, not lost; a cancelled one too.
func TestUnansweredCalls(t *testing.T) {
	rec := &memRecorder{}
	g := NewGateway(Config{Recorder: rec})
	s := NewSession("s1", veritrail.Actor{Type: "user", ID: "u1"})
	g.FromClient(s, []byte(`{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"slow"}}`))
	g.FromClient(s, []byte(`{"jsonrpc":"2.0","id":"b","method":"resources/read","params":{"uri":"file:///x"}}`))
	g.FromClient(s, []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"a","reason":"user pressed stop"}}`))
	g.End(s, "the MCP server exited")
	evs := rec.all()
	if len(evs) != 2 || !strings.Contains(string(evs[0].Content), `"cancelled":true`) || evs[1].Tool != "file:///x" ||
		evs[1].Target.Type != "resource" || !strings.Contains(string(evs[1].Content), "no answer: the MCP server exited") {
		for _, e := range evs {
			t.Logf("%+v %s", e, e.Content)
		}
		t.Fatal("unanswered calls not recorded")
	}
	// Batches carrying calls are refused whole, and the calls recorded.
	_, reply := g.FromClient(s, []byte(`[{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo"}}]`))
	if !strings.Contains(string(reply), `"code":-32600`) || len(rec.all()) != 3 {
		t.Fatalf("batch: %s", reply)
	}
}

// TestRecordedActorAndIP: what the server would refuse in a configured
// actor is refused at start, and a peer's IPv6 zone never reaches a record.
func TestRecordedActorAndIP(t *testing.T) {
	for a, want := range map[veritrail.Actor]string{
		{Type: "robot", ID: "r"}:                     `"actor.type"`,
		{Type: "user"}:                               "needs at least one of id, email, name",
		{Type: "user", ID: strings.Repeat("x", 300)}: `"actor.id"`,
	} {
		if err := CheckActor(a); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %s", a, err, want)
		}
	}
	if err := CheckActor(veritrail.Actor{Type: "User", Email: "dana@example.com"}); err != nil {
		t.Errorf("valid actor refused: %v", err)
	}
	for addr, want := range map[string]string{"[fe80::1%eth0]:4000": "fe80::1", "[::ffff:10.0.0.1]:1": "10.0.0.1", "198.51.100.7:80": "198.51.100.7", "@": ""} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		if got := clientIP(r); got != want {
			t.Errorf("clientIP(%s) = %q, want %q", addr, got, want)
		}
	}
}
