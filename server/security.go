package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// common wraps a listener's handler: security headers on every answer and
// a recover that turns a panic into a 500 without details.
func (s *Server) common(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Shared, never-modified value slices under canonical keys: the
		// same headers as Header.Set, without an allocation each.
		hd := w.Header()
		hd["X-Content-Type-Options"] = hdrNosniff
		hd["X-Frame-Options"] = hdrDeny
		hd["Referrer-Policy"] = hdrNoReferrer
		hd["Content-Security-Policy"] = hdrCSP
		hd["Cross-Origin-Resource-Policy"] = hdrCORP
		if s.cfg.HSTS {
			hd["Strict-Transport-Security"] = hdrHSTS
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.ErrorContext(r.Context(), "handler panic", "route", r.Pattern, "panic", v)
				s.writeError(w, r, errorf(http.StatusInternalServerError, "internal_error", "internal error"))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

var (
	hdrNosniff    = []string{"nosniff"}
	hdrDeny       = []string{"DENY"}
	hdrNoReferrer = []string{"no-referrer"}
	hdrCSP        = []string{"default-src 'none'; frame-ancestors 'none'"}
	hdrCORP       = []string{"same-origin"}
	hdrHSTS       = []string{"max-age=63072000; includeSubDomains"}
)

// notFound is registered as "/" on each mux: it answers what the mux would
// answer for an unknown route, 404 or 405 with Allow, but as the contract's
// JSON error. It runs only for requests no route matched, so the probing
// below costs nothing on the routes themselves.
func (s *Server) notFound(mux *http.ServeMux) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
				allow = append(allow, m)
				if m == http.MethodGet {
					allow = append(allow, http.MethodHead)
				}
			}
		}
		if len(allow) == 0 {
			s.writeError(w, r, errNotFound)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this path"))
	}
}

// crossOrigin refuses cross-origin state changes (Sec-Fetch-Site or an
// Origin that is neither ours nor trusted), the CSRF defence for cookie
// authentication. Requests that authenticate with an Authorization header
// are exempt: a browser never attaches one on its own, so no other site
// can forge them.
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	protected := s.cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			next.ServeHTTP(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	})
}

// clientIP is the address of the client: the peer, or, when the peer is a
// trusted proxy, the right-most X-Forwarded-For entry that is not one.
func (s *Server) clientIP(r *http.Request) string {
	return s.clientAddr(r).String()
}

// clientAddr is clientIP before it is written as text.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r)
	if !s.trusted(peer) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	var all []string
	for _, h := range hops {
		all = append(all, strings.Split(h, ",")...)
	}
	for i := len(all) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(all[i]))
		if err != nil {
			break // a garbled hop: stop believing the chain
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
		peer = a
	}
	return peer
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}

// limiterSet is a token bucket per key (an IP, an account), for counting
// failures. Buckets that have refilled are dropped now and then, so memory
// stays bounded by the keys active within one refill period.
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
