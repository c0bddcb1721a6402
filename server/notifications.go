package server

import (
	"context"
	"net/http"
	"time"

	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// Security notifications go through the notifier (an outbox directory or
// the signed webhook) after the request, in the background: a notifier
// that is slow or down never slows or fails the request that caused the
// message. The types and their data are documented in notify and in
// docs/notifications.md.

// notifyUser sends a message of type typ to the user userID's address.
func (s *Server) notifyUser(ctx context.Context, userID, typ string, data map[string]any) {
	if userID == "" {
		return
	}
	s.goBackground(ctx, func(ctx context.Context) {
		u, err := s.accounts.User(ctx, userID)
		if err != nil {
			s.metrics.notifications.WithLabelValues(typ, "failed").Inc()
			s.log.WarnContext(ctx, "notification not sent: user lookup failed", "type", typ, "user_id", userID, "err", err)
			return
		}
		s.deliver(ctx, notify.NewMessage(typ, time.Now(), u.Email, u.ID, data))
	})
}

// notifyAddress sends a message of type typ about user userID to another
// address than the user's (the new address of an email change).
func (s *Server) notifyAddress(ctx context.Context, to, userID, typ string, data map[string]any) {
	s.goBackground(ctx, func(ctx context.Context) {
		s.deliver(ctx, notify.NewMessage(typ, time.Now(), to, userID, data))
	})
}

func (s *Server) deliver(ctx context.Context, msg notify.Message) {
	if err := s.notifier.Notify(ctx, msg); err != nil {
		s.metrics.notifications.WithLabelValues(msg.Type, "failed").Inc()
		s.log.ErrorContext(ctx, "notification failed", "type", msg.Type, "user_id", msg.UserID, "message_id", msg.ID, "err", err)
		return
	}
	s.metrics.notifications.WithLabelValues(msg.Type, "sent").Inc()
	s.log.InfoContext(ctx, "notification sent", "type", msg.Type, "user_id", msg.UserID, "message_id", msg.ID)
}

// notifyPasswordChanged tells the user of r's request that the password
// was set (method "change" or "reset") and how many sessions ended.
func (s *Server) notifyPasswordChanged(r *http.Request, userID, method string, ended int) {
	ctx := s.auditContext(r)
	c := s.client(ctx, r)
	s.notifyUser(ctx, userID, notify.TypePasswordChanged, map[string]any{
		"method": method, "sessions_ended": ended, "changed_at": rfc3339(s.sessions.Now()),
		"ip": c.IP, "browser": c.Browser, "os": c.OS,
	})
}

// AccountLocked tells the user that failed password checks locked the
// account until until; ctx is the request that caused the lock (its client
// is in the message). Wire it with account.WithLockObserver, next to the
// audit trail's observer.
func (s *Server) AccountLocked(ctx context.Context, userID string, until time.Time) {
	c := audit.ClientFrom(ctx)
	s.notifyUser(ctx, userID, notify.TypeAccountLocked, map[string]any{
		"locked_until": rfc3339(until), "ip": c.IP, "browser": c.Browser, "os": c.OS,
	})
}

// client describes the client of r, from ctx when it carries one.
func (s *Server) client(ctx context.Context, r *http.Request) audit.Client {
	if c := audit.ClientFrom(ctx); c.IP != "" {
		return c
	}
	return audit.NewClient(s.clientIP(r), r.UserAgent())
}

// rfc3339 formats t for a message's data.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
