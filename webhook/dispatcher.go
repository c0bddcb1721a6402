package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond/notify"
)

// SignatureHeader and EventIDHeader are set on every delivery. The
// signature is notify's: "t=<unix seconds>,v1=<hex HMAC-SHA256 of
// "<t>.<body>">"; notify.Verify checks it.
const (
	SignatureHeader = notify.SignatureHeader
	EventIDHeader   = "Sessiond-Event-Id"
)

// Dispatcher defaults, as documented on the fields.
const (
	DefaultMaxAttempts  = 20
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 10 * time.Minute
	DefaultPollInterval = time.Second
	DefaultBatch        = 100
	DefaultWorkers      = 4
	DefaultTimeout      = 10 * time.Second
	DefaultRetention    = 7 * 24 * time.Hour
)

// Dispatcher delivers the outbox's events to URL, or with Deliver. The
// zero value of every optional field is its documented default. Run it
// with Run.
type Dispatcher struct {
	// Store is the outbox. Required.
	Store Store
	// URL receives the POSTs. Required unless Deliver is set.
	URL string
	// Secret signs them. Required unless Deliver is set.
	Secret []byte
	// Deliver, when set, delivers each event instead of a signed POST to
	// URL (the notification queue: Notifications.Deliver); a non-nil
	// error is a failed attempt. Default nil.
	Deliver func(ctx context.Context, e Event) error
	// Name names the outbox in metrics (sessiond_<Name>_deliveries_total,
	// ...) and logs. Default "webhook".
	Name string

	// MaxAttempts is how many failed deliveries dead-letter an event.
	// Default 20, which with the default backoff spans about two hours.
	MaxAttempts int
	// MinBackoff is the wait after the first failure; each further one
	// doubles it, up to MaxBackoff, and the actual wait is drawn at random
	// between half and all of it (jitter), so that a receiver that comes
	// back is not hit by every event at once. Defaults 1s and 10m.
	MinBackoff, MaxBackoff time.Duration
	// PollInterval is how often the outbox is read when it had nothing
	// due. Default 1s.
	PollInterval time.Duration
	// Batch is how many events one read claims; Workers how many POSTs
	// run at once. Defaults 100 and 4.
	Batch, Workers int
	// Timeout bounds one delivery (a POST, or a call of Deliver).
	// Default 10s.
	Timeout time.Duration
	// Retention is how long delivered and dead events stay in the outbox
	// (for the admin API) before they are deleted. Default 7 days.
	Retention time.Duration
	// Client makes the POSTs. Default a client without redirects.
	Client *http.Client
	// Log receives failures. Default slog.Default().
	Log *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time

	once    sync.Once
	metrics *metrics
	wake    chan struct{}
}

type metrics struct {
	deliveries *prometheus.CounterVec // outcome: delivered, failed, dead
	latency    prometheus.Histogram
	lag        prometheus.Histogram
}

func (d *Dispatcher) init() {
	d.once.Do(func() {
		def := func(p *time.Duration, v time.Duration) {
			if *p <= 0 {
				*p = v
			}
		}
		if d.MaxAttempts <= 0 {
			d.MaxAttempts = DefaultMaxAttempts
		}
		def(&d.MinBackoff, DefaultMinBackoff)
		def(&d.MaxBackoff, DefaultMaxBackoff)
		d.MaxBackoff = max(d.MaxBackoff, d.MinBackoff)
		def(&d.PollInterval, DefaultPollInterval)
		def(&d.Timeout, DefaultTimeout)
		def(&d.Retention, DefaultRetention)
		if d.Batch <= 0 {
			d.Batch = DefaultBatch
		}
		if d.Workers <= 0 {
			d.Workers = DefaultWorkers
		}
		if d.Client == nil {
			d.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
		if d.Log == nil {
			d.Log = slog.Default()
		}
		if d.Now == nil {
			d.Now = time.Now
		}
		if d.Name == "" {
			d.Name = "webhook"
		}
		d.wake = make(chan struct{}, 1)
		d.metrics = &metrics{
			deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sessiond_" + d.Name + "_deliveries_total",
				Help: "Delivery attempts from the " + d.Name + " outbox, by outcome (delivered, failed: to be retried, dead: given up)."}, []string{"outcome"}),
			latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessiond_" + d.Name + "_delivery_duration_seconds",
				Help: "Time of one delivery from the " + d.Name + " outbox.", Buckets: prometheus.DefBuckets}),
			lag: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sessiond_" + d.Name + "_delivery_lag_seconds",
				Help:    "Time from an event to its successful delivery.",
				Buckets: []float64{.01, .05, .1, .5, 1, 5, 30, 60, 300, 900, 3600, 7200}}),
		}
	})
}

// Collectors returns the Dispatcher's metrics, for a Prometheus registry.
func (d *Dispatcher) Collectors() []prometheus.Collector {
	d.init()
	return []prometheus.Collector{d.metrics.deliveries, d.metrics.latency, d.metrics.lag}
}

