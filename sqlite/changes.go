package sqlite

import (
	"context"
	"time"
)

// ListenInterval is how often Listen looks for changes.
const ListenInterval = 50 * time.Millisecond

// changesKept is how long the change log keeps a row.
const changesKept = 5 * time.Minute

// Listen calls fn with the ids of sessions revoked or rotated by any process
// using this database file (triggers log them in the same transaction),
// every ListenInterval, until ctx ends. It first calls fn(nil): anything may
// have changed before it started. It also prunes the log. A Manager's cache
// wired to it sees a revocation made by the CLI, or by another sessiond on
// the same file, within about ListenInterval.
func (s *Store) Listen(ctx context.Context, fn func(ids []string)) error {
	var last int64
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM session_changes`).Scan(&last); err != nil {
		return wrap("listen", err)
	}
	fn(nil)
	t := time.NewTicker(ListenInterval)
	defer t.Stop()
	lastPrune := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		ids, seq, err := s.changesSince(ctx, last)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Missed changes: everything cached may be stale.
			fn(nil)
			continue
		}
		if len(ids) > 0 {
			last = seq
			fn(ids)
		}
		if time.Since(lastPrune) > time.Minute {
			lastPrune = time.Now()
			_, _ = s.w.ExecContext(ctx, `DELETE FROM session_changes WHERE at < ?1`, time.Now().Add(-changesKept).UnixMicro())
		}
	}
}

func (s *Store) changesSince(ctx context.Context, after int64) ([]string, int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, session_id FROM session_changes WHERE seq > ?1 ORDER BY seq LIMIT 10000`, after)
	if err != nil {
		return nil, after, wrap("listen", err)
	}
	defer rows.Close()
	var ids []string
	last := after
	for rows.Next() {
		var id string
		if err := rows.Scan(&last, &id); err != nil {
			return nil, after, wrap("listen", err)
		}
		ids = append(ids, id)
	}
	return ids, last, wrap("listen", rows.Err())
}
