// Package server is sessiond's HTTP layer: the public API, the admin API
// and the operational endpoints of the contract in docs/http-api.md. It
// decodes requests, calls the flows (package flows) and encodes answers;
// the rules live below it.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"path"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/httperror"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/webhook"
)

// Default of Config.MaxBodyBytes.
const DefaultMaxBodyBytes = 64 << 10

// Config is the HTTP layer's part of sessiond's configuration. Zero values
// are the documented defaults.
type Config struct {
	// Cookie is the session cookie. Default __Host-session, Secure,
	// HttpOnly, SameSite=Lax, Path=/.
	Cookie sessionhttp.Cookie
	// TrustedOrigins may make cookie-authenticated state changes besides
	// the server's own origin ("https://app.example.com").
	TrustedOrigins []string
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes caps request bodies. Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// HSTS sends Strict-Transport-Security (when sessiond terminates TLS
	// or sits behind a TLS proxy). Default false.
	HSTS bool
	// AdminKey is the admin API's bearer key. Empty: the admin API refuses
	// every call.
	AdminKey string
	// Pprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on
	// the admin listener, behind the admin key. Default false.
	Pprof bool
}

// Server serves sessiond's two listeners.
type Server struct {
	cfg      Config
	flows    *flows.Flows
	sessions *sessiond.Manager
	accounts *account.Service
	audit    audit.Store // nil: no trail is kept
	ready    func(context.Context) error
	log      *slog.Logger
	metrics  *metrics
	cop      *http.CrossOriginProtection
	pages    Pages               // pages.go
	webhooks *webhook.Dispatcher // webhooks.go; nil: no lifecycle webhooks

	adminKeySum [32]byte
}

// Deps are the collaborators of a Server.
type Deps struct {
	// Flows runs the rules; Sessions and Accounts answer the reads (lists,
	// profiles, session data). All three are required.
	Flows    *flows.Flows
	Sessions *sessiond.Manager
	Accounts *account.Service
	// Ready reports whether the stores are reachable (for /readyz).
	Ready func(context.Context) error
	// Logger default slog.Default().
	Logger *slog.Logger
	// Registry receives the metrics (the flows' and the HTTP layer's).
	// Default a new registry with the Go and process collectors.
	Registry *prometheus.Registry
	// Audit is the security-event trail the admin API's events route
	// lists. Default nil: none is kept.
	Audit audit.Store
	// Webhooks is the dispatcher of lifecycle webhooks, whose outbox the
	// admin API lists and whose metrics the server serves; the caller
	// runs it. Default nil: none.
	Webhooks *webhook.Dispatcher
	// Collectors are more metrics the server serves (sessiond's: the
	// notification dispatcher's). Default none.
	Collectors []prometheus.Collector
}

// New returns a Server. It starts no goroutines.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Flows == nil || d.Sessions == nil || d.Accounts == nil {
		return nil, errors.New("server: Flows, Sessions and Accounts are required")
	}
	cfg.Cookie = cfg.Cookie.WithDefaults()
	if err := cfg.Cookie.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	s := &Server{
		cfg:      cfg,
		flows:    d.Flows,
		sessions: d.Sessions,
		accounts: d.Accounts,
		audit:    d.Audit,
		ready:    d.Ready,
		log:      d.Logger,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.ready == nil {
		s.ready = func(context.Context) error { return nil }
	}
	reg := d.Registry
	if reg == nil {
		reg = NewRegistry()
	}
	s.metrics = newMetrics(reg)
	reg.MustRegister(d.Flows.Collectors()...)
	reg.MustRegister(d.Collectors...)
	if d.Webhooks != nil {
		s.webhooks = d.Webhooks
		reg.MustRegister(d.Webhooks.Collectors()...)
	}
	s.cop = http.NewCrossOriginProtection()
	for _, o := range cfg.TrustedOrigins {
		if err := s.cop.AddTrustedOrigin(o); err != nil {
			return nil, err
		}
	}
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, httperror.CrossOrigin)
	}))
	s.adminKeySum = sha256.Sum256([]byte(cfg.AdminKey))
	return s, nil
}

// route is one registered endpoint; the OpenAPI test reads these.
type route struct {
	pattern string
	handler http.HandlerFunc
}

func (s *Server) publicRoutes() []route {
	return []route{
		{"POST /v1/register", s.register},
		{"POST /v1/login", s.login},
		{"POST /v1/logout", s.logout},
		{whoAmIPattern, s.whoami},
		{"POST /v1/session/reauthenticate", s.reauthenticate},
		{"GET /v1/sessions", s.listSessions},
		{"DELETE /v1/sessions/{id}", s.revokeSession},
		{"POST /v1/sessions/revoke-others", s.revokeOthers},
		{"GET /v1/profile", s.getProfile},
		{"PATCH /v1/profile", s.patchProfile},
		{"DELETE /v1/profile", s.deleteProfile},
		{"POST /v1/password/change", s.changePassword},
		{"POST /v1/password/reset", s.requestReset},
		{"POST /v1/password/reset/confirm", s.confirmReset},
		{"POST /v1/email/change", s.emailChange},
		{"POST /v1/email/change/confirm", s.emailChangeConfirm},
		{"POST /v1/email/change/cancel", s.emailChangeCancel},
		{"GET /v1/session/data", s.getData},
		{"PUT /v1/session/data/{key}", s.putData},
		{"DELETE /v1/session/data/{key}", s.deleteData},
		{"GET /healthz", s.healthz},
		{"GET /.well-known/jwks.json", s.jwks},
		{"POST /v1/token/refresh", s.refresh},
		{"POST /v1/token/revoke", s.revokeToken},
	}
}

