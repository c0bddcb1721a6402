package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
)

// Client-side sessions (flows.ClientSide) over HTTP: the access and
// refresh tokens in the body (transport "jwt") or in cookies
// ("jwt_cookie"), the refresh and revoke endpoints, and the JWKS.

// cookie names of the client-side pair: the access token goes to every
// path; the refresh token only to the refresh endpoint.
func (s *Server) accessCookieName() string {
	if strings.HasPrefix(s.cfg.Cookie.Name, "__Host-") {
		return "__Host-access"
	}
	return "sessiond-access"
}

func (s *Server) refreshCookieName() string {
	if strings.HasPrefix(s.cfg.Cookie.Name, "__Host-") || strings.HasPrefix(s.cfg.Cookie.Name, "__Secure-") {
		return "__Secure-refresh"
	}
	return "sessiond-refresh"
}

// refreshCookiePath scopes the refresh cookie: browsers send it only to
// /v1/token/refresh and /v1/token/revoke, never to the rest of the API.
// A second cookie of the same name and value is scoped to logoutPath, so
// that a sign-out ends the session even after the access cookie expired.
const (
	refreshCookiePath = "/v1/token/"
	logoutPath        = "/v1/logout"
)

// answerJWT answers with a client-side session: a new access token for
// sess, and its refresh token, in the body or in cookies.
// extra are further key, value pairs of the body.
func (s *Server) answerJWT(w http.ResponseWriter, r *http.Request, sess *sessiond.Session, refresh string, u *account.User, transport string, amr []string, status int, extra ...any) {
	now := s.sessions.Now()
	access, err := s.flows.IssueAccessToken(sess, amr)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	expiresIn := int(access.ExpiresAt.Sub(now) / time.Second)
	body := map[string]any{"token_type": "Bearer", "expires_in": expiresIn}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	body["session"] = viewSession(sess, true)
	if u != nil {
		body["user"] = viewUser(u)
	}
	if transport == sessiond.TransportJWTCookie {
		s.setClientCookies(w, sess, access.Token, refresh, now)
	} else {
		body["access_token"] = access.Token
		body["refresh_token"] = refresh
	}
	if _, fromCookie := s.requestToken(r); fromCookie {
		s.cfg.Cookie.Clear(w) // a replaced server-side session's cookie is dead
	}
	writeJSON(w, status, body)
}

func (s *Server) setClientCookies(w http.ResponseWriter, sess *sessiond.Session, access, refresh string, now time.Time) {
	c := s.cfg.Cookie
	http.SetCookie(w, &http.Cookie{Name: s.accessCookieName(), Value: access, Path: "/", Secure: !c.Insecure,
		HttpOnly: true, SameSite: c.SameSite, MaxAge: int(s.flows.AccessTokenTTL() / time.Second)})
	rc := &http.Cookie{Name: s.refreshCookieName(), Value: refresh, Path: refreshCookiePath, Secure: !c.Insecure,
		HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if sess.RememberMe {
		rc.MaxAge = max(1, int(sess.AbsoluteExpiresAt.Sub(now)/time.Second))
	}
	http.SetCookie(w, rc)
	lc := *rc
	lc.Path = logoutPath
	http.SetCookie(w, &lc)
}

func (s *Server) clearClientCookies(w http.ResponseWriter) {
	c := s.cfg.Cookie
	http.SetCookie(w, &http.Cookie{Name: s.accessCookieName(), Path: "/", Secure: !c.Insecure, HttpOnly: true, SameSite: c.SameSite, MaxAge: -1})
	for _, path := range []string{refreshCookiePath, logoutPath} {
		http.SetCookie(w, &http.Cookie{Name: s.refreshCookieName(), Path: path, Secure: !c.Insecure, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	}
}

// jwks serves the public keys that may verify a live token.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	keys, maxAge := s.flows.PublishedKeys()
	doc, err := accesstoken.JWKS(keys)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(int(maxAge/time.Second)))
	w.Header().Set("Access-Control-Allow-Origin", "*") // public keys, no credentials
	_, _ = w.Write(append(doc, '\n'))
}

// refresh renews a client-side session: a new access token and the next
// refresh token; the presented one stops working.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	if !s.flows.ClientSideOn() {
		s.writeError(w, r, flows.ErrClientSideOff)
		return
	}
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := s.decode(w, r, &req, bodyOptional); err != nil {
		s.writeError(w, r, err)
		return
	}
	transport := sessiond.TransportJWT
	tok := req.RefreshToken
	if tok == "" {
		if c, err := r.Cookie(s.refreshCookieName()); err == nil {
			tok, transport = c.Value, sessiond.TransportJWTCookie
		}
	}
	ref, err := s.flows.Refresh(r.Context(), s.client(r), tok)
	if err != nil {
		if transport == sessiond.TransportJWTCookie &&
			(errors.Is(err, flows.ErrInvalidRefreshToken) || errors.Is(err, flows.ErrRefreshTokenReused)) {
			s.clearClientCookies(w)
		}
		s.writeError(w, r, err)
		return
	}
	s.answerJWT(w, r, ref.Session, ref.RefreshToken, ref.User, transport, nil, http.StatusOK)
}

// jwtTransportOf tells how a client-side caller holds its tokens: in
// cookies when its access token came in the access cookie.
func (s *Server) jwtTransportOf(r *http.Request) string {
	if r.Header.Get("Authorization") == "" {
		if _, err := r.Cookie(s.accessCookieName()); err == nil {
			return sessiond.TransportJWTCookie
		}
	}
	return sessiond.TransportJWT
}

// revokeToken ends the session behind a refresh token (RFC 7009 style):
// the logout of a client-side session whose access token may already have
// expired. The answer is 204 whatever the token; a token that is no genuine
// link of an active session's chain ends nothing.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := s.decode(w, r, &req, bodyOptional); err != nil {
		s.writeError(w, r, err)
		return
	}
	tok := req.RefreshToken
	if c, err := r.Cookie(s.refreshCookieName()); err == nil && tok == "" {
		tok = c.Value
	}
	if s.flows.ClientSideOn() {
		s.clearClientCookies(w)
		if err := s.flows.RevokeRefreshToken(r.Context(), s.client(r), tok); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	noContent(w)
}
