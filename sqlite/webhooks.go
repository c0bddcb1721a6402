package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/sessiond/sessiond/webhook"
)

var _ webhook.Queue = outbox{}

// Two outboxes share the code below: webhook_outbox, whose lifecycle
// events are written by the triggers of migration 00009, and
// notify_outbox (00015), the queue of security notifications that sessiond
// writes itself (Store.Notifications). The methods are the dispatchers'
// bookkeeping.

// outbox is one outbox table. queue marks notify_outbox: always on,
// delivered rows deleted, dead rows without their data.
type outbox struct {
	s     *Store
	table string
	queue bool
}

// Webhooks returns the outbox of lifecycle webhooks, for a
// webhook.Dispatcher.
func (s *Store) Webhooks() webhook.Store { return outbox{s: s, table: "webhook_outbox"} }

// Notifications returns the queue of security notifications, in the same
// database (webhook.Notifications writes into it).
func (s *Store) Notifications() webhook.Queue {
	return outbox{s: s, table: "notify_outbox", queue: true}
}

func wrapWebhook(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// SetWebhooksEnabled turns the lifecycle triggers on or off; the queue is
// always on.
func (o outbox) SetWebhooksEnabled(ctx context.Context, on bool) error {
	if o.queue {
		return ctx.Err()
	}
	_, err := o.s.w.ExecContext(ctx, `UPDATE webhook_state SET enabled = ?1 WHERE id = 1`, on)
	return wrapWebhook("set webhooks enabled", err)
}

// Enqueue implements webhook.Queue.
func (o outbox) Enqueue(ctx context.Context, e webhook.Event) error {
	_, err := o.s.w.ExecContext(ctx, `INSERT INTO `+o.table+` (id, type, data, created_at) VALUES (?1, ?2, ?3, ?4)`,
		e.ID, e.Type, string(e.Data), micros(e.Time))
	return wrapWebhook("enqueue", err)
}

// ClaimWebhookEvents is one UPDATE ... RETURNING on the writer, which is
// exclusive, so two claims never return one event.
func (o outbox) ClaimWebhookEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]webhook.Event, error) {
	if limit <= 0 {
		return nil, ctx.Err()
	}
	rows, err := o.s.w.QueryContext(ctx, `UPDATE `+o.table+` SET next_attempt_at = ?3
		WHERE seq IN (
			SELECT seq FROM `+o.table+`
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

// WebhookDelivered marks the event delivered, or deletes it from the queue.
func (o outbox) WebhookDelivered(ctx context.Context, id string, at time.Time) error {
	var err error
	if o.queue {
		_, err = o.s.w.ExecContext(ctx, `DELETE FROM `+o.table+` WHERE id = ?1`, id)
	} else {
		_, err = o.s.w.ExecContext(ctx, `UPDATE `+o.table+` SET delivered_at = ?2, attempts = attempts + 1, last_error = ''
			WHERE id = ?1 AND delivered_at IS NULL`, id, micros(at))
	}
	return wrapWebhook("webhook delivered", err)
}

// WebhookFailed counts a failed attempt; a dead event of the queue loses
// its data.
func (o outbox) WebhookFailed(ctx context.Context, id string, at, next time.Time, dead bool, lastError string) error {
	var deadAt any
	if dead {
		deadAt = micros(at)
	}
	wipe := ""
	if o.queue {
		wipe = `, data = CASE WHEN ?3 IS NULL THEN data ELSE '{}' END`
	}
	_, err := o.s.w.ExecContext(ctx, `UPDATE `+o.table+`
		SET attempts = attempts + 1, next_attempt_at = ?2, dead_at = ?3, last_error = ?4`+wipe+`
		WHERE id = ?1 AND delivered_at IS NULL AND dead_at IS NULL`, id, micros(next), deadAt, lastError)
	return wrapWebhook("webhook failed", err)
}

// WebhookDeliveries lists the outbox per f, the newest first.
func (o outbox) WebhookDeliveries(ctx context.Context, f webhook.Filter) ([]webhook.Delivery, error) {
	where, err := f.Where()
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhook deliveries: %w", err)
	}
	rows, err := o.s.r.QueryContext(ctx, `SELECT id, type, data, created_at, attempts, next_attempt_at,
		delivered_at, dead_at, last_error FROM `+o.table+` `+where+` ORDER BY seq DESC LIMIT ?1`, f.EffectiveLimit())
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

// PruneWebhookEvents deletes delivered and dead events older than before.
func (o outbox) PruneWebhookEvents(ctx context.Context, before time.Time) (int, error) {
	res, err := o.s.w.ExecContext(ctx, `DELETE FROM `+o.table+`
		WHERE delivered_at < ?1 OR dead_at < ?1`, micros(before))
	if err != nil {
		return 0, wrapWebhook("prune webhook events", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrapWebhook("prune webhook events", err)
}
