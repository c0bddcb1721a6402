package server

import (
	"context"
	"time"

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

// rfc3339 formats t for a message's data.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
