package flows

import (
	"context"
	"errors"
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
// were dead, and the session is ended with reason hijack_suspected,
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

// CheckClient applies the hijack rule to sess, the validated session of a
// request from c: when c is another browser than the one that started a
// browser session, the session is ended (hijack_suspected, an audit event,
// a notification) and the error is sessiond.ErrRevoked, to be answered
// like any dead token. For other sessions it notes a change of address.
func (f *Flows) CheckClient(ctx context.Context, c Client, sess *sessiond.Session) error {
	if sess.Anonymous() {
		return nil
	}
	if !f.cfg.DisableHijackDetection && sess.ClientMismatch(c.UserAgent) {
		f.hijackSuspected(ctx, c, sess)
		return sessiond.ErrRevoked
	}
	f.noteAddress(ctx, c, sess)
	return nil
}

// hijackSuspected ends sess, whose token c presented.
func (f *Flows) hijackSuspected(ctx context.Context, c Client, sess *sessiond.Session) {
	actx := f.auditContext(ctx, c)
	presented := sessiond.ParseDevice(c.UserAgent)
	ip := c.IP()
	err := f.sessions.Revoke(ctx, sess.ID, sessiond.ReasonHijack)
	switch {
	case errors.Is(err, sessiond.ErrNotFound):
		return // ended meanwhile (a racing request made this same call)
	case err != nil:
		// The request is refused all the same; the session may live on,
		// and the next request from the thief is refused again.
		f.log.ErrorContext(ctx, "ending a hijacked session failed", "user_id", sess.UserID, "session_id", sess.ID, "err", err)
		return
	}
	f.metrics.revoked.WithLabelValues(sessiond.ReasonHijack).Inc()
	f.metrics.hijacks.Inc()
	f.log.WarnContext(ctx, "session token presented by another browser: session revoked",
		"user_id", sess.UserID, "session_id", sess.ID,
		"session_browser", sess.Device.Browser, "session_os", sess.Device.OS,
		"browser", presented.Browser, "os", presented.OS, "ip", ip)
	f.audit.Record(actx, sess.UserID, audit.HijackSuspected, sess.ID, map[string]any{
		"session_browser": sess.Device.Browser, "session_os": sess.Device.OS, "session_ip": sess.IP,
		"user_agent_missing": c.UserAgent == "",
	})
	f.notifyUser(actx, sess.UserID, notify.TypeHijackSuspected, map[string]any{
		"session_id":      sess.ID,
		"session_browser": sess.Device.Browser,
		"session_os":      sess.Device.OS,
		"session_ip":      sess.IP,
		"browser":         presented.Browser,
		"os":              presented.OS,
		"ip":              ip,
		"detected_at":     rfc3339(f.Now()),
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
func (f *Flows) noteAddress(ctx context.Context, c Client, sess *sessiond.Session) {
	if !f.audit.Enabled() || sess.IP == "" {
		return
	}
	if started, err := netip.ParseAddr(sess.IP); err == nil && started == c.Addr {
		return // the usual case, without writing the address as text
	}
	ip := c.IP()
	if ip == sess.IP {
		return
	}
	key := sess.ID + " " + ip
	if !f.addrSeen.first(key) {
		return
	}
	actx := f.auditContext(ctx, c)
	started := f.goBackground(actx, func(ctx context.Context) {
		evs, err := f.audit.Store.List(ctx, sess.UserID, audit.Filter{Types: []string{audit.IPChanged}, Limit: audit.MaxLimit})
		if err != nil {
			f.addrSeen.forget(key)
			f.log.WarnContext(ctx, "checking for a known address failed", "user_id", sess.UserID, "err", err)
			return
		}
		for _, e := range evs {
			if e.SessionID == sess.ID && e.IP == ip {
				return
			}
		}
		f.metrics.ipChanges.Inc()
		f.audit.Record(ctx, sess.UserID, audit.IPChanged, sess.ID, map[string]any{"session_ip": sess.IP})
	})
	if !started {
		f.addrSeen.forget(key) // the next request tries again
	}
}
