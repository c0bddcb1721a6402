// Package webhook delivers sessiond's lifecycle events (a session
// created, rotated or revoked, a user created or deleted) to the app's
// back end, at least once, from a durable outbox.
//
// The events are written by the database itself, in the same transaction
// as the change they describe (triggers of the SQLite and PostgreSQL
// schemas), so that a change that committed always has its event and an
// event always describes a committed change, whatever crashes. A
// Dispatcher then POSTs each event to the configured URL, signed like the
// notifier's webhook (HMAC-SHA256 over "<unix time>.<body>", header
// Sessiond-Signature), retries failures with exponential backoff and
// jitter, and dead-letters an event after a number of attempts. A receiver
// that is down for an hour loses nothing: the events wait in the outbox.
//
// The same machinery delivers sessiond's security notifications: the
// flows write each one into a second outbox (Queue, through
// Notifications) before they answer, and a Dispatcher whose Deliver hands
// it to a notify.Notifier delivers it with the same leases, retries and
// dead letters.
//
// Delivery is at least once: an event may arrive twice (a receiver that
// answered after the dispatcher gave up waiting, a dispatcher that crashed
// between the POST and the bookkeeping). Receivers drop duplicates by the
// event's id.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Event types. The names are stable.
const (
	// SessionCreated: a session of a user started. Data: "session_id",
	// "user_id", "remember_me", "transport", "ip", "browser", "os".
	SessionCreated = "session.created"
	// SessionRotated: a session got a new token (a password change, a
	// reauthentication, a client-side refresh). Data: "session_id",
	// "user_id".
	SessionRotated = "session.rotated"
	// SessionRevoked: a session ended. Data: "session_id", "user_id",
	// "reason": one of sessiond's revocation reasons (logout, logout_all,
	// force_logout, admin, limit, replaced, refresh_reuse,
	// hijack_suspected, user_deleted, email_changed, revoked) or
	// "expired" for a session that ran out its time (told when the sweep
	// removes it).
	SessionRevoked = "session.revoked"
	// UserCreated: an account was created. Data: "user_id", "email".
	UserCreated = "user.created"
	// UserDeleted: an account was deleted. Data: "user_id", "email".
	UserDeleted = "user.deleted"
)

// Types lists every event type.
var Types = []string{SessionCreated, SessionRotated, SessionRevoked, UserCreated, UserDeleted}

// Event is one lifecycle event, as delivered: the JSON body of the POST
// is {"id", "type", "time", "data"}.
type Event struct {
	// ID is unique (32 hex characters): receivers drop duplicates by it.
	ID   string          `json:"id"`
	Type string          `json:"type"`
	Time time.Time       `json:"time"`
	Data json.RawMessage `json:"data"`
	// Attempts is how many deliveries were tried before this one; not
	// part of the body.
	Attempts int `json:"-"`
}

// Delivery states of an event in the outbox.
const (
	StatusPending   = "pending"   // not delivered yet; tried again at NextAttemptAt
	StatusDelivered = "delivered" // a 2xx answer was received
	StatusDead      = "dead"      // given up after the most attempts
)

// Delivery is an event in the outbox with its delivery state, for the
// admin API.
type Delivery struct {
	Event
	Status        string
	NextAttemptAt time.Time // pending only
	DeliveredAt   time.Time // delivered only
	DeadAt        time.Time // dead only
	LastError     string
}

// Filter selects deliveries for Store.WebhookDeliveries.
type Filter struct {
	// Status keeps one state ("pending", "delivered", "dead"); empty
	// keeps all.
	Status string
	// Limit caps how many, the newest first; 0 means 100, at most 1000.
	Limit int
}

// Store is the outbox. The SQL stores implement it; the events themselves
// are written by their schemas' triggers, in the transaction of each
// change, while the outbox is enabled. The contract, checked by
// storetest.RunWebhookOutbox:
//
//   - SetWebhooksEnabled turns the writing of events on or off for every
//     process on the database; off, changes write no events.
//   - ClaimWebhookEvents returns up to limit pending events whose next
//     attempt is due at now, oldest first, and leases them: until
//     now+lease no other claim returns them. A lease that runs out (a
//     dispatcher that died) makes the event due again.
//   - WebhookDelivered marks an event delivered; it is never claimed
//     again. WebhookFailed counts a failed attempt and makes the event
//     due at next, or dead when dead is set (never claimed again).
//   - WebhookDeliveries lists the outbox per Filter, the newest first.
//   - PruneWebhookEvents deletes delivered and dead events older than
//     before, and returns how many.
type Store interface {
	SetWebhooksEnabled(ctx context.Context, on bool) error
	ClaimWebhookEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]Event, error)
	WebhookDelivered(ctx context.Context, id string, at time.Time) error
	WebhookFailed(ctx context.Context, id string, at, next time.Time, dead bool, lastError string) error
	WebhookDeliveries(ctx context.Context, f Filter) ([]Delivery, error)
	PruneWebhookEvents(ctx context.Context, before time.Time) (int, error)
}

// EffectiveLimit is f.Limit with the defaults applied.
// Where is the SQL condition that keeps f.Status, over the outbox columns
// delivered_at and dead_at that both SQL stores' schemas share: empty for
// every status, ErrUnknownStatus for a status that does not exist.
func (f Filter) Where() (string, error) {
	switch f.Status {
	case "":
		return "", nil
	case StatusPending:
		return `WHERE delivered_at IS NULL AND dead_at IS NULL`, nil
	case StatusDelivered:
		return `WHERE delivered_at IS NOT NULL`, nil
	case StatusDead:
		return `WHERE dead_at IS NOT NULL`, nil
	}
	return "", fmt.Errorf("%w %q", ErrUnknownStatus, f.Status)
}

// ErrUnknownStatus is Filter.Where's error for a status that does not exist.
var ErrUnknownStatus = errors.New("unknown delivery status")

func (f Filter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return 100
	case f.Limit > 1000:
		return 1000
	}
	return f.Limit
}
