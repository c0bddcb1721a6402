package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sessiond/sessiond"
)

// Store is a sessiond.Store and an account.Store in one SQLite file. It is
// safe for concurrent use; Close it when done.
type Store struct {
	path string
	w    *sql.DB // one connection: every write goes through it
	r    *sql.DB // read-only connections: lookups

	// Read pool.
	byHash, byID, listByUser, data, generation *sql.Stmt
	// Write pool.
	insert, carryData, revoke, revokeLimit, revokeUser,
	touch, rotate, reauth, dataSize, upsertData, active, deleteData,
	deleteExpired, bumpGeneration, generationW *sql.Stmt

	accountStmts // accounts.go
}

var _ sessiond.Store = (*Store)(nil)

// The columns of a session as scanSession reads them.
const sessionCols = `id, token_hash, user_id, remember_me, created_at, last_seen_at,
	idle_expires_at, absolute_expires_at, user_agent, browser, os, ip,
	revoked_at, revoke_reason, authenticated_at, transport, rotated_at, prev_token_hash`

// stmt is a statement that Open prepares, and where it keeps it.
type stmt struct {
	dst   func(*Store) **sql.Stmt
	query string
}

const qGeneration = `SELECT coalesce((SELECT generation FROM user_generations WHERE user_id = ?1), 0)`

