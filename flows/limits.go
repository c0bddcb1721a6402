package flows

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiterSet is a token bucket per key (an address, an account), for
// counting failures. Buckets that have refilled are dropped now and then,
// so memory stays bounded by the keys active within one refill period.
type limiterSet struct {
	mu      sync.Mutex
	every   rate.Limit
	burst   int
	buckets map[string]*rate.Limiter
	swept   time.Time
}

func newLimiterSet(perSecond float64, burst int) *limiterSet {
	return &limiterSet{every: rate.Limit(perSecond), burst: burst, buckets: make(map[string]*rate.Limiter)}
}

// blocked reports whether key has no tokens left, and how long until it
// has one.
func (l *limiterSet) blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return false, 0
	}
	if tokens := b.TokensAt(now); tokens < 1 {
		return true, time.Duration((1 - tokens) / float64(l.every) * float64(time.Second))
	}
	return false, 0
}

// take spends one token of key, and reports whether there was one.
func (l *limiterSet) take(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		b = rate.NewLimiter(l.every, l.burst)
		l.buckets[key] = b
	}
	return b.AllowN(now, 1)
}

func (l *limiterSet) sweep(now time.Time) {
	l.swept = now
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
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

// checkLoginRate returns a *RateLimitedError when c's address has no
// failed sign-ins left.
func (f *Flows) checkLoginRate(c Client) error {
	if f.loginLimiter == nil {
		return nil
	}
	if blocked, wait := f.loginLimiter.blocked(addrKey(c.Addr), f.Now()); blocked {
		f.metrics.loginFailures.WithLabelValues("rate_limited").Inc()
		return &RateLimitedError{RetryAfter: wait}
	}
	return nil
}
