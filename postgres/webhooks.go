package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessiond/sessiond/webhook"
)

var _ webhook.Queue = outbox{}

// Two outboxes share the code below: webhook_outbox, whose lifecycle
// events are written by the triggers of migration 00009, and
// notify_outbox (00015), the queue of security notifications that sessiond
// writes itself (Store.Notifications). The methods are the dispatchers'
// bookkeeping. Several nodes may dispatch at once: a claim skips the rows
// another holds locked, and its lease keeps them from other claims
// afterwards.

const (
	// The CTE is MATERIALIZED so that its LIMIT is evaluated once: an IN
	// subquery may be rescanned and return more rows. TABLE is replaced
	// by the outbox's table.
	qClaimWebhooks = `WITH due AS MATERIALIZED (
			SELECT seq FROM TABLE
			WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1
			ORDER BY seq LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE TABLE AS w SET next_attempt_at = $3
		FROM due WHERE w.seq = due.seq
		RETURNING w.seq, w.id, w.type, w.data, w.created_at, w.attempts`
	qWebhookDelivered = `UPDATE TABLE
		SET delivered_at = $2, attempts = attempts + 1, last_error = ''
		WHERE id = $1 AND delivered_at IS NULL`
	qQueueDelivered = `DELETE FROM TABLE WHERE id = $1`
	qWebhookFailed  = `UPDATE TABLE
		SET attempts = attempts + 1, next_attempt_at = $2, dead_at = $3, last_error = $4 WIPE
		WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL`
	qWebhookDeliveries = `SELECT id, type, data, created_at, attempts, next_attempt_at, delivered_at, dead_at, last_error
		FROM TABLE %s ORDER BY seq DESC LIMIT $1`
	qPruneWebhooks = `DELETE FROM TABLE WHERE delivered_at < $1 OR dead_at < $1`
	qEnqueue       = `INSERT INTO TABLE (id, type, data, created_at) VALUES ($1, $2, $3, $4)`
)

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

// q is query with the outbox's table.
func (o outbox) q(query string) string {
	wipe := ""
	if o.queue {
		wipe = `, data = CASE WHEN $3::timestamptz IS NULL THEN data ELSE '{}'::jsonb END`
	}
	return strings.NewReplacer("TABLE", o.table, "WIPE", wipe).Replace(query)
}

func wrapWebhook(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// SetWebhooksEnabled turns the lifecycle triggers on or off; the queue is
// always on.
func (o outbox) SetWebhooksEnabled(ctx context.Context, on bool) error {
	if o.queue {
		return ctx.Err()
	}
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	_, err := o.s.pool.Exec(ctx, `UPDATE webhook_state SET enabled = $1 WHERE id = 1`, on)
	return wrapWebhook("set webhooks enabled", err)
}

// Enqueue implements webhook.Queue.
func (o outbox) Enqueue(ctx context.Context, e webhook.Event) error {
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	_, err := o.s.pool.Exec(ctx, o.q(qEnqueue), e.ID, e.Type, []byte(e.Data), e.Time)
	return wrapWebhook("enqueue", err)
}

// ClaimWebhookEvents claims due events, skipping those another node holds.
func (o outbox) ClaimWebhookEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]webhook.Event, error) {
	if limit <= 0 {
		return nil, ctx.Err()
	}
	type row struct {
		seq int64
		e   webhook.Event
	}
	var got []row
	err := o.s.run(ctx, func(ctx context.Context) error {
		got = got[:0]
		rows, err := o.s.pool.Query(ctx, o.q(qClaimWebhooks), now, limit, now.Add(lease))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.e.ID, &r.e.Type, &r.e.Data, &r.e.Time, &r.e.Attempts); err != nil {
				return err
			}
			r.e.Time = r.e.Time.UTC()
			got = append(got, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapWebhook("claim webhook events", err)
	}
	// Oldest first: RETURNING keeps no order.
	slices.SortFunc(got, func(a, b row) int { return int(a.seq - b.seq) })
	out := make([]webhook.Event, len(got))
	for i, r := range got {
		out[i] = r.e
	}
	return out, nil
}

// WebhookDelivered marks the event delivered, or deletes it from the queue.
func (o outbox) WebhookDelivered(ctx context.Context, id string, at time.Time) error {
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	var err error
	if o.queue {
		_, err = o.s.pool.Exec(ctx, o.q(qQueueDelivered), id)
	} else {
		_, err = o.s.pool.Exec(ctx, o.q(qWebhookDelivered), id, at)
	}
	return wrapWebhook("webhook delivered", err)
}

// WebhookFailed counts a failed attempt; a dead event of the queue loses
// its data.
func (o outbox) WebhookFailed(ctx context.Context, id string, at, next time.Time, dead bool, lastError string) error {
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	deadAt := pgtype.Timestamptz{Time: at, Valid: dead}
	_, err := o.s.pool.Exec(ctx, o.q(qWebhookFailed), id, next, deadAt, lastError)
	return wrapWebhook("webhook failed", err)
}

// WebhookDeliveries lists the outbox per f, the newest first.
func (o outbox) WebhookDeliveries(ctx context.Context, f webhook.Filter) ([]webhook.Delivery, error) {
	where, err := f.Where()
	if err != nil {
		return nil, fmt.Errorf("postgres: webhook deliveries: %w", err)
	}
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	rows, err := o.s.pool.Query(ctx, fmt.Sprintf(o.q(qWebhookDeliveries), where), f.EffectiveLimit())
	if err != nil {
		return nil, wrapWebhook("webhook deliveries", err)
	}
	defer rows.Close()
	out := []webhook.Delivery{}
	for rows.Next() {
		var (
			d                   webhook.Delivery
			next                pgtype.Timestamptz
			delivered, deadTime pgtype.Timestamptz
		)
		if err := rows.Scan(&d.ID, &d.Type, &d.Data, &d.Time, &d.Attempts, &next, &delivered, &deadTime, &d.LastError); err != nil {
			return nil, wrapWebhook("webhook deliveries", err)
		}
		d.Time = d.Time.UTC()
		switch {
		case delivered.Valid:
			d.Status, d.DeliveredAt = webhook.StatusDelivered, delivered.Time.UTC()
		case deadTime.Valid:
			d.Status, d.DeadAt = webhook.StatusDead, deadTime.Time.UTC()
		default:
			d.Status = webhook.StatusPending
			if next.Valid && next.InfinityModifier == pgtype.Finite {
				d.NextAttemptAt = next.Time.UTC()
			}
		}
		out = append(out, d)
	}
	return out, wrapWebhook("webhook deliveries", rows.Err())
}

// PruneWebhookEvents deletes delivered and dead events older than before.
func (o outbox) PruneWebhookEvents(ctx context.Context, before time.Time) (int, error) {
	ctx, cancel := o.s.bound(ctx)
	defer cancel()
	tag, err := o.s.pool.Exec(ctx, o.q(qPruneWebhooks), before)
	if err != nil {
		return 0, wrapWebhook("prune webhook events", err)
	}
	return int(tag.RowsAffected()), nil
}
