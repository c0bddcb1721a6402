package flows

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/sessiond/sessiond/account"
)

// limiterSet is a token bucket per key (an address, an account), for
// counting failures: each key holds up to burst tokens, refilled at
// perSecond, and a failure spends one. A token taken before the outcome is
// known can be given back (refund). Buckets that have refilled are dropped
// now and then, so memory stays bounded by the keys active within one
// refill period.
type limiterSet struct {
	mu        sync.Mutex
	perSecond float64
	burst     float64
	buckets   map[string]*bucket
	swept     time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was right
}

func newLimiterSet(perSecond float64, burst int) *limiterSet {
	return &limiterSet{perSecond: perSecond, burst: float64(burst), buckets: make(map[string]*bucket)}
}

// level returns key's bucket with its tokens at now. Callers hold mu.
func (l *limiterSet) level(key string, now time.Time) *bucket {
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	if now.After(b.at) {
		b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.perSecond)
		b.at = now
	}
	return b
}

// take spends one token of key, and reports whether there was one; when
// there was none, wait is how long until there is.
func (l *limiterSet) take(key string, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.level(key, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.perSecond * float64(time.Second))
	}
	b.tokens--
	return true, 0
}

// refund gives back a token of key taken by take.
func (l *limiterSet) refund(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.level(key, now)
	b.tokens = min(l.burst, b.tokens+1)
}

func (l *limiterSet) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.perSecond >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// addrKey is the rate-limit key of a client address: the address for
// IPv4, its /64 for IPv6 (one subscriber usually holds a whole /64).
func addrKey(a netip.Addr) string {
	if !a.Is6() || a.Is4In6() {
		return a.Unmap().String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// chargeLogin spends one of c's failed sign-ins before a password is
// checked, so that concurrent guesses cannot all pass the limit while the
// first ones are still being hashed: a *RateLimitedError when there is
// none left. The caller settles the charge once the check is done: a
// wrong password (or a locked account) keeps it, anything else (a
// success, a store failure) gives it back.
func (f *Flows) chargeLogin(c Client) (settle func(err error), err error) {
	if f.loginLimiter == nil {
		return func(error) {}, nil
	}
	key := addrKey(c.Addr)
	if ok, wait := f.loginLimiter.take(key, f.Now()); !ok {
		f.metrics.loginFailures.WithLabelValues("rate_limited").Inc()
		return nil, &RateLimitedError{RetryAfter: wait}
	}
	return func(err error) {
		if !f.countFailure(err) {
			f.loginLimiter.refund(key, f.Now())
		}
	}, nil
}

// countFailure counts err, the outcome of a password check, as a failed
// sign-in, and reports whether it was one (a wrong password or a locked
// account; a store failure is not the client's).
func (f *Flows) countFailure(err error) bool {
	var locked *account.LockedError
	switch {
	case err == nil:
		return false
	case errors.As(err, &locked):
		f.metrics.loginFailures.WithLabelValues("locked").Inc()
	case errors.Is(err, account.ErrInvalidCredentials):
		f.metrics.loginFailures.WithLabelValues("invalid_credentials").Inc()
	default:
		return false
	}
	return true
}
