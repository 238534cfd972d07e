package http

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// handler serves an authenticated route (p is the caller). How to write
// one: write the answer and return nil, or write nothing and return the
// error, as it is; the adapter (serve) answers it.
//
//	func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error {
//		ts, err := s.store.ListTeams(r.Context(), p.OrgID)
//		if err != nil {
//			return err // not wrapped, not logged, not written
//		}
//		writeJSON(w, http.StatusOK, map[string]any{"data": ts})
//		return nil
//	}
//
//	s.api("GET /api/v1/teams", "teams.list", veritrail.ScopeAdmin, s.listTeams)
//
// Register it with s.api (native error body), s.miroAPI (Miro's) or
// s.otlpAPI (OTLP's), which authenticate, rate-limit and check the scope
// first; a route that takes no token uses s.public.
//
//   - What the client can act on is a *veritrail.Error (veritrail.Errorf):
//     its code picks the status from the one table (errors.go) and its
//     message is shown, so name the parameter or field and what is expected.
//   - Any other error is internal: the adapter logs it once, with the
//     route, method and path (never the query string), and answers a
//     generic 500.
//   - To answer a coded error and log a cause the client must not see,
//     return withCause(err, veritrail.Errorf(...)).
//   - Headers set before returning an error are kept (Allow, Retry-After).
//   - Once the answer has started (a stream), a later error can only be
//     logged: return it all the same.
type handler func(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) error

// publicHandler serves a route that takes no token.
type publicHandler func(w http.ResponseWriter, r *http.Request) error

// api registers an authenticated route answering errors with the native
// body; scope "" only needs a valid token.
func (s *Server) api(pattern, route, scope string, h handler) {
	s.authed(pattern, route, scope, writeNative, h)
}

// miroAPI registers a Miro-compatible route: Miro's error body.
func (s *Server) miroAPI(pattern, route, scope string, h handler) {
	s.authed(pattern, route, scope, writeMiro, h)
}

// otlpAPI registers an OTLP/HTTP receiver: OTLP's error body.
func (s *Server) otlpAPI(pattern, route, scope string, h handler) {
	s.authed(pattern, route, scope, writeOTLP, h)
}

// public registers a route that takes no token, native error body.
func (s *Server) public(pattern, route string, h publicHandler) {
	s.mux.Handle(pattern, s.serve(route, writeNative, h))
}

// authed registers a route that authenticates, rate-limits and checks a
// scope before h, answering errors in dialect d.
func (s *Server) authed(pattern, route, scope string, d dialect, h handler) {
	s.mux.Handle(pattern, s.serve(route, d, func(w http.ResponseWriter, r *http.Request) error {
		p, err := s.authenticate(r)
		if err != nil {
			return err
		}
		if !s.limiter.allow(w, rateKey(p)) {
			return veritrail.Errorf(veritrail.ERateLimited, "this token made too many requests; retry after the number of seconds in Retry-After")
		}
		if scope != "" && !p.Can(scope) {
			return veritrail.Errorf(veritrail.EForbidden, "this token (role %s) lacks the %s scope", p.Role, scope)
		}
		return h(w, r, p)
	}))
}

// methods answers other methods on a path with 405 and the allowed ones.
func (s *Server) methods(path, allow string) {
	s.mux.Handle(path, s.serve("method_not_allowed", writeNative, func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Allow", allow)
		return veritrail.Errorf(veritrail.EMethodNotAllowed, "%s is not allowed here; use %s", r.Method, allow)
	}))
}

// serve is the adapter every route goes through (how to write a handler
// for it: see handler). It runs h, answers the error h returns (or its
// panic, as an internal error) in dialect d unless h has already written,
// counts the request in the metrics, and logs it in one line: at debug
// level, or at error level with the error when it is internal, hides a
// cause, or came after the answer had started. Query strings are never
// logged: they carry e-mail addresses and search words.
func (s *Server) serve(route string, d dialect, h publicHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.bodyDeadline(w, r)
		rec := &statusRecorder{ResponseWriter: w}
		var err error
		if route != "healthz" && route != "readyz" && !s.perAddr.allow(rec, clientAddress(r)) {
			err = veritrail.Errorf(veritrail.ERateLimited, "this address made too many requests; retry after the number of seconds in Retry-After")
		} else {
			err = recovered(h, rec, r)
		}
		started := rec.code != 0
		// The client went away before its answer (a console page left,
		// a poller stopped), or stopped reading a stream it had started
		// to receive (an export cut short): nobody to answer and nothing
		// wrong here, so no 500 and no error in the log; counted as
		// nginx's 499 when nothing was answered yet.
		gone := err != nil && (errors.Is(err, context.Canceled) && r.Context().Err() != nil ||
			started && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)))
		if gone {
			err = nil
			if !started {
				rec.code = statusClientClosedRequest
			}
		}
		if err != nil && !started {
			err = answered(rec, err)
			d(rec, r, err)
		}
		code := rec.code
		if code == 0 {
			code = http.StatusOK
		}
		dur := time.Since(start)
		s.metrics.HTTPRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
		s.metrics.HTTPDuration.WithLabelValues(route).Observe(dur.Seconds())

		level := slog.LevelDebug
		if code >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("route", route),
			slog.Int("status", code), slog.Duration("duration", dur)}
		if id := r.Header.Get("X-Request-Id"); id != "" {
			attrs = append(attrs, slog.String("request_id", truncate(id, 256)))
		}
		if err != nil {
			attrs = append(attrs, slog.String("code", veritrail.ErrorCode(err)))
			logged := toLog(err)
			if started {
				logged = err // the client was never told
			}
			if logged != nil {
				level = slog.LevelError
				attrs = append(attrs, slog.Any("err", logged))
			}
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// statusClientClosedRequest is nginx's status for a request whose client
// closed the connection before the answer: never sent, only counted.
const statusClientClosedRequest = 499

// clientAddress is the address a request came from, without its port:
// the key of the per-address limit.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// bodyDeadline gives r's body BodyTimeout to arrive, and lifts the
// deadline once it has (a read deadline left in place would end a long
// answer, an export's, when it passes).
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)) != nil {
		return // not a connection of net/http's server
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { rc.SetReadDeadline(time.Time{}) }}
}

// deadlineBody lifts the read deadline when the body is read to its end.
type deadlineBody struct {
	io.ReadCloser
	lift func()
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.lift()
	}
	return n, err
}

// recovered runs h, turning a panic into an internal error.
func recovered(h publicHandler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			err = fmt.Errorf("handler panic: %v", v)
		}
	}()
	return h(w, r)
}

// statusRecorder captures the status code for logs and metrics, and tells
// the adapter whether the answer has started.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
