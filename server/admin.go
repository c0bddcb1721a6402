package server

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/httperror"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

func (s *Server) adminCreateSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID     string                     `json:"user_id"`
		RememberMe bool                       `json:"remember_me"`
		Data       map[string]json.RawMessage `json:"data"`
		Transport  string                     `json:"transport"`
	}
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	transport, err := s.flows.CheckTransport(req.Transport)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var data map[string][]byte
	if len(req.Data) > 0 {
		data = make(map[string][]byte, len(req.Data))
		for k, v := range req.Data {
			data[k] = v
		}
	}
	in, err := s.flows.AdminCreateSession(r.Context(), s.client(r), flows.AdminSessionParams{
		UserID: req.UserID, RememberMe: req.RememberMe, Data: data, Transport: transport})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Transport == sessiond.TransportJWT {
		s.answerJWT(w, r, in.Session, in.Token, nil, in.Transport, nil, http.StatusCreated)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"session": viewSession(in.Session, false), "token": in.Token})
}

func (s *Server) adminValidate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	in, err := s.flows.Introspect(r.Context(), req.Token)
	switch {
	case err != nil:
		s.writeError(w, r, err)
	case !in.Active:
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"active": true, "session": viewSession(in.Session, false), "user": viewUser(in.User)})
	}
}

func (s *Server) adminRevokeSession(w http.ResponseWriter, r *http.Request) {
	if err := s.flows.AdminRevokeSession(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	noContent(w)
}

func (s *Server) adminFindUser(w http.ResponseWriter, r *http.Request) {
	email := r.URL.Query().Get("email")
	if email == "" {
		s.writeError(w, r, httperror.InvalidField("the email query parameter is required"))
		return
	}
	u, err := s.accounts.UserByEmail(r.Context(), email)
	if errors.Is(err, account.ErrInvalidEmail) {
		err = account.ErrUserNotFound
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": viewUser(u)})
}

func (s *Server) adminCreateUser(w http.ResponseWriter, r *http.Request) {
	s.register(w, r)
}

func (s *Server) adminGetUser(w http.ResponseWriter, r *http.Request) {
	u, err := s.accounts.User(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": viewUser(u)})
}

func (s *Server) adminDeleteUser(w http.ResponseWriter, r *http.Request) {
	if err := s.flows.AdminDeleteUser(r.Context(), r.PathValue("id")); err != nil {
		s.writeError(w, r, err)
		return
	}
	noContent(w)
}

func (s *Server) adminListSessions(w http.ResponseWriter, r *http.Request) {
	u, err := s.accounts.User(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.sessions.List(r.Context(), u.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": viewSessions(list, "")})
}

func (s *Server) adminRevokeUserSessions(w http.ResponseWriter, r *http.Request) {
	n, err := s.flows.AdminRevokeUser(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (s *Server) adminIssueReset(w http.ResponseWriter, r *http.Request) {
	tok, expires, err := s.accounts.IssueResetToken(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_at": rfc3339(expires)})
}
