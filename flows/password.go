package flows

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
)

// Rotated is a session that proved its user's password again and got a
// new token (a new refresh chain for a client-side session).
type Rotated struct {
	Session *sessiond.Session
	Token   string
	// Revoked is how many other sessions ended (Force Logout).
	Revoked int
}

// ChangePassword sets a new password for the user of caller after checking
// the current one, ends every other session of the user (Force Logout),
// voids any pending change of email, and
// gives the caller's session a new token, which the caller delivers. The
// check of the current password is a proof like a reauthentication: the
// session is fresh after. A wrong current password counts toward lockout
// and the per-address limit.
func (f *Flows) ChangePassword(ctx context.Context, c Client, caller Caller, current, newPassword string) (*Rotated, error) {
	userID := caller.Session.UserID
	settle, err := f.chargeLogin(c)
	if err != nil {
		return nil, err
	}
	_, err = f.accounts.ChangePassword(f.auditContext(ctx, c), userID, current, newPassword)
	settle(err)
	if err != nil {
		return nil, err
	}
	n, err := f.endAllSessions(ctx, userID, caller.Session.ID, sessiond.ReasonForceLogout)
	if err != nil {
		return nil, err
	}
	if err := f.voidEmailChanges(ctx, c, userID, caller.Session.ID, "password_changed"); err != nil {
		return nil, err
	}
	sess, tok, err := f.rotate(ctx, caller)
	if err != nil {
		return nil, err
	}
	f.log.InfoContext(ctx, "password changed", "user_id", userID, "revoked", n)
	f.audit.Record(f.auditContext(ctx, c), userID, audit.PasswordChanged, sess.ID, map[string]any{"sessions_ended": n})
	f.notifyPasswordChanged(ctx, c, userID, "change", n)
	return &Rotated{Session: sess, Token: tok, Revoked: n}, nil
}

// rotate records a fresh proof of the password in the caller's session
// and gives it a new token: a client-side session survives with a new
// refresh chain, and the old chain, with the access tokens it renews,
// ends.
func (f *Flows) rotate(ctx context.Context, caller Caller) (*sessiond.Session, string, error) {
	var next string
	if caller.ClientSide {
		var err error
		if next, err = f.newRefreshChain(caller.Session.ID); err != nil {
			return nil, "", err
		}
	}
	return f.sessions.Reauthenticate(ctx, caller.Session, next)
}

// StartReset starts a password reset for email under the per-address and
// per-account limits. Known and unknown emails answer alike: for a known
// one under its limits the token is issued and its message handed to the
// notifier (in sessiond, written into the durable queue) before the
// answer, and an unknown one, or one over its limit, is padded to the same
// time; a failure is logged, not answered. An address that is not one is
// account.ErrInvalidEmail.
//
// The per-account allowance (Config.ResetRatePerAccount an hour) is
// counted per account and client address (addrKey: IPv6 by /64), so that
// strangers asking for resets of someone else's account use up their own
// allowance and not the owner's: the owner, asking from an address of
// their own, still gets a message. One account is sent at most
// ResetAccountCapFactor allowances an hour over every address together,
// so that a flood from many addresses cannot fill its inbox; only such a
// flood (as many addresses as the factor, each at its limit) can still
// silence the owner for the rest of the hour. Both are counted in the
// account store, over a sliding hour, so every node sharing it holds an
// account to the same limits. The per-address limit (Config.ResetRatePerIP)
// is each node's own.
func (f *Flows) StartReset(ctx context.Context, c Client, email string) error {
	email, err := account.NormalizeEmail(email)
	if err != nil {
		return err
	}
	from := addrKey(c.Addr)
	if ok, _ := f.resetByIP.take(from, f.Now()); !ok {
		f.metrics.resets.WithLabelValues("limited").Inc()
		return nil
	}
	limit := account.ResetLimit{
		Window: time.Hour,
		PerKey: f.cfg.ResetRatePerAccount,
		Total:  ResetAccountCapFactor * f.cfg.ResetRatePerAccount,
	}
	// The message is queued before the answer, within the time an
	// unknown address (or an account over its limit) is padded to.
	r, err := f.accounts.RequestResetFrom(context.WithoutCancel(ctx), email, from, limit, f.sendReset)
	switch {
	case err != nil:
		f.metrics.resets.WithLabelValues("failed").Inc()
		f.log.ErrorContext(ctx, "password reset failed", "err", err)
	case r.User == nil:
		f.metrics.resets.WithLabelValues("unknown").Inc()
	case r.Limited:
		f.metrics.resets.WithLabelValues("limited").Inc()
	}
	return nil
}

// ResetParams describe the confirmation of a password reset.
type ResetParams struct {
	Token, NewPassword string
	RememberMe         bool
	Transport          string
	// Replace is the token the request carried, if any.
	Replace string
}

// ConfirmReset sets a new password with a reset token, ends every session
// of the user, voids any pending change of email, and starts a new one
// for the caller, who delivers its token.
func (f *Flows) ConfirmReset(ctx context.Context, c Client, p ResetParams) (*SignedIn, error) {
	u, err := f.accounts.ConfirmReset(ctx, p.Token, p.NewPassword)
	if err != nil {
		return nil, err
	}
	n, err := f.endAllSessions(ctx, u.ID, "", sessiond.ReasonForceLogout)
	if err != nil {
		return nil, err
	}
	if err := f.voidEmailChanges(ctx, c, u.ID, "", "password_reset"); err != nil {
		return nil, err
	}
	f.log.InfoContext(ctx, "password reset", "user_id", u.ID)
	f.audit.Record(f.auditContext(ctx, c), u.ID, audit.PasswordReset, "", map[string]any{"sessions_ended": n})
	f.notifyPasswordChanged(ctx, c, u.ID, "reset", n)
	// The generation after this reset's own revocation: another reset or
	// change landing before the Create refuses the session (issue 20).
	gen, err := f.sessions.UserGeneration(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	return f.StartSession(ctx, c, u, StartParams{RememberMe: p.RememberMe, Transport: p.Transport, Replace: p.Replace, Generation: &gen})
}

// DeleteAccount deletes the account of current's user after checking its
// password, and ends its sessions. It is a sensitive action: current needs
// a fresh proof of the password besides.
func (f *Flows) DeleteAccount(ctx context.Context, c Client, current *sessiond.Session, password string) error {
	if err := f.RequireFresh(ctx, current, "delete the account"); err != nil {
		return err
	}
	userID := current.UserID
	if err := f.accounts.Delete(f.auditContext(ctx, c), userID, password); err != nil {
		return err
	}
	f.endAllSessions(ctx, userID, "", sessiond.ReasonUserDeleted)
	f.log.InfoContext(ctx, "user deleted", "user_id", userID)
	return nil
}
