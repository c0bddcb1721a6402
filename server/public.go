package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/notify"
)

// Transports of a new session's token.
const (
	transportCookie = "cookie" // Set-Cookie, the default
	transportToken  = "token"  // "token" in the body, no cookie
)

func (s *Server) checkTransport(t string) (string, error) {
	switch t {
	case "", transportCookie:
		return transportCookie, nil
	case transportToken:
		return t, nil
	case transportJWT, transportJWTCookie:
		if s.clientSide == nil {
			return "", errNoClientSide
		}
		return t, nil
	}
	return "", errorf(http.StatusBadRequest, "invalid_field", `transport must be "cookie", "token", "jwt" or "jwt_cookie"`)
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string          `json:"email"`
		Password string          `json:"password"`
		Profile  json.RawMessage `json:"profile"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.accounts.Register(r.Context(), req.Email, req.Password, nullToNil(req.Profile))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "user registered", "user_id", u.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"user": viewUser(u)})
}

func nullToNil(raw json.RawMessage) []byte {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil
	}
	return raw
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email      string `json:"email"`
		Password   string `json:"password"`
		RememberMe bool   `json:"remember_me"`
		Transport  string `json:"transport"`
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
	sess, tok, u, err := s.signIn(r, req.Email, req.Password, req.RememberMe, transport)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerSession(w, r, sess, tok, u, transport, http.StatusOK)
}

// loginFailed counts a failed sign-in against the client's address.
func (s *Server) loginFailed(r *http.Request, ip string, err error) {
	var locked *account.LockedError
	switch {
	case errors.As(err, &locked):
		s.metrics.loginFailures.WithLabelValues("locked").Inc()
	case errors.Is(err, account.ErrInvalidCredentials):
		s.metrics.loginFailures.WithLabelValues("invalid_credentials").Inc()
	default:
		return // a store failure is not the client's
	}
	if s.loginLimiter != nil {
		s.loginLimiter.take(ipKey(ip), time.Now())
	}
}

// answerSession answers with a new session through the chosen transport.
func (s *Server) answerSession(w http.ResponseWriter, r *http.Request, sess *sessiond.Session, tok string, u *account.User, transport string, status int) {
	if isJWTTransport(transport) {
		s.answerJWT(w, r, sess, tok, u, transport, []string{"pwd"}, status)
		return
	}
	body := map[string]any{"session": viewSession(sess, true), "user": viewUser(u)}
	if transport == transportToken {
		body["token"] = tok
		if _, fromCookie := s.requestToken(r); fromCookie {
			s.cfg.Cookie.Clear(w) // the replaced session's cookie is dead
		}
	} else {
		s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	}
	writeJSON(w, status, body)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scope string `json:"scope"`
	}
	if err := s.decode(w, r, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Scope != "" && req.Scope != "current" && req.Scope != "all" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_field", `scope must be "current" or "all"`))
		return
	}
	tok, _ := s.requestToken(r)
	clearClient := false
	if s.clientSide != nil {
		if c, err := r.Cookie(s.accessCookieName()); err == nil && tok == "" {
			tok = c.Value
		}
		_, err := r.Cookie(s.refreshCookieName())
		clearClient = err == nil || looksLikeJWT(tok)
	}
	// Signing out everywhere may be refused (reauthentication required):
	// then nothing ended and the cookies stay.
	err := s.signOut(r, tok, req.Scope == "all")
	if errors.Is(err, ErrReauthenticationRequired) {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Cookie.Clear(w)
	if clearClient {
		s.clearClientCookies(w)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	noContent(w)
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	c, u, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeWhoAmI(w, c.session, u)
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.sessions.List(r.Context(), c.session.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": viewSessions(list, c.session.ID)})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	// Another user's session, or none: the same 404.
	if err := s.revokeOwn(r, c.session, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if id == c.session.ID && c.fromCookie {
		s.cfg.Cookie.Clear(w)
	}
	noContent(w)
}

func (s *Server) revokeOthers(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	n, err := s.revokeOtherSessions(r, c.session)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]int{"revoked": n})
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	_, u, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": viewUser(u)})
}

func (s *Server) patchProfile(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		Profile map[string]json.RawMessage `json:"profile"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Profile == nil {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_field", `"profile" must be a JSON object`))
		return
	}
	u, err := s.accounts.UpdateProfile(r.Context(), c.session.UserID, req.Profile)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": viewUser(u)})
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
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
	if err := s.deleteAccount(r, c.session, req.Password); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Cookie.Clear(w)
	noContent(w)
}

