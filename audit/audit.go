// Package audit is sessiond's security-event trail: who signed in, from
// which browser, when sessions ended and why, password changes, lockouts.
// The server records events as they happen; users read their own on the
// activity page and operators read anyone's through the admin API. Events
// are kept for a retention period (Store.DeleteBefore) and then forgotten.
//
// Like sessiond.Store, a Store only keeps records: deciding what to record
// is the server's business.
package audit

import (
	"context"
	"errors"
	"time"
)

// Event types. The names are stable: they are stored, returned by the admin
// API and matched by filters.
const (
	// SignedIn: a session was started with the user's password (sign-in,
	// registration through the pages, or a password reset).
	SignedIn = "signed_in"
	// NewDevice: a sign-in from a browser and operating system family that
	// the user had not signed in from before (within the retention period).
	// Recorded next to its SignedIn event, never for a user's first sign-in.
	NewDevice = "new_device"
	// SignedOut: the user ended the session making the request.
	SignedOut = "signed_out"
	// SignedOutEverywhere: the user ended all their sessions, or with Data
	// "except_current" all but the one making the request. Data
	// "sessions_ended" is how many ended.
	SignedOutEverywhere = "signed_out_everywhere"
	// SessionRevoked: the user ended one of their sessions from the session
	// list; SessionID is the session that ended.
	SessionRevoked = "session_revoked"
	// PasswordChanged: the user changed their password; Data
	// "sessions_ended" is how many other sessions ended with it.
	PasswordChanged = "password_changed"
	// PasswordReset: the password was set with a reset token; Data
	// "sessions_ended" is how many sessions ended with it.
	PasswordReset = "password_reset"
	// SessionRevokedByAdmin: an administrator ended one session.
	SessionRevokedByAdmin = "session_revoked_by_admin"
	// SessionsRevokedByAdmin: an administrator ended all the user's
	// sessions; Data "sessions_ended" is how many.
	SessionsRevokedByAdmin = "sessions_revoked_by_admin"
	// LockedOut: failed password checks locked the account; Data
	// "locked_until" is when the lock ends (RFC 3339).
	LockedOut = "locked_out"
	// RefreshTokenReused: a used refresh token was presented again, so two
	// parties held the session's refresh chain; the session was ended.
	// Data "steps_behind" is how old the presented token was.
	RefreshTokenReused = "refresh_token_reused"
	// Reauthenticated: the user proved their password again in a session
	// (before a sensitive action); the session got a new token.
	Reauthenticated = "reauthenticated"
	// HijackSuspected: a browser session's token came from another browser
	// or OS family, or without a User-Agent; the session was ended. The
	// event's client is the refused request; Data "session_browser",
	// "session_os" and "session_ip" describe the session's own browser,
	// and "user_agent_missing" says whether the request had none.
	HijackSuspected = "hijack_suspected"
	// IPChanged: a session was used from another address than the one it
	// started from (the event's IP); Data "session_ip" is that first one.
	// Recorded once per session and address; never fatal.
	IPChanged = "ip_changed"
	// EmailChangeRequested: the user asked to change the account's email;
	// Data "new_email". A confirmation went to that address.
	EmailChangeRequested = "email_change_requested"
	// EmailChanged: the change was confirmed; Data "old_email",
	// "new_email" and "sessions_ended" (every other session ended).
	EmailChanged = "email_changed"
	// EmailChangeCancelled: a pending change of email was voided before
	// its confirmation; Data "how": "cancel_token" (the owner used the
	// link sent to the current address) or the recovery that voided it
	// ("password_changed", "password_reset", "logout_all", "admin"), and
	// "new_email" when known.
	EmailChangeCancelled = "email_change_cancelled"
)

// Types lists every event type, in the order above.
var Types = []string{
	SignedIn, NewDevice, SignedOut, SignedOutEverywhere, SessionRevoked,
	PasswordChanged, PasswordReset, SessionRevokedByAdmin, SessionsRevokedByAdmin,
	LockedOut, RefreshTokenReused, Reauthenticated, HijackSuspected, IPChanged,
	EmailChangeRequested, EmailChanged, EmailChangeCancelled,
}

