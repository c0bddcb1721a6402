package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/flows"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/notify"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/webhook"
)

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func parseSameSite(s string) (http.SameSite, error) {
	switch strings.ToLower(s) {
	case "lax":
		return http.SameSiteLaxMode, nil
	case "strict":
		return http.SameSiteStrictMode, nil
	case "none":
		return http.SameSiteNoneMode, nil
	}
	return 0, fmt.Errorf("--cookie-samesite must be lax, strict or none, got %q", s)
}

func (c *config) cookie() sessionhttp.Cookie {
	ss, _ := parseSameSite(c.CookieSameSite)
	return sessionhttp.Cookie{Name: c.CookieName, Domain: c.CookieDomain, Insecure: !c.CookieSecure, SameSite: ss}
}

func (c *config) logger(w io.Writer) *slog.Logger {
	lvl, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func (c *config) policy() sessiond.Policy {
	return sessiond.Policy{
		IdleTimeout:           c.IdleTimeout,
		AbsoluteTimeout:       c.AbsoluteTimeout,
		RememberMeIdleTimeout: c.RememberMeIdleTimeout,
		RememberMeLifetime:    c.RememberMeLifetime,
		TouchInterval:         c.TouchInterval,
		MaxSessionsPerUser:    c.MaxSessionsPerUser,
		ReauthWindow:          c.ReauthWindow,
		MaxValueBytes:         c.MaxValueBytes,
		MaxDataBytes:          c.MaxDataBytes,
		MaxAnonymousDataBytes: min(c.MaxAnonymousDataBytes, c.MaxDataBytes),
	}
}

func (c *config) accountConfig() account.Config {
	return account.Config{
		PasswordMinLength:  c.PasswordMinLength,
		LockoutThreshold:   c.LockoutThreshold,
		LockoutOff:         c.LockoutThreshold == 0, // the flag's documented "0: off"
		LockoutDuration:    c.LockoutDuration,
		LockoutMaxDuration: c.LockoutMaxDuration,
		ResetTokenTTL:      c.ResetTokenTTL,
		EmailChangeTTL:     c.EmailChangeTTL,
		HashParams: account.HashParams{
			Memory:      uint32(c.Argon2Memory),
			Time:        uint32(c.Argon2Time),
			Parallelism: uint8(c.Argon2Parallelism),
		},
		HashConcurrency: c.HashConcurrency,
		HashStormShare:  c.HashStormShare,
	}
}

func (c *config) flowsConfig() flows.Config {
	return flows.Config{
		LoginRatePerIP:      c.LoginRatePerIP,
		LoginRateOff:        c.LoginRatePerIP == 0, // the flag's documented "0: off"
		AnonymousRatePerIP:  c.AnonymousRatePerIP,
		AnonymousRateOff:    c.AnonymousRatePerIP == 0,
		ResetRatePerIP:      c.ResetRatePerIP,
		ResetRatePerAccount: c.ResetRatePerAccount,
		PublicURL:           c.PublicURL,

		DisableHijackDetection: !c.HijackDetection,
		RejectedTokenRatePerIP: c.RejectedTokenRatePerIP,
		RejectedTokenRateOff:   c.RejectedTokenRatePerIP == 0,
	}
}

func (c *config) serverConfig() server.Config {
	proxies, _ := c.proxies() // checked with the rest of the configuration
	return server.Config{
		Cookie:         c.cookie(),
		TrustedOrigins: splitList(c.TrustedOrigins),
		TrustedProxies: proxies,
		MaxBodyBytes:   c.MaxBodyBytes,
		HSTS:           c.HSTS || c.TLSCert != "",
		AdminKey:       c.adminKey,
		Pprof:          c.AdminPprof,
	}
}

// app is a wired sessiond: stores, rules and the HTTP layer.
type app struct {
	cfg      *config
	log      *slog.Logger
	backend  *backend
	sessions *sessiond.Manager
	accounts *account.Service
	flows    *flows.Flows
	server   *server.Server
	keyring  *accesstoken.Keyring // nil: client-side sessions off
	webhooks *webhook.Dispatcher  // nil: no lifecycle webhooks
	notify   *webhook.Dispatcher  // delivers the queued notifications
}

func newApp(ctx context.Context, c *config, log *slog.Logger, getenv func(string) string) (*app, error) {
	b, err := openBackend(ctx, c, log)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: c, log: log, backend: b}
	fail := func(err error) (*app, error) {
		_ = b.close()
		return nil, err
	}
	var mopts []sessiond.Option
	if b.cacheable && c.CacheSize > 0 {
		mopts = append(mopts, sessiond.WithCache(sessiond.CacheConfig{Size: c.CacheSize, MaxAge: c.CacheMaxAge}))
	}
	if c.CacheSize > 0 {
		// Refused tokens stay refused on every backend: no invalidation needed.
		mopts = append(mopts, sessiond.WithRejectedCache(0))
	}
	if a.sessions, err = sessiond.NewManager(b.sessions, c.policy(), mopts...); err != nil {
		return fail(err)
	}
	// A lock goes to the audit trail and, once the server is wired below,
	// to the user as an account_locked notification.
	recordLock := a.auditRecorder().LockObserver()
	onLock := func(ctx context.Context, userID string, until time.Time) {
		recordLock(ctx, userID, until)
		if a.flows != nil {
			a.flows.AccountLocked(ctx, userID, until)
		}
	}
	if a.accounts, err = account.NewService(b.accounts, c.accountConfig(), account.WithLogger(log),
		account.WithUserCache(c.CacheSize, c.CacheMaxAge),
		account.WithLockObserver(onLock)); err != nil {
		return fail(err)
	}
	var notifier notify.Notifier = notify.Outbox{Dir: c.NotifyOutbox}
	if c.NotifyWebhook != "" {
		secret, err := c.webhookSecret(getenv)
		if err != nil {
			return fail(err)
		}
		notifier = notify.Webhook{URL: c.NotifyWebhook, Secret: secret}
	}
	// The flows write each notification into the queue in the database
	// before they answer; the dispatcher delivers it through notifier.
	queue, err := a.notificationQueue()
	if err != nil {
		return fail(err)
	}
	a.notify = &webhook.Dispatcher{Store: queue.Queue, Deliver: queue.Deliver(notifier), Name: "notification",
		MaxAttempts: c.NotifyMaxAttempts, MinBackoff: c.NotifyRetryMin, MaxBackoff: c.NotifyRetryMax, Log: log}
	queue.Queued = a.notify.Wake
	clientSide, err := a.clientSide(ctx)
	if err != nil {
		return fail(err)
	}
	if c.WebhookURL != "" {
		secret, err := c.lifecycleWebhookSecret(getenv)
		if err != nil {
			return fail(err)
		}
		a.webhooks = &webhook.Dispatcher{Store: b.webhooks, URL: c.WebhookURL, Secret: secret,
			MaxAttempts: c.WebhookMaxAttempts, MinBackoff: c.WebhookRetryMin, MaxBackoff: c.WebhookRetryMax,
			Retention: c.WebhookRetention, Log: log}
	}
	// The database writes lifecycle events while a webhook is configured,
	// from before the first request on. Every node of a database must have
	// the same webhook settings: the last to start decides.
	if b.webhooks != nil {
		if err := b.webhooks.SetWebhooksEnabled(ctx, a.webhooks != nil); err != nil {
			return fail(fmt.Errorf("lifecycle webhook outbox: %w", err))
		}
	}
	a.flows, err = flows.New(c.flowsConfig(), flows.Deps{
		Sessions:   a.sessions,
		Accounts:   a.accounts,
		Notifier:   queue,
		Audit:      b.audit,
		Logger:     log,
		ClientSide: clientSide,
	})
	if err != nil {
		return fail(err)
	}
	reg := server.NewRegistry()
	reg.MustRegister(b.circuitCollectors()...)
	a.server, err = server.New(c.serverConfig(), server.Deps{
		Flows:    a.flows,
		Sessions: a.sessions,
		Accounts: a.accounts,
		Ready:    b.ping,
		Logger:   log,
		Registry: reg,
		Audit:    b.audit,
		Webhooks: a.webhooks,

		Collectors: a.notify.Collectors(),
	})
	if err != nil {
		return fail(err)
	}
	if err := a.mountPages(); err != nil {
		return fail(err)
	}
	return a, nil
}

