package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// CheckTransport returns the transport a sign-in asked for ("" is
// sessiond.TransportCookie): ErrInvalidTransport for an unknown one, and
// ErrClientSideOff for a client-side one without client-side sessions.
func (f *Flows) CheckTransport(t string) (string, error) {
	switch t {
	case "", sessiond.TransportCookie:
		return sessiond.TransportCookie, nil
	case sessiond.TransportToken:
		return t, nil
	case sessiond.TransportJWT, sessiond.TransportJWTCookie:
		if f.clientSide == nil {
			return "", ErrClientSideOff
		}
		return t, nil
	}
	return "", ErrInvalidTransport
}

// IsClientSide reports whether transport t hands out a client-side
// session (an access token and a refresh token).
func IsClientSide(t string) bool {
	return t == sessiond.TransportJWT || t == sessiond.TransportJWTCookie
}

// LooksLikeJWT tells an access token from a session token without
// parsing.
func LooksLikeJWT(tok string) bool {
	return strings.HasPrefix(tok, "eyJ") && strings.Count(tok, ".") == 2
}

// SignInParams describe a sign-in.
type SignInParams struct {
	Email, Password string
	RememberMe      bool
	// Transport is how the token will be handed out, as CheckTransport
	// returned it.
	Transport string
	// Replace is the token the request carried, if any: its session ends
	// as the new one starts (fixation defence), and an anonymous session's
	// data moves over.
	Replace string
}

// SignedIn is a new session.
type SignedIn struct {
	Session *sessiond.Session
	// Token is the session's token: a session token, or for a client-side
	// transport the first refresh token of its chain.
	Token string
	User  *account.User
	// Transport is how the token is to be handed out.
	Transport string
}

// SignIn checks a sign-in's password, under the per-address limit
// (*RateLimitedError) and the account lockout (*account.LockedError), and
// starts the session. A wrong password, or an unknown email, is
// account.ErrInvalidCredentials.
func (f *Flows) SignIn(ctx context.Context, c Client, p SignInParams) (*SignedIn, error) {
	settle, err := f.chargeLogin(c)
	if err != nil {
		return nil, err
	}
	// Force Logout against sign-ins in flight (issue 20): the user's
	// revocation generation is read before Authenticate reads the hash it
	// checks (UserByEmail and Authenticate both read the account store, no
	// cache), and the session is created only if no RevokeUser ran since.
	// A password change or reset revokes after it writes the new hash, so
	// this sign-in either read the new hash or is refused at Create.
	gen, genUser, err := f.signInGeneration(ctx, p.Email)
	if err != nil {
		settle(err)
		return nil, err
	}
	u, err := f.accounts.Authenticate(f.auditContext(ctx, c), p.Email, p.Password)
	settle(err)
	if err != nil {
		return nil, err
	}
	if u.ID != genUser { // created or re-addressed between the two reads
		return nil, f.credentialsChanged()
	}
	return f.StartSession(ctx, c, u, StartParams{RememberMe: p.RememberMe, Transport: p.Transport, Replace: p.Replace, Generation: &gen})
}

// signInGeneration returns the revocation generation of the user with
// email, and the user's id ("" for no such user: Authenticate answers it).
func (f *Flows) signInGeneration(ctx context.Context, email string) (uint64, string, error) {
	u, err := f.accounts.UserByEmail(ctx, email)
	switch {
	case errors.Is(err, account.ErrUserNotFound) || errors.Is(err, account.ErrInvalidEmail):
		return 0, "", nil
	case err != nil:
		return 0, "", err
	}
	g, err := f.sessions.UserGeneration(ctx, u.ID)
	return g, u.ID, err
}

// credentialsChanged counts a sign-in refused because every session of
// its user ended while its password was checked, and answers it as a wrong
// password: the password it checked may be the one just replaced.
func (f *Flows) credentialsChanged() error {
	f.metrics.loginFailures.WithLabelValues("credentials_changed").Inc()
	return fmt.Errorf("%w: %w", account.ErrInvalidCredentials, sessiond.ErrCredentialsChanged)
}