// endAllSessions ends a user's sessions after a change that already
// happened (account deleted, password set); a failure is logged, since
// the answer cannot undo the change.
func (s *Server) endAllSessions(r *http.Request, userID, exceptID, reason string) (int, error) {
	n, err := s.sessions.RevokeUser(r.Context(), userID, exceptID, reason)
	if err != nil {
		s.log.ErrorContext(r.Context(), "ending sessions failed", "user_id", userID, "reason", reason, "err", err)
		return n, err
	}
	s.metrics.revoked.WithLabelValues(reason).Add(float64(n))
	return n, nil
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Force Logout: every other session ends, this one survives with a
	// new token.
	sess, tok, n, err := s.changeOwnPassword(r, &c, req.CurrentPassword, req.NewPassword)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c.jwt {
		s.answerJWT(w, r, sess, tok, nil, s.jwtTransportOf(r), []string{"pwd"}, http.StatusOK, "revoked", n)
		return
	}
	body := map[string]any{"revoked": n}
	if c.fromCookie {
		s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	} else {
		body["token"] = tok
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) requestReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if err := s.decode(w, r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.startReset(r, req.Email); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) sendReset(ctx context.Context, u *account.User, tok string, expires time.Time) {
	data := map[string]any{"token": tok, "expires_at": expires.UTC().Format(time.RFC3339)}
	if s.cfg.PublicURL != "" {
		data["link"] = s.cfg.PublicURL + "/password/reset/confirm#token=" + tok
	}
	msg := notify.NewMessage(notify.TypePasswordReset, time.Now(), u.Email, u.ID, data)
	if err := s.notifier.Notify(ctx, msg); err != nil {
		s.metrics.resets.WithLabelValues("failed").Inc()
		s.log.ErrorContext(ctx, "reset notification failed", "user_id", u.ID, "message_id", msg.ID, "err", err)
		return
	}
	s.metrics.resets.WithLabelValues("sent").Inc()
	s.log.InfoContext(ctx, "reset notification sent", "user_id", u.ID, "message_id", msg.ID)
}

// goBackground runs fn after the request, with a deadline of its own. When
// too many are running it runs nothing, logs and reports false, so a flood
// of requests cannot pile up goroutines.
func (s *Server) goBackground(ctx context.Context, fn func(context.Context)) bool {
	select {
	case s.background <- struct{}{}:
	default:
		s.log.WarnContext(ctx, "background work dropped: too many in flight")
		return false
	}
	go func() {
		defer func() { <-s.background }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		fn(ctx)
	}()
	return true
}

func (s *Server) confirmReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
		RememberMe  bool   `json:"remember_me"`
		Transport   string `json:"transport"`
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
	sess, tok, u, err := s.resetPassword(r, req.Token, req.NewPassword, req.RememberMe, transport)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerSession(w, r, sess, tok, u, transport, http.StatusOK)
}

// optionalSession is the request's active session, anonymous or not, or
// nil when it carries none that is valid.
func (s *Server) optionalSession(w http.ResponseWriter, r *http.Request) (*caller, error) {
	c, err := s.authenticate(w, r)
	if err != nil {
		if sessiond.IsRejection(err) || errors.Is(err, errUnauthenticated) {
			return nil, nil
		}
		return nil, err
	}
	return &c, nil
}

func (s *Server) getData(w http.ResponseWriter, r *http.Request) {
	c, err := s.optionalSession(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := map[string]json.RawMessage{}
	if c != nil {
		data, err := s.sessions.Data(r.Context(), c.session.ID)
		if err != nil && !errors.Is(err, sessiond.ErrNotFound) {
			s.writeError(w, r, err)
			return
		}
		for k, v := range data {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": out})
}

func (s *Server) putData(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !sessiond.ValidKey(key) {
		s.writeError(w, r, sessiond.ErrInvalidKey)
		return
	}
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkJSONType(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	var value bytes.Buffer
	if !utf8.Valid(body) {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_json", "the body is not valid UTF-8"))
		return
	}
	if err := json.Compact(&value, body); err != nil || !json.Valid(body) {
		s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_json", "the body must be one JSON value"))
		return
	}
	c, err := s.optionalSession(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c != nil {
		if err := s.sessions.SetData(r.Context(), c.session.ID, key, value.Bytes()); err != nil {
			s.writeError(w, r, err)
			return
		}
		noContent(w)
		return
	}
	// No session: an anonymous one starts with this value.
	sess, tok, err := s.sessions.Create(r.Context(), sessiond.CreateParams{
		UserAgent: r.UserAgent(), IP: s.clientIP(r), Data: map[string][]byte{key: value.Bytes()},
		Transport: transportCookie,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.metrics.created.WithLabelValues("anonymous").Inc()
	s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	noContent(w)
}

func (s *Server) deleteData(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !sessiond.ValidKey(key) {
		s.writeError(w, r, sessiond.ErrInvalidKey)
		return
	}
	c, err := s.optionalSession(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if c != nil {
		if err := s.sessions.DeleteData(r.Context(), c.session.ID, key); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
			s.writeError(w, r, err)
			return
		}
	}
	noContent(w)
}
