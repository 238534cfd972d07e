package http

import (
	"net/http"

	veritrail "github.com/veritrail/veritrail"
)

// Miro-compatible read endpoints (placeholders until built).

func (s *Server) miroV2AuditLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	writeMiroError(w, veritrail.Errorf(veritrail.EUnavailable, "not built yet"))
}

func (s *Server) miroV1AuditLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	writeMiroError(w, veritrail.Errorf(veritrail.EUnavailable, "not built yet"))
}

func (s *Server) miroAIInteractionLogs(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
	writeMiroError(w, veritrail.Errorf(veritrail.EUnavailable, "not built yet"))
}
