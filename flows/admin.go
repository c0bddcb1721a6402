package flows

import (
	"context"
	"errors"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// The administrator's flows: the admin API's actions on other people's
// sessions and accounts.

// AdminSessionParams describe a session an administrator creates for a
// user (an impersonation, a service's session).
type AdminSessionParams struct {
	UserID     string
	RememberMe bool
	Data       map[string][]byte
	// Transport as CheckTransport returned it. An administrator's caller
	// is no browser: the cookie transports become token.
	Transport string
}

// AdminCreateSession starts a session for a user without a proof of the
// password (AuthenticatedAt stays zero) and not bound to a browser (the
// result's Transport is token or jwt).
func (f *Flows) AdminCreateSession(ctx context.Context, c Client, p AdminSessionParams) (*SignedIn, error) {
	transport := p.Transport
	if transport == "" || transport == sessiond.TransportCookie || transport == sessiond.TransportJWTCookie {
		transport = sessiond.TransportToken
	}
	if p.UserID == "" {
		return nil, ErrMissingUserID
	}
	u, err := f.accounts.User(ctx, p.UserID)
	if err != nil {
		return nil, err
	}
	cp := sessiond.CreateParams{
		UserID: u.ID, RememberMe: p.RememberMe, UserAgent: c.UserAgent, IP: c.IP(), Data: p.Data,
		Transport: transport, // token or jwt: never bound to a browser
	}
	if transport == sessiond.TransportJWT {
		cp.NewToken = f.newRefreshChain
	}
	sess, tok, err := f.sessions.Create(ctx, cp)
	if err != nil {
		return nil, err
	}
	f.metrics.created.WithLabelValues("user").Inc()
	f.log.InfoContext(ctx, "session created by admin", "user_id", u.ID, "session_id", sess.ID)
	return &SignedIn{Session: sess, Token: tok, User: u, Transport: transport}, nil
}

// AdminRevokeSession ends the session id, records it and tells its user.
// A session that is not active is ErrNoSuchSession.
func (f *Flows) AdminRevokeSession(ctx context.Context, id string) error {
	// The session's user, for the audit trail; a session that is not
	// active fails the Revoke below just the same.
	var userID string
	sess, err := f.sessions.Get(ctx, id, "")
	if err == nil {
		userID = sess.UserID
	}
	if err := f.sessions.Revoke(ctx, id, sessiond.ReasonAdmin); err != nil {
		if errors.Is(err, sessiond.ErrNotFound) {
			err = ErrNoSuchSession
		}
		return err
	}
	f.metrics.revoked.WithLabelValues(sessiond.ReasonAdmin).Inc()
	f.log.InfoContext(ctx, "session revoked by admin", "session_id", id)
	f.audit.Record(ctx, userID, audit.SessionRevokedByAdmin, id, nil)
	if userID != "" {
		f.notifyUser(ctx, userID, notify.TypeSessionRevokedByAdmin, map[string]any{
			"scope": "session", "sessions_ended": 1, "session_id": sess.ID,
			"session_browser": sess.Device.Browser, "session_os": sess.Device.OS,
			"revoked_at": rfc3339(f.Now()),
		})
	}
	return nil
}

// AdminRevokeUser ends every session of the user id (Force Logout by an
// administrator) and voids any pending change of email, records it, tells
// the user, and returns how many sessions ended.
// An unknown user is account.ErrUserNotFound.
func (f *Flows) AdminRevokeUser(ctx context.Context, id string) (int, error) {
	if _, err := f.accounts.User(ctx, id); err != nil {
		return 0, err
	}
	n, err := f.sessions.RevokeUser(ctx, id, "", sessiond.ReasonAdmin)
	if err != nil {
		return 0, err
	}
	f.metrics.revoked.WithLabelValues(sessiond.ReasonAdmin).Add(float64(n))
	f.log.InfoContext(ctx, "user's sessions revoked by admin", "user_id", id, "revoked", n)
	f.audit.Record(ctx, id, audit.SessionsRevokedByAdmin, "", map[string]any{"sessions_ended": n})
	if err := f.voidEmailChanges(ctx, Client{}, id, "", "admin"); err != nil {
		return n, err
	}
	if n > 0 {
		f.notifyUser(ctx, id, notify.TypeSessionRevokedByAdmin, map[string]any{
			"scope": "all", "sessions_ended": n, "revoked_at": rfc3339(f.Now()),
		})
	}
	return n, nil
}

// AdminDeleteUser deletes the account id and ends its sessions.
func (f *Flows) AdminDeleteUser(ctx context.Context, id string) error {
	if err := f.accounts.DeleteByAdmin(ctx, id); err != nil {
		return err
	}
	f.endAllSessions(ctx, id, "", sessiond.ReasonUserDeleted)
	f.log.InfoContext(ctx, "user deleted by admin", "user_id", id)
	return nil
}
