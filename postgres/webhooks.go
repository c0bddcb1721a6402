package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessiond/sessiond/webhook"
)

var _ webhook.Store = (*Store)(nil)

// The outbox's events are written by the triggers of migration 00009; the
// methods below are the dispatchers' bookkeeping. Several nodes may
// dispatch at once: a claim skips the rows another holds locked, and its
// lease keeps them from other claims afterwards.

const (
	// The CTE is MATERIALIZED so that its LIMIT is evaluated once: an IN
	// subquery may be rescanned and return more rows.
	qClaimWebhooks = `WITH due AS MATERIALIZED (
			SELECT seq FROM webhook_outbox
			WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1
			ORDER BY seq LIMIT $2
			FOR UPDATE SKIP LOCKED)
		UPDATE webhook_outbox AS w SET next_attempt_at = $3
		FROM due WHERE w.seq = due.seq
		RETURNING w.seq, w.id, w.type, w.data, w.created_at, w.attempts`
	qWebhookDelivered = `UPDATE webhook_outbox
		SET delivered_at = $2, attempts = attempts + 1, last_error = ''
		WHERE id = $1 AND delivered_at IS NULL`
	qWebhookFailed = `UPDATE webhook_outbox
		SET attempts = attempts + 1, next_attempt_at = $2, dead_at = $3, last_error = $4
		WHERE id = $1 AND delivered_at IS NULL AND dead_at IS NULL`
	qWebhookDeliveries = `SELECT id, type, data, created_at, attempts, next_attempt_at, delivered_at, dead_at, last_error
		FROM webhook_outbox %s ORDER BY seq DESC LIMIT $1`
	qPruneWebhooks = `DELETE FROM webhook_outbox WHERE delivered_at < $1 OR dead_at < $1`
)

func wrapWebhook(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// SetWebhooksEnabled implements webhook.Store.
func (s *Store) SetWebhooksEnabled(ctx context.Context, on bool) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `UPDATE webhook_state SET enabled = $1 WHERE id = 1`, on)
	return wrapWebhook("set webhooks enabled", err)
}

// ClaimWebhookEvents implements webhook.Store.
func (s *Store) ClaimWebhookEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]webhook.Event, error) {
	if limit <= 0 {
		return nil, ctx.Err()
	}
	var out []webhook.Event
	err := s.run(ctx, func(ctx context.Context) error {
		out = out[:0]
		rows, err := s.pool.Query(ctx, qClaimWebhooks, now, limit, now.Add(lease))
		if err != nil {
			return err
		}
		defer rows.Close()
		type row struct {
			seq int64
			e   webhook.Event
		}
		var got []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.seq, &r.e.ID, &r.e.Type, &r.e.Data, &r.e.Time, &r.e.Attempts); err != nil {
				return err
			}
			r.e.Time = r.e.Time.UTC()
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for i := 1; i < len(got); i++ { // oldest first: RETURNING keeps no order
			for j := i; j > 0 && got[j].seq < got[j-1].seq; j-- {
				got[j], got[j-1] = got[j-1], got[j]
			}
		}
		for _, r := range got {
			out = append(out, r.e)
		}
		return nil
	})
	if err != nil {
		return nil, wrapWebhook("claim webhook events", err)
	}
	return out, nil
}

// WebhookDelivered implements webhook.Store.
func (s *Store) WebhookDelivered(ctx context.Context, id string, at time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, qWebhookDelivered, id, at)
	return wrapWebhook("webhook delivered", err)
}

// WebhookFailed implements webhook.Store.
func (s *Store) WebhookFailed(ctx context.Context, id string, at, next time.Time, dead bool, lastError string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	deadAt := pgtype.Timestamptz{Time: at, Valid: dead}
	_, err := s.pool.Exec(ctx, qWebhookFailed, id, next, deadAt, lastError)
	return wrapWebhook("webhook failed", err)
}

// WebhookDeliveries implements webhook.Store.
func (s *Store) WebhookDeliveries(ctx context.Context, f webhook.Filter) ([]webhook.Delivery, error) {
	where, err := f.Where()
	if err != nil {
		return nil, fmt.Errorf("postgres: webhook deliveries: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, fmt.Sprintf(qWebhookDeliveries, where), f.EffectiveLimit())
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

// PruneWebhookEvents implements webhook.Store.
func (s *Store) PruneWebhookEvents(ctx context.Context, before time.Time) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, qPruneWebhooks, before)
	if err != nil {
		return 0, wrapWebhook("prune webhook events", err)
	}
	return int(tag.RowsAffected()), nil
}
