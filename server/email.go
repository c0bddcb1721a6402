package server

import (
	"net/http"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// Changes of email. POST /v1/email/change (a sensitive action: it needs a
// fresh proof of the password) sends a confirmation token to the new
// address and a notice to the current one; POST /v1/email/change/confirm
// with the token applies the change, which ends every other session of
// the user.

// requestEmailChange starts a change of the email of the user of sess.
func (s *Server) requestEmailChange(r *http.Request, sess *sessiond.Session, newEmail string) (string, time.Time, error) {
	if err := s.requireFresh(r, sess); err != nil {
		return "", time.Time{}, err
	}
	tok, u, to, expires, err := s.accounts.RequestEmailChange(r.Context(), sess.UserID, newEmail)
	if err != nil {
		return "", time.Time{}, err
	}
	ctx := s.auditContext(r)
	c := s.client(ctx, r)
	s.log.InfoContext(r.Context(), "email change requested", "user_id", u.ID, "expires_at", expires)
	s.audit.Record(ctx, u.ID, audit.EmailChangeRequested, sess.ID, map[string]any{"new_email": to})
	data := map[string]any{"token": tok, "expires_at": rfc3339(expires)}
	if s.cfg.PublicURL != "" {
		data["link"] = s.cfg.PublicURL + "/email/change/confirm#token=" + tok
	}
	s.notifyAddress(ctx, to, u.ID, notify.TypeEmailChangeConfirm, data)
	s.notifyAddress(ctx, u.Email, u.ID, notify.TypeEmailChangeRequested, map[string]any{
		"new_email": to, "expires_at": rfc3339(expires), "requested_at": rfc3339(s.sessions.Now()),
		"ip": c.IP, "browser": c.Browser, "os": c.OS,
	})
	return to, expires, nil
}

// confirmEmailChange applies a change of email with its token and ends
// every session of the user but keep (the request's own, when it is the
// user's; may be empty).
func (s *Server) confirmEmailChange(r *http.Request, token string, keep *sessiond.Session) (*account.User, int, error) {
	u, old, err := s.accounts.ConfirmEmailChange(r.Context(), token)
	if err != nil {
		return nil, 0, err
	}
	keepID := ""
	if keep != nil && keep.UserID == u.ID {
		keepID = keep.ID
	}
	n, err := s.endAllSessions(r, u.ID, keepID, sessiond.ReasonEmailChanged)
	if err != nil {
		return nil, 0, err
	}
	ctx := s.auditContext(r)
	s.log.InfoContext(r.Context(), "email changed", "user_id", u.ID, "revoked", n)
	s.audit.Record(ctx, u.ID, audit.EmailChanged, keepID, map[string]any{
		"old_email": old, "new_email": u.Email, "sessions_ended": n,
	})
	s.notifyAddress(ctx, old, u.ID, notify.TypeEmailChanged, map[string]any{
		"new_email": u.Email, "changed_at": rfc3339(s.sessions.Now()), "sessions_ended": n,
	})
	return u, n, nil
}

// emailChange: POST /v1/email/change {"new_email"} → 202 {"new_email",
// "expires_at"}.
func (s *Server) emailChange(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		NewEmail string `json:"new_email"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	to, expires, err := s.requestEmailChange(r, c.session, req.NewEmail)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"new_email": to, "expires_at": rfc3339(expires)})
}

// emailChangeConfirm: POST /v1/email/change/confirm {"token"} → 200
// {"user", "revoked"}. No session is needed (the link may be opened in
// another browser); a session of the user that makes the request is kept.
func (s *Server) emailChangeConfirm(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.optionalSession(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var keep *sessiond.Session
	if c != nil {
		keep = c.session
	}
	u, n, err := s.confirmEmailChange(r, req.Token, keep)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": viewUser(u), "revoked": n})
}

// RequestEmailChange starts a change of the email of current's user, as
// POST /v1/email/change does: current needs to be fresh
// (ErrReauthenticationRequired); the confirmation goes to the new address.
// It returns the normalised new address and when the confirmation expires.
func (s *Server) RequestEmailChange(r *http.Request, current *sessiond.Session, newEmail string) (string, time.Time, error) {
	return s.requestEmailChange(r, current, newEmail)
}

// ConfirmEmailChange applies a change of email with its token, as POST
// /v1/email/change/confirm does: every session of the user ends but
// current (may be nil), when it is the user's. It returns the user and how
// many sessions ended.
func (s *Server) ConfirmEmailChange(r *http.Request, current *sessiond.Session, token string) (*account.User, int, error) {
	return s.confirmEmailChange(r, token, current)
}
