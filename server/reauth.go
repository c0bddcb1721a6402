package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/audit"
)

// Fresh authentication ("sudo mode"). A session remembers when its user
// last proved the password (sessiond.Session.AuthenticatedAt: the sign-in,
// or a reauthentication). Sensitive actions need that proof to be younger
// than the policy's ReauthWindow (--reauth-window), else they are refused
// with 403 reauthentication_required and change nothing:
//
//   - signing out everywhere (POST /v1/logout with scope "all"),
//   - signing out all other sessions (POST /v1/sessions/revoke-others),
//   - signing out another device (DELETE /v1/sessions/{id} for an id that
//     is not the caller's own session),
//   - deleting the account (DELETE /v1/profile),
//   - changing the email address (POST /v1/email/change).
//
// POST /v1/session/reauthenticate renews the proof with the password.

// ErrReauthenticationRequired is the error of a sensitive action in a
// session whose proof of the password is older than the reauthentication
// window (or that has none). The API answers it with 403
// reauthentication_required; the pages ask for the password.
var ErrReauthenticationRequired = errors.New("server: this action needs a recent confirmation of the password")

var errReauthRequired = &apiError{status: http.StatusForbidden, code: "reauthentication_required",
	message: "this action needs a recent confirmation of your password: POST /v1/session/reauthenticate first"}

// Fresh reports whether the user of sess proved the password within the
// reauthentication window, so that sensitive actions are allowed.
func (s *Server) Fresh(sess *sessiond.Session) bool { return s.sessions.Fresh(sess) }

// requireFresh returns ErrReauthenticationRequired unless sess is fresh.
func (s *Server) requireFresh(r *http.Request, sess *sessiond.Session) error {
	if s.sessions.Fresh(sess) {
		return nil
	}
	s.metrics.reauth.WithLabelValues("required").Inc()
	s.log.InfoContext(r.Context(), "sensitive action refused: reauthentication required",
		"route", r.Pattern, "user_id", sess.UserID, "session_id", sess.ID)
	return ErrReauthenticationRequired
}

// reauthenticate checks the password of the caller's user, under the
// per-address limit and the account lockout (a wrong password counts as a
// failed sign-in), and then records the proof in the caller's session,
// which gets a new token: a new refresh chain for a client-side session.
func (s *Server) reauthenticate(r *http.Request, c *caller, password string) (*sessiond.Session, string, error) {
	ip := s.clientIP(r)
	if s.loginLimiter != nil {
		if blocked, wait := s.loginLimiter.blocked(ipKey(ip), time.Now()); blocked {
			s.metrics.loginFailures.WithLabelValues("rate_limited").Inc()
			return nil, "", &RateLimitedError{RetryAfter: wait}
		}
	}
	if _, err := s.accounts.VerifyPassword(s.auditContext(r), c.session.UserID, password); err != nil {
		s.loginFailed(r, ip, err)
		s.metrics.reauth.WithLabelValues("failed").Inc()
		return nil, "", err
	}
	var next string
	if c.jwt {
		var err error
		if next, err = s.newRefreshChain(c.session.ID); err != nil {
			return nil, "", err
		}
	}
	sess, tok, err := s.sessions.Reauthenticate(r.Context(), c.session, next)
	if err != nil {
		return nil, "", err
	}
	s.metrics.reauth.WithLabelValues("ok").Inc()
	s.log.InfoContext(r.Context(), "reauthenticated", "user_id", sess.UserID, "session_id", sess.ID)
	s.audit.Record(s.auditContext(r), sess.UserID, audit.Reauthenticated, sess.ID, nil)
	return sess, tok, nil
}

// reauthenticateHandler: POST /v1/session/reauthenticate {"password"}.
// The answer carries the session (with its new authenticated_at) and the
// new token the way the caller holds it: a new cookie, "token" in the body
// for a bearer caller, or a new access and refresh token for a client-side
// session. The old token stops working.
func (s *Server) reauthenticateHandler(w http.ResponseWriter, r *http.Request) {
	c, u, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, tok, err := s.reauthenticate(r, &c, req.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c.jwt {
		s.answerJWT(w, r, sess, tok, u, s.jwtTransportOf(r), []string{"pwd"}, http.StatusOK)
		return
	}
	body := map[string]any{"session": viewSession(sess, true), "user": viewUser(u)}
	if c.fromCookie {
		s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	} else {
		body["token"] = tok
	}
	writeJSON(w, http.StatusOK, body)
}

// Reauthenticate checks the password of the user of current, the session
// whose token the request carries in the cookie, and records the proof in
// it, as POST /v1/session/reauthenticate does: the session gets a new token
// (a new cookie on w), which it returns with the session. A wrong password
// is account.ErrInvalidCredentials and counts toward lockout.
func (s *Server) Reauthenticate(w http.ResponseWriter, r *http.Request, current *sessiond.Session, token, password string) (*sessiond.Session, string, error) {
	sess, tok, err := s.reauthenticate(r, &caller{session: current, token: token, fromCookie: true}, password)
	if err != nil {
		return nil, "", err
	}
	s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	return sess, tok, nil
}
