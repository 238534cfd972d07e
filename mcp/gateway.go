package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/dlp"
)

// Recorder keeps records. Append MUST return nil only once the events are
// durable (they will reach the Veritrail server even if this process dies),
// and SHOULD return when ctx ends even if the write goes on. *Spool is the
// Recorder of the command.
type Recorder interface {
	Append(ctx context.Context, events ...*veritrail.Event) error
}

// Config configures a Gateway.
type Config struct {
	// Connector names the MCP server in records; empty: the name the
	// server gives in its initialize answer (serverInfo.name).
	Connector string
	// AgentID is recorded as agent_id; empty: the client's name
	// (clientInfo.name).
	AgentID string
	// Policy decides calls; nil allows everything and records no decision.
	// SetPolicy replaces it while the gateway runs (a policy held by the
	// server, refreshed).
	Policy *Policy
	// Recorder keeps the records.
	Recorder Recorder
	// HoldTimeout is the longest a call waits for its record to be durable
	// before the answer goes back (default 2s).
	HoldTimeout time.Duration
	// FailClosed withholds the answer of a call whose record is not durable
	// within HoldTimeout (the agent gets CodeAuditUnavailable); otherwise
	// (fail-open) the answer goes back and the record follows when it can.
	// Either way an agent.capture_delayed event records it.
	FailClosed bool
	// KeepAttachmentBytes keeps the base64 bytes of images, audio and
	// blobs in records; otherwise only mime, size and SHA-256.
	KeepAttachmentBytes bool
	// MaxRecordBytes bounds one record (default 200 KiB, under the
	// server's 256 KiB event limit): larger arguments or results are
	// replaced by their size and SHA-256.
	MaxRecordBytes int
	// Transport ("stdio" or "http") and Upstream (the command or URL) are
	// recorded in content.capture.
	Transport, Upstream string
	Logger              *slog.Logger
	Now                 func() time.Time
}

// Gateway is the transport-independent core of the proxy: it inspects
// messages in both directions, applies the policy, and records calls.
type Gateway struct {
	cfg        Config
	log        *slog.Logger
	serverName atomic.Value // string: serverInfo.name from initialize
	policy     atomic.Pointer[Policy]
}

// NewGateway returns a gateway for cfg.
func NewGateway(cfg Config) *Gateway {
	if cfg.HoldTimeout <= 0 {
		cfg.HoldTimeout = 2 * time.Second
	}
	if cfg.MaxRecordBytes <= 0 {
		cfg.MaxRecordBytes = 200 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &Gateway{cfg: cfg, log: cfg.Logger}
	g.serverName.Store("")
	g.policy.Store(cfg.Policy)
	return g
}

// SetPolicy makes p decide the calls that arrive from now on (nil: allow
// everything, record no decision). Calls already decided keep their
// verdict.
func (g *Gateway) SetPolicy(p *Policy) { g.policy.Store(p) }

// Session is one MCP conversation: a stdio connection, an HTTP session
// (Mcp-Session-Id), or a single stateless HTTP request.
type Session struct {
	ID    string
	Actor veritrail.Actor
	IP    string

	mu       sync.Mutex
	client   *implementation
	server   *implementation
	protocol string
	pending  map[string]*call
	lastUsed time.Time
}

// NewSession starts a session.
func NewSession(id string, actor veritrail.Actor) *Session {
	return &Session{ID: id, Actor: actor, pending: map[string]*call{}, lastUsed: time.Now()}
}

// call is a governed request on its way.
type call struct {
	id       json.RawMessage
	start    time.Time
	method   string
	tool     string
	args     any // as recorded (masked)
	verdict  *Verdict
	masked   []dlp.Finding // masks applied, arguments and result
	trace    map[string]any
	client   *implementation
	protocol string
}

// FromClient inspects one message (one line, or one HTTP body) from the
// client. It returns what to forward to the server (nil: nothing) and what
// to answer the client instead (nil: nothing), e.g. a blocked call's error.
func (g *Gateway) FromClient(s *Session, raw []byte) (forward, reply []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '[' {
		return g.batchFromClient(s, raw)
	}
	var m message
	if err := json.Unmarshal(raw, &m); err != nil {
		return raw, nil // not ours to judge: the server answers it
	}
	return g.fromClient(s, &m, raw)
}

// fromClient is FromClient for a single message already decoded from raw
// (trimmed).
func (g *Gateway) fromClient(s *Session, m *message, raw []byte) (forward, reply []byte) {
	switch {
	case m.Method == methodInitialize && m.isRequest():
		var p initParams
		json.Unmarshal(m.Params, &p)
		s.mu.Lock()
		s.client, s.protocol = p.ClientInfo, p.ProtocolVersion
		s.mu.Unlock()
	case m.Method == methodCancelled:
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
			Reason    string          `json:"reason"`
		}
		json.Unmarshal(m.Params, &p)
		if c := s.take(p.RequestID); c != nil {
			g.finish(s, c, nil, &rpcError{Code: 0, Message: "cancelled by the client: " + p.Reason}, 0, "cancelled")
		}
	case governed(m.Method) && m.isRequest():
		return g.governedCall(s, m, raw)
	}
	return raw, nil
}

