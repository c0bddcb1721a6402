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
	"github.com/sessiond/sessiond/audit"
)

// ClientSide configures client-side sessions: short-lived signed access
// tokens that other services verify against the JWKS, renewed through a
// rotating refresh token. The server-side session stays the source of
// truth: a refresh succeeds only while it is active.
type ClientSide struct {
	// Keys are the signing keys (shared through the database).
	Keys *accesstoken.Keyring
	// Issuer names and times the tokens (iss, aud, TTL).
	Issuer accesstoken.Issuer
	// Chain derives refresh tokens.
	Chain *accesstoken.Chain
	// RefreshGrace is how long after a refresh its predecessor may be
	// presented again by an honest racing client and get the same answer.
	// Default 10s.
	RefreshGrace time.Duration
	// Skew is the clock skew allowed when checking tokens. Default 30s.
	Skew time.Duration
	// JWKSMaxAge is the Cache-Control max-age of the JWKS. Default 60s.
	JWKSMaxAge time.Duration
	// MaxChainSteps bounds the search for an earlier link of a refresh
	// chain. Default 10000.
	MaxChainSteps int
}

func (cs *ClientSide) withDefaults() *ClientSide {
	c := *cs
	if c.RefreshGrace <= 0 {
		c.RefreshGrace = 10 * time.Second
	}
	if c.Skew <= 0 {
		c.Skew = 30 * time.Second
	}
	if c.JWKSMaxAge <= 0 {
		c.JWKSMaxAge = time.Minute
	}
	if c.MaxChainSteps <= 0 {
		c.MaxChainSteps = 10000
	}
	if c.Issuer.TTL <= 0 {
		c.Issuer.TTL = 5 * time.Minute
	}
	return &c
}

// Transports of client-side sessions.
const (
	transportJWT       = "jwt"        // access and refresh token in the body
	transportJWTCookie = "jwt_cookie" // the same pair in HttpOnly cookies
)

func isJWTTransport(t string) bool { return t == transportJWT || t == transportJWTCookie }

var errNoClientSide = errorf(http.StatusBadRequest, "jwt_unavailable",
	"client-side sessions are not configured on this server (no key-encryption key)")

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
const refreshCookiePath = "/v1/token/"

// newRefreshChain is the CreateParams.NewToken of a client-side session.
func (s *Server) newRefreshChain(id string) (string, error) {
	return s.clientSide.Chain.First(id, nil)
}

