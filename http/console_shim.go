package http

import (
	"net/http"

	veritrail "github.com/veritrail/veritrail"
)

// Until the handlers-return-errors flow lands: the console's handlers
// already return their errors, and these adapt them to the current
// registration.

func (s *Server) apiE(pattern, route, scope string, h func(http.ResponseWriter, *http.Request, *veritrail.Principal) error) {
	s.api(pattern, route, scope, func(w http.ResponseWriter, r *http.Request, p *veritrail.Principal) {
		if err := h(w, r, p); err != nil {
			s.fail(w, r, err)
		}
	})
}

func (s *Server) publicE(pattern, route string, h func(http.ResponseWriter, *http.Request) error) {
	s.handle(pattern, route, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}
