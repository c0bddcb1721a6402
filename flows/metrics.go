package flows

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond"
)

// metrics are the flows' Prometheus series, all prefixed sessiond_.
type metrics struct {
	created       *prometheus.CounterVec // kind: user, anonymous
	validated     prometheus.Counter
	rejected      *prometheus.CounterVec // reason: missing, malformed, unknown, expired, revoked, anonymous, unavailable, anonymous_rate_limited (a new anonymous session refused), token_rate_limited (a token refused unread: its address is over the rejected-token limit)
	revoked       *prometheus.CounterVec // reason: logout, logout_all, force_logout, admin, ...
	loginFailures *prometheus.CounterVec // reason: invalid_credentials, locked, rate_limited, credentials_changed
	lockouts      prometheus.Counter
	resets        *prometheus.CounterVec // outcome: sent, unknown, limited, failed
	reauth        *prometheus.CounterVec // outcome: ok, failed, required (a sensitive action refused)
	hijacks       prometheus.Counter
	ipChanges     prometheus.Counter
	notifications *prometheus.CounterVec // type, outcome: sent, failed
}

func newMetrics() *metrics {
	return &metrics{
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
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.created, m.validated, m.rejected, m.revoked, m.loginFailures,
		m.lockouts, m.resets, m.reauth, m.hijacks, m.ipChanges, m.notifications}
}

// countRejection counts a refused token by the reason err gives.
func (m *metrics) countRejection(err error) {
	reason := "unavailable"
	switch {
	case errors.Is(err, sessiond.ErrMalformedToken):
		reason = "malformed"
	case errors.Is(err, sessiond.ErrNotFound):
		reason = "unknown"
	case errors.Is(err, sessiond.ErrExpired):
		reason = "expired"
	case errors.Is(err, sessiond.ErrRevoked):
		reason = "revoked"
	}
	m.rejected.WithLabelValues(reason).Inc()
}
