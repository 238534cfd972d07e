package http

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// The log of the log: every search, detail view, export and change to the
// organization's access records an event of category audit in the same
// organization. Records are appended by the server itself (not through the
// API), so recording never triggers recording: reading audit events records
// one event, not a chain. They are committed before the answer is sent;
// a read that cannot be recorded is refused (fail closed).

// actorOf is the actor of what p does: the person signed in to the
// console, or the token.
func actorOf(p *veritrail.Principal) veritrail.Actor {
	if u := p.User; u != nil {
		return veritrail.Actor{Type: veritrail.ActorUser, ID: u.ID, Email: u.Email, Name: u.Name}
	}
	name := p.TokenName
	if name == "" {
		name = p.Role + " token"
	}
	return veritrail.Actor{Type: veritrail.ActorAPIKey, ID: p.TokenID, Name: name}
}

// auditEvent builds an audit record of what p did in request r.
func (s *Server) auditEvent(r *http.Request, p *veritrail.Principal, typ string, target *veritrail.Target, details map[string]any) *veritrail.Event {
	if p.SessionID != "" {
		// Through the console: which session did it.
		details = maps.Clone(details)
		if details == nil {
			details = map[string]any{}
		}
		details["console_session"] = p.SessionID
	}
	e, err := veritrail.NewRecord(s.now(), typ, actorOf(p), target, veritrail.OutcomeSuccess, details)
	if err != nil { // details the handlers build always marshal; keep the record without them
		e, _ = veritrail.NewRecord(s.now(), typ, actorOf(p), target, veritrail.OutcomeSuccess, nil)
	}
	e.Context = requestContext(r)
	return e
}

// requestContext is the context of a record of request r: the client's
// address, user agent and request id.
func requestContext(r *http.Request) *veritrail.Context {
	ctx := &veritrail.Context{UserAgent: truncate(r.UserAgent(), 1024), RequestID: truncate(r.Header.Get("X-Request-Id"), 256)}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			ctx.IP = a.Unmap().WithZone("").String()
		}
	}
	return ctx
}

// audit records an audit event; a failure refuses the request (503, the
// store's error logged by the adapter).
func (s *Server) audit(ctx context.Context, r *http.Request, p *veritrail.Principal, typ string, target *veritrail.Target, details map[string]any) error {
	e := s.auditEvent(r, p, typ, target, details)
	if _, err := s.store.Append(ctx, p.OrgID, []*veritrail.Event{e}); err != nil {
		return withCause(fmt.Errorf("audit record %s not written: %w", typ, err),
			veritrail.Errorf(veritrail.EUnavailable, "this access could not be recorded in the audit trail, so it was refused; retry"))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !validUTF8End(s) {
		s = s[:len(s)-1]
	}
	return s
}

func validUTF8End(s string) bool {
	return strings.ToValidUTF8(s, "\x00") == s
}

// queryDetails is what an audit.query record keeps of a list request: its
// parameters (the cursor aside) and what it returned.
func queryDetails(r *http.Request, results int) map[string]any {
	vals := r.URL.Query()
	page := vals.Has("cursor")
	vals.Del("cursor")
	return map[string]any{"parameters": paramsMap(vals), "results": results, "page": page}
}

// paramsMap shows query parameters as JSON: a parameter given once as a
// string, one given more often as a list.
func paramsMap(vals url.Values) map[string]any {
	m := make(map[string]any, len(vals))
	for k, vs := range vals {
		if len(vs) == 1 {
			m[k] = vs[0]
		} else {
			m[k] = vs
		}
	}
	return m
}
