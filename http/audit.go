package http

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strings"

	veritrail "github.com/veritrail/veritrail"
)

// The log of the log: every search, detail view, export and change to the
// organization's access records an event of category audit in the same
// organization. Records are appended by the server itself (not through the
// API), so recording never triggers recording: reading audit events records
// one event, not a chain. They are committed before the answer is sent;
// a read that cannot be recorded is refused (fail closed).

// auditEvent builds an audit record of what p did in request r.
func (s *Server) auditEvent(r *http.Request, p *veritrail.Principal, typ string, target *veritrail.Target, details map[string]any) *veritrail.Event {
	e := &veritrail.Event{
		ID:      veritrail.NewEventID(s.now()),
		Time:    s.now().UTC(),
		Type:    typ,
		Actor:   veritrail.Actor{Type: veritrail.ActorAPIKey, ID: p.TokenID, Name: p.TokenName},
		Target:  target,
		Outcome: veritrail.OutcomeSuccess,
	}
	if e.Actor.Name == "" {
		e.Actor.Name = p.Role + " token"
	}
	ctx := &veritrail.Context{UserAgent: truncate(r.UserAgent(), 1024), RequestID: truncate(r.Header.Get("X-Request-Id"), 256)}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			ctx.IP = a.Unmap().WithZone("").String()
		}
	}
	e.Context = ctx
	if len(details) > 0 {
		raw, err := json.Marshal(details)
		if err == nil {
			if canon, err := veritrail.AppendCanonicalJSON(nil, raw); err == nil {
				e.Content = canon
			}
		}
	}
	e.Prepare()
	return e
}

// audit records an audit event; a failure refuses the request.
func (s *Server) audit(ctx context.Context, r *http.Request, p *veritrail.Principal, typ string, target *veritrail.Target, details map[string]any) error {
	e := s.auditEvent(r, p, typ, target, details)
	if _, err := s.store.Append(ctx, p.OrgID, []*veritrail.Event{e}); err != nil {
		s.log.Error("audit record not written; refusing the request", "type", typ, "err", err)
		return veritrail.Errorf(veritrail.EUnavailable, "this access could not be recorded in the audit trail, so it was refused; retry")
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
	params := map[string]any{}
	for k, vs := range r.URL.Query() {
		if k == "cursor" {
			continue
		}
		if len(vs) == 1 {
			params[k] = vs[0]
		} else {
			params[k] = vs
		}
	}
	return map[string]any{"parameters": params, "results": results, "page": r.URL.Query().Has("cursor")}
}
