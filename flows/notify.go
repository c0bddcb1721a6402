package flows

import (
	"context"
	"time"

	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// Security notifications are handed to the notifier before the request
// answers. In sessiond the notifier is the durable queue in the account
// database (webhook.Notifications): handing over is one insert, and a
// dispatcher delivers the message afterwards, at least once, with retries,
// so that a notifier that is slow or down never slows or fails the
// request, and a flood of requests queues messages instead of dropping
// them (issue 20: at most 64 deliveries were in flight, and more were
// lost). A message that cannot be handed over is logged and counted; the
// change it tells of stands. The types and their data are documented in
// notify and in docs/notifications.md.

// notifyTimeout bounds the handing over of one message, which outlives a
// client that went away: the change it tells of is done.
const notifyTimeout = 10 * time.Second

// notifyUser sends a message of type typ to the user userID's address,
// looked up now.
func (f *Flows) notifyUser(ctx context.Context, userID, typ string, data map[string]any) {
	if userID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	u, err := f.accounts.User(ctx, userID)
	if err != nil {
		f.metrics.notifications.WithLabelValues(typ, "failed").Inc()
		f.log.WarnContext(ctx, "notification not sent: user lookup failed", "type", typ, "user_id", userID, "err", err)
		return
	}
	f.deliver(ctx, notify.NewMessage(typ, f.Now(), u.Email, u.ID, data))
}

// notifyAddress sends a message of type typ about user userID to another
// address than the user's (the new address of an email change).
func (f *Flows) notifyAddress(ctx context.Context, to, userID, typ string, data map[string]any) {
	f.deliver(ctx, notify.NewMessage(typ, f.Now(), to, userID, data))
}

// deliver hands msg to the notifier; it reports whether that worked.
func (f *Flows) deliver(ctx context.Context, msg notify.Message) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	defer cancel()
	if err := f.notifier.Notify(ctx, msg); err != nil {
		f.metrics.notifications.WithLabelValues(msg.Type, "failed").Inc()
		f.log.ErrorContext(ctx, "notification failed", "type", msg.Type, "user_id", msg.UserID, "message_id", msg.ID, "err", err)
		return false
	}
	f.metrics.notifications.WithLabelValues(msg.Type, "sent").Inc()
	f.log.InfoContext(ctx, "notification sent", "type", msg.Type, "user_id", msg.UserID, "message_id", msg.ID)
	return true
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

// sendReset hands a reset token for u to the notifier.
func (f *Flows) sendReset(ctx context.Context, tok string, u *account.User, expires time.Time) {
	data := map[string]any{"token": tok, "expires_at": rfc3339(expires)}
	if f.cfg.PublicURL != "" {
		data["link"] = f.cfg.PublicURL + "/password/reset/confirm#token=" + tok
	}
	if f.deliver(ctx, notify.NewMessage(notify.TypePasswordReset, f.Now(), u.Email, u.ID, data)) {
		f.metrics.resets.WithLabelValues("sent").Inc()
	} else {
		f.metrics.resets.WithLabelValues("failed").Inc()
	}
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
