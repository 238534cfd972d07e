package mcp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Identity maps a client's bearer token to who it is.
type Identity struct {
	// TokenSHA256 is the hex SHA-256 of the token (the token itself is
	// never written down).
	TokenSHA256 string          `json:"token_sha256"`
	Actor       veritrail.Actor `json:"actor"`
}

// LoadIdentities reads a JSON array of identities.
func LoadIdentities(path string) ([]Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ids []Identity
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ids); err != nil {
		return nil, fmt.Errorf("identities %s: %w", path, err)
	}
	for i, id := range ids {
		if h, err := hex.DecodeString(id.TokenSHA256); err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("identities %s: [%d].token_sha256: must be 64 hex digits (sha256sum of the token)", path, i)
		}
		if id.Actor.Type == "" || (id.Actor.ID == "" && id.Actor.Email == "") {
			return nil, fmt.Errorf("identities %s: [%d].actor: needs a type and an id or email", path, i)
		}
		if err := CheckActor(id.Actor); err != nil {
			return nil, fmt.Errorf("identities %s: [%d]: %w", path, i, err)
		}
	}
	return ids, nil
}

// CheckActor says what the Veritrail server would refuse in an actor that
// calls are recorded under (every record of it would be refused), using
// the server's own event validation.
func CheckActor(a veritrail.Actor) error {
	b, err := veritrail.MarshalInput(&veritrail.Event{Type: "agent.tool_call", Actor: a})
	if err != nil {
		return err
	}
	if _, err := veritrail.NewDecoder(bytes.NewReader(b), veritrail.DefaultLimits, time.Now()).Next(); err != nil {
		return errors.New(strings.TrimPrefix(veritrail.ErrorMessage(err), "event 0: "))
	}
	return nil
}

// HTTPOptions configure the Streamable HTTP proxy.
type HTTPOptions struct {
	// Identities map bearer tokens to actors. When set, a request without
	// a known token is refused (401) and the client's Authorization
	// header is not passed upstream. When empty, the Authorization header
	// passes through and the actor is a pseudonym of the token
	// (api_key "tok_<first 12 hex of its SHA-256>").
	Identities []Identity
	// Header is added to every upstream request (e.g. the gateway's own
	// credential for the server).
	Header http.Header
	// MaxBody bounds a client's POST body (default 16 MiB).
	MaxBody int64
	// CallTimeout is how long a call may wait for its answer before it is
	// recorded as unanswered (default 15 minutes).
	CallTimeout time.Duration
	// Transport to the upstream (default: http.DefaultTransport clone).
	Transport http.RoundTripper
}

// HTTPProxy reverse-proxies MCP's Streamable HTTP transport: POST
// answered with JSON or an SSE stream, GET streams, DELETE, sessions by
// Mcp-Session-Id (protocol 2025-03-26 to 2025-11-25), and the stateless
// 2026-07-28 form whose Mcp-Method / Mcp-Name headers are checked against
// the body (a mismatch could otherwise smuggle a call past a rule).
type HTTPProxy struct {
	g        *Gateway
	upstream *url.URL
	opts     HTTPOptions
	rp       *httputil.ReverseProxy
	ids      map[string]veritrail.Actor
	log      *slog.Logger

	mu       sync.Mutex
	sessions map[string]*Session
}

type ctxKey int

const exchangeKey ctxKey = 0

// exchange is one client request on its way through the proxy.
type exchange struct {
	sess      *Session
	temporary bool   // not (yet) a registered session
	callID    []byte // the governed call's id, if any
}

// NewHTTPProxy returns a proxy to the MCP endpoint at upstream.
func NewHTTPProxy(g *Gateway, upstream string, opts HTTPOptions) (*HTTPProxy, error) {
	u, err := url.Parse(upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream %q: must be an http:// or https:// URL", upstream)
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 16 << 20
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 15 * time.Minute
	}
	p := &HTTPProxy{g: g, upstream: u, opts: opts, log: g.log, sessions: map[string]*Session{}, ids: map[string]veritrail.Actor{}}
	for _, id := range opts.Identities {
		p.ids[strings.ToLower(id.TokenSHA256)] = id.Actor
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.URL.Path = u.Path // the MCP endpoint is one URL
			pr.Out.URL.RawPath = u.RawPath
			pr.Out.Host = u.Host
			if len(p.ids) > 0 {
				pr.Out.Header.Del("Authorization")
			}
			for k, vs := range opts.Header {
				pr.Out.Header[k] = vs
			}
			pr.Out.Header.Del("X-Forwarded-For")
		},
		FlushInterval:  -1,
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.upstreamError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	if opts.Transport != nil {
		p.rp.Transport = opts.Transport
	}
	return p, nil
}