func (g *Gateway) batchFromClient(s *Session, raw []byte) (forward, reply []byte) {
	var items []message
	if json.Unmarshal(raw, &items) != nil {
		return raw, nil
	}
	var refused bool
	for i := range items {
		if governed(items[i].Method) && items[i].isRequest() {
			refused = true
		}
	}
	if !refused {
		return raw, nil
	}
	// Batches (gone since protocol 2025-06-18) are not inspected call by
	// call: refuse them whole, and record each call as blocked.
	var replies []json.RawMessage
	for i := range items {
		m := &items[i]
		if !m.isRequest() {
			continue
		}
		reason := "sent in a JSON-RPC batch, which the Veritrail gateway refuses; send calls one by one"
		if governed(m.Method) {
			c := g.newCall(s, m)
			c.verdict = &Verdict{Action: veritrail.DecisionBlocked, Policy: "veritrail-gateway", Reason: reason}
			g.finish(s, c, nil, &rpcError{Code: codeInvalidRequest, Message: reason}, 0, "")
		}
		replies = append(replies, errorResponse(m.ID, codeInvalidRequest, reason, nil))
	}
	b, _ := json.Marshal(replies)
	return nil, b
}

func (g *Gateway) newCall(s *Session, m *message) *call {
	var p callParams
	json.Unmarshal(m.Params, &p)
	c := &call{id: m.ID, start: g.cfg.Now(), method: m.Method}
	switch m.Method {
	case MethodResourcesRead:
		c.tool = p.URI
	default:
		c.tool = p.Name
	}
	if len(p.Arguments) > 0 && string(p.Arguments) != "null" {
		if v, err := dlp.Decode(p.Arguments); err == nil {
			c.args = v
		} else {
			c.args = string(p.Arguments)
		}
	}
	c.trace = traceOf(p.Meta)
	s.mu.Lock()
	c.client, c.protocol = s.client, s.protocol
	s.mu.Unlock()
	// The stateless protocol (2026-07-28) says who the client is on every
	// request.
	if ci, ok := p.Meta[metaClientInfo].(map[string]any); ok {
		name, _ := ci["name"].(string)
		version, _ := ci["version"].(string)
		c.client = &implementation{Name: name, Version: version}
	}
	if v, ok := p.Meta[metaProtocolVersion].(string); ok {
		c.protocol = v
	}
	return c
}

// traceOf keeps the W3C trace context a client put in _meta.
func traceOf(meta map[string]any) map[string]any {
	var t map[string]any
	for _, k := range []string{"traceparent", "tracestate", "baggage"} {
		if v, ok := meta[k].(string); ok && v != "" {
			if t == nil {
				t = map[string]any{}
			}
			t[k] = v
			if k == "traceparent" {
				if parts := strings.Split(v, "-"); len(parts) == 4 {
					t["trace_id"], t["span_id"] = parts[1], parts[2]
				}
			}
		}
	}
	return t
}

func (g *Gateway) connector() string {
	if g.cfg.Connector != "" {
		return g.cfg.Connector
	}
	if n, _ := g.serverName.Load().(string); n != "" {
		return n
	}
	return "mcp"
}

