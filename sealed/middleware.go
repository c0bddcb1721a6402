package sealed

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/sessiond/sessiond/sessionhttp"
)

// Policy is the lifetime of sealed sessions; zero fields take the same
// defaults as sessiond.Policy.
type Policy struct {
	// IdleTimeout, default 30m; AbsoluteTimeout, default 12h.
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// RememberMeIdleTimeout, default 168h; RememberMeLifetime, default 720h.
	RememberMeIdleTimeout time.Duration
	RememberMeLifetime    time.Duration
	// TouchInterval is how stale the sealed last-seen time may get before
	// a request re-seals the cookie to slide the idle deadline. Default a
	// tenth of the idle timeout, at most 1m.
	TouchInterval time.Duration
}

func (p Policy) withDefaults() Policy {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&p.IdleTimeout, 30*time.Minute)
	def(&p.AbsoluteTimeout, 12*time.Hour)
	def(&p.RememberMeIdleTimeout, 168*time.Hour)
	def(&p.RememberMeLifetime, 720*time.Hour)
	return p
}

func (p Policy) timeouts(remember bool) (idle, abs time.Duration) {
	if remember {
		return p.RememberMeIdleTimeout, p.RememberMeLifetime
	}
	return p.IdleTimeout, p.AbsoluteTimeout
}

func (p Policy) touchInterval(remember bool) time.Duration {
	if p.TouchInterval > 0 {
		return p.TouchInterval
	}
	idle, _ := p.timeouts(remember)
	return min(idle/10, time.Minute)
}

// Sessions is the net/http side of sealed sessions, shaped like
// sessionhttp.Sessions: Middleware loads the cookie, FromContext reads it,
// Login, Logout, Put and Delete change it and write the cookie at once
// (call them before the handler writes its body). Like
// sessionhttp.Sessions, it refuses cross-origin state changes by default.
type Sessions struct {
	keys   *Keys
	cookie sessionhttp.Cookie
	policy Policy
	now    func() time.Time

	// CrossOrigin checks every request with a method other than GET, HEAD
	// and OPTIONS: one that a browser marks as cross-origin (Sec-Fetch-Site,
	// or an Origin other than the request's Host) is answered 403 before
	// its session is opened, so a cross-site form or fetch that carries the
	// session cookie changes nothing. Default, set by New:
	// http.NewCrossOriginProtection(), which trusts no other origin; trust
	// one with CrossOrigin.AddTrustedOrigin.
	CrossOrigin *http.CrossOriginProtection
	// AllowCrossOrigin turns the check off, for an app that protects its
	// state changes itself. Default false. Set it before Middleware.
	AllowCrossOrigin bool
}

// New returns Sessions sealing with keys.
func New(keys *Keys, cookie sessionhttp.Cookie, p Policy) *Sessions {
	return &Sessions{keys: keys, cookie: cookie.WithDefaults(), policy: p.withDefaults(), now: time.Now,
		CrossOrigin: http.NewCrossOriginProtection()}
}

// WithClock replaces the clock, for tests.
func (s *Sessions) WithClock(now func() time.Time) *Sessions { s.now = now; return s }

type ctxKey struct{}

type state struct{ s *Session }

// FromContext returns the request's sealed session.
func FromContext(ctx context.Context) (*Session, bool) {
	st, _ := ctx.Value(ctxKey{}).(*state)
	if st == nil || st.s == nil {
		return nil, false
	}
	return st.s, true
}

// Middleware opens the session cookie; an invalid or expired one is
// cleared. A session used after its touch interval is re-sealed with a
// slid idle deadline. A cross-origin state change is refused first (see
// CrossOrigin).
func (s *Sessions) Middleware(next http.Handler) http.Handler {
	open := s.open(next)
	if s.AllowCrossOrigin {
		return open
	}
	co := s.CrossOrigin
	if co == nil {
		co = http.NewCrossOriginProtection()
	}
	return co.Handler(open)
}

func (s *Sessions) open(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &state{}
		if c, err := r.Cookie(s.cookie.Name); err == nil {
			now := s.now().UTC()
			sess, err := s.keys.Open(s.cookie.Name, c.Value, now)
			switch {
			case err != nil:
				s.cookie.Clear(w)
			default:
				st.s = sess
				if now.Sub(sess.LastSeenAt) >= s.policy.touchInterval(sess.RememberMe) {
					idle, _ := s.policy.timeouts(sess.RememberMe)
					sess.LastSeenAt = now
					sess.IdleExpiresAt = minTime(now.Add(idle), sess.AbsoluteExpiresAt)
					_ = s.write(w, sess, now) // it fit before; it fits now
				}
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))
	})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ErrNoMiddleware: the request did not pass through Middleware.