// KnownType reports whether t is one of Types.
func KnownType(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// Event is one entry of the trail.
type Event struct {
	// ID is unique and random (32 hex characters).
	ID string
	// UserID is the user the event concerns.
	UserID string
	// Type is one of the constants above.
	Type string
	// Time is when it happened, UTC, to the microsecond.
	Time time.Time
	// SessionID is the session the event concerns (the new one of a
	// sign-in, the one that ended of a revocation); may be empty.
	SessionID string
	// IP, Browser and OS describe the client whose request caused the
	// event, as far as known (an administrator's call leaves them empty).
	IP      string
	Browser string
	OS      string
	// Data holds details that depend on the type; values are JSON
	// numbers, strings and booleans. May be nil.
	Data map[string]any
}

// Filter selects events of one user for Store.List.
type Filter struct {
	// Types keeps events of these types; empty keeps all.
	Types []string
	// Since keeps events at or after it; zero: no bound.
	Since time.Time
	// Until keeps events before it; zero: no bound.
	Until time.Time
	// Limit caps how many come back, the newest first; 0 means
	// DefaultLimit and values above MaxLimit mean MaxLimit.
	Limit int
}

// Limits of Filter.Limit.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// EffectiveLimit is f.Limit with the defaults applied.
func (f Filter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultLimit
	case f.Limit > MaxLimit:
		return MaxLimit
	}
	return f.Limit
}

// Match reports whether e passes f's type and time conditions (not the
// limit), for stores that filter in Go.
func (f Filter) Match(e *Event) bool {
	if !f.Since.IsZero() && e.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !e.Time.Before(f.Until) {
		return false
	}
	if len(f.Types) == 0 {
		return true
	}
	for _, t := range f.Types {
		if t == e.Type {
			return true
		}
	}
	return false
}

// ErrInvalidEvent: Record was given an event without an ID, user, type or
// time.
var ErrInvalidEvent = errors.New("audit: event needs an ID, a user, a type and a time")

// Store keeps events. The contract every implementation meets, checked by
// storetest.RunAudit:
//
//   - Record stores a copy of e; a later change of e or of its Data does not
//     change the stored event. An event without ID, UserID, Type or Time is
//     ErrInvalidEvent. Times are kept to the microsecond, in UTC.
//   - List returns the user's events that pass the filter, the newest
//     first (equal times: the later recorded first), at most
//     f.EffectiveLimit() of them; an unknown user has none (no error).
//   - AddDevice records that the user signed in at at from exactly this
//     browser and OS (the device), and reports whether the store had no
//     record of it: the record is unique per user and device, so of
//     concurrent calls for one device, from any process sharing the store,
//     exactly one reports true. A known device's record keeps the latest
//     time given.
//   - DeleteBefore removes every event older than t and returns how many;
//     it also forgets the devices last recorded before t (not counted).
//   - Every method is safe for concurrent use; errors are failures of the
//     store itself.
type Store interface {
	Record(ctx context.Context, e *Event) error
	List(ctx context.Context, userID string, f Filter) ([]Event, error)
	AddDevice(ctx context.Context, userID, browser, os string, at time.Time) (added bool, err error)
	DeleteBefore(ctx context.Context, t time.Time) (int, error)
}

// Check returns ErrInvalidEvent when e lacks a required field.
func (e *Event) Check() error {
	if e == nil || e.ID == "" || e.UserID == "" || e.Type == "" || e.Time.IsZero() {
		return ErrInvalidEvent
	}
	return nil
}

// Clone returns a copy of e with its own Data map.
func (e *Event) Clone() Event {
	c := *e
	c.Time = e.Time.UTC().Truncate(time.Microsecond)
	if e.Data != nil {
		c.Data = make(map[string]any, len(e.Data))
		for k, v := range e.Data {
			c.Data[k] = v
		}
	}
	return c
}

// RunRetention calls s.DeleteBefore(now - keep) every interval until ctx
// ends, and once at the start. Errors go to onError (may be nil) and do
// not stop the loop. It returns ctx.Err().
func RunRetention(ctx context.Context, s Store, keep, every time.Duration, now func() time.Time, onError func(error)) error {
	if now == nil {
		now = time.Now
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.DeleteBefore(ctx, now().Add(-keep)); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