func (g *Gateway) governedCall(s *Session, m *message, raw []byte) (forward, reply []byte) {
	c := g.newCall(s, m)
	if p := g.policy.Load(); p != nil {
		c.verdict = p.Evaluate(&Call{Connector: g.connector(), Method: c.method, Tool: c.tool, Actor: s.Actor, Arguments: c.args})
	}
	forward = raw
	if v := c.verdict; v != nil && v.Redactor != nil && c.args != nil {
		masked, fs := v.Redactor.RedactValue(c.args, "arguments")
		if len(fs) > 0 {
			c.args, c.masked = masked, fs
			if b, err := rewriteArguments(raw, masked); err == nil {
				forward = b
			} else {
				// Never forward what should have been masked.
				c.verdict = &Verdict{Action: veritrail.DecisionBlocked, Policy: v.RedactPolicy, Reason: "the arguments could not be masked: " + err.Error()}
			}
		}
	}
	if c.verdict != nil && c.verdict.Action == veritrail.DecisionBlocked {
		msg := fmt.Sprintf("blocked by policy %s: %s", c.verdict.Policy, c.verdict.Reason)
		g.finish(s, c, nil, &rpcError{Code: CodeBlocked, Message: msg}, 0, "")
		return nil, errorResponse(m.ID, CodeBlocked, msg, map[string]string{"policy": c.verdict.Policy, "reason": c.verdict.Reason})
	}
	s.mu.Lock()
	s.pending[idKey(m.ID)] = c
	s.lastUsed = time.Now()
	s.mu.Unlock()
	return forward, nil
}

// rewriteArguments replaces params.arguments of a request, keeping every
// other member as it was.
func rewriteArguments(raw []byte, args any) ([]byte, error) {
	var msg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, err
	}
	var params map[string]json.RawMessage
	if err := json.Unmarshal(msg["params"], &params); err != nil {
		return nil, err
	}
	a, err := dlp.Encode(args)
	if err != nil {
		return nil, err
	}
	params["arguments"] = a
	if msg["params"], err = json.Marshal(params); err != nil {
		return nil, err
	}
	return json.Marshal(msg)
}

func (s *Session) take(id json.RawMessage) *call {
	if len(id) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := idKey(id)
	c := s.pending[k]
	delete(s.pending, k)
	return c
}

// Pending reports how many governed calls await their answer.
func (s *Session) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// FromServer inspects one message from the server and returns what to
// pass to the client (the message itself, a masked copy, or — failing
// closed — an error in its place). httpStatus is the upstream's HTTP
// status (0 on stdio).
func (g *Gateway) FromServer(s *Session, raw []byte, httpStatus int) []byte {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if len(trimmed) > 0 && trimmed[0] == '[' {
			return g.batchFromServer(s, raw, httpStatus)
		}
		return raw
	}
	// Cheap test first: only responses (no "method") can answer a call.
	var m message
	if err := json.Unmarshal(trimmed, &m); err != nil || !m.isResponse() {
		return raw
	}
	c := s.take(m.ID)
	if c == nil {
		if len(m.Result) > 0 && bytes.Contains(m.Result, []byte(`"serverInfo"`)) {
			var ir initResult
			if json.Unmarshal(m.Result, &ir) == nil && ir.ServerInfo != nil {
				s.mu.Lock()
				s.server = ir.ServerInfo
				s.mu.Unlock()
				g.serverName.CompareAndSwap("", ir.ServerInfo.Name)
			}
		}
		return raw
	}
	out := raw
	// Decoded once, for the masks and for the record.
	var resp any
	if len(m.Result) > 0 {
		resp, _ = dlp.Decode(m.Result)
	}
	if v := c.verdict; v != nil && v.Redactor != nil && resp != nil {
		masked, fs := v.Redactor.RedactValue(resp, "response")
		if len(fs) > 0 {
			c.masked = append(c.masked, fs...)
			resp = masked
			if b, err := dlp.Encode(masked); err == nil {
				var full map[string]json.RawMessage
				if json.Unmarshal(trimmed, &full) == nil {
					full["result"] = b
					if nb, err := json.Marshal(full); err == nil {
						out = nb
					}
				}
			}
		}
	}
	if err := g.finish(s, c, resp, m.Error, httpStatus, ""); err != nil && g.cfg.FailClosed {
		return errorResponse(m.ID, CodeAuditUnavailable,
			"the audit record of this call could not be stored in time; the gateway fails closed and withholds the result", nil)
	}
	return out
}

