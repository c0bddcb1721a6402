package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sessiond/sessiond/audit"
)

// Audit is an audit.Store in the Store's SQLite file (table audit_events,
// migration 00003). Get it with Store.Audit; it shares the Store's
// connections and is closed with it.
type Audit struct{ s *Store }

var _ audit.Store = (*Audit)(nil)

// Audit returns the audit trail kept in the same database file.
func (s *Store) Audit() *Audit { return &Audit{s: s} }

// deleteBatch is how many events one DELETE of DeleteBefore removes, so
// that a large sweep does not hold the write lock for long.
const deleteBatch = 1000

// Record implements audit.Store.
func (a *Audit) Record(ctx context.Context, e *audit.Event) error {
	if err := e.Check(); err != nil {
		return err
	}
	var data any
	if len(e.Data) > 0 {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("sqlite: audit data: %w", err)
		}
		data = string(b)
	}
	_, err := a.s.w.ExecContext(ctx, `INSERT INTO audit_events
		(id, user_id, type, time, session_id, ip, browser, os, data)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)`,
		e.ID, e.UserID, e.Type, micros(e.Time), nullString(e.SessionID),
		nullString(e.IP), nullString(e.Browser), nullString(e.OS), data)
	return wrap("record audit event", err)
}

// List implements audit.Store. The types travel as one JSON array, so the
// statement is the same for any number of them.
func (a *Audit) List(ctx context.Context, userID string, f audit.Filter) ([]audit.Event, error) {
	var typesArg any
	if len(f.Types) > 0 {
		b, _ := json.Marshal(f.Types)
		typesArg = string(b)
	}
	rows, err := a.s.r.QueryContext(ctx, `SELECT id, user_id, type, time, session_id, ip, browser, os, data
		FROM audit_events
		WHERE user_id = ?1
		AND (?2 IS NULL OR type IN (SELECT value FROM json_each(?2)))
		AND (?3 IS NULL OR time >= ?3)
		AND (?4 IS NULL OR time < ?4)
		ORDER BY time DESC, seq DESC
		LIMIT ?5`,
		userID, typesArg, nullMicros(f.Since), nullMicros(f.Until), f.EffectiveLimit())
	if err != nil {
		return nil, wrap("list audit events", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var (
			e    audit.Event
			data sql.NullString
		)
		if err := rows.Scan(&e.ID, &e.UserID, &e.Type, microsDest{&e.Time},
			textDest{&e.SessionID}, textDest{&e.IP}, textDest{&e.Browser}, textDest{&e.OS}, &data); err != nil {
			return nil, wrap("list audit events", err)
		}
		if data.Valid {
			if err := json.Unmarshal([]byte(data.String), &e.Data); err != nil {
				return nil, fmt.Errorf("sqlite: audit event %s: data: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	return out, wrap("list audit events", rows.Err())
}

// AddDevice implements audit.Store: an INSERT that does nothing for a
// known device (the primary key is the user and device) says whether it
// was new; a known one's last_seen is moved on.
func (a *Audit) AddDevice(ctx context.Context, userID, browser, os string, at time.Time) (bool, error) {
	res, err := a.s.w.ExecContext(ctx, `INSERT INTO audit_devices (user_id, browser, os, last_seen)
		VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id, browser, os) DO NOTHING`,
		userID, browser, os, micros(at))
	if err != nil {
		return false, wrap("add device", err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 1 {
		return n == 1, wrap("add device", err)
	}
	_, err = a.s.w.ExecContext(ctx, `UPDATE audit_devices SET last_seen = max(last_seen, ?4)
		WHERE user_id = ?1 AND browser = ?2 AND os = ?3`, userID, browser, os, micros(at))
	return false, wrap("add device", err)
}

// DeleteBefore implements audit.Store, in batches of deleteBatch, after
// the devices last seen before t.
func (a *Audit) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	if _, err := a.s.w.ExecContext(ctx, `DELETE FROM audit_devices WHERE last_seen < ?1`, micros(t)); err != nil {
		return 0, wrap("delete audit devices", err)
	}
	total := 0
	for {
		res, err := a.s.w.ExecContext(ctx, `DELETE FROM audit_events WHERE seq IN (
			SELECT seq FROM audit_events WHERE time < ?1 LIMIT ?2)`, micros(t), deleteBatch)
		if err != nil {
			return total, wrap("delete audit events", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, wrap("delete audit events", err)
		}
		total += int(n)
		if n < deleteBatch {
			return total, nil
		}
	}
}
