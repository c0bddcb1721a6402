package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sessiond/sessiond/webhook"
)

// Queue is an in-memory webhook.Queue, for tests and single-process
// programs: the queue of security notifications lives as long as the
// process. The zero value is ready to use.
type Queue struct {
	mu   sync.Mutex
	rows []*webhook.Delivery // oldest first
}

var _ webhook.Queue = (*Queue)(nil)

// Enqueue implements webhook.Queue.
func (q *Queue) Enqueue(ctx context.Context, e webhook.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if slices.ContainsFunc(q.rows, func(d *webhook.Delivery) bool { return d.ID == e.ID }) {
		return fmt.Errorf("memstore: enqueue: event %s is already queued", e.ID)
	}
	e.Data = slices.Clone(e.Data)
	e.Attempts = 0
	q.rows = append(q.rows, &webhook.Delivery{Event: e, Status: webhook.StatusPending})
	return nil
}

// SetWebhooksEnabled implements webhook.Store: the queue is always on.
func (q *Queue) SetWebhooksEnabled(ctx context.Context, _ bool) error { return ctx.Err() }

// ClaimWebhookEvents implements webhook.Store.
func (q *Queue) ClaimWebhookEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]webhook.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []webhook.Event
	for _, d := range q.rows {
		if len(out) == limit {
			break
		}
		if d.Status == webhook.StatusPending && !d.NextAttemptAt.After(now) {
			d.NextAttemptAt = now.Add(lease)
			e := d.Event
			e.Data = slices.Clone(e.Data)
			out = append(out, e)
		}
	}
	return out, nil
}

// WebhookDelivered implements webhook.Queue: the event is deleted.
func (q *Queue) WebhookDelivered(ctx context.Context, id string, _ time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.rows = slices.DeleteFunc(q.rows, func(d *webhook.Delivery) bool { return d.ID == id })
	return nil
}

// WebhookFailed implements webhook.Queue: a dead event loses its data.
func (q *Queue) WebhookFailed(ctx context.Context, id string, at, next time.Time, dead bool, lastError string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, d := range q.rows {
		if d.ID != id || d.Status != webhook.StatusPending {
			continue
		}
		d.Attempts++
		d.NextAttemptAt, d.LastError = next, lastError
		if dead {
			d.Status, d.DeadAt, d.NextAttemptAt, d.Data = webhook.StatusDead, at, time.Time{}, []byte("{}")
		}
	}
	return nil
}

// WebhookDeliveries implements webhook.Store.
func (q *Queue) WebhookDeliveries(ctx context.Context, f webhook.Filter) ([]webhook.Delivery, error) {
	if _, err := f.Where(); err != nil {
		return nil, fmt.Errorf("memstore: webhook deliveries: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	out := []webhook.Delivery{}
	for _, d := range slices.Backward(q.rows) {
		if len(out) == f.EffectiveLimit() {
			break
		}
		if f.Status == "" || f.Status == d.Status {
			c := *d
			c.Data = slices.Clone(d.Data)
			out = append(out, c)
		}
	}
	return out, nil
}

// PruneWebhookEvents implements webhook.Store: dead events older than
// before go (delivered ones are gone already).
func (q *Queue) PruneWebhookEvents(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.rows)
	q.rows = slices.DeleteFunc(q.rows, func(d *webhook.Delivery) bool {
		return d.Status == webhook.StatusDead && d.DeadAt.Before(before)
	})
	return n - len(q.rows), nil
}
