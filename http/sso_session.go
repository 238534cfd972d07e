package http

import (
	"net/http"

	veritrail "github.com/veritrail/veritrail"
)

// ssoSignIn opens a console session for u after single sign-on (a new
// session id, auth.login with method oidc, the session cookie) and answers
// a page that takes the browser to returnTo, a path of this server.
func (s *Server) ssoSignIn(w http.ResponseWriter, r *http.Request, p *veritrail.Principal, u *veritrail.User, returnTo string) error {
	p.User = u
	if _, _, err := s.openSession(w, r, p, veritrail.SignInOIDC); err != nil {
		return err
	}
	landingPage(w, returnTo)
	return nil
}
