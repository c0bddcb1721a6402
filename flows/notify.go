package flows

import (
	"context"
	"time"

	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// Security notifications go through the notifier (an outbox directory or
// the signed webhook) after the request, in the background: a notifier
// that is slow or down never slows or fails the request that caused the
// message. The types and their data are documented in notify and in
// docs/notifications.md.

// notifyUser sends a message of type typ to the user userID's address.
func (f *Flows) notifyUser(ctx context.Context, userID, typ string, data map[string]any) {
	if userID == "" {
		return
	}
	f.goBackground(ctx, func(ctx context.Context) {
		u, err := f.accounts.User(ctx, userID)
		if err != nil {
			f.metrics.notifications.WithLabelValues(typ, "failed").Inc()
			f.log.WarnContext(ctx, "notification not sent: user lookup failed", "type", typ, "user_id", userID, "err", err)
			return
		}
		f.deliver(ctx, notify.NewMessage(typ, f.Now(), u.Email, u.ID, data))
	})
}

// notifyAddress sends a message of type typ about user userID to another
// address than the user's (the new address of an email change).
func (f *Flows) notifyAddress(ctx context.Context, to, userID, typ string, data map[string]any) {
	f.goBackground(ctx, func(ctx context.Context) {
		f.deliver(ctx, notify.NewMessage(typ, f.Now(), to, userID, data))
	})
}

func (f *Flows) deliver(ctx context.Context, msg notify.Message) {
	if err := f.notifier.Notify(ctx, msg); err != nil {
		f.metrics.notifications.WithLabelValues(msg.Type, "failed").Inc()
		f.log.ErrorContext(ctx, "notification failed", "type", msg.Type, "user_id", msg.UserID, "message_id", msg.ID, "err", err)
		return
	}
	f.metrics.notifications.WithLabelValues(msg.Type, "sent").Inc()
	f.log.InfoContext(ctx, "notification sent", "type", msg.Type, "user_id", msg.UserID, "message_id", msg.ID)
}

// notifyPasswordChanged tells the user that the password was set (method
// "change" or "reset") by c, and how many sessions ended.
func (f *Flows) notifyPasswordChanged(ctx context.Context, c Client, userID, method string, ended int) {
	ctx = f.auditContext(ctx, c)
	d := describe(ctx, c)
	f.notifyUser(ctx, userID, notify.TypePasswordChanged, map[string]any{
		"method": method, "sessions_ended": ended, "changed_at": rfc3339(f.Now()),
		"ip": d.IP, "browser": d.Browser, "os": d.OS,
	})
}

// sendReset delivers a reset token to u.
func (f *Flows) sendReset(ctx context.Context, u *account.User, tok string, expires time.Time) {
	data := map[string]any{"token": tok, "expires_at": rfc3339(expires)}
	if f.cfg.PublicURL != "" {
		data["link"] = f.cfg.PublicURL + "/password/reset/confirm#token=" + tok
	}
	msg := notify.NewMessage(notify.TypePasswordReset, f.Now(), u.Email, u.ID, data)
	if err := f.notifier.Notify(ctx, msg); err != nil {
		f.metrics.resets.WithLabelValues("failed").Inc()
		f.log.ErrorContext(ctx, "reset notification failed", "user_id", u.ID, "message_id", msg.ID, "err", err)
		return
	}
	f.metrics.resets.WithLabelValues("sent").Inc()
	f.log.InfoContext(ctx, "reset notification sent", "user_id", u.ID, "message_id", msg.ID)
}

// AccountLocked tells the user that failed password checks locked the
// account until until; ctx is the request that caused the lock (its client
// is in the message). Wire it with account.WithLockObserver, next to the
// audit trail's observer.
func (f *Flows) AccountLocked(ctx context.Context, userID string, until time.Time) {
	f.metrics.lockouts.Inc()
	c := audit.ClientFrom(ctx)
	f.notifyUser(ctx, userID, notify.TypeAccountLocked, map[string]any{
		"locked_until": rfc3339(until), "ip": c.IP, "browser": c.Browser, "os": c.OS,
	})
}
