package flows

import (
	"context"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/audit"
)

// Fresh authentication ("sudo mode"). A session remembers when its user
// last proved the password (sessiond.Session.AuthenticatedAt: the sign-in,
// or a reauthentication). Sensitive actions need that proof to be younger
// than the policy's ReauthWindow (--reauth-window), else they are refused
// with ErrReauthenticationRequired and change nothing:
//
//   - signing out everywhere (SignOut with all),
//   - signing out all other sessions (RevokeOthers),
//   - signing out another device (RevokeSession for an id that is not the
//     caller's own session),
//   - deleting the account (DeleteAccount),
//   - changing the email address (RequestEmailChange).
//
// Reauthenticate renews the proof with the password.

// Fresh reports whether the user of sess proved the password within the
// reauthentication window, so that sensitive actions are allowed.
func (f *Flows) Fresh(sess *sessiond.Session) bool { return f.sessions.Fresh(sess) }

// RequireFresh returns ErrReauthenticationRequired unless sess is fresh;
// action names the sensitive action for the log.
func (f *Flows) RequireFresh(ctx context.Context, sess *sessiond.Session, action string) error {
	if f.sessions.Fresh(sess) {
		return nil
	}
	f.metrics.reauth.WithLabelValues("required").Inc()
	f.log.InfoContext(ctx, "sensitive action refused: reauthentication required",
		"action", action, "user_id", sess.UserID, "session_id", sess.ID)
	return ErrReauthenticationRequired
}

// Reauthenticate checks the password of the caller's user, under the
// per-address limit and the account lockout (a wrong password counts as a
// failed sign-in), and then records the proof in the caller's session,
// which gets a new token: a new refresh chain for a client-side session.
func (f *Flows) Reauthenticate(ctx context.Context, c Client, caller Caller, password string) (*Rotated, error) {
	settle, err := f.chargeLogin(c)
	if err != nil {
		return nil, err
	}
	_, err = f.accounts.VerifyPassword(f.auditContext(ctx, c), caller.Session.UserID, password)
	settle(err)
	if err != nil {
		f.metrics.reauth.WithLabelValues("failed").Inc()
		return nil, err
	}
	sess, tok, err := f.rotate(ctx, caller)
	if err != nil {
		return nil, err
	}
	f.metrics.reauth.WithLabelValues("ok").Inc()
	f.log.InfoContext(ctx, "reauthenticated", "user_id", sess.UserID, "session_id", sess.ID)
	f.audit.Record(f.auditContext(ctx, c), sess.UserID, audit.Reauthenticated, sess.ID, nil)
	return &Rotated{Session: sess, Token: tok}, nil
}
