package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
	"github.com/sessiond/sessiond/sessionhttp"
)

// The flows below are the steps of the public API without the JSON: the
// API handlers decode a request, run a flow and encode its result, and the
// browser pages (package web) run the same flows from their forms, so a
// sign-in through a page meets the same rules (per-address limit, lockout,
// fixation defence, audit trail) as one through the API.

// RateLimitedError is the error of a sign-in refused because the client's
// address made too many failed sign-ins.
type RateLimitedError struct {
	// RetryAfter is how long until the next attempt is allowed.
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("server: too many failed sign-ins from this address; retry after %v", e.RetryAfter)
}

// signIn checks a sign-in's password, under the per-address limit and the
// account lockout, and starts the session. The caller delivers the token.
func (s *Server) signIn(r *http.Request, email, password string, rememberMe bool, transport string) (*sessiond.Session, string, *account.User, error) {
	ip := s.clientIP(r)
	if s.loginLimiter != nil {
		if blocked, wait := s.loginLimiter.blocked(ipKey(ip), time.Now()); blocked {
			s.metrics.loginFailures.WithLabelValues("rate_limited").Inc()
			return nil, "", nil, &RateLimitedError{RetryAfter: wait}
		}
	}
	// Force Logout against sign-ins in flight (issue 20): the user's
	// revocation generation is read before Authenticate reads the hash it
	// checks (UserByEmail and Authenticate both read the account store, no
	// cache), and the session is created only if no RevokeUser ran since.
	// A password change or reset revokes after it writes the new hash, so
	// this sign-in either read the new hash or is refused at Create.
	gen, genUser, err := s.signInGeneration(r, email)
	if err != nil {
		return nil, "", nil, err
	}
	u, err := s.accounts.Authenticate(s.auditContext(r), email, password)
	if err != nil {
		s.loginFailed(r, ip, err)
		return nil, "", nil, err
	}
	if u.ID != genUser { // created or re-addressed between the two reads
		return nil, "", nil, s.credentialsChanged()
	}
	sess, tok, err := s.createSession(r, u, rememberMe, transport, &gen)
	if err != nil {
		return nil, "", nil, err
	}
	return sess, tok, u, nil
}

// signInGeneration returns the revocation generation of the user with
// email, and the user's id ("" for no such user: Authenticate answers it).
func (s *Server) signInGeneration(r *http.Request, email string) (uint64, string, error) {
	u, err := s.accounts.UserByEmail(r.Context(), email)
	switch {
	case errors.Is(err, account.ErrUserNotFound) || errors.Is(err, account.ErrInvalidEmail):
		return 0, "", nil
	case err != nil:
		return 0, "", err
	}
	g, err := s.sessions.UserGeneration(r.Context(), u.ID)
	return g, u.ID, err
}

// credentialsChanged counts a sign-in refused because every session of
// its user ended while its password was checked, and answers it as a wrong
// password: the password it checked may be the one just replaced.
func (s *Server) credentialsChanged() error {
	s.metrics.loginFailures.WithLabelValues("credentials_changed").Inc()
	return fmt.Errorf("%w: %w", account.ErrInvalidCredentials, sessiond.ErrCredentialsChanged)
}

// createSession starts a session for u, replacing the one the request
// carries (fixation defence; an anonymous session's data moves over), and
// records the sign-in.
// For a client-side transport the token is the first refresh token of the
// session's chain.
// gen, when not nil, is the user's revocation generation read before the
// credentials were checked (sessiond.CreateParams.Generation).
func (s *Server) createSession(r *http.Request, u *account.User, rememberMe bool, transport string, gen *uint64) (*sessiond.Session, string, error) {
	old, _ := s.requestToken(r)
	p := sessiond.CreateParams{
		UserID: u.ID, RememberMe: rememberMe, UserAgent: r.UserAgent(), IP: s.clientIP(r), Replace: old,
		Authenticated: true, // a password, or a reset token, was just checked
		Transport:     transport,
		Generation:    gen,
	}
	if isJWTTransport(transport) {
		p.NewToken = s.newRefreshChain
	}
	sess, tok, err := s.sessions.Create(r.Context(), p)
	if errors.Is(err, sessiond.ErrCredentialsChanged) {
		return nil, "", s.credentialsChanged()
	}
	if err != nil {
		return nil, "", err
	}
	s.metrics.created.WithLabelValues("user").Inc()
	s.log.InfoContext(r.Context(), "session created", "user_id", u.ID, "session_id", sess.ID, "remember_me", rememberMe)
	ctx := s.auditContext(r)
	if s.audit.SignedIn(ctx, u.ID, sess.ID) {
		c := audit.ClientFrom(ctx)
		s.notifyUser(ctx, u.ID, notify.TypeNewDeviceSignIn, map[string]any{
			"session_id": sess.ID, "browser": c.Browser, "os": c.OS, "ip": c.IP,
			"signed_in_at": rfc3339(sess.CreatedAt),
		})
	}
	return sess, tok, nil
}

