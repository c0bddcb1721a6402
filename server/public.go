package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"unicode/utf8"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/httperror"
)

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email    string          `json:"email"`
		Password string          `json:"password"`
		Profile  json.RawMessage `json:"profile"`
	}
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
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
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	transport, err := s.flows.CheckTransport(req.Transport)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	old, _ := s.requestToken(r)
	in, err := s.flows.SignIn(r.Context(), s.client(r), flows.SignInParams{
		Email: req.Email, Password: req.Password, RememberMe: req.RememberMe, Transport: transport, Replace: old})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerSession(w, r, in, transport, http.StatusOK)
}

// answerSession answers with a new session through the chosen transport.
func (s *Server) answerSession(w http.ResponseWriter, r *http.Request, in *flows.SignedIn, transport string, status int) {
	if flows.IsClientSide(transport) {
		s.answerJWT(w, r, in.Session, in.Token, in.User, transport, []string{"pwd"}, status)
		return
	}
	body := map[string]any{"session": viewSession(in.Session, true), "user": viewUser(in.User)}
	if transport == sessiond.TransportToken {
		body["token"] = in.Token
		if _, fromCookie := s.requestToken(r); fromCookie {
			s.cfg.Cookie.Clear(w) // the replaced session's cookie is dead
		}
	} else {
		s.cfg.Cookie.Set(w, in.Token, in.Session, s.sessions.Now())
	}
	writeJSON(w, status, body)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Scope string `json:"scope"`
	}
	if err := s.decode(w, r, &req, bodyOptional); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Scope != "" && req.Scope != "current" && req.Scope != "all" {
		s.writeError(w, r, httperror.InvalidField(`scope must be "current" or "all"`))
		return
	}
	tok, _ := s.presentedToken(r)
	clearClient, refresh := false, ""
	if s.flows.ClientSideOn() {
		if c, err := r.Cookie(s.refreshCookieName()); err == nil {
			refresh = c.Value
		}
		clearClient = refresh != "" || flows.LooksLikeJWT(tok)
	}
	// Signing out everywhere may be refused (reauthentication required):
	// then nothing ended and the cookies stay.
	err := s.flows.SignOut(r.Context(), s.client(r), tok, req.Scope == "all")
	if errors.Is(err, flows.ErrReauthenticationRequired) {
		s.writeError(w, r, err)
		return
	}
	if err == nil && refresh != "" {
		// A client-side browser session whose access cookie expired: its
		// refresh cookie (the one scoped to this path) still ends it.
		err = s.flows.RevokeRefreshToken(r.Context(), s.client(r), refresh)
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
	writeWhoAmI(w, c.Session, u)
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.sessions.List(r.Context(), c.Session.UserID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": viewSessions(list, c.Session.ID)})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	c, _, err := s.authenticateUser(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	// Another user's session, or none: the same 404.
	if err := s.flows.RevokeSession(r.Context(), s.client(r), c.Session, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	if id == c.Session.ID && c.fromCookie {
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
	n, err := s.flows.RevokeOthers(r.Context(), s.client(r), c.Session)
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
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Profile == nil {
		s.writeError(w, r, httperror.InvalidField(`"profile" must be a JSON object`))
		return
	}
	u, err := s.accounts.UpdateProfile(r.Context(), c.Session.UserID, req.Profile)
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
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.flows.DeleteAccount(r.Context(), s.client(r), c.Session, req.Password); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.cfg.Cookie.Clear(w)
	noContent(w)
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
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	// Force Logout: every other session ends, this one survives with a
	// new token.
	rot, err := s.flows.ChangePassword(r.Context(), s.client(r), c.Caller, req.CurrentPassword, req.NewPassword)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerRotated(w, r, c, rot, nil, "revoked", rot.Revoked)
}

// answerRotated answers with a session that got a new token the way the
// caller holds it: a new cookie, "token" in the body for a bearer caller,
// or a new access and refresh token for a client-side session. With u the
// body has the session and the user; extra are further key, value pairs
// of the body.
func (s *Server) answerRotated(w http.ResponseWriter, r *http.Request, c caller, rot *flows.Rotated, u *account.User, extra ...any) {
	if c.ClientSide {
		s.answerJWT(w, r, rot.Session, rot.Token, u, s.jwtTransportOf(r), []string{"pwd"}, http.StatusOK, extra...)
		return
	}
	body := map[string]any{}
	if u != nil {
		body["session"], body["user"] = viewSession(rot.Session, true), viewUser(u)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	if c.fromCookie {
		s.cfg.Cookie.Set(w, rot.Token, rot.Session, s.sessions.Now())
	} else {
		body["token"] = rot.Token
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) requestReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Email string `json:"email"`
	}
	if err := s.decode(w, r, &req, bodyRequired); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.flows.StartReset(r.Context(), s.client(r), req.Email); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) confirmReset(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
		RememberMe  bool   `json:"remember_me"`
		Transport   string `json:"transport"`
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
	old, _ := s.requestToken(r)
	in, err := s.flows.ConfirmReset(r.Context(), s.client(r), flows.ResetParams{Token: req.Token,
		NewPassword: req.NewPassword, RememberMe: req.RememberMe, Transport: transport, Replace: old})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.answerSession(w, r, in, transport, http.StatusOK)
}

func (s *Server) getData(w http.ResponseWriter, r *http.Request) {
	c, err := s.optionalSession(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := map[string]json.RawMessage{}
	if c != nil {
		data, err := s.sessions.Data(r.Context(), c.Session.ID)
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
		s.writeError(w, r, httperror.InvalidJSON("the body is not valid UTF-8"))
		return
	}
	if err := json.Compact(&value, body); err != nil || !json.Valid(body) {
		s.writeError(w, r, httperror.InvalidJSON("the body must be one JSON value"))
		return
	}
	c, err := s.optionalSession(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var sess *sessiond.Session
	if c != nil {
		sess = c.Session
	}
	// No session: an anonymous one starts with this value.
	put, err := s.flows.PutData(r.Context(), s.client(r), sess, key, value.Bytes())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if put.Token != "" {
		s.cfg.Cookie.Set(w, put.Token, put.Session, s.sessions.Now())
	}
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
		if err := s.sessions.DeleteData(r.Context(), c.Session.ID, key); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
			s.writeError(w, r, err)
			return
		}
	}
	noContent(w)
}
