package http

import (
	"net/http"
	"strings"

	veritrail "github.com/veritrail/veritrail"
	"github.com/veritrail/veritrail/web"
)

// The console: the page shell at every console address (web.Pages), its
// assets under /assets/<version>/, and the session endpoints behind the
// sign-in page. The console reads only through the public API, signed in
// with a session cookie instead of a bearer token (session.go).

func (s *Server) consoleRoutes() {
	s.public("GET /{$}", "console.root", func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, "/events", http.StatusFound)
		return nil
	})
	for _, p := range web.Pages {
		s.public("GET "+p, "console.page", s.consolePage)
	}
	s.public("GET /assets/{version}/{path...}", "console.asset", s.consoleAsset)

	s.public("GET /api/v1/session/options", "session.options", s.getSessionOptions)
	s.public("POST /api/v1/session", "session.create", s.postSession)
	s.public("POST /api/v1/session/email", "session.email", s.postSessionEmail)
	s.public("POST /api/v1/session/link", "session.link", s.postSessionLink)
	s.api("GET /api/v1/session", "session.get", "", s.getSession)
	s.api("DELETE /api/v1/session", "session.delete", "", s.deleteSession)
	s.methods("/api/v1/session", "GET, POST, DELETE")
	s.methods("/api/v1/session/email", "POST")
	s.methods("/api/v1/session/link", "POST")

	s.api("GET /api/v1/events/stats", "events.stats", veritrail.ScopeAuditLogsRead, s.eventStats)
	s.api("GET /api/v1/events/stream", "events.stream", veritrail.ScopeAuditLogsRead, s.eventStream)
}

// consoleHeaders are the headers of every console answer: a strict
// Content-Security-Policy (scripts and styles from this server only), no
// framing, no sniffing, and no referrer (a sign-in link's page must not
// leak its address).
func consoleHeaders(h http.Header, csp string) {
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (s *Server) consolePage(w http.ResponseWriter, r *http.Request) error {
	a, err := web.Load()
	if err != nil {
		return err
	}
	consoleHeaders(w.Header(), a.CSP)
	w.Header().Set("Cache-Control", "no-cache")
	serveFile(w, r, a.Index)
	return nil
}

func (s *Server) consoleAsset(w http.ResponseWriter, r *http.Request) error {
	a, err := web.Load()
	if err != nil {
		return err
	}
	f := a.File(r.PathValue("path"))
	if f == nil || r.PathValue("version") != a.Version {
		// An older page asking for its own version after an upgrade
		// gets a 404 rather than a mix of two versions.
		return veritrail.Errorf(veritrail.ENotFound, "no such console asset")
	}
	consoleHeaders(w.Header(), a.CSP)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	serveFile(w, r, f)
	return nil
}

// serveFile writes f, gzipped when the client takes it.
func serveFile(w http.ResponseWriter, r *http.Request, f *web.File) {
	h := w.Header()
	h.Set("Content-Type", f.ContentType)
	h.Add("Vary", "Accept-Encoding")
	body := f.Body
	if f.Gzip != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = f.Gzip
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
