package server

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// Hijack signals. A browser session (handed out in a cookie: transport
// "cookie" or "jwt_cookie") remembers the browser and OS family it started
// with (sessiond.Session.BrowserBound). A request that presents its token
// from another family, or with no User-Agent, is refused as if the token
// were dead (401), and the session is ended with reason hijack_suspected,
// recorded in the audit trail and told to its user (a hijack_suspected
// notification). Sessions handed to bearer-token clients (transport
// "token" and "jwt", and sessions an administrator created) are exempt:
// servers and apps change their User-Agent honestly. Config
// DisableHijackDetection (--hijack-detection=false) switches it off.
//
// Only a genuine credential can end a session this way: the check runs
// after the token was validated (or the access token's signature, or the
// refresh token's place in its chain, verified), so nobody can end someone
// else's session by sending a made-up token with an odd User-Agent.
//
// A new client address alone is never fatal (mobile users move): the
// first request of a session from an address other than the one it
// started from is recorded as an ip_changed event, once per session and
// address.

// checkClient applies the hijack rule to sess, the validated session of r.
// It returns sessiond.ErrRevoked after ending a suspected session, which
// callers answer like any dead token. For other sessions it notes a change
// of client address.
func (s *Server) checkClient(r *http.Request, sess *sessiond.Session) error {
	if sess.Anonymous() {
		return nil
	}
	if !s.cfg.DisableHijackDetection && sess.ClientMismatch(r.UserAgent()) {
		s.hijackSuspected(r, sess)
		return sessiond.ErrRevoked
	}
	s.noteAddress(r, sess)
	return nil
}

// CheckClient applies the hijack rule to sess, the session the request r
// carries, as every route of the API does after validating a token: when
// the request comes from another browser than the one that started a
// browser session, the session is ended (hijack_suspected, an audit event,
// a notification) and the error is sessiond.ErrRevoked: treat the request
// as signed out. For the browser pages.
func (s *Server) CheckClient(r *http.Request, sess *sessiond.Session) error {
	return s.checkClient(r, sess)
}

// hijackSuspected ends sess, whose token r presented from another client.
func (s *Server) hijackSuspected(r *http.Request, sess *sessiond.Session) {
	ctx := s.auditContext(r)
	presented := sessiond.ParseDevice(r.UserAgent())
	ip := s.clientIP(r)
	err := s.sessions.Revoke(r.Context(), sess.ID, sessiond.ReasonHijack)
	switch {
	case errors.Is(err, sessiond.ErrNotFound):
		return // ended meanwhile (a racing request made this same call)
	case err != nil:
		// The request is refused all the same; the session may live on,
		// and the next request from the thief is refused again.
		s.log.ErrorContext(r.Context(), "ending a hijacked session failed", "user_id", sess.UserID, "session_id", sess.ID, "err", err)
		return
	}
	s.metrics.revoked.WithLabelValues(sessiond.ReasonHijack).Inc()
	s.metrics.hijacks.Inc()
	s.log.WarnContext(r.Context(), "session token presented by another browser: session revoked",
		"user_id", sess.UserID, "session_id", sess.ID,
		"session_browser", sess.Device.Browser, "session_os", sess.Device.OS,
		"browser", presented.Browser, "os", presented.OS, "ip", ip)
	s.audit.Record(ctx, sess.UserID, audit.HijackSuspected, sess.ID, map[string]any{
		"session_browser": sess.Device.Browser, "session_os": sess.Device.OS, "session_ip": sess.IP,
		"user_agent_missing": r.UserAgent() == "",
	})
	s.notifyUser(ctx, sess.UserID, notify.TypeHijackSuspected, map[string]any{
		"session_id":      sess.ID,
		"session_browser": sess.Device.Browser,
		"session_os":      sess.Device.OS,
		"session_ip":      sess.IP,
		"browser":         presented.Browser,
		"os":              presented.OS,
		"ip":              ip,
		"detected_at":     rfc3339(s.sessions.Now()),
	})
}

// addressesSeen remembers the (session, address) pairs already recorded,
// so that a session seen from a new address costs one audit lookup per
// process, not one per request. Bounded: when full it starts over, and the
// audit trail, which is checked before recording, keeps the rule.
type addressesSeen struct {
	mu sync.Mutex
	m  map[string]struct{}
}

const maxAddressesSeen = 100_000

// first reports whether key is new, and remembers it.
func (a *addressesSeen) first(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.m[key]; ok {
		return false
	}
	if a.m == nil || len(a.m) >= maxAddressesSeen {
		a.m = make(map[string]struct{})
	}
	a.m[key] = struct{}{}
	return true
}

// forget drops key, so that a failed recording is tried again.
func (a *addressesSeen) forget(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.m, key)
}

// noteAddress records an ip_changed event the first time sess is used
// from an address other than the one it started from: once per session
// and address, checked against the trail so that other nodes and restarts
// do not repeat it. The check and the write run after the request.
func (s *Server) noteAddress(r *http.Request, sess *sessiond.Session) {
	if !s.audit.Enabled() || sess.IP == "" {
		return
	}
	if len(s.cfg.TrustedProxies) == 0 && peerIs(r.RemoteAddr, sess.IP) {
		return // the usual case, without parsing an address
	}
	a := s.clientAddr(r)
	if started, err := netip.ParseAddr(sess.IP); err == nil && started == a {
		return // the usual case, without writing the address as text
	}
	ip := a.String()
	if ip == sess.IP {
		return
	}
	key := sess.ID + " " + ip
	if !s.addrSeen.first(key) {
		return
	}
	ctx := s.auditContext(r)
	started := s.goBackground(ctx, func(ctx context.Context) {
		evs, err := s.audit.Store.List(ctx, sess.UserID, audit.Filter{Types: []string{audit.IPChanged}, Limit: audit.MaxLimit})
		if err != nil {
			s.addrSeen.forget(key)
			s.log.WarnContext(ctx, "checking for a known address failed", "user_id", sess.UserID, "err", err)
			return
		}
		for _, e := range evs {
			if e.SessionID == sess.ID && e.IP == ip {
				return
			}
		}
		s.metrics.ipChanges.Inc()
		s.audit.Record(ctx, sess.UserID, audit.IPChanged, sess.ID, map[string]any{"session_ip": sess.IP})
	})
	if !started {
		s.addrSeen.forget(key) // the next request tries again
	}
}

// peerIs reports whether remote, a RemoteAddr ("1.2.3.4:5", "[::1]:5"), is
// the address ip as written. False may still be the same address written
// otherwise (an IPv4-mapped IPv6 peer): callers then compare parsed.
func peerIs(remote, ip string) bool {
	if len(remote) > len(ip)+2 && remote[0] == '[' {
		return remote[1+len(ip)] == ']' && remote[1:1+len(ip)] == ip
	}
	return len(remote) > len(ip) && remote[len(ip)] == ':' && remote[:len(ip)] == ip
}