// Run sweeps idle sessions and unanswered calls until ctx ends.
func (p *HTTPProxy) Run(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.mu.Lock()
			ss := p.sessions
			p.sessions = map[string]*Session{}
			p.mu.Unlock()
			for _, s := range ss {
				p.g.End(s, "the gateway stopped")
			}
			return
		case <-t.C:
			p.sweep(time.Now())
		}
	}
}

func (p *HTTPProxy) sweep(now time.Time) {
	p.mu.Lock()
	var idle []*Session
	var live []*Session
	for id, s := range p.sessions {
		s.mu.Lock()
		last := s.lastUsed
		s.mu.Unlock()
		if now.Sub(last) > time.Hour {
			idle = append(idle, s)
			delete(p.sessions, id)
		} else {
			live = append(live, s)
		}
	}
	p.mu.Unlock()
	for _, s := range idle {
		p.g.End(s, "the session was idle for an hour")
	}
	for _, s := range live {
		s.mu.Lock()
		var late []*call
		for k, c := range s.pending {
			if now.Sub(c.start) > p.opts.CallTimeout {
				late = append(late, c)
				delete(s.pending, k)
			}
		}
		s.mu.Unlock()
		for _, c := range late {
			p.g.finish(s, c, nil, &rpcError{Message: fmt.Sprintf("no answer within %s", p.opts.CallTimeout)}, 0, "no_answer")
		}
	}
}

// identify returns the actor of a request, or false when identities are
// configured and the token is not one of them.
func (p *HTTPProxy) identify(r *http.Request) (veritrail.Actor, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	tok = strings.TrimSpace(tok)
	var sum [32]byte
	if ok && tok != "" {
		sum = sha256.Sum256([]byte(tok))
	}
	if len(p.ids) > 0 {
		if !ok || tok == "" {
			return veritrail.Actor{}, false
		}
		a, found := p.ids[hex.EncodeToString(sum[:])]
		return a, found
	}
	if ok && tok != "" {
		return veritrail.Actor{Type: veritrail.ActorAPIKey, ID: "tok_" + hex.EncodeToString(sum[:6])}, true
	}
	return veritrail.Actor{}, true
}

// clientIP is the peer's address as an event's context.ip takes it: no
// IPv6 zone (fe80::1%eth0), which the server refuses.
func clientIP(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return ap.Addr().WithZone("").Unmap().String()
}

func writeRPCError(w http.ResponseWriter, status int, id json.RawMessage, code int64, msg string) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(errorResponse(id, code, msg, nil))
}

