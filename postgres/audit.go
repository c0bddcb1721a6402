package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessiond/sessiond/audit"
)

// Audit is an audit.Store in the Store's database (table audit_events,
// migration 00003). Get it with Store.Audit; it shares the Store's pool
// and timeout and is closed with it.
type Audit struct{ s *Store }

var _ audit.Store = (*Audit)(nil)

// Audit returns the audit trail kept in the same database (and schema).
func (s *Store) Audit() *Audit { return &Audit{s: s} }

// auditDeleteBatch is how many events one DELETE of DeleteBefore removes,
// so that a large sweep holds its row locks briefly and each statement
// stays well within the store's timeout.
const auditDeleteBatch = 1000

// The statements of Audit.
const (
	qRecordEvent = `INSERT INTO audit_events
		(id, user_id, type, time, session_id, ip, browser, os, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

	// Missing bounds are -infinity and infinity, so the statement is the
	// same for every filter and the (user_id, time) index serves it.
	qListEvents = `SELECT id, user_id, type, time, session_id, ip, browser, os, data
		FROM audit_events
		WHERE user_id = $1
		AND ($2::text[] IS NULL OR type = ANY ($2::text[]))
		AND time >= $3 AND time < $4
		ORDER BY time DESC, seq DESC
		LIMIT $5`

	// A known device (the primary key is the user and device) inserts
	// nothing, and then has its last_seen moved on.
	qAddDevice = `INSERT INTO audit_devices (user_id, browser, os, last_seen)
		VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, browser, os) DO NOTHING`
	qSeeDevice = `UPDATE audit_devices SET last_seen = greatest(last_seen, $4)
		WHERE user_id = $1 AND browser = $2 AND os = $3`
	qDeleteDevices = `DELETE FROM audit_devices WHERE last_seen < $1`

	// Several nodes may sweep at once: each takes rows the others have not
	// locked.
	qDeleteEvents = `DELETE FROM audit_events WHERE seq IN (
		SELECT seq FROM audit_events WHERE time < $1
		ORDER BY time LIMIT $2
		FOR UPDATE SKIP LOCKED)`
)

// Record implements audit.Store.
func (a *Audit) Record(ctx context.Context, e *audit.Event) error {
	if err := e.Check(); err != nil {
		return err
	}
	var data []byte // nil: NULL
	if len(e.Data) > 0 {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("postgres: audit data: %w", err)
		}
		data = b
	}
	ctx, cancel := a.s.bound(ctx)
	defer cancel()
	_, err := a.s.pool.Exec(ctx, qRecordEvent,
		e.ID, e.UserID, e.Type, e.Time, text(e.SessionID),
		text(e.IP), text(e.Browser), text(e.OS), data)
	return wrap("record audit event", err)
}

// List implements audit.Store.
func (a *Audit) List(ctx context.Context, userID string, f audit.Filter) ([]audit.Event, error) {
	var types []string // nil: NULL, every type
	if len(f.Types) > 0 {
		types = f.Types
	}
	since := pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	if !f.Since.IsZero() {
		since = pgtype.Timestamptz{Time: f.Since, Valid: true}
	}
	until := pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	if !f.Until.IsZero() {
		until = pgtype.Timestamptz{Time: f.Until, Valid: true}
	}
	ctx, cancel := a.s.bound(ctx)
	defer cancel()
	rows, err := a.s.pool.Query(ctx, qListEvents, userID, types, since, until, f.EffectiveLimit())
	if err != nil {
		return nil, wrap("list audit events", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var (
			e                            audit.Event
			session, ip, browser, osName pgtype.Text
			data                         []byte
		)
		if err := rows.Scan(&e.ID, &e.UserID, &e.Type, &e.Time, &session, &ip, &browser, &osName, &data); err != nil {
			return nil, wrap("list audit events", err)
		}
		e.Time = e.Time.UTC()
		e.SessionID, e.IP, e.Browser, e.OS = session.String, ip.String, browser.String, osName.String
		if data != nil {
			if err := json.Unmarshal(data, &e.Data); err != nil {
				return nil, fmt.Errorf("postgres: audit event %s: data: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list audit events", err)
	}
	return out, nil
}

// AddDevice implements audit.Store: of concurrent inserts of one device,
// from any node, the primary key lets exactly one through.
func (a *Audit) AddDevice(ctx context.Context, userID, browser, os string, at time.Time) (bool, error) {
	ctx, cancel := a.s.bound(ctx)
	defer cancel()
	tag, err := a.s.pool.Exec(ctx, qAddDevice, userID, browser, os, at)
	if err != nil || tag.RowsAffected() == 1 {
		return err == nil, wrap("add device", err)
	}
	_, err = a.s.pool.Exec(ctx, qSeeDevice, userID, browser, os, at)
	return false, wrap("add device", err)
}

// DeleteBefore implements audit.Store, in batches of auditDeleteBatch, each
// a statement of its own with the store's timeout, after the devices last
// seen before t.
func (a *Audit) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	if err := a.deleteDevices(ctx, t); err != nil {
		return 0, wrap("delete audit devices", err)
	}
	total := 0
	for {
		n, err := a.deleteBatch(ctx, t)
		total += n
		if err != nil {
			return total, wrap("delete audit events", err)
		}
		if n < auditDeleteBatch {
			return total, nil
		}
	}
}

// deleteDevices forgets the devices last seen before t.
func (a *Audit) deleteDevices(ctx context.Context, t time.Time) error {
	ctx, cancel := a.s.bound(ctx)
	defer cancel()
	_, err := a.s.pool.Exec(ctx, qDeleteDevices, t)
	return err
}

func (a *Audit) deleteBatch(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel := a.s.bound(ctx)
	defer cancel()
	tag, err := a.s.pool.Exec(ctx, qDeleteEvents, t, auditDeleteBatch)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}