var ErrNoMiddleware = errors.New("sealed: request did not pass through the middleware")

func stateOf(r *http.Request) (*state, error) {
	st, _ := r.Context().Value(ctxKey{}).(*state)
	if st == nil {
		return nil, ErrNoMiddleware
	}
	return st, nil
}

func (s *Sessions) fresh(userID string, remember bool, now time.Time) *Session {
	idle, abs := s.policy.timeouts(remember)
	return &Session{UserID: userID, RememberMe: remember, CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: minTime(now.Add(idle), now.Add(abs)), AbsoluteExpiresAt: now.Add(abs)}
}

func (s *Sessions) write(w http.ResponseWriter, sess *Session, now time.Time) error {
	text, err := s.keys.Seal(s.cookie.Name, sess)
	if err != nil {
		return err
	}
	ck := &http.Cookie{Name: s.cookie.Name, Value: text, Path: s.cookie.Path, Domain: s.cookie.Domain,
		Secure: !s.cookie.Insecure, HttpOnly: true, SameSite: s.cookie.SameSite}
	if sess.RememberMe {
		ck.MaxAge = max(1, int(sess.AbsoluteExpiresAt.Sub(now)/time.Second))
	}
	dropSetCookie(w, s.cookie.Name)
	http.SetCookie(w, ck)
	return nil
}

// dropSetCookie removes an earlier Set-Cookie for name from the response,
// so one response never sets the same cookie twice.
func dropSetCookie(w http.ResponseWriter, name string) {
	h := w.Header()
	lines := h.Values("Set-Cookie")
	if len(lines) == 0 {
		return
	}
	h.Del("Set-Cookie")
	for _, l := range lines {
		if !strings.HasPrefix(l, name+"=") {
			h.Add("Set-Cookie", l)
		}
	}
}

// Login starts a new sealed session for userID, keeping the data of the
// request's session. The previous cookie's content is replaced; copies of
// it elsewhere stay valid until they expire (see the package comment).
func (s *Sessions) Login(w http.ResponseWriter, r *http.Request, userID string, rememberMe bool) error {
	st, err := stateOf(r)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	sess := s.fresh(userID, rememberMe, now)
	if st.s != nil {
		sess.Data = st.s.Data
	}
	if err := s.write(w, sess, now); err != nil {
		return err
	}
	st.s = sess
	return nil
}

// Logout clears the cookie.
func (s *Sessions) Logout(w http.ResponseWriter, r *http.Request) error {
	st, err := stateOf(r)
	if err != nil {
		return err
	}
	dropSetCookie(w, s.cookie.Name)
	s.cookie.Clear(w)
	st.s = nil
	return nil
}

// Put sets one data key (a JSON value), starting an anonymous sealed
// session when there is none. It returns ErrTooLarge, changing nothing,
// when the result would not fit in a cookie.
func (s *Sessions) Put(w http.ResponseWriter, r *http.Request, key string, value any) error {
	st, err := stateOf(r)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	next := s.fresh("", false, now)
	if st.s != nil {
		c := *st.s
		next = &c
	}
	data := make(map[string]json.RawMessage, len(next.Data)+1)
	for k, v := range next.Data {
		data[k] = v
	}
	data[key] = raw
	next.Data = data
	if err := s.write(w, next, now); err != nil {
		return err
	}
	st.s = next
	return nil
}

// Delete removes one data key.
func (s *Sessions) Delete(w http.ResponseWriter, r *http.Request, key string) error {
	st, err := stateOf(r)
	if err != nil || st.s == nil {
		return err
	}
	if _, ok := st.s.Data[key]; !ok {
		return nil
	}
	c := *st.s
	c.Data = make(map[string]json.RawMessage, len(st.s.Data))
	for k, v := range st.s.Data {
		if k != key {
			c.Data[k] = v
		}
	}
	if err := s.write(w, &c, s.now().UTC()); err != nil {
		return err
	}
	st.s = &c
	return nil
}