// signOut ends the session of tok, or with all every session of its user
// (a sensitive action: ErrReauthenticationRequired for a session without a
// fresh proof of the password, and nothing ends). A token that signs no one
// in is not an error: there is nothing to end.
func (s *Server) signOut(r *http.Request, tok string, all bool) error {
	if tok == "" {
		return nil
	}
	var sess *sessiond.Session
	var err error
	if looksLikeJWT(tok) {
		sess, err = s.authenticateJWT(r, tok)
	} else {
		sess, err = s.sessions.Peek(r.Context(), tok)
	}
	if err != nil {
		if sessiond.IsRejection(err) {
			return nil
		}
		return err
	}
	ctx := s.auditContext(r)
	if all && !sess.Anonymous() {
		if err := s.requireFresh(r, sess); err != nil {
			return err
		}
		n, err := s.sessions.RevokeUser(r.Context(), sess.UserID, "", sessiond.ReasonLogoutAll)
		if err != nil {
			return err
		}
		s.metrics.revoked.WithLabelValues(sessiond.ReasonLogoutAll).Add(float64(n))
		s.log.InfoContext(r.Context(), "signed out everywhere", "user_id", sess.UserID, "revoked", n)
		s.audit.Record(ctx, sess.UserID, audit.SignedOutEverywhere, sess.ID, map[string]any{"sessions_ended": n})
		return nil
	}
	if err := s.sessions.Revoke(r.Context(), sess.ID, sessiond.ReasonLogout); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
		return err
	}
	s.metrics.revoked.WithLabelValues(sessiond.ReasonLogout).Inc()
	s.audit.Record(ctx, sess.UserID, audit.SignedOut, sess.ID, nil)
	return nil
}

// revokeOwn ends the session id of the user of current from the session
// list; another user's session, or none, is errNotFound. Ending another
// session than current is a sensitive action (ErrReauthenticationRequired
// without a fresh proof of the password, whatever the id).
func (s *Server) revokeOwn(r *http.Request, current *sessiond.Session, id string) error {
	userID := current.UserID
	if id != current.ID {
		if err := s.requireFresh(r, current); err != nil {
			return err
		}
	}
	if _, err := s.sessions.Get(r.Context(), id, userID); err != nil {
		if sessiond.IsRejection(err) {
			err = errNotFound
		}
		return err
	}
	if err := s.sessions.Revoke(r.Context(), id, sessiond.ReasonLogout); err != nil {
		if errors.Is(err, sessiond.ErrNotFound) {
			err = errNotFound
		}
		return err
	}
	s.metrics.revoked.WithLabelValues(sessiond.ReasonLogout).Inc()
	s.audit.Record(s.auditContext(r), userID, audit.SessionRevoked, id, nil)
	return nil
}

// revokeOtherSessions ends every session of the user of sess but sess, a
// sensitive action.
func (s *Server) revokeOtherSessions(r *http.Request, sess *sessiond.Session) (int, error) {
	if err := s.requireFresh(r, sess); err != nil {
		return 0, err
	}
	n, err := s.sessions.RevokeUser(r.Context(), sess.UserID, sess.ID, sessiond.ReasonLogoutAll)
	if err != nil {
		return 0, err
	}
	s.metrics.revoked.WithLabelValues(sessiond.ReasonLogoutAll).Add(float64(n))
	s.audit.Record(s.auditContext(r), sess.UserID, audit.SignedOutEverywhere, sess.ID,
		map[string]any{"sessions_ended": n, "except_current": true})
	return n, nil
}

// changeOwnPassword sets a new password after checking the current one, ends
// every other session of the user (Force Logout) and gives the caller's
// session a new token, which the caller delivers. The check of the current
// password is a proof like a reauthentication: the session is fresh after.
func (s *Server) changeOwnPassword(r *http.Request, c *caller, current, newPassword string) (*sessiond.Session, string, int, error) {
	userID := c.session.UserID
	if _, err := s.accounts.ChangePassword(s.auditContext(r), userID, current, newPassword); err != nil {
		s.loginFailed(r, s.clientIP(r), err)
		return nil, "", 0, err
	}
	n, err := s.endAllSessions(r, userID, c.session.ID, sessiond.ReasonForceLogout)
	if err != nil {
		return nil, "", 0, err
	}
	var next string
	if c.jwt {
		// A client-side session survives with a new refresh chain; the
		// old chain, and the access tokens it renews, end with it.
		if next, err = s.newRefreshChain(c.session.ID); err != nil {
			return nil, "", 0, err
		}
	}
	sess, tok, err := s.sessions.Reauthenticate(r.Context(), c.session, next)
	if err != nil {
		return nil, "", 0, err
	}
	s.log.InfoContext(r.Context(), "password changed", "user_id", userID, "revoked", n)
	s.audit.Record(s.auditContext(r), userID, audit.PasswordChanged, sess.ID, map[string]any{"sessions_ended": n})
	s.notifyPasswordChanged(r, userID, "change", n)
	return sess, tok, n, nil
}