// StartParams describe the session StartSession starts.
type StartParams struct {
	RememberMe bool
	Transport  string
	// Replace is the token the request carried, if any (see
	// SignInParams.Replace).
	Replace string
	// Generation, when not nil, is the user's revocation generation read
	// before the credentials were checked: the session is created only if
	// no revocation of all the user's sessions ran since
	// (sessiond.CreateParams.Generation).
	Generation *uint64
}

// StartSession signs in u, a user the caller has just authenticated (a
// password, a reset token, a registration): a new session that replaces
// the request's own (fixation defence; an anonymous session's data moves
// over), recorded in the audit trail, with a new_device_sign_in
// notification the first time the device is seen.
func (f *Flows) StartSession(ctx context.Context, c Client, u *account.User, p StartParams) (*SignedIn, error) {
	cp := sessiond.CreateParams{
		UserID: u.ID, RememberMe: p.RememberMe, UserAgent: c.UserAgent, IP: c.IP(), Replace: p.Replace,
		Authenticated: true, // a password, or a reset token, was just checked
		Transport:     p.Transport,
		Generation:    p.Generation,
	}
	if IsClientSide(p.Transport) {
		cp.NewToken = f.newRefreshChain
	}
	sess, tok, err := f.sessions.Create(ctx, cp)
	if errors.Is(err, sessiond.ErrCredentialsChanged) {
		return nil, f.credentialsChanged()
	}
	if err != nil {
		return nil, err
	}
	f.metrics.created.WithLabelValues("user").Inc()
	f.log.InfoContext(ctx, "session created", "user_id", u.ID, "session_id", sess.ID, "remember_me", p.RememberMe)
	actx := f.auditContext(ctx, c)
	if f.audit.SignedIn(actx, u.ID, sess.ID) {
		d := audit.ClientFrom(actx)
		f.notifyUser(actx, u.ID, notify.TypeNewDeviceSignIn, map[string]any{
			"session_id": sess.ID, "browser": d.Browser, "os": d.OS, "ip": d.IP,
			"signed_in_at": rfc3339(sess.CreatedAt),
		})
	}
	return &SignedIn{Session: sess, Token: tok, User: u, Transport: p.Transport}, nil
}

// SignOut ends the session of tok (a session token or an access token),
// or with all every session of its user and any pending change of email:
// a sensitive action
// (ErrReauthenticationRequired for a session without a fresh proof of the
// password, and nothing ends). A token that signs no one in is not an
// error: there is nothing to end.
func (f *Flows) SignOut(ctx context.Context, c Client, tok string, all bool) error {
	if tok == "" {
		return nil
	}
	if err := f.checkTokenLimit(c); err != nil {
		return err
	}
	var sess *sessiond.Session
	var err error
	if LooksLikeJWT(tok) {
		sess, err = f.authenticateJWT(ctx, tok)
	} else {
		sess, err = f.sessions.Peek(ctx, tok)
	}
	if err != nil {
		if sessiond.IsRejection(err) {
			f.chargeRejectedToken(c, err)
			return nil
		}
		return err
	}
	actx := f.auditContext(ctx, c)
	if all && !sess.Anonymous() {
		if err := f.RequireFresh(ctx, sess, "sign out everywhere"); err != nil {
			return err
		}
		n, err := f.sessions.RevokeUser(ctx, sess.UserID, "", sessiond.ReasonLogoutAll)
		if err != nil {
			return err
		}
		f.metrics.revoked.WithLabelValues(sessiond.ReasonLogoutAll).Add(float64(n))
		f.log.InfoContext(ctx, "signed out everywhere", "user_id", sess.UserID, "revoked", n)
		f.audit.Record(actx, sess.UserID, audit.SignedOutEverywhere, sess.ID, map[string]any{"sessions_ended": n})
		return f.voidEmailChanges(ctx, c, sess.UserID, sess.ID, "logout_all")
	}
	if err := f.sessions.Revoke(ctx, sess.ID, sessiond.ReasonLogout); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
		return err
	}
	f.metrics.revoked.WithLabelValues(sessiond.ReasonLogout).Inc()
	f.audit.Record(actx, sess.UserID, audit.SignedOut, sess.ID, nil)
	return nil
}

