package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are sessiond's Prometheus series, all prefixed sessiond_.
type metrics struct {
	reg           *prometheus.Registry
	created       *prometheus.CounterVec // kind: user, anonymous
	validated     prometheus.Counter
	rejected      *prometheus.CounterVec // reason: malformed, unknown, expired, revoked, anonymous, unavailable
	revoked       *prometheus.CounterVec // reason: logout, logout_all, force_logout, admin, ...
	loginFailures *prometheus.CounterVec // reason: invalid_credentials, locked, rate_limited, credentials_changed
	lockouts      prometheus.Counter
	resets        *prometheus.CounterVec // outcome: sent, unknown, limited, failed
	reauth        *prometheus.CounterVec // outcome: ok, failed, required (a sensitive action refused)
	hijacks       prometheus.Counter
	ipChanges     prometheus.Counter
	notifications *prometheus.CounterVec // type, outcome: sent, failed
	duration      *prometheus.HistogramVec
}

// newRegistry returns a registry with the Go runtime and process
// collectors, renamed into the sessiond_ namespace (sessiond_go_goroutines,
// sessiond_process_resident_memory_bytes) so every series has the prefix.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	prometheus.WrapRegistererWithPrefix("sessiond_", reg).MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg: reg,
		created: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_sessions_created_total",
			Help: "Sessions created, by kind (user or anonymous)."}, []string{"kind"}),
		validated: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiond_sessions_validated_total",
			Help: "Successful session validations (who-am-I and admin validate)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_sessions_rejected_total",
			Help: "Tokens refused, by reason."}, []string{"reason"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_sessions_revoked_total",
			Help: "Sessions ended, by reason."}, []string{"reason"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_login_failures_total",
			Help: "Failed sign-ins, by reason."}, []string{"reason"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiond_lockouts_total",
			Help: "Accounts locked after too many failed sign-ins."}),
		resets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_password_reset_requests_total",
			Help: "Password-reset requests, by outcome."}, []string{"outcome"}),
		reauth: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_reauthentications_total",
			Help: "Reauthentications by outcome (ok, failed), and sensitive actions refused for want of one (required)."}, []string{"outcome"}),
		hijacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiond_hijack_suspected_total",
			Help: "Browser sessions revoked because their token came from another browser or OS family."}),
		ipChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "sessiond_session_ip_changes_total",
			Help: "Sessions seen from a new client address (recorded as ip_changed events)."}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_notifications_total",
			Help: "Security notifications handed to the notifier, by type and outcome."}, []string{"type", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sessiond_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status code.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}},
			[]string{"route", "code"}),
	}
	reg.MustRegister(m.created, m.validated, m.rejected, m.revoked, m.loginFailures, m.lockouts, m.resets, m.reauth, m.hijacks, m.ipChanges, m.notifications, m.duration)
	return m
}

func (m *metrics) handler() http.Handler {
	// The handler's own error counter goes into the registry too, in the
	// sessiond_ namespace like every other series.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: prometheus.WrapRegistererWithPrefix("sessiond_", m.reg)})
}

// statusWriter remembers the status code for the latency histogram.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument records the latency of one route. The observers of the
// route's common status codes are looked up once, not per request, and the
// status-capturing writers are pooled: this wraps every request.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	var common [6]prometheus.Observer // 200, 201, 204, 400, 401, 404
	codes := [...]int{200, 201, 204, 400, 401, 404}
	for i, c := range codes {
		common[i] = s.metrics.duration.WithLabelValues(route, strconv.Itoa(c))
	}
	observer := func(code int) prometheus.Observer {
		for i, c := range codes {
			if c == code {
				return common[i]
			}
		}
		return s.metrics.duration.WithLabelValues(route, strconv.Itoa(code))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		sw.ResponseWriter, sw.code = w, 0
		h.ServeHTTP(sw, r)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		sw.ResponseWriter = nil
		statusWriters.Put(sw)
		observer(code).Observe(time.Since(start).Seconds())
	})
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}