func (g *Gateway) batchFromServer(s *Session, raw []byte, httpStatus int) []byte {
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return raw
	}
	changed := false
	for i, it := range items {
		if out := g.FromServer(s, it, httpStatus); !bytes.Equal(out, it) {
			items[i], changed = out, true
		}
	}
	if !changed {
		return raw
	}
	b, _ := json.Marshal(items)
	return b
}

// End records the calls of a session that never got an answer.
func (g *Gateway) End(s *Session, why string) {
	s.mu.Lock()
	calls := make([]*call, 0, len(s.pending))
	for k, c := range s.pending {
		calls = append(calls, c)
		delete(s.pending, k)
	}
	s.mu.Unlock()
	for _, c := range calls {
		g.finish(s, c, nil, &rpcError{Message: "no answer: " + why}, 0, "no_answer")
	}
}

// finish builds the record of a call and waits (at most HoldTimeout) for
// it to be durable. The error says it was not. resp is the decoded result
// (nil: none).
func (g *Gateway) finish(s *Session, c *call, resp any, rerr *rpcError, httpStatus int, end string) error {
	e := g.buildRecord(s, c, resp, rerr, httpStatus, end)
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.HoldTimeout)
	err := g.cfg.Recorder.Append(ctx, e)
	cancel()
	if err == nil {
		return nil
	}
	mode, action, what := "open", veritrail.DecisionAllowed, "the answer went back to the agent"
	if g.cfg.FailClosed {
		mode, action, what = "closed", veritrail.DecisionBlocked, "the answer was withheld from the agent"
	}
	g.log.Warn("record not durable in time", slog.String("event", e.ID), slog.String("fail_mode", mode), slog.Any("err", err))
	note := &veritrail.Event{
		ID: veritrail.NewEventID(g.cfg.Now()), Time: g.cfg.Now().UTC(), Type: "agent.capture_delayed",
		Actor: e.Actor, AgentID: e.AgentID, SessionID: e.SessionID, Connector: e.Connector, Tool: e.Tool,
		Target:   &veritrail.Target{Type: "event", ID: e.ID},
		Outcome:  veritrail.OutcomeFailure,
		Decision: &veritrail.Decision{Action: action, Policy: "fail-" + mode, Reason: fmt.Sprintf("the record of this call was not durable within %s: %s", g.cfg.HoldTimeout, what)},
	}
	note.Content, _ = json.Marshal(map[string]any{"record": e.ID, "error": err.Error(), "fail_mode": mode, "hold_timeout_ms": g.cfg.HoldTimeout.Milliseconds()})
	go func() {
		// Nobody waits for this one; the spool keeps it in memory if the
		// disk still refuses.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		g.cfg.Recorder.Append(ctx, note)
	}()
	return err
}