// Wake makes a running Dispatcher read its outbox now rather than at the
// next PollInterval: call it after writing an event that is due at once
// (Notifications.Queued). It never blocks.
func (d *Dispatcher) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Outbox returns the Dispatcher's store, for the admin API.
func (d *Dispatcher) Outbox() Store { return d.Store }

// Run turns the outbox on and delivers its events until ctx ends; it
// prunes old delivered and dead events hourly. It returns ctx.Err(), or an
// error at once when the Dispatcher lacks Store, or both Deliver and URL
// and Secret, or the outbox cannot be turned on.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.Store == nil || (d.Deliver == nil && (d.URL == "" || len(d.Secret) == 0)) {
		return errors.New("webhook: Dispatcher needs Store, and Deliver or URL and Secret")
	}
	d.init()
	if err := d.Store.SetWebhooksEnabled(ctx, true); err != nil {
		return fmt.Errorf("webhook: enabling the outbox: %w", err)
	}
	lease := d.Timeout*time.Duration(1+d.Batch/d.Workers) + time.Minute
	var pruned time.Time
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-d.wake:
			t.Stop()
		}
		now := d.Now()
		if now.Sub(pruned) > time.Hour {
			if _, err := d.Store.PruneWebhookEvents(ctx, now.Add(-d.Retention)); err != nil && ctx.Err() == nil {
				d.Log.WarnContext(ctx, "pruning the "+d.Name+" outbox", "err", err)
			}
			pruned = now
		}
		evs, err := d.Store.ClaimWebhookEvents(ctx, now, d.Batch, lease)
		if err != nil && ctx.Err() == nil {
			d.Log.WarnContext(ctx, "reading the "+d.Name+" outbox", "err", err)
		}
		d.deliverAll(ctx, evs)
		wait := d.PollInterval
		if len(evs) == d.Batch {
			wait = 0 // more may be due
		}
		t.Reset(wait)
	}
}

// deliverAll delivers evs with up to Workers POSTs at once.
func (d *Dispatcher) deliverAll(ctx context.Context, evs []Event) {
	work := make(chan Event)
	var wg sync.WaitGroup
	for range min(d.Workers, len(evs)) {
		wg.Go(func() {
			for e := range work {
				d.deliver(ctx, e)
			}
		})
	}
	for _, e := range evs {
		work <- e
	}
	close(work)
	wg.Wait()
}

// deliver POSTs one event and records the outcome.
func (d *Dispatcher) deliver(ctx context.Context, e Event) {
	start := time.Now()
	err := d.send(ctx, e)
	d.metrics.latency.Observe(time.Since(start).Seconds())
	now := d.Now()
	// The bookkeeping outlives a shutdown that cut the POST short: an
	// event whose outcome is not recorded is sent again after its lease.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err == nil {
		d.metrics.deliveries.WithLabelValues("delivered").Inc()
		d.metrics.lag.Observe(now.Sub(e.Time).Seconds())
		if err := d.Store.WebhookDelivered(bctx, e.ID, now); err != nil {
			d.Log.WarnContext(ctx, "recording a "+d.Name+" delivery (it will be sent again)", "event_id", e.ID, "err", err)
		}
		return
	}
	attempts := e.Attempts + 1
	dead := attempts >= d.MaxAttempts
	next := now.Add(d.backoff(attempts))
	if dead {
		d.metrics.deliveries.WithLabelValues("dead").Inc()
		d.Log.ErrorContext(ctx, d.Name+" event dead-lettered", "event_id", e.ID, "type", e.Type, "attempts", attempts, "err", err)
	} else {
		d.metrics.deliveries.WithLabelValues("failed").Inc()
		d.Log.WarnContext(ctx, d.Name+" delivery failed", "event_id", e.ID, "type", e.Type, "attempts", attempts, "retry_at", next, "err", err)
	}
	if err := d.Store.WebhookFailed(bctx, e.ID, now, next, dead, truncate(err.Error(), 500)); err != nil {
		d.Log.WarnContext(ctx, "recording a failed "+d.Name+" delivery", "event_id", e.ID, "err", err)
	}
}

// backoff is the wait after the n-th failed attempt (n >= 1): MinBackoff
// doubled n-1 times, at most MaxBackoff, of which a random half to all.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.MinBackoff
	for i := 1; i < n && b < d.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.MaxBackoff)
	return b/2 + time.Duration(mrand.Int64N(int64(b/2)+1))
}

// send delivers one event within Timeout, with Deliver or a POST.
func (d *Dispatcher) send(ctx context.Context, e Event) error {
	ctx, cancel := context.WithTimeout(ctx, d.Timeout)
	defer cancel()
	if d.Deliver != nil {
		return d.Deliver(ctx, e)
	}
	return d.post(ctx, e)
}

// post sends one event; any answer but 2xx is an error.
func (d *Dispatcher) post(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sessiond-webhook")
	req.Header.Set(EventIDHeader, e.ID)
	req.Header.Set(SignatureHeader, notify.Sign(d.Secret, d.Now(), body))
	resp, err := d.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("receiver answered %s", resp.Status)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
