package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/breaker"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/webhook"
)

// backend is what --database and --session-store open: the stores, and
// how to probe and close them.
type backend struct {
	sessions sessiond.Store
	accounts account.Store
	audit    audit.Store          // nil: no audit trail
	keys     accesstoken.KeyStore // nil: no client-side sessions
	webhooks webhook.Store        // the lifecycle webhooks' outbox
	notify   webhook.Queue        // the queue of security notifications
	ping     func(context.Context) error
	close    func() error
	// cacheable: the Manager may cache validated sessions (every change
	// goes through a Manager, or is announced by changes: SQLite's change
	// log, PostgreSQL's notifications, Redis's client-side caching
	// invalidations).
	cacheable bool
	// changes, when set, delivers the ids of sessions changed by other
	// nodes (nil ids: anything may have changed) until ctx ends.
	changes func(ctx context.Context, fn func(ids []string)) error
	// breakers are the circuit breakers in front of the network stores'
	// sessions (see package breaker), one per store, for the metrics.
	breakers []*breaker.Breaker
}

// withBreaker puts st behind a circuit breaker named name, so that once
// the store is known to be unreachable, validations fail closed (503) at
// once instead of each waiting for the store's timeout and retries.
func (b *backend) withBreaker(name string, st sessiond.Store, log *slog.Logger) sessiond.Store {
	br := breaker.New(breaker.Config{Name: name, Logger: log})
	b.breakers = append(b.breakers, br)
	return breaker.WrapStore(st, br)
}

// circuitCollectors are the metrics of the breakers: per store, its state
// (0 closed, 1 open, 2 half-open) and how many calls it refused.
func (b *backend) circuitCollectors() []prometheus.Collector {
	var cs []prometheus.Collector
	for _, br := range b.breakers {
		labels := prometheus.Labels{"store": br.Name()}
		cs = append(cs,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "sessiond_store_circuit_state",
				Help:        "State of the store's circuit breaker: 0 closed, 1 open (calls fail at once), 2 half-open (probing).",
				ConstLabels: labels}, func() float64 { return float64(br.State()) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sessiond_store_circuit_rejected_total",
				Help:        "Store calls refused at once by the store's open circuit breaker.",
				ConstLabels: labels}, func() float64 { return float64(br.Rejected()) }))
	}
	return cs
}

func openBackend(ctx context.Context, c *config, log *slog.Logger) (*backend, error) {
	kind, target, err := c.databaseTarget()
	if err != nil {
		return nil, err
	}
	b := &backend{}
	var closers []func() error
	var pings []func(context.Context) error
	switch kind {
	case dbSQLite:
		st, err := sqlite.Open(ctx, target, sqlite.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", c.Database, err)
		}
		b.sessions, b.accounts, b.audit, b.keys, b.webhooks = st, st, st.Audit(), st.Keys(), st.Webhooks()
		b.notify = st.Notifications()
		closers, pings = append(closers, st.Close), append(pings, st.Ping)
		b.cacheable, b.changes = true, st.Listen // the CLI or another process on the file
	case dbPostgres:
		st, err := postgres.Open(ctx, target, postgres.WithLogger(log))
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", redactURL(c.Database), err)
		}
		b.sessions, b.accounts, b.audit, b.keys, b.webhooks = st, st, st.Audit(), st.Keys(), st.Webhooks()
		b.notify = st.Notifications()
		closers, pings = append(closers, st.Close), append(pings, st.Ping)
		b.cacheable, b.changes = true, st.Listen
	}
	redisURL, err := c.sessionStoreTarget()
	if err != nil {
		return nil, err
	}
	if redisURL != "" {
		var ropts []redis.Option
		if c.CacheSize > 0 {
			// The Manager's cache sits above the client's: a copy the
			// Manager takes from the client's memory may already be
			// that old, so the client keeps copies for half the
			// Manager's bound, and no answer from memory is older than
			// 1.5 × --cache-max-age. Redis's invalidations drop both.
			ropts = append(ropts, redis.WithCacheTTL(max(c.CacheMaxAge/2, time.Millisecond)))
		}
		rs, err := redis.Open(ctx, redisURL, ropts...)
		if err != nil {
			for _, cl := range closers {
				_ = cl()
			}
			return nil, fmt.Errorf("opening %s: %w", redactURL(redisURL), err)
		}
		b.sessions = b.withBreaker("redis", rs, log)
		b.cacheable, b.changes = true, rs.Listen
		closers, pings = append(closers, rs.Close), append(pings, rs.Ping)
	} else if kind == dbPostgres {
		b.sessions = b.withBreaker("postgres", b.sessions, log)
	}
	b.ping = func(ctx context.Context) error {
		for _, p := range pings {
			if err := p(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	b.close = func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	return b, nil
}