func (g *Gateway) buildRecord(s *Session, c *call, resp any, rerr *rpcError, httpStatus int, end string) *veritrail.Event {
	now := g.cfg.Now()
	d := now.Sub(c.start).Milliseconds()
	e := &veritrail.Event{
		ID: veritrail.NewEventID(c.start), Time: c.start.UTC(), Type: "agent.tool_call",
		Actor: s.Actor, SessionID: clip(s.ID, 256), Connector: clip(g.connector(), 256),
		Tool: clip(c.tool, 256), DurationMS: &d,
	}
	switch c.method {
	case MethodResourcesRead:
		e.Target = &veritrail.Target{Type: "resource", ID: clip(c.tool, 256)}
	case MethodPromptsGet:
		e.Target = &veritrail.Target{Type: "prompt", ID: clip(c.tool, 256)}
	}
	e.AgentID = g.cfg.AgentID
	ctx := &veritrail.Context{RequestID: clip(strings.Trim(string(c.id), `"`), 256), IP: s.IP}
	if c.client != nil {
		if e.AgentID == "" {
			e.AgentID = c.client.Name
		}
		ctx.UserAgent = strings.TrimSuffix(c.client.Name+"/"+c.client.Version, "/")
	}
	e.AgentID = clip(e.AgentID, 256)
	ctx.UserAgent = clip(ctx.UserAgent, 1024)
	e.Context = ctx
	if e.Actor.Type == "" {
		e.Actor = veritrail.Actor{Type: veritrail.ActorAgent, ID: clip(e.AgentID, 256)}
		if e.Actor.ID == "" {
			e.Actor.ID = "unknown"
		}
	}

	content := map[string]any{"method": c.method}
	if c.args != nil {
		content["arguments"] = c.args
	}
	e.Outcome = veritrail.OutcomeSuccess
	switch {
	case rerr != nil:
		e.Outcome = veritrail.OutcomeFailure
		if rerr.Code != 0 {
			code := rerr.Code
			e.Status = &code
		}
		errObj := map[string]any{"code": rerr.Code, "message": rerr.Message}
		if len(rerr.Data) > 0 {
			if v, err := dlp.Decode(rerr.Data); err == nil {
				errObj["data"] = v
			}
		}
		content["error"] = errObj
	case resp != nil:
		v, atts := dlp.DigestAttachments(resp, "response", g.cfg.KeepAttachmentBytes)
		content["response"] = v
		if len(atts) > 0 {
			content["attachments"] = atts
		}
		if r, ok := v.(map[string]any); ok && r["isError"] == true {
			e.Outcome = veritrail.OutcomeFailure
		}
	}
	if httpStatus != 0 && (httpStatus < 200 || httpStatus > 299) {
		st := int64(httpStatus)
		e.Status, e.Outcome = &st, veritrail.OutcomeFailure
	}
	switch end {
	case "cancelled":
		content["cancelled"] = true
		e.Status = nil
	case "no_answer":
		content["no_answer"] = true
	}
	if c.client != nil {
		content["client"] = c.client
	}
	s.mu.Lock()
	if s.server != nil {
		content["server"] = s.server
	}
	s.mu.Unlock()
	if c.protocol != "" {
		content["protocol_version"] = c.protocol
	}
	if c.trace != nil {
		content["trace"] = c.trace
	}
	if len(c.id) > 0 {
		// An id is JSON the client sent, whose strings may hold invalid
		// UTF-8, which encoding/json leaves in a RawMessage and an event
		// may not hold (found by FuzzMessages).
		content["request_id"] = json.RawMessage(bytes.ToValidUTF8(c.id, []byte("\uFFFD")))
	}
	failMode := "open"
	if g.cfg.FailClosed {
		failMode = "closed"
	}
	content["capture"] = map[string]any{"gateway": "veritrail mcp-proxy", "transport": g.cfg.Transport, "upstream": g.cfg.Upstream, "fail_mode": failMode}
	if len(c.masked) > 0 {
		content["redactions"] = c.masked
	}
	if v := c.verdict; v != nil {
		switch {
		case v.Action == veritrail.DecisionBlocked:
			e.Decision = &veritrail.Decision{Action: veritrail.DecisionBlocked, Policy: v.Policy, Reason: v.Reason}
		case len(c.masked) > 0:
			reason := v.RedactReason
			if reason == "" {
				reason = maskedReason(c.masked)
			}
			e.Decision = &veritrail.Decision{Action: veritrail.DecisionRedacted, Policy: v.RedactPolicy, Reason: reason}
		default:
			e.Decision = &veritrail.Decision{Action: veritrail.DecisionAllowed, Policy: v.Policy, Reason: v.Reason}
		}
		e.Decision.Policy, e.Decision.Reason = clip(e.Decision.Policy, 256), clip(e.Decision.Reason, 4096)
	}
	e.Content = g.fit(content)
	return e
}

// fit encodes content, replacing the response and then the arguments by
// their size and digest while it is over MaxRecordBytes.
func (g *Gateway) fit(content map[string]any) []byte {
	b, _ := dlp.Encode(content)
	for _, k := range []string{"response", "error", "arguments"} {
		if len(b) <= g.cfg.MaxRecordBytes {
			break
		}
		v, ok := content[k]
		if !ok {
			continue
		}
		vb, _ := dlp.Encode(v)
		sum := sha256.Sum256(vb)
		content[k] = map[string]any{"omitted": "larger than the gateway's record limit", "bytes": len(vb), "sha256": hex.EncodeToString(sum[:])}
		b, _ = dlp.Encode(content)
	}
	return b
}

func maskedReason(fs []dlp.Finding) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, fmt.Sprintf("%s in %s (%d)", f.Detector, f.Path, f.Count))
	}
	return "masked " + strings.Join(parts, ", ")
}

// clip cuts s to at most n bytes on a character boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
