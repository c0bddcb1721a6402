package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Channel is the PostgreSQL notification channel on which stores announce
// changed sessions. The payload of each notification is a JSON array of
// session ids, at most maxPayload bytes; a change of many sessions comes as
// several notifications. Notifications are database-wide: stores in other
// schemas of the same database share the channel, so a listener may hear of
// ids it has never seen.
const Channel = "sessiond_sessions"

// maxPayload is the most a notification carries; PostgreSQL refuses
// payloads of 8000 bytes and more.
const maxPayload = 8000

// chunkBytes is the size of the ids' JSON (each with its ", " separator)
// after which a notification is full. A payload is less than chunkBytes
// plus one id's JSON with its separator: an id is at most 255 bytes (a
// CHECK of the sessions table), whose JSON is at most 6*255+2 bytes, so
// every payload is under 6000+1534 bytes, below maxPayload. It is text,
// being part of the SQL.
const chunkBytes = "6000"

// notifyChanged ends a statement whose data-modifying CTE "changed" returns
// the ids of the sessions it changed: it announces them on Channel, in
// chunks of at most maxPayload bytes, and the statement returns one row of
// the number of changed sessions and of notifications. NOTIFY takes effect
// at commit, with the change, or not at all.
//
// The CTE "notified" is MATERIALIZED and read by the main query, so
// PostgreSQL evaluates pg_notify for each chunk; the window sum numbers the
// chunks by the running size of the ids' JSON.
const notifyChanged = `,
notified AS MATERIALIZED (
	SELECT pg_notify('` + Channel + `', json_agg(c.id ORDER BY c.id)::text)
	FROM (
		SELECT id, sum(octet_length(to_json(id)::text) + 2) OVER (ORDER BY id) / ` + chunkBytes + ` AS chunk
		FROM changed) AS c
	GROUP BY c.chunk)
SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM notified)`

// Reconnection and liveness of Listen.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 10 * time.Second
	// listenIdleCheck is how long Listen waits for a notification before it
	// pings its connection, so that a connection lost without a word (a
	// network partition) is found and replaced.
	listenIdleCheck = 10 * time.Second
)

// Listen subscribes to the changes of every store on the database (through
// this Store or any other, on any node) and calls fn with the ids of the
// sessions each notification names: revoked, rotated, replaced, evicted or
// deleted. It holds one connection of its own, outside the pool, and
// returns only when ctx ends (with ctx.Err()) or the Store is closed (with
// nil).
//
// fn(nil) means "anything may have changed": Listen calls it each time it
// has subscribed, the first time included, since changes made while it was
// not subscribed are lost; and each time its connection fails or it fails
// to subscribe, since changes from then on go unannounced. A cache drops
// every entry then, so that a node that has lost its database (or just the
// notifications) stops answering from memory at once rather than after
// the cache's bound. When the connection fails, Listen logs it and
// reconnects with a growing backoff (up to 10s), or at once when the
// store's pool reaches the database again (so that a node whose database
// came back does not cache unannounced for long), pinging a quiet
// connection every 10s to find one that was lost without a word. fn is called from Listen's goroutine, one call at a
// time; while it runs, notifications wait.
func (s *Store) Listen(ctx context.Context, fn func(ids []string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closed, cancel)
	defer stop()

	backoff := listenMinBackoff
	for {
		start := time.Now()
		connected := s.nextConnect() // a pool connection from now on wakes the wait below
		err := s.listenOnce(ctx, fn)
		switch {
		case s.closed.Err() != nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		}
		fn(nil) // from now until subscribed again, changes go unannounced
		if time.Since(start) > listenMaxBackoff {
			backoff = listenMinBackoff // it worked for a while
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter, so that nodes do not reconnect in step
		s.logger.Warn("postgres: listen: not subscribed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			if s.closed.Err() != nil {
				return nil
			}
			return ctx.Err()
		case <-time.After(wait):
		case <-connected:
			s.logger.Info("postgres: listen: the database answers again; resubscribing")
		}
		backoff = min(backoff*2, listenMaxBackoff)
	}
}

// listenOnce connects, subscribes, calls fn(nil) and then fn for each
// notification until the connection fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context, fn func([]string)) error {
	cctx, cancel := s.bound(ctx)
	conn, err := pgx.ConnectConfig(cctx, s.listen)
	if err == nil {
		_, err = conn.Exec(cctx, `LISTEN `+pgx.Identifier{Channel}.Sanitize())
	}
	cancel()
	if conn != nil {
		defer func() {
			cctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			defer cancel()
			conn.Close(cctx)
		}()
	}
	if err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	fn(nil)
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdleCheck)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			ids, err := parsePayload(n.Payload)
			if err != nil {
				s.logger.Warn("postgres: listen: unreadable notification; dropping everything", "err", err)
			}
			fn(ids)
		case ctx.Err() != nil:
			return ctx.Err()
		case pgconn.Timeout(err) && !conn.IsClosed():
			// A quiet while: is the connection still there?
			pctx, cancel := s.bound(ctx)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		default:
			return fmt.Errorf("waiting for notifications: %w", err)
		}
	}
}

// parsePayload reads the JSON array of ids of a notification. An empty or
// unreadable payload gives nil: anything may have changed.
func parsePayload(p string) ([]string, error) {
	var ids []string
	if err := json.Unmarshal([]byte(p), &ids); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, errors.New("no ids")
	}
	return ids, nil
}
