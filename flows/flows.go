// Package flows holds the rules of signing in and out: sign-in with its
// per-address limit and lockout, session fixation defence, sign-out and
// sign-out everywhere, Force Logout on a change or reset of the password,
// fresh authentication for sensitive actions, hijack signals, the change
// of email, client-side sessions' refresh chains, and the security
// notifications and audit events each of them causes.
//
// It knows nothing of HTTP. Its callers (package server for the JSON API,
// package web for the browser pages) decode a request, describe the client
// as a Client value, call a flow and encode its named result: a flow never
// writes a header or a cookie. Errors are the sentinels of this package,
// of account and of sessiond; package httperror maps each to its answer.
package flows

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/notify"
)

// Defaults of Config, as documented on its fields.
const (
	DefaultLoginRatePerIP      = 60
	DefaultResetRatePerAccount = 5
	DefaultResetRatePerIP      = 30
	DefaultAnonymousRatePerIP  = 60
	// DefaultRejectedTokenRatePerIP: see Config.RejectedTokenRatePerIP.
	DefaultRejectedTokenRatePerIP = 120
)

// ResetAccountCapFactor is how many times Config.ResetRatePerAccount one
// account may be sent reset messages per hour, for requests from every
// address together: 20 an hour by default.
const ResetAccountCapFactor = 4

// Config holds the settings of the flows. Zero values are the documented
// defaults.
type Config struct {
	// LoginRatePerIP is how many failed sign-ins (and failed
	// reauthentications) per minute one client address may make across
	// accounts before ErrRateLimited. Default DefaultLoginRatePerIP.
	LoginRatePerIP int
	// LoginRateOff switches the per-address limit off. Default false.
	LoginRateOff bool
	// ResetRatePerAccount and ResetRatePerIP cap password-reset requests
	// per hour; requests over them are answered as usual but send
	// nothing. Defaults DefaultResetRatePerAccount and
	// DefaultResetRatePerIP. ResetRatePerAccount is counted per account
	// and client address, so that strangers cannot use up the owner's
	// allowance; every address together may send ResetAccountCapFactor
	// times as many for one account (see StartReset). The per-account
	// counts are kept in the account store, so they hold over every node
	// that shares it; ResetRatePerIP is counted by each node for itself.
	ResetRatePerAccount int
	ResetRatePerIP      int
	// AnonymousRatePerIP is how many anonymous sessions (visitors' data
	// without a sign-in) one client address may start per minute before
	// *RateLimitedError. Default DefaultAnonymousRatePerIP.
	AnonymousRatePerIP int
	// AnonymousRateOff switches that limit off. Default false.
	AnonymousRateOff bool
	// RejectedTokenRatePerIP is how many rejected tokens (malformed,
	// unknown, expired or revoked session and access tokens; invalid or
	// reused refresh tokens) one client address may present per minute;
	// beyond it every request of the address that presents a token is
	// refused with *RateLimitedError before any store read, until the
	// allowance refills. Valid tokens are never charged. Default
	// DefaultRejectedTokenRatePerIP.
	RejectedTokenRatePerIP int
	// RejectedTokenRateOff switches that limit off. Default false.
	RejectedTokenRateOff bool
	// PublicURL is the externally visible base URL, used for links in
	// notifications ("https://login.example.com"). Default none: messages
	// carry the token without a link.
	PublicURL string
	// DisableHijackDetection stops ending browser sessions whose token
	// comes from another browser or OS family (see hijack.go). Default
	// false: detection on.
	DisableHijackDetection bool
}

// Deps are the collaborators of the flows.
type Deps struct {
	// Sessions and Accounts are required.
	Sessions *sessiond.Manager
	Accounts *account.Service
	// Notifier takes security notifications, in the request, before it
	// answers: it should be quick and durable, as sessiond's queue
	// (webhook.Notifications, delivered by a webhook.Dispatcher) is; a
	// slow one slows the requests. Default notify.Discard.
	Notifier notify.Notifier
	// Audit keeps the security-event trail. Default nil: none is kept.
	Audit audit.Store
	// Logger default slog.Default().
	Logger *slog.Logger
	// ClientSide enables client-side sessions (transports "jwt" and
	// "jwt_cookie"). Default nil: off.
	ClientSide *ClientSide
}

// Flows runs the flows. It is safe for concurrent use.
type Flows struct {
	cfg        Config
	sessions   *sessiond.Manager
	accounts   *account.Service
	notifier   notify.Notifier
	audit      *audit.Recorder
	log        *slog.Logger
	metrics    *metrics
	clientSide *ClientSide // nil: client-side sessions off

	loginLimiter *limiterSet   // nil: off
	anonLimiter  *limiterSet   // nil: off
	resetByIP    *limiterSet   // per node; the per-account limit is in the store
	background   chan struct{} // bounds background goroutines (hijack.go)
	addrSeen     addressesSeen // hijack.go

	tokenLimiter *keyedLimiter[netip.Addr] // rejected tokens per address (limits.go); nil: off
}