// "Active at now" is revoked_at IS NULL AND expires_at > now, expires_at
// being the generated earlier deadline.
var readStmts = []stmt{
	{func(s *Store) **sql.Stmt { return &s.byHash },
		`SELECT ` + sessionCols + ` FROM sessions WHERE token_hash = ?1`},
	{func(s *Store) **sql.Stmt { return &s.byID },
		`SELECT ` + sessionCols + ` FROM sessions WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.listByUser },
		`SELECT ` + sessionCols + ` FROM sessions
		WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
		ORDER BY last_seen_at DESC, id DESC`},
	// One statement, so the activity check and the data are one snapshot.
	// A session without data gives one row with a NULL key.
	{func(s *Store) **sql.Stmt { return &s.data },
		`SELECT d.key, d.value FROM sessions AS s
		LEFT JOIN session_data AS d ON d.session_id = s.id
		WHERE s.id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?2`},
	// A user without a row is at generation 0.
	{func(s *Store) **sql.Stmt { return &s.generation }, qGeneration},
}

var writeStmts = []stmt{
	{func(s *Store) **sql.Stmt { return &s.insert },
		`INSERT INTO sessions (` + sessionCols + `)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)`},
	// The new session's own data is written first and wins on equal keys.
	{func(s *Store) **sql.Stmt { return &s.carryData },
		`INSERT INTO session_data (session_id, key, value)
		SELECT ?1, key, value FROM session_data WHERE session_id = ?2
		ON CONFLICT (session_id, key) DO NOTHING`},
	{func(s *Store) **sql.Stmt { return &s.revoke },
		`UPDATE sessions SET revoked_at = ?1, revoke_reason = ?2
		WHERE id = ?3 AND revoked_at IS NULL AND expires_at > ?1`},
	// Keeps the ?3 most recently used active sessions of user ?2 and
	// revokes the rest; ties on last_seen_at go by id, as in listByUser.
	{func(s *Store) **sql.Stmt { return &s.revokeLimit },
		`UPDATE sessions SET revoked_at = ?1, revoke_reason = ?4
		WHERE id IN (
			SELECT id FROM sessions
			WHERE user_id = ?2 AND revoked_at IS NULL AND expires_at > ?1
			ORDER BY last_seen_at DESC, id DESC
			LIMIT -1 OFFSET ?3)`},
	{func(s *Store) **sql.Stmt { return &s.revokeUser },
		`UPDATE sessions SET revoked_at = ?1, revoke_reason = ?2
		WHERE user_id = ?3 AND id <> ?4 AND revoked_at IS NULL AND expires_at > ?1`},
	// Times only move forward; a row with nothing to change is not written.
	// A session that had expired by the touch's last_seen_at (?2) stays
	// expired: a late touch must not revive it.
	{func(s *Store) **sql.Stmt { return &s.touch },
		`UPDATE sessions
		SET last_seen_at = max(last_seen_at, ?2), idle_expires_at = max(idle_expires_at, ?3)
		WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2
		AND (last_seen_at < ?2 OR idle_expires_at < ?3)`},
	{func(s *Store) **sql.Stmt { return &s.rotate },
		`UPDATE sessions SET token_hash = ?3, prev_token_hash = ?2, rotated_at = ?4
		WHERE id = ?1 AND token_hash = ?2 AND revoked_at IS NULL AND expires_at > ?4`},
	// Rotate's compare-and-swap that also records the proof of the
	// password, at ?4, and starts a new chain (no predecessor).
	{func(s *Store) **sql.Stmt { return &s.reauth },
		`UPDATE sessions SET token_hash = ?3, authenticated_at = ?4, rotated_at = ?4, prev_token_hash = NULL
		WHERE id = ?1 AND token_hash = ?2 AND revoked_at IS NULL AND expires_at > ?4`},
	// The size of an active session's data without key ?2, in bytes (a key
	// is TEXT, whose length() counts characters, hence the cast). No row:
	// no such active session.
	{func(s *Store) **sql.Stmt { return &s.dataSize },
		`SELECT coalesce((
			SELECT sum(length(CAST(d.key AS BLOB)) + length(d.value))
			FROM session_data AS d WHERE d.session_id = s.id AND d.key <> ?2), 0)
		FROM sessions AS s
		WHERE s.id = ?1 AND s.revoked_at IS NULL AND s.expires_at > ?3`},
	{func(s *Store) **sql.Stmt { return &s.upsertData },
		`INSERT INTO session_data (session_id, key, value) VALUES (?1, ?2, ?3)
		ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value`},
	{func(s *Store) **sql.Stmt { return &s.active },
		`SELECT 1 FROM sessions WHERE id = ?1 AND revoked_at IS NULL`},
	{func(s *Store) **sql.Stmt { return &s.deleteData },
		`DELETE FROM session_data WHERE session_id = ?1 AND key = ?2`},
	// The same read in Create's transaction, under the write lock.
	{func(s *Store) **sql.Stmt { return &s.generationW }, qGeneration},
	{func(s *Store) **sql.Stmt { return &s.bumpGeneration },
		`INSERT INTO user_generations (user_id, generation) VALUES (?1, 1)
		ON CONFLICT (user_id) DO UPDATE SET generation = generation + 1`},
	{func(s *Store) **sql.Stmt { return &s.deleteExpired },
		`DELETE FROM sessions WHERE rowid IN (
			SELECT rowid FROM sessions WHERE expires_at <= ?1 LIMIT ?2)`},
}

// Open opens the SQLite database file at path, creating it if needed,
// brings its schema up to date and returns a Store over it.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	c := newConfig(opts)
	w, err := openWriter(ctx, path, c)
	if err != nil {
		return nil, err
	}
	// Migrate before the read pool opens: the writer has put the file in
	// WAL mode, and the read-only connections find the tables there.
	if err := migrate(ctx, w, c.logger, c.busyTimeout); err != nil {
		w.Close()
		return nil, err
	}
	r, err := openReader(ctx, path, c)
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &Store{path: path, w: w, r: r}
	for _, p := range slices.Concat(readStmts, accountReadStmts) {
		if *p.dst(s), err = r.PrepareContext(ctx, p.query); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite: open %s: preparing %q: %w", path, p.query, err)
		}
	}
	for _, p := range slices.Concat(writeStmts, accountWriteStmts) {
		if *p.dst(s), err = w.PrepareContext(ctx, p.query); err != nil {
			s.Close()
			return nil, fmt.Errorf("sqlite: open %s: preparing %q: %w", path, p.query, err)
		}
	}
	return s, nil
}

// Close closes the database. The last connection to close checkpoints the
// WAL into the main file.
func (s *Store) Close() error {
	var errs []error
	for _, p := range slices.Concat(readStmts, writeStmts, accountReadStmts, accountWriteStmts) {
		if st := *p.dst(s); st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, s.r.Close(), s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.path, err)
	}
	return nil
}

// Ping reports whether the database can be read and written to, for
// readiness checks. It waits for the writer like any write, so give ctx a
// deadline.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it, or
// rolls it back when fn fails.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		// ErrTxDone: database/sql already rolled back, ctx being done.
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, rerr)
		}
		return err
	}
	return tx.Commit()
}

func wrap(op string, err error) error {
	if err == nil || errors.Is(err, sessiond.ErrNotFound) || errors.Is(err, sessiond.ErrDataTooLarge) ||
		errors.Is(err, sessiond.ErrCredentialsChanged) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

func micros(t time.Time) int64 { return t.UnixMicro() }

// nullString is s, or NULL for "".
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullHash is h, or NULL for the zero hash.
func nullHash(h sessiond.TokenHash) any {
	if h == (sessiond.TokenHash{}) {
		return nil
	}
	return h[:]
}

// nullMicros is t in microseconds, or NULL for the zero time.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// Create implements sessiond.Store. The session's CreatedAt is "now" for the
// activity of the replaced session and of the user's other sessions. The
// generation check runs in the insert's transaction, which holds SQLite's
// write lock, as RevokeByUser's does.
func (s *Store) Create(ctx context.Context, sess *sessiond.Session, opts sessiond.CreateOptions) error {
	now := micros(sess.CreatedAt)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if g := opts.ExpectGeneration; g != nil && sess.UserID != "" {
			var cur uint64
			if err := tx.StmtContext(ctx, s.generationW).QueryRowContext(ctx, sess.UserID).Scan(&cur); err != nil {
				return err
			}
			if cur != *g {
				return sessiond.ErrCredentialsChanged
			}
		}
		carry := false
		if opts.Replace != "" && opts.Replace != sess.ID {
			res, err := tx.StmtContext(ctx, s.revoke).ExecContext(ctx, now, opts.ReplaceReason, opts.Replace)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			carry = n > 0 && opts.CarryData
		}
		if opts.MaxPerUser > 0 && sess.UserID != "" {
			// Room for the new one: keep MaxPerUser-1 of the others.
			if _, err := tx.StmtContext(ctx, s.revokeLimit).ExecContext(ctx,
				now, sess.UserID, opts.MaxPerUser-1, sessiond.ReasonLimit); err != nil {
				return err
			}
		}
		if _, err := tx.StmtContext(ctx, s.insert).ExecContext(ctx,
			sess.ID, sess.TokenHash[:], nullString(sess.UserID), sess.RememberMe,
			micros(sess.CreatedAt), micros(sess.LastSeenAt),
			micros(sess.IdleExpiresAt), micros(sess.AbsoluteExpiresAt),
			sess.Device.UserAgent, sess.Device.Browser, sess.Device.OS, sess.IP,
			nullMicros(sess.RevokedAt), sess.RevokeReason, nullMicros(sess.AuthenticatedAt),
			sess.Transport, nullMicros(sess.RotatedAt), nullHash(sess.PrevTokenHash),
		); err != nil {
			return err
		}
		if len(sess.Data) > 0 {
			ins := tx.StmtContext(ctx, s.upsertData)
			for k, v := range sess.Data {
				if _, err := ins.ExecContext(ctx, sess.ID, k, blob(v)); err != nil {
					return err
				}
			}
		}
		if carry {
			if _, err := tx.StmtContext(ctx, s.carryData).ExecContext(ctx, sess.ID, opts.Replace); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("create", err)
}

// blob is v, never nil: a nil []byte binds as NULL.
func blob(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}

// ByTokenHash implements sessiond.Store. It is one lookup of the token_hash
// index on the read pool.
func (s *Store) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	sess, err := scanSession(s.byHash.QueryRowContext(ctx, h[:]))
	return sess, wrap("by token hash", err)
}

// ByID implements sessiond.Store.
func (s *Store) ByID(ctx context.Context, id string) (*sessiond.Session, error) {
	sess, err := scanSession(s.byID.QueryRowContext(ctx, id))
	return sess, wrap("by id", err)
}

// ListByUser implements sessiond.Store.
func (s *Store) ListByUser(ctx context.Context, userID string, now time.Time) ([]*sessiond.Session, error) {
	if userID == "" {
		return []*sessiond.Session{}, nil // anonymous sessions belong to nobody
	}
	rows, err := s.listByUser.QueryContext(ctx, userID, micros(now))
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

// Touch implements sessiond.Store. The batch is one transaction; a session
// whose earlier deadline is at or before a touch's LastSeenAt is left as it
// is.
func (s *Store) Touch(ctx context.Context, touches []sessiond.Touch) error {
	if len(touches) == 0 {
		return ctx.Err()
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		st := tx.StmtContext(ctx, s.touch)
		for _, t := range touches {
			if _, err := st.ExecContext(ctx, t.ID, micros(t.LastSeenAt), micros(t.IdleExpiresAt)); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("touch", err)
}

// Rotate implements sessiond.Store: one compare-and-swap UPDATE.
func (s *Store) Rotate(ctx context.Context, id string, old, new sessiond.TokenHash, now time.Time) error {
	res, err := s.rotate.ExecContext(ctx, id, old[:], new[:], micros(now))
	return wrap("rotate", oneRow(res, err))
}

// Reauthenticate implements sessiond.Store: one compare-and-swap UPDATE.
func (s *Store) Reauthenticate(ctx context.Context, id string, old, new sessiond.TokenHash, at time.Time) error {
	res, err := s.reauth.ExecContext(ctx, id, old[:], new[:], micros(at))
	return wrap("reauthenticate", oneRow(res, err))
}

// Revoke implements sessiond.Store.
func (s *Store) Revoke(ctx context.Context, id string, now time.Time, reason string) error {
	res, err := s.revoke.ExecContext(ctx, micros(now), reason, id)
	return wrap("revoke", oneRow(res, err))
}

// oneRow turns an UPDATE that changed no row into ErrNotFound.
func oneRow(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sessiond.ErrNotFound
	}
	return nil
}

// RevokeByUser implements sessiond.Store: the user's generation and one
// UPDATE, in one transaction.
func (s *Store) RevokeByUser(ctx context.Context, userID, exceptID string, now time.Time, reason string) (int, error) {
	if userID == "" {
		return 0, ctx.Err()
	}
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.StmtContext(ctx, s.bumpGeneration).ExecContext(ctx, userID); err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.revokeUser).ExecContext(ctx, micros(now), reason, userID, exceptID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, wrap("revoke by user", err)
	}
	return int(n), nil
}

// UserGeneration implements sessiond.Store: one read of the read pool.
func (s *Store) UserGeneration(ctx context.Context, userID string) (uint64, error) {
	var g uint64
	err := s.generation.QueryRowContext(ctx, userID).Scan(&g)
	return g, wrap("user generation", err)
}

// Data implements sessiond.Store.
func (s *Store) Data(ctx context.Context, id string, now time.Time) (map[string][]byte, error) {
	rows, err := s.data.QueryContext(ctx, id, micros(now))
	if err != nil {
		return nil, wrap("data", err)
	}
	defer rows.Close()
	var out map[string][]byte
	for rows.Next() {
		var (
			k sql.NullString
			v []byte
		)
		if err := rows.Scan(&k, &v); err != nil {
			return nil, wrap("data", err)
		}
		if out == nil {
			out = make(map[string][]byte)
		}
		if k.Valid {
			out[k.String] = blob(v)
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

// SetData implements sessiond.Store. The size check and the write are one
// transaction, and the writer is exclusive, so concurrent writes to other
// keys are counted.
func (s *Store) SetData(ctx context.Context, id, key string, value []byte, maxBytes int, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var others int64
		err := tx.StmtContext(ctx, s.dataSize).QueryRowContext(ctx, id, key, micros(now)).Scan(&others)
		if errors.Is(err, sql.ErrNoRows) {
			return sessiond.ErrNotFound
		}
		if err != nil {
			return err
		}
		if others+int64(len(key))+int64(len(value)) > int64(maxBytes) {
			return sessiond.ErrDataTooLarge
		}
		_, err = tx.StmtContext(ctx, s.upsertData).ExecContext(ctx, id, key, blob(value))
		return err
	})
	return wrap("set data", err)
}

// DeleteData implements sessiond.Store.
func (s *Store) DeleteData(ctx context.Context, id, key string, now time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.StmtContext(ctx, s.active).QueryRowContext(ctx, id, micros(now)).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return sessiond.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.StmtContext(ctx, s.deleteData).ExecContext(ctx, id, key)
		return err
	})
	return wrap("delete data", err)
}

// DeleteExpired implements sessiond.Store. The sessions' data goes with them
// (ON DELETE CASCADE).
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, ctx.Err()
	}
	res, err := s.deleteExpired.ExecContext(ctx, micros(now), limit)
	if err != nil {
		return 0, wrap("delete expired", err)
	}
	n, err := res.RowsAffected()
	return int(n), wrap("delete expired", err)
}

// scanSession reads one row of sessionCols. sql.ErrNoRows becomes
// ErrNotFound.
func scanSession(r interface{ Scan(...any) error }) (*sessiond.Session, error) {
	s := new(sessiond.Session)
	err := r.Scan(&s.ID, hashDest{h: &s.TokenHash}, textDest{&s.UserID}, &s.RememberMe,
		microsDest{&s.CreatedAt}, microsDest{&s.LastSeenAt},
		microsDest{&s.IdleExpiresAt}, microsDest{&s.AbsoluteExpiresAt},
		&s.Device.UserAgent, &s.Device.Browser, &s.Device.OS, &s.IP,
		microsDest{&s.RevokedAt}, &s.RevokeReason, microsDest{&s.AuthenticatedAt}, &s.Transport,
		microsDest{&s.RotatedAt}, hashDest{h: &s.PrevTokenHash, null: true})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// hashDest scans a 32-byte BLOB into a TokenHash without an intermediate
// slice.
// With null, NULL scans as the zero hash.
type hashDest struct {
	h    *sessiond.TokenHash
	null bool
}

func (d hashDest) Scan(src any) error {
	if src == nil && d.null {
		*d.h = sessiond.TokenHash{}
		return nil
	}
	b, ok := src.([]byte)
	if !ok || len(b) != len(d.h) {
		return fmt.Errorf("token_hash: want %d bytes, got %T of length %d", len(d.h), src, len(b))
	}
	copy(d.h[:], b)
	return nil
}

// textDest scans TEXT, NULL as "".
type textDest struct{ p *string }

func (d textDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = ""
	case string:
		*d.p = v
	case []byte:
		*d.p = string(v)
	default:
		return fmt.Errorf("want TEXT, got %T", src)
	}
	return nil
}

// microsDest scans INTEGER unix microseconds into a UTC time, NULL as the
// zero time.
type microsDest struct{ t *time.Time }

func (d microsDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.t = time.Time{}
	case int64:
		*d.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("want INTEGER microseconds, got %T", src)
	}
	return nil
}
