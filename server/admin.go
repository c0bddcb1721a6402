package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

func (s *Server) adminCreateSession(w http.ResponseWriter, r *http.Request) {
	var req struct {
		UserID     string                     `json:"user_id"`
		RememberMe bool                       `json:"remember_me"`
		Data       map[string]json.RawMessage `json:"data"`
		Transport  string                     `json:"transport"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	transport, err := s.checkTransport(req.Transport)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if transport == transportJWTCookie || transport == transportCookie {
		transport = transportToken // an admin caller is no browser: the token comes in the body
	}
	if req.UserID == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_field", `"user_id" is required`))
		return
	}
	u, err := s.accounts.User(r.Context(), req.UserID)
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
	p := sessiond.CreateParams{
		UserID: u.ID, RememberMe: req.RememberMe, UserAgent: r.UserAgent(), IP: s.clientIP(r), Data: data,
		Transport: transport, // token or jwt: never bound to a browser
	}
	if transport == transportJWT {
		p.NewToken = s.newRefreshChain
	}
	sess, tok, err := s.sessions.Create(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.created.WithLabelValues("user").Inc()
	s.log.InfoContext(r.Context(), "session created by admin", "user_id", u.ID, "session_id", sess.ID)
	if transport == transportJWT {
		s.answerJWT(w, r, sess, tok, nil, transportJWT, nil, http.StatusCreated)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"session": viewSession(sess, false), "token": tok})
}

func (s *Server) adminValidate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	sess, err := s.sessions.Validate(r.Context(), req.Token)
	if err != nil {
		s.countRejection(err)
		if sessiond.IsRejection(err) {
			writeJSON(w, http.StatusOK, map[string]bool{"active": false})
			return
		}
		s.writeError(w, r, err)
		return
	}
	var user *userView
	if !sess.Anonymous() {
		u, err := s.accounts.User(r.Context(), sess.UserID)
		switch {
		case errors.Is(err, account.ErrUserNotFound):
			writeJSON(w, http.StatusOK, map[string]bool{"active": false})
			return
		case err != nil:
			s.writeError(w, r, err)
			return
		}
		user = viewUser(u)
	}
	s.metrics.validated.Inc()
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "session": viewSession(sess, false), "user": user})
}

func (s *Server) adminRevokeSession(w http.ResponseWriter, r *http.Request) {
	// The session's user, for the audit trail; a session that is not
	// active fails the Revoke below just the same.
	var userID string
	sess, err := s.sessions.Get(r.Context(), r.PathValue("id"), "")
	if err == nil {
		userID = sess.UserID
	}
	if err := s.sessions.Revoke(r.Context(), r.PathValue("id"), sessiond.ReasonAdmin); err != nil {
		if errors.Is(err, sessiond.ErrNotFound) {
			err = errNotFound
		}
		s.writeError(w, r, err)
		return
	}
	s.metrics.revoked.WithLabelValues(sessiond.ReasonAdmin).Inc()
	s.log.InfoContext(r.Context(), "session revoked by admin", "session_id", r.PathValue("id"))
	s.audit.Record(r.Context(), userID, audit.SessionRevokedByAdmin, r.PathValue("id"), nil)
	if userID != "" {
		s.notifyUser(r.Context(), userID, notify.TypeSessionRevokedByAdmin, map[string]any{
			"scope": "session", "sessions_ended": 1, "session_id": sess.ID,
			"session_browser": sess.Device.Browser, "session_os": sess.Device.OS,
			"revoked_at": rfc3339(s.sessions.Now()),
		})
	}
	noContent(w)
}

func (s *Server) adminFindUser(w http.ResponseWriter, r *http.Request) {
	email := r.URL.Query().Get("email")
	if email == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_field", "the email query parameter is required"))
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
	id := r.PathValue("id")
	if err := s.accounts.DeleteByAdmin(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.endAllSessions(r, id, "", sessiond.ReasonUserDeleted)
	s.log.InfoContext(r.Context(), "user deleted by admin", "user_id", id)
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
	id := r.PathValue("id")
	if _, err := s.accounts.User(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.sessions.RevokeUser(r.Context(), id, "", sessiond.ReasonAdmin)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.revoked.WithLabelValues(sessiond.ReasonAdmin).Add(float64(n))
	s.log.InfoContext(r.Context(), "user's sessions revoked by admin", "user_id", id, "revoked", n)
	s.audit.Record(r.Context(), id, audit.SessionsRevokedByAdmin, "", map[string]any{"sessions_ended": n})
	if n > 0 {
		s.notifyUser(r.Context(), id, notify.TypeSessionRevokedByAdmin, map[string]any{
			"scope": "all", "sessions_ended": n, "revoked_at": rfc3339(s.sessions.Now()),
		})
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (s *Server) adminIssueReset(w http.ResponseWriter, r *http.Request) {
	tok, expires, err := s.accounts.IssueResetToken(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": tok, "expires_at": expires.UTC().Format(time.RFC3339)})
}