// startReset starts a password reset for email under the per-address and
// per-account limits. Known and unknown emails answer alike: the lookup
// and the delivery run after the answer.
func (s *Server) startReset(r *http.Request, email string) error {
	email, err := account.NormalizeEmail(email)
	if err != nil {
		return err
	}
	now := time.Now()
	if !s.resetByIP.take(ipKey(s.clientIP(r)), now) || !s.resetByUser.take(email, now) {
		s.metrics.resets.WithLabelValues("limited").Inc()
		return nil
	}
	s.goBackground(r.Context(), func(ctx context.Context) {
		tok, u, expires, err := s.accounts.RequestReset(ctx, email)
		switch {
		case err != nil:
			s.metrics.resets.WithLabelValues("failed").Inc()
			s.log.ErrorContext(ctx, "password reset failed", "err", err)
			return
		case u == nil:
			s.metrics.resets.WithLabelValues("unknown").Inc()
			return
		}
		s.sendReset(ctx, u, tok, expires)
	})
	return nil
}

// resetPassword sets a new password with a reset token, ends every session
// of the user and starts a new one for the caller, who delivers its token.
func (s *Server) resetPassword(r *http.Request, token, newPassword string, rememberMe bool, transport string) (*sessiond.Session, string, *account.User, error) {
	u, err := s.accounts.ConfirmReset(r.Context(), token, newPassword)
	if err != nil {
		return nil, "", nil, err
	}
	n, err := s.endAllSessions(r, u.ID, "", sessiond.ReasonForceLogout)
	if err != nil {
		return nil, "", nil, err
	}
	s.log.InfoContext(r.Context(), "password reset", "user_id", u.ID)
	s.audit.Record(s.auditContext(r), u.ID, audit.PasswordReset, "", map[string]any{"sessions_ended": n})
	s.notifyPasswordChanged(r, u.ID, "reset", n)
	// The generation after this reset's own revocation: another reset or
	// change landing before the Create refuses the session (issue 20).
	gen, err := s.sessions.UserGeneration(r.Context(), u.ID)
	if err != nil {
		return nil, "", nil, err
	}
	sess, tok, err := s.createSession(r, u, rememberMe, transport, &gen)
	if err != nil {
		return nil, "", nil, err
	}
	return sess, tok, u, nil
}

// deleteAccount deletes the account of current's user after checking its
// password, and ends its sessions. It is a sensitive action: current needs
// a fresh proof of the password besides.
func (s *Server) deleteAccount(r *http.Request, current *sessiond.Session, password string) error {
	if err := s.requireFresh(r, current); err != nil {
		return err
	}
	userID := current.UserID
	if err := s.accounts.Delete(s.auditContext(r), userID, password); err != nil {
		return err
	}
	s.endAllSessions(r, userID, "", sessiond.ReasonUserDeleted)
	s.log.InfoContext(r.Context(), "user deleted", "user_id", userID)
	return nil
}

// auditContext is r's context carrying the client for the audit trail.
func (s *Server) auditContext(r *http.Request) context.Context {
	if !s.audit.Enabled() {
		return r.Context()
	}
	if c := audit.ClientFrom(r.Context()); c.IP != "" {
		return r.Context()
	}
	return audit.WithClient(r.Context(), audit.NewClient(s.clientIP(r), r.UserAgent()))
}

// The exported flows, for the browser pages. Each one that starts a
// session or gives one a new token sets the session cookie on w; each one
// that ends the request's session clears it.

// Sessions returns the session Manager.
func (s *Server) Sessions() *sessiond.Manager { return s.sessions }

// Accounts returns the account Service.
func (s *Server) Accounts() *account.Service { return s.accounts }

// AuditStore returns the audit trail, nil when none is configured.
func (s *Server) AuditStore() audit.Store { return s.audit.Store }

// Cookie returns the session cookie settings, defaults filled in.
func (s *Server) Cookie() sessionhttp.Cookie { return s.cfg.Cookie }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// ClientIP returns the client address of r, believing X-Forwarded-For only
// from the trusted proxies.
func (s *Server) ClientIP(r *http.Request) string { return s.clientIP(r) }

