package flows

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// Changes of email. RequestEmailChange (a sensitive action: it needs a
// fresh proof of the password) sends a confirmation token to the new
// address and a notice to the current one; ConfirmEmailChange with the
// token applies the change, which ends every other session of the user.

// EmailChangeRequested is a change of email waiting for its confirmation.
type EmailChangeRequested struct {
	// NewEmail is the new address, normalised.
	NewEmail  string
	ExpiresAt time.Time
}

// RequestEmailChange starts a change of the email of current's user.
func (f *Flows) RequestEmailChange(ctx context.Context, c Client, current *sessiond.Session, newEmail string) (EmailChangeRequested, error) {
	if err := f.RequireFresh(ctx, current, "change the email address"); err != nil {
		return EmailChangeRequested{}, err
	}
	req, err := f.accounts.RequestEmailChange(ctx, current.UserID, newEmail)
	if err != nil {
		return EmailChangeRequested{}, err
	}
	u, to, expires := req.User, req.NewEmail, req.ExpiresAt
	actx := f.auditContext(ctx, c)
	d := describe(actx, c)
	f.log.InfoContext(ctx, "email change requested", "user_id", u.ID, "expires_at", expires)
	f.audit.Record(actx, u.ID, audit.EmailChangeRequested, current.ID, map[string]any{"new_email": to})
	data := map[string]any{"token": req.Token, "expires_at": rfc3339(expires)}
	if f.cfg.PublicURL != "" {
		data["link"] = f.cfg.PublicURL + "/email/change/confirm#token=" + req.Token
	}
	f.notifyAddress(actx, to, u.ID, notify.TypeEmailChangeConfirm, data)
	notice := map[string]any{
		"new_email": to, "expires_at": rfc3339(expires), "requested_at": rfc3339(f.Now()),
		"ip": d.IP, "browser": d.Browser, "os": d.OS,
		"cancel_token": req.CancelToken,
	}
	if f.cfg.PublicURL != "" {
		notice["cancel_link"] = f.cfg.PublicURL + "/email/change/cancel#token=" + req.CancelToken
	}
	f.notifyAddress(actx, u.Email, u.ID, notify.TypeEmailChangeRequested, notice)
	return EmailChangeRequested{NewEmail: to, ExpiresAt: expires}, nil
}

// EmailChangeCancelled is a change of email voided from the current
// address.
type EmailChangeCancelled struct {
	User *account.User
	// NewEmail is the address the change would have set.
	NewEmail string
}

// CancelEmailChange voids a pending change of email with the cancellation
// token the notice to the current address carried. No session is needed:
// the owner may read that mail anywhere. It is recorded in the audit
// trail.
func (f *Flows) CancelEmailChange(ctx context.Context, c Client, token string) (*EmailChangeCancelled, error) {
	u, to, err := f.accounts.CancelEmailChange(ctx, token)
	if err != nil {
		return nil, err
	}
	f.log.InfoContext(ctx, "email change cancelled", "user_id", u.ID)
	f.audit.Record(f.auditContext(ctx, c), u.ID, audit.EmailChangeCancelled, "", map[string]any{"new_email": to, "how": "cancel_token"})
	return &EmailChangeCancelled{User: u, NewEmail: to}, nil
}

// voidEmailChanges voids the pending changes of email of the user: a step
// of every recovery (Force Logout, sign-out everywhere, admin revocation),
// so that a change requested by whoever held the account cannot be
// confirmed once the owner took it back. A failure is returned: a recovery
// that could not void a pending change must not look complete.
func (f *Flows) voidEmailChanges(ctx context.Context, c Client, userID, sessionID, reason string) error {
	had, err := f.accounts.CancelEmailChanges(ctx, userID)
	if err != nil {
		f.log.ErrorContext(ctx, "voiding pending email changes failed", "user_id", userID, "err", err)
		return err
	}
	if had {
		f.log.InfoContext(ctx, "pending email change voided", "user_id", userID, "reason", reason)
		f.audit.Record(f.auditContext(ctx, c), userID, audit.EmailChangeCancelled, sessionID, map[string]any{"how": reason})
	}
	return nil
}

// EmailChanged is an applied change of email.
type EmailChanged struct {
	User *account.User
	// Revoked is how many sessions of the user ended.
	Revoked int
}

// ConfirmEmailChange applies a change of email with its token and ends
// every session of the user but keep (the request's own session, when it
// is the user's; may be nil).
func (f *Flows) ConfirmEmailChange(ctx context.Context, c Client, token string, keep *sessiond.Session) (*EmailChanged, error) {
	u, old, err := f.accounts.ConfirmEmailChange(ctx, token)
	if err != nil {
		return nil, err
	}
	keepID := ""
	if keep != nil && keep.UserID == u.ID {
		keepID = keep.ID
	}
	n, err := f.endAllSessions(ctx, u.ID, keepID, sessiond.ReasonEmailChanged)
	if err != nil {
		return nil, err
	}
	actx := f.auditContext(ctx, c)
	f.log.InfoContext(ctx, "email changed", "user_id", u.ID, "revoked", n)
	f.audit.Record(actx, u.ID, audit.EmailChanged, keepID, map[string]any{
		"old_email": old, "new_email": u.Email, "sessions_ended": n,
	})
	f.notifyAddress(actx, old, u.ID, notify.TypeEmailChanged, map[string]any{
		"new_email": u.Email, "changed_at": rfc3339(f.Now()), "sessions_ended": n,
	})
	return &EmailChanged{User: u, Revoked: n}, nil
}
