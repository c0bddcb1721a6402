package sessionhttp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/sessiond/sessiond"
)

// Sessions is the net/http side of a Manager: a middleware that loads each
// request's session, and helpers to sign in, sign out and use session data.
//
//	sessions := sessionhttp.New(manager, sessionhttp.Cookie{})
//	sessions.CrossOrigin.AddTrustedOrigin("https://app.example.com") // if another origin posts to you
//	http.ListenAndServe(addr, sessions.Middleware(mux))
//
// In a handler:
//
//	s, ok := sessionhttp.FromContext(r.Context())       // who is this?
//	sessions.Put(w, r, "cart", []byte(`["book"]`))      // data, even for anonymous visitors
//	sessions.Login(w, r, userID, rememberMe)            // after checking a password
//
// Helpers that set the cookie must run before the handler writes its body.
//
// The middleware refuses cross-origin state changes (CSRF) by default:
// see CrossOrigin.
type Sessions struct {
	m      *sessiond.Manager
	cookie Cookie
	// Bearer also accepts "Authorization: Bearer <token>". Default false.
	Bearer bool
	// CrossOrigin checks every request with a method other than GET, HEAD
	// and OPTIONS that does not carry a bearer token (with Bearer on):
	// one that a browser marks as cross-origin (Sec-Fetch-Site, or an
	// Origin other than the request's Host) is answered 403 before its
	// session is loaded, so a cross-site form or fetch that carries the
	// session cookie changes nothing, sign-in included. Requests from
	// programs that send neither header pass. Default, set by New:
	// http.NewCrossOriginProtection(), which trusts no other origin. Trust
	// one with CrossOrigin.AddTrustedOrigin("https://app.example.com")
	// (at any time); replace CrossOrigin, or call its SetDenyHandler,
	// before calling Middleware.
	CrossOrigin *http.CrossOriginProtection
	// AllowCrossOrigin turns the CrossOrigin check off, for an app that
	// protects its state changes itself (its own CSRF tokens, or an
	// http.CrossOriginProtection around the whole handler). Default false:
	// the check is on. Set it before calling Middleware.
	AllowCrossOrigin bool
	// Logger receives store failures. Default slog.Default().
	Logger *slog.Logger
	// OnStoreError answers a request whose session could not be checked
	// because the store failed. The default answers 503: sessiond fails
	// closed, it never treats an unchecked request as signed in or
	// anonymous.
	OnStoreError func(w http.ResponseWriter, r *http.Request, err error)
}

// New returns Sessions over m with the given cookie (zero fields take their
// defaults).
func New(m *sessiond.Manager, cookie Cookie) *Sessions {
	return &Sessions{m: m, cookie: cookie.WithDefaults(), CrossOrigin: http.NewCrossOriginProtection()}
}

// Manager returns the underlying Manager.
func (s *Sessions) Manager() *sessiond.Manager { return s.m }

// Cookie returns the cookie settings in use.
func (s *Sessions) Cookie() Cookie { return s.cookie }

type ctxKey struct{}

// state is the request's session, shared through the context so that
// Login and Put can replace it for the rest of the request.
type state struct {
	session *sessiond.Session
	token   string
}

// FromContext returns the active session of the request, anonymous or not.
func FromContext(ctx context.Context) (*sessiond.Session, bool) {
	st, _ := ctx.Value(ctxKey{}).(*state)
	if st == nil || st.session == nil {
		return nil, false
	}
	return st.session, true
}

// UserID returns the signed-in user of the request, or "", false.
func UserID(ctx context.Context) (string, bool) {
	s, ok := FromContext(ctx)
	if !ok || s.Anonymous() {
		return "", false
	}
	return s.UserID, true
}

// Middleware validates the request's session token, if any, and makes the
// session available to next through FromContext. A request without a
// valid session goes on as anonymous (handlers decide what needs a user);
// a stale cookie is cleared. A store failure goes to OnStoreError. A
// cross-origin state change is refused first (see CrossOrigin).
func (s *Sessions) Middleware(next http.Handler) http.Handler {
	load := s.load(next)
	if s.AllowCrossOrigin {
		return load
	}
	co := s.CrossOrigin
	if co == nil {
		co = http.NewCrossOriginProtection()
	}
	checked := co.Handler(load)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A bearer token is not sent by a browser on its own: a request
		// that carries one was made by a program that holds it. Any other
		// Authorization header does not exempt a request.
		if s.Bearer {
			if _, ok := BearerToken(r.Header.Get("Authorization")); ok {
				load.ServeHTTP(w, r)
				return
			}
		}
		checked.ServeHTTP(w, r)
	})
}