// startProcs is GOMAXPROCS as the process started (the CPUs it may use).
var startProcs = runtime.GOMAXPROCS(0)

func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c, _, err := loadConfig("sessiond serve", args, getenv, stderr)
	if err != nil {
		return usageErr(err)
	}
	log := c.logger(stderr)
	if c.HashConcurrency == 0 {
		c.HashConcurrency = max(1, startProcs/2) // account.DefaultHashConcurrency before the change below
	}
	if getenv("GOMAXPROCS") == "" {
		// Password hashes run on processors of their own: a hash holds
		// its P for its whole computation, and without the extra ones a
		// login storm would leave validations fewer Ps than CPUs (the
		// kernel still shares the CPUs; --hash-storm-share bounds what
		// hashing takes of them).
		runtime.GOMAXPROCS(startProcs + c.HashConcurrency)
	}
	if getenv("GOGC") == "" {
		// sessiond's live heap is small (a few MiB plus the caches) and
		// every request allocates: at Go's default of 100 collections come
		// so often that a who-am-I costs 10-20% more CPU.
		debug.SetGCPercent(c.GCPercent)
	}
	a, err := newApp(ctx, c, log, getenv)
	if err != nil {
		return err
	}
	defer func() {
		if err := a.backend.close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()

	var tlsCfg *tls.Config
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %v", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			TLSConfig:         tlsCfg,
			ReadHeaderTimeout: c.ReadHeaderTimeout,
			ReadTimeout:       c.ReadTimeout,
			WriteTimeout:      c.WriteTimeout,
			IdleTimeout:       c.IdleConnTimeout,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	public, admin := newServer(a.server.Public()), newServer(a.server.Admin())
	pubLn, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen: %v", err)
	}
	adminLn, err := net.Listen("tcp", c.AdminListen)
	if err != nil {
		pubLn.Close()
		return fmt.Errorf("--admin-listen: %v", err)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
	}{{public, pubLn}, {admin, adminLn}} {
		wg.Go(func() {
			var err error
			if tlsCfg != nil {
				err = p.srv.ServeTLS(p.ln, "", "")
			} else {
				err = p.srv.Serve(p.ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		})
	}
	a.runAuditRetention(runCtx, &wg)
	wg.Go(func() {
		_ = a.sessions.RunTouches(runCtx, 100*time.Millisecond, func(err error) { log.Warn("sliding expiry", "err", err) })
	})
	wg.Go(func() {
		if err := a.notify.Run(runCtx); err != nil && runCtx.Err() == nil {
			log.Error("notifications stopped", "err", err)
		}
	})
	if a.webhooks != nil {
		wg.Go(func() {
			if err := a.webhooks.Run(runCtx); err != nil && runCtx.Err() == nil {
				log.Error("lifecycle webhooks stopped", "err", err)
			}
		})
		if c.SessionStore != "" && c.SessionStore != c.Database {
			log.Warn("lifecycle webhooks: sessions live in --session-store, so only user events are written (session events need sessions in the database)")
		}
	}
	if a.backend.changes != nil {
		wg.Go(func() {
			// Revocations on other nodes reach this node's cache here.
			_ = a.backend.changes(runCtx, a.sessions.Invalidate)
		})
	}
	if a.keyring != nil {
		wg.Go(func() {
			_ = a.keyring.Run(runCtx, c.KeyReloadInterval, c.AccessTokenTTL, c.ClockSkew, func(err error) { log.Error("signing keys", "err", err) })
		})
	}
	wg.Go(func() {
		_ = a.sessions.RunSweeper(runCtx, c.SweepInterval, func(err error) { log.Error("sweeping expired sessions", "err", err) })
	})
	if c.adminKey == "" {
		log.Warn("no admin key configured: the admin API refuses every call (set SESSIOND_ADMIN_KEY or --admin-key-file)")
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
	}
	log.Info("sessiond serving", "version", version, "public", scheme+"://"+pubLn.Addr().String(),
		"admin", scheme+"://"+adminLn.Addr().String(), "database", redactURL(c.Database))

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing in-flight requests", "timeout", c.ShutdownTimeout)
	case serveErr = <-errc:
		log.Error("listener failed", "err", serveErr)
	}
	shutdownCtx, done := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer done()
	for _, srv := range []*http.Server{public, admin} {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			log.Error("shutdown", "err", err)
		}
	}
	a.flows.Wait(shutdownCtx)
	cancel()
	wg.Wait()
	log.Info("sessiond stopped")
	return serveErr
}

// usageErr keeps flag parse errors (already printed) from being printed
// twice.
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if strings.HasPrefix(err.Error(), "flag provided but not defined") || strings.HasPrefix(err.Error(), "invalid value") || strings.HasPrefix(err.Error(), "invalid boolean") {
		return errUsage
	}
	return fmt.Errorf("invalid configuration: %w", err)
}

var _ = time.Second