// SignIn signs a user in with email and password, as POST /v1/login does:
// the per-address limit (*RateLimitedError), lockout (*account.LockedError),
// ErrInvalidCredentials, and on success a new session that replaces the
// request's own, carrying an anonymous session's data.
func (s *Server) SignIn(w http.ResponseWriter, r *http.Request, email, password string, rememberMe bool) (*sessiond.Session, *account.User, error) {
	sess, tok, u, err := s.signIn(r, email, password, rememberMe, transportCookie)
	if err != nil {
		return nil, nil, err
	}
	s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	return sess, u, nil
}

// StartSession signs in u, a user the caller has just authenticated
// otherwise (a registration), as SignIn does after the password check.
func (s *Server) StartSession(w http.ResponseWriter, r *http.Request, u *account.User, rememberMe bool) (*sessiond.Session, error) {
	sess, tok, err := s.createSession(r, u, rememberMe, transportCookie, nil)
	if err != nil {
		return nil, err
	}
	s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	return sess, nil
}

// SignOut ends the request's session, or with all every session of its
// user, and clears the cookie, as POST /v1/logout does.
func (s *Server) SignOut(w http.ResponseWriter, r *http.Request, all bool) error {
	s.cfg.Cookie.Clear(w)
	tok, _ := s.cfg.Cookie.Token(r, false)
	return s.signOut(r, tok, all)
}

// RevokeSession ends the session id of the user of current, as DELETE
// /v1/sessions/{id} does. A session that is not the user's active one gives
// sessiond.ErrNotFound; another session than current needs current to be
// fresh (ErrReauthenticationRequired). The caller clears the cookie when id
// is its own.
func (s *Server) RevokeSession(r *http.Request, current *sessiond.Session, id string) error {
	err := s.revokeOwn(r, current, id)
	if errors.Is(err, errNotFound) {
		return sessiond.ErrNotFound
	}
	return err
}

// RevokeOthers ends every session of the user of current but current, as
// POST /v1/sessions/revoke-others does, and returns how many. current needs
// to be fresh (ErrReauthenticationRequired).
func (s *Server) RevokeOthers(r *http.Request, current *sessiond.Session) (int, error) {
	return s.revokeOtherSessions(r, current)
}

// ChangePassword changes the password of the user of current, whose token
// the request carries in the cookie, as POST /v1/password/change does:
// every other session ends and current gets a new token (a new cookie). It
// returns how many sessions ended.
func (s *Server) ChangePassword(w http.ResponseWriter, r *http.Request, current *sessiond.Session, token, currentPassword, newPassword string) (int, error) {
	sess, tok, n, err := s.changeOwnPassword(r, &caller{session: current, token: token, fromCookie: true}, currentPassword, newPassword)
	if err != nil {
		return 0, err
	}
	s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	return n, nil
}

// RequestPasswordReset starts a reset as POST /v1/password/reset does; the
// answer is the same for known and unknown emails.
func (s *Server) RequestPasswordReset(r *http.Request, email string) error {
	return s.startReset(r, email)
}

// ConfirmPasswordReset sets a new password with a reset token as POST
// /v1/password/reset/confirm does: every session of the user ends and the
// request is signed in with a new one.
func (s *Server) ConfirmPasswordReset(w http.ResponseWriter, r *http.Request, token, newPassword string, rememberMe bool) (*sessiond.Session, *account.User, error) {
	sess, tok, u, err := s.resetPassword(r, token, newPassword, rememberMe, transportCookie)
	if err != nil {
		return nil, nil, err
	}
	s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	return sess, u, nil
}

// DeleteAccount deletes the account of current's user after checking its
// password, ends its sessions and clears the cookie, as DELETE /v1/profile
// does. current needs to be fresh (ErrReauthenticationRequired).
func (s *Server) DeleteAccount(w http.ResponseWriter, r *http.Request, current *sessiond.Session, password string) error {
	if err := s.deleteAccount(r, current, password); err != nil {
		return err
	}
	s.cfg.Cookie.Clear(w)
	return nil
}

// PutData sets one key of the data of sess, the request's active session,
// as PUT /v1/session/data/{key} does; with sess nil it starts an anonymous
// session holding the value and sets its cookie. It returns the session
// the value is in.
func (s *Server) PutData(w http.ResponseWriter, r *http.Request, sess *sessiond.Session, key string, value []byte) (*sessiond.Session, error) {
	if sess != nil {
		return sess, s.sessions.SetData(r.Context(), sess.ID, key, value)
	}
	sess, tok, err := s.sessions.Create(r.Context(), sessiond.CreateParams{
		UserAgent: r.UserAgent(), IP: s.clientIP(r), Data: map[string][]byte{key: value},
		Transport: transportCookie,
	})
	if err != nil {
		return nil, err
	}
	s.metrics.created.WithLabelValues("anonymous").Inc()
	s.cfg.Cookie.Set(w, tok, sess, s.sessions.Now())
	return sess, nil
}
