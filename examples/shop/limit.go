package main

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Sign-in and registration attempts per client address: a burst of
// attemptBurst, then one every attemptEvery. Lockout (account.Service)
// stops guessing at one account; this stops one address from trying
// passwords across many accounts, or making accounts in bulk.
const (
	attemptBurst = 10
	attemptEvery = 6 * time.Second
	// maxTrackedAddrs bounds the limiter's memory. When it is reached,
	// the addresses back to a full burst are forgotten, and if that is not
	// enough, all of them.
	maxTrackedAddrs = 10000
)

// addrLimiter limits attempts per client address.
type addrLimiter struct {
	now func() time.Time

	mu    sync.Mutex
	addrs map[string]*rate.Limiter
}

func newAddrLimiter(now func() time.Time) *addrLimiter {
	return &addrLimiter{now: now, addrs: map[string]*rate.Limiter{}}
}

// allow takes an attempt for addr, or returns how long until it may try
// again.
func (l *addrLimiter) allow(addr string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.addrs[addr]
	if lim == nil {
		if len(l.addrs) >= maxTrackedAddrs {
			l.forget(now)
		}
		lim = rate.NewLimiter(rate.Every(attemptEvery), attemptBurst)
		l.addrs[addr] = lim
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, time.Duration(missing * float64(attemptEvery))
}

func (l *addrLimiter) forget(now time.Time) {
	for a, lim := range l.addrs {
		if lim.TokensAt(now) >= attemptBurst {
			delete(l.addrs, a)
		}
	}
	if len(l.addrs) >= maxTrackedAddrs {
		clear(l.addrs)
	}
}

// clientAddr is the address the request came from. Behind a reverse
// proxy every request comes from the proxy: key the limit by the client
// address the proxy reports instead.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
