package sessiond

import (
	"fmt"
	"time"
)

// Policy holds the session rules. The zero value of every field means its
// documented default, so Policy{} is the policy of a stock sessiond.
type Policy struct {
	// IdleTimeout ends a session that is not used for this long.
	// Default 30m.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after it was created, used or
	// not. Default 12h.
	AbsoluteTimeout time.Duration
	// RememberMeIdleTimeout is the idle timeout of a remember-me session.
	// Default 168h.
	RememberMeIdleTimeout time.Duration
	// RememberMeLifetime is the absolute lifetime of a remember-me session.
	// Default 720h.
	RememberMeLifetime time.Duration

	// TouchInterval is the least time between two writes of a session's
	// last-seen time and idle deadline. Validation slides the idle deadline,
	// but writes it only when the last write is at least this old, so a busy
	// session costs one store write per interval, not one per request. The
	// cost: a session may end up to one interval before its true idle
	// deadline, never after. Default: a tenth of the session's idle timeout,
	// at most 1m.
	TouchInterval time.Duration

	// ReauthWindow is how long a proof of the password counts as fresh:
	// sensitive actions (signing out other sessions, deleting the account,
	// changing the email address) need a session whose AuthenticatedAt is
	// less than this old. Default 10m.
	ReauthWindow time.Duration

	// MaxSessionsPerUser caps a user's active sessions; creating one more
	// ends the least recently used. Default 0: no limit.
	MaxSessionsPerUser int

	// MaxValueBytes caps one session data value. Default 16 KiB.
	MaxValueBytes int
	// MaxDataBytes caps a session's data, keys and values together.
	// Default 64 KiB.
	MaxDataBytes int
	// MaxAnonymousDataBytes caps an anonymous session's data (a visitor
	// who has not signed in: anyone can make one). Default 16 KiB, and
	// never more than MaxDataBytes.
	MaxAnonymousDataBytes int
}

// Policy defaults, as documented on the fields.
const (
	DefaultIdleTimeout           = 30 * time.Minute
	DefaultAbsoluteTimeout       = 12 * time.Hour
	DefaultRememberMeIdleTimeout = 168 * time.Hour
	DefaultRememberMeLifetime    = 720 * time.Hour
	DefaultReauthWindow          = 10 * time.Minute
	DefaultMaxValueBytes         = 16 << 10
	DefaultMaxDataBytes          = 64 << 10
	DefaultMaxAnonymousDataBytes = 16 << 10
	maxDefaultTouchInterval      = time.Minute
)

// withDefaults returns p with zero fields set to their defaults, or an error
// naming the first field out of range.
func (p Policy) withDefaults() (Policy, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&p.IdleTimeout, DefaultIdleTimeout)
	def(&p.AbsoluteTimeout, DefaultAbsoluteTimeout)
	def(&p.RememberMeIdleTimeout, DefaultRememberMeIdleTimeout)
	def(&p.RememberMeLifetime, DefaultRememberMeLifetime)
	def(&p.ReauthWindow, DefaultReauthWindow)
	if p.MaxValueBytes == 0 {
		p.MaxValueBytes = DefaultMaxValueBytes
	}
	if p.MaxDataBytes == 0 {
		p.MaxDataBytes = DefaultMaxDataBytes
	}
	if p.MaxAnonymousDataBytes == 0 {
		p.MaxAnonymousDataBytes = min(DefaultMaxAnonymousDataBytes, p.MaxDataBytes)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"IdleTimeout", p.IdleTimeout},
		{"AbsoluteTimeout", p.AbsoluteTimeout},
		{"RememberMeIdleTimeout", p.RememberMeIdleTimeout},
		{"RememberMeLifetime", p.RememberMeLifetime},
		{"ReauthWindow", p.ReauthWindow},
	} {
		if f.d < time.Second {
			return p, fmt.Errorf("%w: %s must be at least 1s, got %v", ErrInvalidPolicy, f.name, f.d)
		}
	}
	switch {
	case p.TouchInterval < 0:
		return p, fmt.Errorf("%w: TouchInterval must not be negative", ErrInvalidPolicy)
	case p.TouchInterval > p.IdleTimeout:
		return p, fmt.Errorf("%w: TouchInterval %v is longer than IdleTimeout %v", ErrInvalidPolicy, p.TouchInterval, p.IdleTimeout)
	case p.MaxSessionsPerUser < 0:
		return p, fmt.Errorf("%w: MaxSessionsPerUser must not be negative", ErrInvalidPolicy)
	case p.MaxValueBytes < 0 || p.MaxDataBytes < 0:
		return p, fmt.Errorf("%w: data limits must not be negative", ErrInvalidPolicy)
	case p.MaxAnonymousDataBytes < 0 || p.MaxAnonymousDataBytes > p.MaxDataBytes:
		return p, fmt.Errorf("%w: MaxAnonymousDataBytes %d is negative or larger than MaxDataBytes %d", ErrInvalidPolicy, p.MaxAnonymousDataBytes, p.MaxDataBytes)
	case p.MaxValueBytes > p.MaxDataBytes:
		return p, fmt.Errorf("%w: MaxValueBytes %d is larger than MaxDataBytes %d", ErrInvalidPolicy, p.MaxValueBytes, p.MaxDataBytes)
	}
	return p, nil
}

// maxDataBytes is the data limit of a session, anonymous or not.
func (p *Policy) maxDataBytes(anonymous bool) int {
	if anonymous {
		return p.MaxAnonymousDataBytes
	}
	return p.MaxDataBytes
}

// timeouts returns the idle timeout and absolute lifetime for a session.
func (p *Policy) timeouts(rememberMe bool) (idle, absolute time.Duration) {
	if rememberMe {
		return p.RememberMeIdleTimeout, p.RememberMeLifetime
	}
	return p.IdleTimeout, p.AbsoluteTimeout
}

// touchInterval returns how stale a session's stored last-seen time may get.
func (p *Policy) touchInterval(rememberMe bool) time.Duration {
	if p.TouchInterval > 0 {
		return p.TouchInterval
	}
	idle, _ := p.timeouts(rememberMe)
	return min(idle/10, maxDefaultTouchInterval)
}

// Deadlines returns a new session's idle and absolute deadlines when it is
// created at now.
func (p *Policy) deadlines(now time.Time, rememberMe bool) (idleAt, absoluteAt time.Time) {
	idle, abs := p.timeouts(rememberMe)
	absoluteAt = now.Add(abs)
	return minTime(now.Add(idle), absoluteAt), absoluteAt
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