// ServeHTTP implements http.Handler.
func (p *HTTPProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	actor, ok := p.identify(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="veritrail-mcp-gateway"`)
		writeRPCError(w, http.StatusUnauthorized, nil, codeInvalidRequest, "a known bearer token is required")
		return
	}
	sid := r.Header.Get("Mcp-Session-Id")
	x := &exchange{}
	p.mu.Lock()
	if s, ok := p.sessions[sid]; ok && sid != "" {
		x.sess = s
		s.mu.Lock()
		s.lastUsed = time.Now()
		s.mu.Unlock()
	}
	p.mu.Unlock()
	if x.sess == nil {
		// A new session (initialize), a stateless request, or a session
		// this gateway did not see start (it restarted): recorded under
		// the id the client gives.
		x.sess, x.temporary = NewSession(sid, actor), true
		x.sess.IP = clientIP(r)
		if sid != "" {
			p.register(sid, x.sess)
			x.temporary = false
		}
	}

	if r.Method == http.MethodPost {
		if !p.inspectPost(w, r, x) {
			return
		}
	}
	if r.Method == http.MethodDelete && sid != "" {
		defer func() {
			p.mu.Lock()
			delete(p.sessions, sid)
			p.mu.Unlock()
			p.g.End(x.sess, "the client ended the session")
		}()
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey, x)))
	if x.temporary && x.sess.Pending() > 0 {
		p.g.End(x.sess, "the response ended without an answer")
	}
}

func (p *HTTPProxy) register(sid string, s *Session) {
	p.mu.Lock()
	if _, ok := p.sessions[sid]; !ok {
		s.ID = sid
		p.sessions[sid] = s
	}
	p.mu.Unlock()
}

// inspectPost reads and judges a POST body; false means it was answered.
func (p *HTTPProxy) inspectPost(w http.ResponseWriter, r *http.Request, x *exchange) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, p.opts.MaxBody))
	r.Body.Close()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeRPCError(w, http.StatusRequestEntityTooLarge, nil, codeInvalidRequest, fmt.Sprintf("the body is over %d bytes", p.opts.MaxBody))
			return false
		}
		writeRPCError(w, http.StatusBadRequest, nil, codeInvalidRequest, "the body could not be read")
		return false
	}
	var m message
	var fwd, reply []byte
	if trimmed := bytes.TrimSpace(body); json.Unmarshal(trimmed, &m) == nil {
		if msg := headerMismatch(r.Header, &m); msg != "" {
			writeRPCError(w, http.StatusBadRequest, m.ID, CodeHeaderMismatch, msg)
			return false
		}
		if governed(m.Method) && m.isRequest() {
			x.callID = m.ID
		}
		fwd, reply = p.g.fromClient(x.sess, &m, trimmed)
	} else {
		fwd, reply = p.g.FromClient(x.sess, body) // a batch, or not JSON
	}
	if fwd == nil {
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
		return false
	}
	if !bytes.Equal(fwd, body) {
		p.maskParamHeaders(r.Header, x.sess, m.ID)
	}
	r.Body = io.NopCloser(bytes.NewReader(fwd))
	r.ContentLength = int64(len(fwd))
	r.Header.Set("Content-Length", strconv.Itoa(len(fwd)))
	return true
}

// maskParamHeaders masks Mcp-Param-* headers (arguments mirrored into
// headers, SEP-2243) with the masks applied to the arguments.
func (p *HTTPProxy) maskParamHeaders(h http.Header, s *Session, id json.RawMessage) {
	s.mu.Lock()
	c := s.pending[idKey(id)]
	s.mu.Unlock()
	if c == nil || c.verdict == nil || c.verdict.Redactor == nil {
		return
	}
	for k, vs := range h {
		if !strings.HasPrefix(k, "Mcp-Param-") {
			continue
		}
		for i, v := range vs {
			plain, wasB64 := decodeHeaderValue(v)
			if masked, ms := c.verdict.Redactor.Redact(plain); len(ms) > 0 {
				if wasB64 {
					masked = "=?base64?" + base64.StdEncoding.EncodeToString([]byte(masked)) + "?="
				}
				vs[i] = masked
			}
		}
	}
}

// decodeHeaderValue undoes SEP-2243's =?base64?…?= wrapping.
func decodeHeaderValue(v string) (string, bool) {
	if inner, ok := strings.CutPrefix(v, "=?base64?"); ok {
		if inner, ok = strings.CutSuffix(inner, "?="); ok {
			if b, err := base64.StdEncoding.DecodeString(inner); err == nil {
				return string(b), true
			}
		}
	}
	return v, false
}

// headerMismatch checks SEP-2243's Mcp-Method and Mcp-Name against the
// body; a gateway that judged the body while routers trust the headers
// could be bypassed.
func headerMismatch(h http.Header, m *message) string {
	if hm := h.Get("Mcp-Method"); hm != "" && m.Method != "" && hm != m.Method {
		return fmt.Sprintf("the Mcp-Method header (%q) does not match the body's method (%q)", hm, m.Method)
	}
	hn := h.Get("Mcp-Name")
	if hn == "" || !governed(m.Method) {
		return ""
	}
	hn, _ = decodeHeaderValue(hn)
	var p callParams
	json.Unmarshal(m.Params, &p)
	name := p.Name
	if m.Method == MethodResourcesRead {
		name = p.URI
	}
	if hn != name {
		return fmt.Sprintf("the Mcp-Name header (%q) does not match the body (%q)", hn, name)
	}
	return ""
}

func (p *HTTPProxy) modifyResponse(resp *http.Response) error {
	x, _ := resp.Request.Context().Value(exchangeKey).(*exchange)
	if x == nil {
		return nil
	}
	if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" && x.temporary {
		p.register(sid, x.sess)
		x.temporary = false
	}
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	switch {
	case strings.HasPrefix(ct, "text/event-stream"):
		resp.Body = &sseRewriter{src: bufio.NewReaderSize(resp.Body, 64<<10), closer: resp.Body, p: p, x: x, status: resp.StatusCode}
	case strings.HasPrefix(ct, "application/json"):
		body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			return err
		}
		out := p.g.FromServer(x.sess, body, resp.StatusCode)
		resp.Body = io.NopCloser(bytes.NewReader(out))
		resp.ContentLength = int64(len(out))
		resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	}
	// A call the upstream refused without a JSON-RPC answer.
	if len(x.callID) > 0 && (resp.StatusCode < 200 || resp.StatusCode > 299) && !strings.HasPrefix(ct, "text/event-stream") {
		if c := x.sess.take(x.callID); c != nil {
			p.g.finish(x.sess, c, nil, &rpcError{Message: "the MCP server answered HTTP " + strconv.Itoa(resp.StatusCode)}, resp.StatusCode, "")
		}
	}
	return nil
}

func (p *HTTPProxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Warn("mcp upstream unreachable", slog.Any("err", err))
	x, _ := r.Context().Value(exchangeKey).(*exchange)
	if x != nil && len(x.callID) > 0 {
		if c := x.sess.take(x.callID); c != nil {
			p.g.finish(x.sess, c, nil, &rpcError{Message: "the MCP server could not be reached"}, http.StatusBadGateway, "")
		}
	}
	var id json.RawMessage
	if x != nil {
		id = x.callID
	}
	writeRPCError(w, http.StatusBadGateway, id, -32603, "the MCP server could not be reached through the gateway")
}

// sseRewriter passes an SSE stream through event by event, letting the
// gateway inspect (and, for masks, rewrite) each JSON-RPC message.
type sseRewriter struct {
	src    *bufio.Reader
	closer io.Closer
	p      *HTTPProxy
	x      *exchange
	status int
	out    bytes.Buffer
	event  [][]byte // lines of the event being read
	err    error
}

func (s *sseRewriter) Read(b []byte) (int, error) {
	for s.out.Len() == 0 && s.err == nil {
		line, err := s.src.ReadBytes('\n')
		if len(line) > 0 {
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				s.flushEvent()
				s.out.Write(line)
			} else {
				s.event = append(s.event, line)
				if len(line) > 0 && line[len(line)-1] != '\n' { // the stream ended mid-line
					s.flushEvent()
				}
			}
		}
		if err != nil {
			s.flushEvent()
			s.err = err
		}
	}
	if s.out.Len() > 0 {
		return s.out.Read(b)
	}
	return 0, s.err
}

func (s *sseRewriter) flushEvent() {
	if len(s.event) == 0 {
		return
	}
	var data [][]byte
	dataAt := -1
	for i, l := range s.event {
		v, ok := bytes.CutPrefix(bytes.TrimRight(l, "\r\n"), []byte("data:"))
		if !ok {
			continue
		}
		if dataAt < 0 {
			dataAt = i
		}
		data = append(data, bytes.TrimPrefix(v, []byte(" ")))
	}
	if dataAt >= 0 {
		payload := bytes.Join(data, []byte("\n"))
		if out := s.p.g.FromServer(s.x.sess, payload, s.status); !bytes.Equal(out, payload) {
			var rebuilt [][]byte
			for i, l := range s.event {
				if bytes.HasPrefix(l, []byte("data:")) {
					if i == dataAt {
						rebuilt = append(rebuilt, append(append([]byte("data: "), out...), '\n'))
					}
					continue
				}
				rebuilt = append(rebuilt, l)
			}
			s.event = rebuilt
		}
	}
	for _, l := range s.event {
		s.out.Write(l)
	}
	s.event = s.event[:0]
}

func (s *sseRewriter) Close() error { return s.closer.Close() }
