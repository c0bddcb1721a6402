package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sessiond/sessiond/webhook"
)

var _ webhook.Store = (*Store)(nil)

// The outbox's events are written by the triggers of migration 00009; the
// methods below are the dispatcher's bookkeeping.

func wrapWebhook(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// SetWebhooksEnabled implements webhook.Store.
func (s *Store) SetWebhooksEnabled(ctx context.Context, on bool) error {
	_, err := s.w.ExecContext(ctx, `UPDATE webhook_state SET enabled = ?1 WHERE id = 1`, on)
	return wrapWebhook("set webhooks enabled", err)
}

// ClaimWebhookEvents implements webhook.Store: one UPDATE ... RETURNING on
// the writer, which is exclusive, so two claims never return one event.
func (s *Store) ClaimWebhookEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]webhook.Event, error) {
	if limit <= 0 {
		return nil, ctx.Err()
	}
	rows, err := s.w.QueryContext(ctx, `UPDATE webhook_outbox SET next_attempt_at = ?3
		WHERE seq IN (
			SELECT seq FROM webhook_outbox
			WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= ?1
			ORDER BY seq LIMIT ?2)
		RETURNING seq, id, type, data, created_at, attempts`,
		micros(now), limit, micros(now.Add(lease)))
	if err != nil {
		return nil, wrapWebhook("claim webhook events", err)
	}
	defer rows.Close()
	type row struct {
		seq int64
		e   webhook.Event
	}
	var got []row
	for rows.Next() {
		var r row
		var data string
		if err := rows.Scan(&r.seq, &r.e.ID, &r.e.Type, &data, microsDest{&r.e.Time}, &r.e.Attempts); err != nil {
			return nil, wrapWebhook("claim webhook events", err)
		}
		r.e.Data = json.RawMessage(data)
		got = append(got, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapWebhook("claim webhook events", err)
	}
	slices.SortFunc(got, func(a, b row) int { return int(a.seq - b.seq) })
	out := make([]webhook.Event, len(got))
	for i, r := range got {
		out[i] = r.e
	}
	return out, nil
}

// WebhookDelivered implements webhook.Store.
func (s *Store) WebhookDelivered(ctx context.Context, id string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE webhook_outbox
		SET delivered_at = ?2, attempts = attempts + 1, last_error = ''
		WHERE id = ?1 AND delivered_at IS NULL`, id, micros(at))
	return wrapWebhook("webhook delivered", err)
}

// WebhookFailed implements webhook.Store.
func (s *Store) WebhookFailed(ctx context.Context, id string, at, next time.Time, dead bool, lastError string) error {
	var deadAt any
	if dead {
		deadAt = micros(at)
	}
	_, err := s.w.ExecContext(ctx, `UPDATE webhook_outbox
		SET attempts = attempts + 1, next_attempt_at = ?2, dead_at = ?3, last_error = ?4
		WHERE id = ?1 AND delivered_at IS NULL AND dead_at IS NULL`, id, micros(next), deadAt, lastError)
	return wrapWebhook("webhook failed", err)
}

// WebhookDeliveries implements webhook.Store.
func (s *Store) WebhookDeliveries(ctx context.Context, f webhook.Filter) ([]webhook.Delivery, error) {
	where, err := f.Where()
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhook deliveries: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, type, data, created_at, attempts, next_attempt_at,
		delivered_at, dead_at, last_error FROM webhook_outbox `+where+` ORDER BY seq DESC LIMIT ?1`, f.EffectiveLimit())
	if err != nil {
		return nil, wrapWebhook("webhook deliveries", err)
	}
	defer rows.Close()
	out := []webhook.Delivery{}
	for rows.Next() {
		var d webhook.Delivery
		var data string
		if err := rows.Scan(&d.ID, &d.Type, &data, microsDest{&d.Time}, &d.Attempts, microsDest{&d.NextAttemptAt},
			microsDest{&d.DeliveredAt}, microsDest{&d.DeadAt}, &d.LastError); err != nil {
			return nil, wrapWebhook("webhook deliveries", err)
		}
		d.Data = json.RawMessage(data)
		d.Status = webhook.StatusPending
		switch {
		case !d.DeliveredAt.IsZero():
			d.Status, d.NextAttemptAt = webhook.StatusDelivered, time.Time{}
		case !d.DeadAt.IsZero():
			d.Status, d.NextAttemptAt = webhook.StatusDead, time.Time{}
		}
		out = append(out, d)
	}
	return out, wrapWebhook("webhook deliveries", rows.Err())
}

// PruneWebhookEvents implements webhook.Store.
func (s *Store) PruneWebhookEvents(ctx context.Context, before time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM webhook_outbox
		WHERE delivered_at < ?1 OR dead_at < ?1`, micros(before))
	if err != nil {
		return 0, wrapWebhook("prune webhook events", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrapWebhook("prune webhook events", err)
}
