package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessiond/sessiond"
)

var _ sessiond.Store = (*Store)(nil)

// The columns of a session as scanSession reads them.
const sessionCols = `id, token_hash, user_id, remember_me, created_at, last_seen_at,
	idle_expires_at, absolute_expires_at, user_agent, browser, os, ip,
	revoked_at, revoke_reason, authenticated_at, transport, rotated_at, prev_token_hash`

// The statements of the sessiond.Store methods. "Active at now" is
// revoked_at IS NULL AND expires_at > now, expires_at being the generated
// earlier deadline. pgx prepares each statement once per connection.
const (
	qByHash = `SELECT ` + sessionCols + ` FROM sessions WHERE token_hash = $1`
	qByID   = `SELECT ` + sessionCols + ` FROM sessions WHERE id = $1`

	// The order is the index's: sessions_user_last_seen.
	qListByUser = `SELECT ` + sessionCols + ` FROM sessions
		WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
		ORDER BY last_seen_at DESC, id DESC`

	// One statement, so the activity check and the data are one snapshot.
	// A session without data gives one row with a NULL key.
	qData = `SELECT d.key, d.value FROM sessions AS s
		LEFT JOIN session_data AS d ON d.session_id = s.id
		WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2`

	qInsert = `INSERT INTO sessions (` + sessionCols + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`

	qInsertData = `INSERT INTO session_data (session_id, key, value)
		SELECT $1::text, d.key, d.value FROM unnest($2::text[], $3::bytea[]) AS d (key, value)`

	// Serialises the Creates of one user (in one schema) until the end of
	// the transaction, so that the per-user limit holds however many logins
	// run at once: each one's eviction sees the sessions the others
	// inserted. Row locks could not do it, the new rows not being there to
	// lock.
	qLockUser = `SELECT pg_advisory_xact_lock(
		hashtext('sessiond.user:' || coalesce(current_schema(), '')), hashtext($1))`

	// The user's revocation generation; RevokeByUser advances it, under
	// qLockUser, in the transaction that revokes.
	qGeneration     = `SELECT coalesce((SELECT generation FROM user_generations WHERE user_id = $1), 0)`
	qBumpGeneration = `INSERT INTO user_generations (user_id, generation) VALUES ($1, 1)
		ON CONFLICT (user_id) DO UPDATE SET generation = user_generations.generation + 1`
	// Fails with codeCredentialsChanged unless the user's generation is
	// still $2. It runs after qLockUser: no RevokeByUser of the user can
	// commit between it and the end of the Create.
	qExpectGeneration = `SELECT sessiond_expect_generation($1, $2)`

	// Locks one session's row until the end of the transaction: the
	// statements after it, each with a snapshot of its own, see every
	// change committed before, and no other writer of the session's data
	// can commit in between.
	qLockSession = `SELECT FROM sessions WHERE id = $1 FOR UPDATE`

	// Revokes the active session $3 and, when $5, copies its data to the
	// new session $4; the new session's own data, written before, wins on
	// equal keys.
	qReplace = `WITH changed AS (
		UPDATE sessions SET revoked_at = $1, revoke_reason = $2
		WHERE id = $3 AND revoked_at IS NULL AND expires_at > $1
		RETURNING id),
	carried AS (
		INSERT INTO session_data (session_id, key, value)
		SELECT $4::text, d.key, d.value FROM session_data AS d JOIN changed ON d.session_id = changed.id
		WHERE $5::boolean
		ON CONFLICT (session_id, key) DO NOTHING)` + notifyChanged

	// Keeps the $4 most recently used active sessions of user $2 other than
	// the new one, $3, and revokes the rest; ties on last_seen_at go by id,
	// as in qListByUser. The outer WHERE is checked again on a row that a
	// concurrent writer changed first.
	qEvict = `WITH changed AS (
		UPDATE sessions SET revoked_at = $1, revoke_reason = $5
		WHERE id IN (
			SELECT id FROM sessions
			WHERE user_id = $2 AND id <> $3 AND revoked_at IS NULL AND expires_at > $1
			ORDER BY last_seen_at DESC, id DESC
			OFFSET $4)
		AND revoked_at IS NULL AND expires_at > $1
		RETURNING id)` + notifyChanged

	qRevoke = `WITH changed AS (
		UPDATE sessions SET revoked_at = $1, revoke_reason = $2
		WHERE id = $3 AND revoked_at IS NULL AND expires_at > $1
		RETURNING id)` + notifyChanged

	qRevokeUser = `WITH changed AS (
		UPDATE sessions SET revoked_at = $1, revoke_reason = $2
		WHERE user_id = $3 AND id <> $4 AND revoked_at IS NULL AND expires_at > $1
		RETURNING id)` + notifyChanged

	// A compare-and-swap: of concurrent rotations from one old hash, the
	// first to lock the row wins; the others re-check token_hash on the new
	// row version and change nothing.
	qRotate = `WITH changed AS (
		UPDATE sessions SET token_hash = $3, prev_token_hash = $2, rotated_at = $4
		WHERE id = $1 AND token_hash = $2 AND revoked_at IS NULL AND expires_at > $4
		RETURNING id)` + notifyChanged

	// qRotate that also records the proof of the password, at $4, and
	// starts a new chain (no predecessor).
	qReauth = `WITH changed AS (
		UPDATE sessions SET token_hash = $3, authenticated_at = $4, rotated_at = $4, prev_token_hash = NULL
		WHERE id = $1 AND token_hash = $2 AND revoked_at IS NULL AND expires_at > $4
		RETURNING id)` + notifyChanged

	// Times only move forward; a row with nothing to change is not written.
	// A session that had expired by the touch's last_seen_at stays expired:
	// a late touch must not revive it. The ids of one statement are
	// distinct (see touchRounds).
	qTouch = `UPDATE sessions AS s
		SET last_seen_at = greatest(s.last_seen_at, t.last_seen_at),
			idle_expires_at = greatest(s.idle_expires_at, t.idle_expires_at)
		FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS t (id, last_seen_at, idle_expires_at)
		WHERE s.id = t.id AND s.revoked_at IS NULL AND s.expires_at > t.last_seen_at
		AND (s.last_seen_at < t.last_seen_at OR s.idle_expires_at < t.idle_expires_at)`

	// Sets key $2 of the active session $1 when the data's size afterwards
	// is at most $4, and says whether the session is active and whether it
	// wrote. It runs after qLockSession, so the size counts every write
	// committed before, and none can commit until this one does.
	qSetData = `WITH s AS (
		SELECT id FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $5::timestamptz),
	written AS (
		INSERT INTO session_data (session_id, key, value)
		SELECT s.id, $2::text, $3::bytea FROM s
		WHERE (SELECT coalesce(sum(octet_length(d.key) + octet_length(d.value)), 0)
			FROM session_data AS d WHERE d.session_id = $1 AND d.key <> $2::text)
			+ octet_length($2::text) + octet_length($3::bytea) <= $4::bigint
		ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value
		RETURNING 1)
	SELECT EXISTS (SELECT FROM s), EXISTS (SELECT FROM written)`

	qDeleteData = `WITH s AS (
		SELECT id FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > $3),
	deleted AS (
		DELETE FROM session_data WHERE session_id = (SELECT id FROM s) AND key = $2)
	SELECT EXISTS (SELECT FROM s)`

	// The oldest deadlines first, through sessions_expires_at. Rows another
	// sweeper (or a writer) holds are skipped, not waited for: the next
	// sweep takes them. The outer WHERE is checked again on a row that a
	// touch moved on meanwhile. The data goes with the sessions (ON DELETE
	// CASCADE).
	qDeleteExpired = `WITH changed AS (
		DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE expires_at <= $1
			ORDER BY expires_at LIMIT $2
			FOR UPDATE SKIP LOCKED)
		AND expires_at <= $1
		RETURNING id)` + notifyChanged
)

func wrap(op string, err error) error {
	if err == nil || errors.Is(err, sessiond.ErrNotFound) || errors.Is(err, sessiond.ErrDataTooLarge) ||
		errors.Is(err, sessiond.ErrCredentialsChanged) {
		return err
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// text is s, or NULL for "".
func text(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// timestamptz is t, or NULL for the zero time.
func timestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// nullHash is h, or NULL for the zero hash.
func nullHash(h sessiond.TokenHash) []byte {
	if h == (sessiond.TokenHash{}) {
		return nil
	}
	return h[:]
}

// blob is v, never nil: pgx sends a nil []byte as NULL.
func blob(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// Create implements sessiond.Store: one pipelined batch, which PostgreSQL
// runs as one transaction. The session's CreatedAt is "now" for the
// activity of the replaced session and of the user's other sessions. The
// new session is inserted first; the eviction leaves it out. Session ids
// are at most 255 bytes (the Manager's are 32), so that every change
// notification has room for one.
func (s *Store) Create(ctx context.Context, sess *sessiond.Session, opts sessiond.CreateOptions) error {
	now := sess.CreatedAt
	limit := opts.MaxPerUser > 0 && sess.UserID != ""
	expect := opts.ExpectGeneration != nil && sess.UserID != ""
	replace := opts.Replace != "" && opts.Replace != sess.ID
	var keys []string
	var values [][]byte
	for k, v := range sess.Data {
		keys = append(keys, k)
		values = append(values, blob(v))
	}
	err := s.run(ctx, func(ctx context.Context) error {
		b := new(pgx.Batch)
		if limit || expect {
			b.Queue(qLockUser, sess.UserID)
		}
		if expect {
			b.Queue(qExpectGeneration, sess.UserID, int64(*opts.ExpectGeneration))
		}
		if replace && opts.CarryData {
			b.Queue(qLockSession, opts.Replace) // its data is complete when copied
		}
		b.Queue(qInsert,
			sess.ID, sess.TokenHash[:], text(sess.UserID), sess.RememberMe,
			sess.CreatedAt, sess.LastSeenAt, sess.IdleExpiresAt, sess.AbsoluteExpiresAt,
			sess.Device.UserAgent, sess.Device.Browser, sess.Device.OS, sess.IP,
			timestamptz(sess.RevokedAt), sess.RevokeReason, timestamptz(sess.AuthenticatedAt), sess.Transport,
			timestamptz(sess.RotatedAt), nullHash(sess.PrevTokenHash))
		if len(keys) > 0 {
			b.Queue(qInsertData, sess.ID, keys, values)
		}
		if replace {
			b.Queue(qReplace, now, opts.ReplaceReason, opts.Replace, sess.ID, opts.CarryData)
		}
		if limit {
			b.Queue(qEvict, now, sess.UserID, sess.ID, opts.MaxPerUser-1, sessiond.ReasonLimit)
		}
		return s.pool.SendBatch(ctx, b).Close()
	})
	if isCode(err, codeCredentialsChanged) {
		err = sessiond.ErrCredentialsChanged
	}
	return wrap("create", err)
}

// ByTokenHash implements sessiond.Store: one lookup of the token_hash
// index.
func (s *Store) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sess, err := scanSession(s.pool.QueryRow(ctx, qByHash, h[:]))
	return sess, wrap("by token hash", err)
}

// ByID implements sessiond.Store.
func (s *Store) ByID(ctx context.Context, id string) (*sessiond.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sess, err := scanSession(s.pool.QueryRow(ctx, qByID, id))
	return sess, wrap("by id", err)
}

// ListByUser implements sessiond.Store.
func (s *Store) ListByUser(ctx context.Context, userID string, now time.Time) ([]*sessiond.Session, error) {
	if userID == "" {
		return []*sessiond.Session{}, nil // anonymous sessions belong to nobody
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, qListByUser, userID, now)
	if err != nil {
		return nil, wrap("list by user", err)
	}
	defer rows.Close()
	out := []*sessiond.Session{}
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, wrap("list by user", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list by user", err)
	}
	return out, nil
}

// touchRound is one statement of a Touch: distinct ids, as arrays.
type touchRound struct {
	ids        []string
	seen, idle []time.Time
}

// touchRounds splits touches into rounds of distinct ids, in order: the
// n-th touch of an id goes to round n. Applied one after the other, the
// rounds give each id's touches in the order of the batch, as if applied
// one by one; most batches are one round.
func touchRounds(touches []sessiond.Touch) []touchRound {
	var rounds []touchRound
	var count map[string]int
	if len(touches) > 1 {
		count = make(map[string]int, len(touches))
	}
	for _, t := range touches {
		n := count[t.ID] // a nil map reads as empty
		if count != nil {
			count[t.ID] = n + 1
		}
		if n == len(rounds) {
			rounds = append(rounds, touchRound{})
		}
		r := &rounds[n]
		r.ids = append(r.ids, t.ID)
		r.seen = append(r.seen, t.LastSeenAt)
		r.idle = append(r.idle, t.IdleExpiresAt)
	}
	return rounds
}

// Touch implements sessiond.Store: one UPDATE over the arrays of the batch
// (or one per round of repeated ids, pipelined as one transaction). A
// session whose earlier deadline is at or before a touch's LastSeenAt is
// left as it is.
func (s *Store) Touch(ctx context.Context, touches []sessiond.Touch) error {
	if len(touches) == 0 {
		return ctx.Err()
	}
	rounds := touchRounds(touches)
	err := s.run(ctx, func(ctx context.Context) error {
		if len(rounds) == 1 {
			_, err := s.pool.Exec(ctx, qTouch, rounds[0].ids, rounds[0].seen, rounds[0].idle)
			return err
		}
		b := new(pgx.Batch)
		for _, r := range rounds {
			b.Queue(qTouch, r.ids, r.seen, r.idle)
		}
		return s.pool.SendBatch(ctx, b).Close()
	})
	return wrap("touch", err)
}

// change runs one statement that ends with notifyChanged and returns how
// many sessions it changed.
func (s *Store) change(ctx context.Context, query string, args ...any) (int, error) {
	var n, notes int64
	err := s.run(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, query, args...).Scan(&n, &notes)
	})
	return int(n), err
}

// Rotate implements sessiond.Store: one compare-and-swap UPDATE.
func (s *Store) Rotate(ctx context.Context, id string, old, new sessiond.TokenHash, now time.Time) error {
	n, err := s.change(ctx, qRotate, id, old[:], new[:], now)
	if err == nil && n == 0 {
		err = sessiond.ErrNotFound
	}
	return wrap("rotate", err)
}

// Reauthenticate implements sessiond.Store: one compare-and-swap UPDATE.
func (s *Store) Reauthenticate(ctx context.Context, id string, old, new sessiond.TokenHash, at time.Time) error {
	n, err := s.change(ctx, qReauth, id, old[:], new[:], at)
	if err == nil && n == 0 {
		err = sessiond.ErrNotFound
	}
	return wrap("reauthenticate", err)
}

// Revoke implements sessiond.Store: one UPDATE.
func (s *Store) Revoke(ctx context.Context, id string, now time.Time, reason string) error {
	n, err := s.change(ctx, qRevoke, now, reason, id)
	if err == nil && n == 0 {
		err = sessiond.ErrNotFound
	}
	return wrap("revoke", err)
}

// RevokeByUser implements sessiond.Store: one pipelined batch, one
// transaction. It takes the user's lock (qLockUser) as a Create that
// checks the generation does, advances the generation, then revokes: the
// UPDATE's snapshot, taken after the lock, sees every Create that got the
// lock first.
func (s *Store) RevokeByUser(ctx context.Context, userID, exceptID string, now time.Time, reason string) (int, error) {
	if userID == "" {
		return 0, ctx.Err()
	}
	var n, notes int64
	err := s.run(ctx, func(ctx context.Context) error {
		b := new(pgx.Batch)
		b.Queue(qLockUser, userID)
		b.Queue(qBumpGeneration, userID)
		b.Queue(qRevokeUser, now, reason, userID, exceptID).QueryRow(func(row pgx.Row) error {
			return row.Scan(&n, &notes)
		})
		return s.pool.SendBatch(ctx, b).Close()
	})
	return int(n), wrap("revoke by user", err)
}

// UserGeneration implements sessiond.Store.
func (s *Store) UserGeneration(ctx context.Context, userID string) (uint64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var g int64
	err := s.pool.QueryRow(ctx, qGeneration, userID).Scan(&g)
	return uint64(g), wrap("user generation", err)
}

// Data implements sessiond.Store.
func (s *Store) Data(ctx context.Context, id string, now time.Time) (map[string][]byte, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, qData, id, now)
	if err != nil {
		return nil, wrap("data", err)
	}
	defer rows.Close()
	var out map[string][]byte
	for rows.Next() {
		var (
			k pgtype.Text
			v []byte
		)
		if err := rows.Scan(&k, &v); err != nil {
			return nil, wrap("data", err)
		}
		if out == nil {
			out = make(map[string][]byte)
		}
		if k.Valid {
			out[k.String] = blob(v) // pgx copies out of its buffer
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("data", err)
	}
	if out == nil {
		return nil, sessiond.ErrNotFound
	}
	return out, nil
}

// SetData implements sessiond.Store: a batch of two statements, one
// transaction. The first locks the session's row, so SetData calls on one
// session queue there and each one's size check counts the others' writes.
func (s *Store) SetData(ctx context.Context, id, key string, value []byte, maxBytes int, now time.Time) error {
	var active, written bool
	err := s.run(ctx, func(ctx context.Context) error {
		b := new(pgx.Batch)
		b.Queue(qLockSession, id)
		b.Queue(qSetData, id, key, blob(value), maxBytes, now).QueryRow(func(row pgx.Row) error {
			return row.Scan(&active, &written)
		})
		return s.pool.SendBatch(ctx, b).Close()
	})
	switch {
	case err != nil:
	case !active:
		err = sessiond.ErrNotFound
	case !written:
		err = sessiond.ErrDataTooLarge
	}
	return wrap("set data", err)
}

// DeleteData implements sessiond.Store: one statement.
func (s *Store) DeleteData(ctx context.Context, id, key string, now time.Time) error {
	var active bool
	err := s.run(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, qDeleteData, id, key, now).Scan(&active)
	})
	if err == nil && !active {
		err = sessiond.ErrNotFound
	}
	return wrap("delete data", err)
}

// DeleteExpired implements sessiond.Store: one DELETE of at most limit
// sessions, the oldest deadlines first.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, ctx.Err()
	}
	n, err := s.change(ctx, qDeleteExpired, now, limit)
	return n, wrap("delete expired", err)
}

// scanSession reads one row of sessionCols. pgx.ErrNoRows becomes
// ErrNotFound. Times come back in UTC.
func scanSession(row pgx.Row) (*sessiond.Session, error) {
	s := new(sessiond.Session)
	var (
		user    pgtype.Text
		revoked pgtype.Timestamptz
		authed  pgtype.Timestamptz
		rotated pgtype.Timestamptz
		prev    []byte
	)
	err := row.Scan(&s.ID, hashDest{&s.TokenHash}, &user, &s.RememberMe,
		&s.CreatedAt, &s.LastSeenAt, &s.IdleExpiresAt, &s.AbsoluteExpiresAt,
		&s.Device.UserAgent, &s.Device.Browser, &s.Device.OS, &s.IP,
		&revoked, &s.RevokeReason, &authed, &s.Transport, &rotated, &prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sessiond.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	s.UserID = user.String
	s.CreatedAt = s.CreatedAt.UTC()
	s.LastSeenAt = s.LastSeenAt.UTC()
	s.IdleExpiresAt = s.IdleExpiresAt.UTC()
	s.AbsoluteExpiresAt = s.AbsoluteExpiresAt.UTC()
	if revoked.Valid {
		s.RevokedAt = revoked.Time.UTC()
	}
	if authed.Valid {
		s.AuthenticatedAt = authed.Time.UTC()
	}
	if rotated.Valid {
		s.RotatedAt = rotated.Time.UTC()
	}
	switch len(prev) {
	case 0: // NULL
	case len(s.PrevTokenHash):
		copy(s.PrevTokenHash[:], prev)
	default:
		return nil, fmt.Errorf("prev_token_hash: want %d bytes, got %d", len(s.PrevTokenHash), len(prev))
	}
	return s, nil
}

// hashDest scans a 32-byte bytea into a TokenHash without an intermediate
// slice (pgtype.BytesScanner).
type hashDest struct{ h *sessiond.TokenHash }

func (d hashDest) ScanBytes(b []byte) error {
	if len(b) != len(d.h) {
		return fmt.Errorf("token_hash: want %d bytes, got %d", len(d.h), len(b))
	}
	copy(d.h[:], b)
	return nil
}
