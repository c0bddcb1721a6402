package server

import (
	"net/http"

	"github.com/sessiond/sessiond"
)

// Changes of email (see flows.RequestEmailChange).

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
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	req2, err := s.flows.RequestEmailChange(r.Context(), s.client(r), c.Session, req.NewEmail)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"new_email": req2.NewEmail, "expires_at": rfc3339(req2.ExpiresAt)})
}

// emailChangeConfirm: POST /v1/email/change/confirm {"token"} → 200
// {"user", "revoked"}. No session is needed (the link may be opened in
// another browser); a session of the user that makes the request is kept.
func (s *Server) emailChangeConfirm(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
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
		keep = c.Session
	}
	done, err := s.flows.ConfirmEmailChange(r.Context(), s.client(r), req.Token, keep)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": viewUser(done.User), "revoked": done.Revoked})
}

// emailChangeCancel: POST /v1/email/change/cancel {"token"} → 204. The
// token is the cancellation token of the notice sent to the current
// address; no session is needed.
func (s *Server) emailChangeCancel(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.flows.CancelEmailChange(r.Context(), s.client(r), req.Token); err != nil {
		s.writeError(w, r, err)
		return
	}
	noContent(w)
}