// RevokeSession ends the session id of the user of current, from the list
// of the user's sessions. A session that is not the user's active one is
// ErrNoSuchSession; ending another session than current is a sensitive
// action (ErrReauthenticationRequired without a fresh proof of the
// password, whatever the id).
func (f *Flows) RevokeSession(ctx context.Context, c Client, current *sessiond.Session, id string) error {
	userID := current.UserID
	if id != current.ID {
		if err := f.RequireFresh(ctx, current, "sign out another device"); err != nil {
			return err
		}
	}
	if _, err := f.sessions.Get(ctx, id, userID); err != nil {
		if sessiond.IsRejection(err) {
			err = ErrNoSuchSession
		}
		return err
	}
	if err := f.sessions.Revoke(ctx, id, sessiond.ReasonLogout); err != nil {
		if errors.Is(err, sessiond.ErrNotFound) {
			err = ErrNoSuchSession
		}
		return err
	}
	f.metrics.revoked.WithLabelValues(sessiond.ReasonLogout).Inc()
	f.audit.Record(f.auditContext(ctx, c), userID, audit.SessionRevoked, id, nil)
	return nil
}

// RevokeOthers ends every session of the user of current but current, a
// sensitive action, and returns how many ended.
func (f *Flows) RevokeOthers(ctx context.Context, c Client, current *sessiond.Session) (int, error) {
	if err := f.RequireFresh(ctx, current, "sign out other sessions"); err != nil {
		return 0, err
	}
	n, err := f.sessions.RevokeUser(ctx, current.UserID, current.ID, sessiond.ReasonLogoutAll)
	if err != nil {
		return 0, err
	}
	f.metrics.revoked.WithLabelValues(sessiond.ReasonLogoutAll).Add(float64(n))
	f.audit.Record(f.auditContext(ctx, c), current.UserID, audit.SignedOutEverywhere, current.ID,
		map[string]any{"sessions_ended": n, "except_current": true})
	return n, nil
}

// endAllSessions ends a user's sessions but exceptID after a change that
// already happened (account deleted, password set); a failure is logged,
// since the answer cannot undo the change.
func (f *Flows) endAllSessions(ctx context.Context, userID, exceptID, reason string) (int, error) {
	n, err := f.sessions.RevokeUser(ctx, userID, exceptID, reason)
	if err != nil {
		f.log.ErrorContext(ctx, "ending sessions failed", "user_id", userID, "reason", reason, "err", err)
		return n, err
	}
	f.metrics.revoked.WithLabelValues(reason).Add(float64(n))
	return n, nil
}

// DataWritten is where PutData wrote.
type DataWritten struct {
	Session *sessiond.Session
	// Token is the token of a new anonymous session, to hand to the
	// client; empty when the value went into an existing session.
	Token string
}

// PutData sets one key of the data of sess, the request's active session;
// with sess nil it starts an anonymous session holding the value, whose
// token the caller hands out (in the session cookie: an anonymous session
// is a browser's). New anonymous sessions are limited per client address
// (*RateLimitedError), and their data to the policy's
// MaxAnonymousDataBytes.
func (f *Flows) PutData(ctx context.Context, c Client, sess *sessiond.Session, key string, value []byte) (DataWritten, error) {
	if sess != nil {
		return DataWritten{Session: sess}, f.sessions.SetSessionData(ctx, sess, key, value)
	}
	if f.anonLimiter != nil {
		if ok, wait := f.anonLimiter.take(addrKey(c.Addr), f.Now()); !ok {
			f.metrics.rejected.WithLabelValues("anonymous_rate_limited").Inc()
			return DataWritten{}, &RateLimitedError{RetryAfter: wait, Anonymous: true}
		}
	}
	sess, tok, err := f.sessions.Create(ctx, sessiond.CreateParams{
		UserAgent: c.UserAgent, IP: c.IP(), Data: map[string][]byte{key: value},
		Transport: sessiond.TransportCookie,
	})
	if err != nil {
		return DataWritten{}, err
	}
	f.metrics.created.WithLabelValues("anonymous").Inc()
	return DataWritten{Session: sess, Token: tok}, nil
}