// answerJWT answers with a client-side session: a new access token for
// sess, and its refresh token, in the body or in cookies.
// extra are further key, value pairs of the body.
func (s *Server) answerJWT(w http.ResponseWriter, r *http.Request, sess *sessiond.Session, refresh string, u *account.User, transport string, amr []string, status int, extra ...any) {
	cs := s.clientSide
	now := s.sessions.Now()
	access, claims, err := cs.Issuer.Issue(cs.Keys.Ring(), accesstoken.Params{
		UserID: sess.UserID, SessionID: sess.ID, RememberMe: sess.RememberMe, AMR: amr}, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	expiresIn := int(claims.Expiry.Time().Sub(now) / time.Second)
	body := map[string]any{"token_type": "Bearer", "expires_in": expiresIn}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	if sess != nil {
		body["session"] = viewSession(sess, true)
	}
	if u != nil {
		body["user"] = viewUser(u)
	}
	if transport == transportJWTCookie {
		s.setClientCookies(w, sess, access, refresh, now)
	} else {
		body["access_token"] = access
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
		HttpOnly: true, SameSite: c.SameSite, MaxAge: int(s.clientSide.Issuer.TTL / time.Second)})
	rc := &http.Cookie{Name: s.refreshCookieName(), Value: refresh, Path: refreshCookiePath, Secure: !c.Insecure,
		HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if sess.RememberMe {
		rc.MaxAge = max(1, int(sess.AbsoluteExpiresAt.Sub(now)/time.Second))
	}
	http.SetCookie(w, rc)
}

func (s *Server) clearClientCookies(w http.ResponseWriter) {
	c := s.cfg.Cookie
	http.SetCookie(w, &http.Cookie{Name: s.accessCookieName(), Path: "/", Secure: !c.Insecure, HttpOnly: true, SameSite: c.SameSite, MaxAge: -1})
	http.SetCookie(w, &http.Cookie{Name: s.refreshCookieName(), Path: refreshCookiePath, Secure: !c.Insecure, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// jwks serves the public keys that may verify a live token.
func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	var keys []*accesstoken.Key
	maxAge := time.Minute
	if cs := s.clientSide; cs != nil {
		keys = cs.Keys.Ring().Published(time.Now(), cs.Issuer.TTL, cs.Skew)
		maxAge = cs.JWKSMaxAge
	}
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

var (
	errInvalidRefresh = errorf(http.StatusUnauthorized, "invalid_refresh_token", "the refresh token is invalid, expired or its session ended")
	errRefreshReused  = errorf(http.StatusUnauthorized, "refresh_token_reused",
		"this refresh token was already used; the session has been ended")
)

// refresh renews a client-side session: a new access token and the next
// refresh token; the presented one stops working. See accesstoken.Chain
// for the reuse rule and the grace window.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	cs := s.clientSide
	if cs == nil {
		s.writeError(w, r, errNoClientSide)
		return
	}
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := s.decode(w, r, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	transport := transportJWT
	tok := req.RefreshToken
	if tok == "" {
		if c, err := r.Cookie(s.refreshCookieName()); err == nil {
			tok, transport = c.Value, transportJWTCookie
		}
	}
	sess, next, err := s.renewChain(r, tok)
	if err != nil {
		if transport == transportJWTCookie && (errors.Is(err, errInvalidRefresh) || errors.Is(err, errRefreshReused)) {
			s.clearClientCookies(w)
		}
		s.writeError(w, r, err)
		return
	}
	u, err := s.accounts.User(r.Context(), sess.UserID)
	if err != nil {
		if errors.Is(err, account.ErrUserNotFound) {
			err = errInvalidRefresh
		}
		s.writeError(w, r, err)
		return
	}
	s.answerJWT(w, r, sess, next, u, transport, nil, http.StatusOK)
}

// renewChain applies the refresh rule to tok and returns the session and
// the refresh token to hand out.
func (s *Server) renewChain(r *http.Request, tok string) (*sessiond.Session, string, error) {
	cs := s.clientSide
	id, err := accesstoken.RefreshSessionID(tok)
	if err != nil {
		s.metrics.rejected.WithLabelValues("malformed").Inc()
		return nil, "", errInvalidRefresh
	}
	for attempt := 0; attempt < 3; attempt++ {
		sess, err := s.sessions.Get(r.Context(), id, "")
		if err != nil {
			if sessiond.IsRejection(err) {
				s.countRejection(err)
				return nil, "", errInvalidRefresh
			}
			return nil, "", err
		}
		steps, ok := s.chainPlace(tok, sess)
		if ok && steps <= 1 {
			// A genuine link: the hijack rule of a browser's session
			// (jwt_cookie) holds at the refresh as everywhere.
			if err := s.checkClient(r, sess); err != nil {
				s.countRejection(err)
				return nil, "", errInvalidRefresh
			}
		}
		switch {
		case !ok:
			s.metrics.rejected.WithLabelValues("unknown").Inc()
			return nil, "", errInvalidRefresh
		case steps == 0:
			next, err := cs.Chain.Next(tok)
			if err != nil {
				return nil, "", err
			}
			renewed, err := s.sessions.Renew(r.Context(), sess, next)
			if errors.Is(err, sessiond.ErrNotFound) {
				continue // a racing refresh won; look again (grace window)
			}
			if err != nil {
				if sessiond.IsRejection(err) {
					return nil, "", errInvalidRefresh
				}
				return nil, "", err
			}
			s.metrics.validated.Inc()
			return renewed, next, nil
		case steps == 1 && s.sessions.Now().Sub(rotatedAt(sess)) < cs.RefreshGrace:
			// An honest race: the same answer as the refresh that won.
			next, err := cs.Chain.Next(tok)
			if err != nil {
				return nil, "", err
			}
			return sess, next, nil
		default:
			// A used token, again: two parties hold this chain.
			if err := s.sessions.Revoke(r.Context(), sess.ID, sessiond.ReasonRefreshReuse); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
				return nil, "", err
			}
			s.metrics.revoked.WithLabelValues(sessiond.ReasonRefreshReuse).Inc()
			s.log.WarnContext(r.Context(), "refresh token reused: session revoked", "user_id", sess.UserID,
				"session_id", sess.ID, "steps_behind", steps, "ip", s.clientIP(r))
			s.audit.Record(s.auditContext(r), sess.UserID, audit.RefreshTokenReused, sess.ID, map[string]any{"steps_behind": steps})
			return nil, "", errRefreshReused
		}
	}
	return nil, "", errInvalidRefresh
}

// chainPlace tells how many links tok is behind the current token of
// sess (ok false: no link of its chain) without walking the chain for the
// usual tokens (issue 20, forged refresh tokens): the current token and
// its predecessor are one hash compare each, and a token that sessiond did
// not mint for the session is refused with one HMAC (Chain.Genuine). Only
// a genuine older link (theft) or a link of a chain that ended
// (reauthentication) is walked, at most MaxChainSteps links.
func (s *Server) chainPlace(tok string, sess *sessiond.Session) (int, bool) {
	h := sessiond.HashToken(tok)
	switch {
	case h.Equal(sess.TokenHash):
		return 0, true
	case sess.PrevTokenHash != (sessiond.TokenHash{}) && h.Equal(sess.PrevTokenHash):
		return 1, true
	case !s.clientSide.Chain.Genuine(tok):
		return 0, false
	}
	return s.clientSide.Chain.Steps(tok, sess.TokenHash, s.clientSide.MaxChainSteps)
}

// rotatedAt is when tok's successor became current: the grace window of a
// refresh is measured from the rotation's own time, which the rotation's
// atomic step records, not from the last use, which a refresh racing on
// another node writes just before its rotation (issue 20). Sessions last
// rotated before sessiond recorded it fall back to their last use.
func rotatedAt(sess *sessiond.Session) time.Time {
	if sess.RotatedAt.IsZero() {
		return sess.LastSeenAt
	}
	return sess.RotatedAt
}

// jwtTransportOf tells how a client-side caller holds its tokens: in
// cookies when its access token came in the access cookie.
func (s *Server) jwtTransportOf(r *http.Request) string {
	if r.Header.Get("Authorization") == "" {
		if _, err := r.Cookie(s.accessCookieName()); err == nil {
			return transportJWTCookie
		}
	}
	return transportJWT
}

// revokeToken ends the session behind a refresh token (RFC 7009 style):
// the logout of a client-side session whose access token may already have
// expired. The answer is 204 whatever the token; a token that is no genuine
// link of an active session's chain ends nothing.
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := s.decode(w, r, &req, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	tok := req.RefreshToken
	if c, err := r.Cookie(s.refreshCookieName()); err == nil && tok == "" {
		tok = c.Value
	}
	if s.clientSide != nil {
		s.clearClientCookies(w)
		if id, err := accesstoken.RefreshSessionID(tok); err == nil {
			sess, err := s.sessions.Get(r.Context(), id, "")
			switch {
			case err == nil:
				if _, ok := s.chainPlace(tok, sess); ok {
					if err := s.sessions.Revoke(r.Context(), sess.ID, sessiond.ReasonLogout); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
						s.writeError(w, r, err)
						return
					}
					s.metrics.revoked.WithLabelValues(sessiond.ReasonLogout).Inc()
					s.audit.Record(s.auditContext(r), sess.UserID, audit.SignedOut, sess.ID, nil)
				}
			case !sessiond.IsRejection(err):
				s.writeError(w, r, err)
				return
			}
		}
	}
	noContent(w)
}

// looksLikeJWT tells an access token from a session token without parsing.
func looksLikeJWT(tok string) bool {
	return strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2
}

// authenticateJWT checks an access token presented to sessiond's own API.
// Unlike other services, sessiond also checks that the session behind it
// is still active: here the source of truth is at hand.
func (s *Server) authenticateJWT(r *http.Request, tok string) (*sessiond.Session, error) {
	cs := s.clientSide
	if cs == nil {
		return nil, sessiond.ErrMalformedToken
	}
	c, err := accesstoken.Verify(tok, cs.Keys.Ring().PublicKey,
		accesstoken.Expected{Issuer: cs.Issuer.Name, Leeway: cs.Skew}, time.Now())
	if err != nil {
		return nil, sessiond.ErrNotFound
	}
	return s.sessions.Get(r.Context(), c.SessionID, c.Subject)
}
