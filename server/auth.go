package server

import (
	"net/http"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
)

// caller is the session a request authenticated with, and where its
// token came from.
type caller struct {
	flows.Caller
	fromCookie bool
}

// client describes the client of r for the flows.
func (s *Server) client(r *http.Request) flows.Client {
	return flows.Client{Addr: s.clientAddr(r), UserAgent: r.UserAgent()}
}

// requestToken returns the request's token: the Authorization header if
// present, else the session cookie. Never the URL.
func (s *Server) requestToken(r *http.Request) (string, bool) {
	return s.cfg.Cookie.Token(r, true)
}

// presentedToken is requestToken, or with client-side sessions on, the
// access cookie when the request carries neither. A request with an
// Authorization header is authenticated by that header alone: a header
// that is no bearer token signs no one in, whatever cookies come along.
func (s *Server) presentedToken(r *http.Request) (tok string, fromCookie bool) {
	tok, fromCookie = s.requestToken(r)
	if tok == "" && s.flows.ClientSideOn() && r.Header.Get("Authorization") == "" {
		if c, err := r.Cookie(s.accessCookieName()); err == nil {
			tok, fromCookie = c.Value, false
		}
	}
	return tok, fromCookie
}

// authenticate validates the request's token (a use: it slides the idle
// deadline). Rejections are 401 and clear a stale cookie; store failures
// pass through as themselves (503).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (caller, error) {
	tok, fromCookie := s.presentedToken(r)
	c, err := s.flows.Authenticate(r.Context(), s.client(r), tok)
	if err != nil {
		if sessiond.IsRejection(err) && fromCookie {
			s.cfg.Cookie.Clear(w)
		}
		return caller{}, err
	}
	return caller{Caller: c, fromCookie: fromCookie}, nil
}

// authenticateUser is authenticate for routes that need a signed-in user:
// anonymous sessions and sessions whose account is gone are 401 too. It
// also loads the user.
func (s *Server) authenticateUser(w http.ResponseWriter, r *http.Request) (caller, *account.User, error) {
	tok, fromCookie := s.presentedToken(r)
	c, u, err := s.flows.AuthenticateUser(r.Context(), s.client(r), tok)
	if err != nil {
		if sessiond.IsRejection(err) && fromCookie {
			s.cfg.Cookie.Clear(w)
		}
		return caller{}, nil, err
	}
	return caller{Caller: c, fromCookie: fromCookie}, u, nil
}

// optionalSession is the request's active session, anonymous or not, or
// nil when it carries none that is valid.
func (s *Server) optionalSession(w http.ResponseWriter, r *http.Request) (*caller, error) {
	c, err := s.authenticate(w, r)
	if err != nil {
		if flows.IsUnauthenticated(err) {
			return nil, nil
		}
		return nil, err
	}
	return &c, nil
}
