package server

import (
	"errors"
	"net/http"
	"net/netip"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// caller is the session a request authenticated with.
type caller struct {
	session    *sessiond.Session
	token      string
	fromCookie bool
	// jwt: the request carried a client-side access token, not a session
	// token; token is then the access token.
	jwt bool
}

// requestToken returns the request's token: the Authorization header if
// present, else the session cookie. Never the URL.
func (s *Server) requestToken(r *http.Request) (string, bool) {
	return s.cfg.Cookie.Token(r, true)
}

// authenticate validates the request's token (a use: it slides the idle
// deadline). Rejections are 401 and clear a stale cookie; store failures
// pass through as themselves (503).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (caller, error) {
	tok, fromCookie := s.requestToken(r)
	if tok == "" && s.clientSide != nil {
		if c, err := r.Cookie(s.accessCookieName()); err == nil {
			tok, fromCookie = c.Value, false
		}
	}
	if tok == "" {
		s.metrics.rejected.WithLabelValues("missing").Inc()
		return caller{}, errUnauthenticated
	}
	if looksLikeJWT(tok) {
		sess, err := s.authenticateJWT(r, tok)
		if err == nil {
			err = s.checkClient(r, sess)
		}
		if err != nil {
			s.countRejection(err)
			return caller{}, err
		}
		return caller{session: sess, token: tok, jwt: true}, nil
	}
	sess, err := s.sessions.Validate(r.Context(), tok)
	if err == nil {
		err = s.checkClient(r, sess)
	}
	if err != nil {
		s.countRejection(err)
		if sessiond.IsRejection(err) && fromCookie {
			s.cfg.Cookie.Clear(w)
		}
		return caller{}, err
	}
	return caller{session: sess, token: tok, fromCookie: fromCookie}, nil
}

// authenticateUser is authenticate for routes that need a signed-in user:
// anonymous sessions are 401 too. It also loads the user; a session whose
// account is gone is 401.
func (s *Server) authenticateUser(w http.ResponseWriter, r *http.Request) (caller, *account.User, error) {
	c, err := s.authenticate(w, r)
	if err != nil {
		return caller{}, nil, err
	}
	if c.session.Anonymous() {
		s.metrics.rejected.WithLabelValues("anonymous").Inc()
		return caller{}, nil, errUnauthenticated
	}
	s.metrics.validated.Inc()
	u, err := s.accounts.User(r.Context(), c.session.UserID)
	if errors.Is(err, account.ErrUserNotFound) {
		return caller{}, nil, errUnauthenticated
	}
	if err != nil {
		return caller{}, nil, err
	}
	return c, u, nil
}

func (s *Server) countRejection(err error) {
	reason := "unavailable"
	switch {
	case errors.Is(err, sessiond.ErrMalformedToken):
		reason = "malformed"
	case errors.Is(err, sessiond.ErrNotFound):
		reason = "unknown"
	case errors.Is(err, sessiond.ErrExpired):
		reason = "expired"
	case errors.Is(err, sessiond.ErrRevoked):
		reason = "revoked"
	}
	s.metrics.rejected.WithLabelValues(reason).Inc()
}

// ipKey is the rate-limit key of a client address: the address for IPv4,
// its /64 for IPv6 (one subscriber usually holds a whole /64).
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() {
		return ip
	}
	p, _ := a.Prefix(64)
	return p.String()
}
