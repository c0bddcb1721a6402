package server

import "net/http"

// reauthenticate: POST /v1/session/reauthenticate {"password"}: a fresh
// proof of the password for sensitive actions (see flows.Reauthenticate).
// The answer carries the session (with its new authenticated_at) and the
// new token the way the caller holds it: a new cookie, "token" in the body
// for a bearer caller, or a new access and refresh token for a client-side
// session. The old token stops working.
func (s *Server) reauthenticate(w http.ResponseWriter, r *http.Request) {
	c, u, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		Password string `json:"password"`
	}
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	rot, err := s.flows.Reauthenticate(r.Context(), s.client(r), c.Caller, req.Password)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerRotated(w, r, c, rot, u)
}
