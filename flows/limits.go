package flows

import (
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// limiterSet is a token bucket per key (an address, an account), for
// counting failures: each key holds up to burst tokens, refilled at
// perSecond, and a failure spends one. A token taken before the outcome is
// known can be given back (refund). Buckets that have refilled are dropped
// now and then, so memory stays bounded by the keys active within one
// refill period.
type limiterSet = keyedLimiter[string]

func newLimiterSet(perSecond float64, burst int) *limiterSet {
	return newKeyedLimiter[string](perSecond, burst)
}

// keyedLimiter is limiterSet over any key; keys that are values
// (netip.Addr) cost no allocation to look up.
type keyedLimiter[K comparable] struct {
	mu        sync.Mutex
	perSecond float64
	burst     float64
	buckets   map[K]*bucket
	swept     time.Time
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was right
}

func newKeyedLimiter[K comparable](perSecond float64, burst int) *keyedLimiter[K] {
	return &keyedLimiter[K]{perSecond: perSecond, burst: float64(burst), buckets: make(map[K]*bucket)}
}

// level returns key's bucket with its tokens at now. Callers hold mu.
func (l *keyedLimiter[K]) level(key K, now time.Time) *bucket {
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
func (l *keyedLimiter[K]) take(key K, now time.Time) (ok bool, wait time.Duration) {
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
func (l *keyedLimiter[K]) refund(key K, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.level(key, now)
	b.tokens = min(l.burst, b.tokens+1)
}

// allowed reports whether key has a token left at now, without spending
// it or making a bucket (it does not allocate); when not, wait is how
// long until it has.
func (l *keyedLimiter[K]) allowed(key K, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true, 0
	}
	tokens := b.tokens
	if now.After(b.at) {
		tokens = min(l.burst, tokens+now.Sub(b.at).Seconds()*l.perSecond)
	}
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / l.perSecond * float64(time.Second))
}

// spend spends one token of key after the fact, going into debt (down to
// minus burst) when there is none: failures that were in flight together
// when the bucket ran dry all count, and delay the key's next allowance.
func (l *keyedLimiter[K]) spend(key K, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.level(key, now)
	b.tokens = max(-l.burst, b.tokens-1)
}

func (l *keyedLimiter[K]) sweep(now time.Time) {
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

// addrValue is addrKey as a value: the address for IPv4, the first
// address of its /64 for IPv6. It does not allocate.
func addrValue(a netip.Addr) netip.Addr {
	if !a.Is6() || a.Is4In6() {
		return a.Unmap()
	}
	p, _ := a.Prefix(64)
	return p.Addr()
}

// checkTokenLimit is called before a token that c presents is read from
// the store: a *RateLimitedError (RejectedTokens) when c's address has
// used up its allowance of rejected tokens. It does not allocate.
//
// Only rejected tokens are charged (chargeRejectedToken), never valid
// ones; but once the allowance is used up, every token from the address
// is refused, valid or not, until it refills (Config.RejectedTokenRatePerIP
// a minute): telling a valid token apart takes the very store read the
// limit saves.
func (f *Flows) checkTokenLimit(c Client) error {
	if f.tokenLimiter == nil {
		return nil
	}
	if ok, wait := f.tokenLimiter.allowed(addrValue(c.Addr), f.Now()); !ok {
		f.metrics.rejected.WithLabelValues("token_rate_limited").Inc()
		return &RateLimitedError{RetryAfter: wait, RejectedTokens: true}
	}
	return nil
}

// chargeRejectedToken charges c's address for a token that err, the
// outcome of checking it, rejected: malformed, unknown, expired, revoked,
// or a refresh token that is invalid or reused. A store failure is not the
// client's, and is not charged.
func (f *Flows) chargeRejectedToken(c Client, err error) {
	if f.tokenLimiter == nil || err == nil {
		return
	}
	if sessiond.IsRejection(err) || errors.Is(err, ErrInvalidRefreshToken) || errors.Is(err, ErrRefreshTokenReused) {
		f.tokenLimiter.spend(addrValue(c.Addr), f.Now())
	}
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