// load is Middleware without the cross-origin check.
func (s *Sessions) load(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &state{}
		if tok, fromCookie := s.cookie.Token(r, s.Bearer); tok != "" {
			sess, err := s.m.Validate(r.Context(), tok)
			switch {
			case err == nil:
				st.session, st.token = sess, tok
			case sessiond.IsRejection(err):
				if fromCookie {
					s.cookie.Clear(w)
				}
			default:
				s.storeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))
	})
}

func (s *Sessions) storeError(w http.ResponseWriter, r *http.Request, err error) {
	if s.OnStoreError != nil {
		s.OnStoreError(w, r, err)
		return
	}
	s.logger().ErrorContext(r.Context(), "session store failed", "err", err)
	http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
}

func (s *Sessions) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// ErrNoMiddleware is returned by the helpers for a request that did not
// pass through Middleware.
var ErrNoMiddleware = errors.New("sessionhttp: request did not pass through the middleware")

func stateOf(r *http.Request) (*state, error) {
	st, _ := r.Context().Value(ctxKey{}).(*state)
	if st == nil {
		return nil, ErrNoMiddleware
	}
	return st, nil
}

// Login starts a new session for userID after the caller has
// authenticated the user, and sets its cookie. The request's previous
// session, if any, ends (fixation defence); an anonymous one hands its data
// to the new session.
func (s *Sessions) Login(w http.ResponseWriter, r *http.Request, userID string, rememberMe bool) (*sessiond.Session, error) {
	st, err := stateOf(r)
	if err != nil {
		return nil, err
	}
	sess, tok, err := s.m.Create(r.Context(), sessiond.CreateParams{
		UserID: userID, RememberMe: rememberMe, UserAgent: r.UserAgent(), IP: remoteIP(r), Replace: st.token,
	})
	if err != nil {
		return nil, err
	}
	st.session, st.token = sess, tok
	s.cookie.Set(w, tok, sess, s.m.Now())
	return sess, nil
}

// Logout ends the request's session, if any, and clears the cookie.
func (s *Sessions) Logout(w http.ResponseWriter, r *http.Request) error {
	st, err := stateOf(r)
	if err != nil {
		return err
	}
	s.cookie.Clear(w)
	if st.session == nil {
		return nil
	}
	err = s.m.Revoke(r.Context(), st.session.ID, sessiond.ReasonLogout)
	st.session, st.token = nil, ""
	if errors.Is(err, sessiond.ErrNotFound) {
		return nil
	}
	return err
}

// Renew gives the request's session a new token (after a privilege change,
// for example) and sets the new cookie.
func (s *Sessions) Renew(w http.ResponseWriter, r *http.Request) error {
	st, err := stateOf(r)
	if err != nil {
		return err
	}
	if st.session == nil {
		return sessiond.ErrNotFound
	}
	sess, tok, err := s.m.Rotate(r.Context(), st.token)
	if err != nil {
		return err
	}
	st.session, st.token = sess, tok
	s.cookie.Set(w, tok, sess, s.m.Now())
	return nil
}

// Get returns one value of the request's session data.
func (s *Sessions) Get(r *http.Request, key string) ([]byte, bool, error) {
	st, err := stateOf(r)
	if err != nil || st.session == nil {
		return nil, false, err
	}
	data, err := s.m.Data(r.Context(), st.session.ID)
	if err != nil {
		return nil, false, err
	}
	v, ok := data[key]
	return v, ok, nil
}

// Put sets one value of the request's session data. A visitor without a
// session gets an anonymous one, and its cookie.
func (s *Sessions) Put(w http.ResponseWriter, r *http.Request, key string, value []byte) error {
	st, err := stateOf(r)
	if err != nil {
		return err
	}
	if st.session == nil {
		if !sessiond.ValidKey(key) {
			return sessiond.ErrInvalidKey
		}
		sess, tok, err := s.m.Create(r.Context(), sessiond.CreateParams{
			UserAgent: r.UserAgent(), IP: remoteIP(r), Data: map[string][]byte{key: value},
		})
		if err != nil {
			return err
		}
		st.session, st.token = sess, tok
		s.cookie.Set(w, tok, sess, s.m.Now())
		return nil
	}
	return s.m.SetData(r.Context(), st.session.ID, key, value)
}

// Delete removes one key of the request's session data.
func (s *Sessions) Delete(r *http.Request, key string) error {
	st, err := stateOf(r)
	if err != nil || st.session == nil {
		return err
	}
	return s.m.DeleteData(r.Context(), st.session.ID, key)
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