func (s *Server) adminRoutes() []route {
	return []route{
		{"POST /admin/v1/sessions", s.adminCreateSession},
		{"POST /admin/v1/sessions/validate", s.adminValidate},
		{"DELETE /admin/v1/sessions/{id}", s.adminRevokeSession},
		{"GET /admin/v1/users", s.adminFindUser},
		{"POST /admin/v1/users", s.adminCreateUser},
		{"GET /admin/v1/users/{id}", s.adminGetUser},
		{"DELETE /admin/v1/users/{id}", s.adminDeleteUser},
		{"GET /admin/v1/users/{id}/sessions", s.adminListSessions},
		{"DELETE /admin/v1/users/{id}/sessions", s.adminRevokeUserSessions},
		{"POST /admin/v1/users/{id}/password-reset", s.adminIssueReset},
		{"GET /admin/v1/users/{id}/events", s.adminListEvents},
		{"GET /admin/v1/webhooks/deliveries", s.adminWebhookDeliveries},
	}
}

// Routes lists every pattern the server serves, public then admin (the
// operational endpoints included), for documentation checks.
func (s *Server) Routes() (public, admin []string) {
	for _, r := range s.publicRoutes() {
		public = append(public, r.pattern)
	}
	for _, r := range s.adminRoutes() {
		admin = append(admin, r.pattern)
	}
	admin = append(admin, "GET /healthz", "GET /readyz", "GET /metrics")
	return public, admin
}

// Public returns the handler of the public listener.
func (s *Server) Public() http.Handler {
	mux := http.NewServeMux()
	var whoami http.Handler
	for _, rt := range s.publicRoutes() {
		h := s.instrument(rt.pattern, rt.handler)
		if rt.pattern == whoAmIPattern {
			whoami = h
		}
		mux.Handle(rt.pattern, h)
	}
	s.mountPages(mux)
	mux.Handle("/", s.notFound(mux))
	routed := s.crossOrigin(s.cleanPaths(mux))
	if whoami == nil {
		return s.common(routed)
	}
	return s.common(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Who-am-I, the request apps send most, goes straight to its
		// handler: its path is clean and GET is a safe method, so neither
		// the path check nor the cross-origin check could refuse it, and
		// the mux would choose the same handler.
		if r.Method == http.MethodGet && r.URL.Path == "/v1/session" && r.URL.RawPath == "" {
			r.Pattern = whoAmIPattern
			whoami.ServeHTTP(w, r)
			return
		}
		routed.ServeHTTP(w, r)
	}))
}

const whoAmIPattern = "GET /v1/session"

// Admin returns the handler of the admin listener.
func (s *Server) Admin() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.adminRoutes() {
		mux.Handle(rt.pattern, s.instrument(rt.pattern, s.requireAdmin(rt.handler)))
	}
	mux.Handle("GET /healthz", s.instrument("GET /healthz", http.HandlerFunc(s.healthz)))
	mux.Handle("GET /readyz", s.instrument("GET /readyz", http.HandlerFunc(s.readyz)))
	mux.Handle("GET /metrics", s.metrics.handler())
	if s.cfg.Pprof {
		mux.Handle("GET /debug/pprof/", s.requireAdmin(pprof.Index))
		mux.Handle("GET /debug/pprof/cmdline", s.requireAdmin(pprof.Cmdline))
		mux.Handle("GET /debug/pprof/profile", s.requireAdmin(pprof.Profile))
		mux.Handle("GET /debug/pprof/symbol", s.requireAdmin(pprof.Symbol))
		mux.Handle("GET /debug/pprof/trace", s.requireAdmin(pprof.Trace))
	}
	mux.Handle("/", s.notFound(mux))
	return s.common(s.cleanPaths(mux))
}

// cleanPaths answers a request whose path is not in clean form (a doubled
// slash, a "." or ".." segment) with the contract's 404. The mux would
// answer it with a 307 redirect to the clean path and an HTML body: every
// route of sessiond is clean, and an API client is better told its path is
// wrong than sent elsewhere with its method, body and credentials.
func (s *Server) cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.EscapedPath(); r.Method != http.MethodConnect && p != cleanPath(p) {
			s.writeError(w, r, httperror.NotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is the form net/http's ServeMux redirects p to: rooted,
// path.Clean'ed, with a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// requireAdmin lets a request through only with the admin key. Both sides
// are hashed before the constant-time comparison so that neither the key's
// content nor its length leaks through timing.
func (s *Server) requireAdmin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.AdminKey == "" {
			s.writeError(w, r, httperror.AdminDisabled)
			return
		}
		key, ok := sessionhttp.BearerToken(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(key))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.adminKeySum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sessiond-admin"`)
			s.writeError(w, r, httperror.InvalidAdminKey)
			return
		}
		next(w, r)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.WarnContext(r.Context(), "not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable",
			"error": map[string]string{"code": "unavailable", "message": "a backing store is unreachable"}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