// New returns the flows over d. It starts no goroutines.
func New(cfg Config, d Deps) (*Flows, error) {
	if d.Sessions == nil || d.Accounts == nil {
		return nil, errors.New("flows: Sessions and Accounts are required")
	}
	if cfg.LoginRatePerIP < 0 || cfg.ResetRatePerAccount < 0 || cfg.ResetRatePerIP < 0 || cfg.AnonymousRatePerIP < 0 ||
		cfg.RejectedTokenRatePerIP < 0 {
		return nil, errors.New("flows: rates must not be negative")
	}
	if cfg.LoginRatePerIP == 0 {
		cfg.LoginRatePerIP = DefaultLoginRatePerIP
	}
	if cfg.ResetRatePerAccount == 0 {
		cfg.ResetRatePerAccount = DefaultResetRatePerAccount
	}
	if cfg.ResetRatePerIP == 0 {
		cfg.ResetRatePerIP = DefaultResetRatePerIP
	}
	if cfg.AnonymousRatePerIP == 0 {
		cfg.AnonymousRatePerIP = DefaultAnonymousRatePerIP
	}
	if cfg.RejectedTokenRatePerIP == 0 {
		cfg.RejectedTokenRatePerIP = DefaultRejectedTokenRatePerIP
	}
	f := &Flows{
		cfg:        cfg,
		sessions:   d.Sessions,
		accounts:   d.Accounts,
		notifier:   d.Notifier,
		log:        d.Logger,
		metrics:    newMetrics(),
		background: make(chan struct{}, 64),
	}
	if f.notifier == nil {
		f.notifier = notify.Discard{}
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.audit = &audit.Recorder{Store: d.Audit, Log: f.log, Now: f.sessions.Now}
	if d.ClientSide != nil {
		if d.ClientSide.Keys == nil || d.ClientSide.Chain == nil {
			return nil, errors.New("flows: ClientSide needs Keys and Chain")
		}
		f.clientSide = d.ClientSide.withDefaults()
	}
	if !cfg.LoginRateOff {
		f.loginLimiter = newLimiterSet(float64(cfg.LoginRatePerIP)/60, cfg.LoginRatePerIP)
	}
	if !cfg.AnonymousRateOff {
		f.anonLimiter = newLimiterSet(float64(cfg.AnonymousRatePerIP)/60, cfg.AnonymousRatePerIP)
	}
	if !cfg.RejectedTokenRateOff {
		f.tokenLimiter = newKeyedLimiter[netip.Addr](float64(cfg.RejectedTokenRatePerIP)/60, cfg.RejectedTokenRatePerIP)
	}
	f.resetByIP = newLimiterSet(float64(cfg.ResetRatePerIP)/3600, cfg.ResetRatePerIP)
	return f, nil
}

// Collectors are the flows' Prometheus series (sessions created,
// validated, rejected and revoked; failed sign-ins; resets;
// reauthentications; hijack signals; notifications), for a registry.
func (f *Flows) Collectors() []prometheus.Collector { return f.metrics.collectors() }

// Now is the flows' clock: the session Manager's.
func (f *Flows) Now() time.Time { return f.sessions.Now() }

// AuditEnabled reports whether a security-event trail is kept.
func (f *Flows) AuditEnabled() bool { return f.audit.Enabled() }

// ClientSideOn reports whether client-side sessions are configured.
func (f *Flows) ClientSideOn() bool { return f.clientSide != nil }

// Client is what the flows know of the client of a request: its address
// (the peer, or what a trusted proxy said) and its User-Agent.
type Client struct {
	Addr      netip.Addr
	UserAgent string
}

// IP is the client's address as text.
func (c Client) IP() string { return c.Addr.String() }

// Caller is the session a request authenticated with.
type Caller struct {
	Session *sessiond.Session
	// Token is the token presented: the session token, or for a
	// client-side caller the access token.
	Token string
	// ClientSide says the token is a client-side access token: a change
	// of token gives the session a new refresh chain.
	ClientSide bool
}

// auditContext is ctx carrying c for the audit trail.
func (f *Flows) auditContext(ctx context.Context, c Client) context.Context {
	if !f.audit.Enabled() || !c.Addr.IsValid() { // no client: an administrator's action
		return ctx
	}
	if ac := audit.ClientFrom(ctx); ac.IP != "" {
		return ctx
	}
	return audit.WithClient(ctx, audit.NewClient(c.IP(), c.UserAgent))
}

// describe is c for a message: from ctx when it carries one.
func describe(ctx context.Context, c Client) audit.Client {
	if ac := audit.ClientFrom(ctx); ac.IP != "" {
		return ac
	}
	return audit.NewClient(c.IP(), c.UserAgent)
}

// goBackground runs fn after the request, with a deadline of its own. When
// too many are running it runs nothing, logs and reports false, so a flood
// of requests cannot pile up goroutines.
func (f *Flows) goBackground(ctx context.Context, fn func(context.Context)) bool {
	select {
	case f.background <- struct{}{}:
	default:
		f.log.WarnContext(ctx, "background work dropped: too many in flight")
		return false
	}
	go func() {
		defer func() { <-f.background }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		fn(ctx)
	}()
	return true
}

// Wait blocks until background work (the address checks of hijack.go)
// finishes or ctx ends.
func (f *Flows) Wait(ctx context.Context) {
	for range cap(f.background) {
		select {
		case f.background <- struct{}{}:
		case <-ctx.Done():
			return
		}
	}
}

// rfc3339 formats t for a message's data.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
