package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sessiond/sessiond/account"
)

var _ account.Store = (*Store)(nil)

// The columns of a user as scanUser reads them.
const userCols = `id, email, password_hash, profile, created_at, updated_at, password_changed_at`

// The statements of the account.Store methods.
const (
	qInsertUser = `INSERT INTO users (` + userCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`
	qUserByID   = `SELECT ` + userCols + ` FROM users WHERE id = $1`
	qUserByMail = `SELECT ` + userCols + ` FROM users WHERE email = $1`

	// The read half of UpdateProfile: the row stays locked until the
	// transaction ends, so concurrent updates queue and none is lost.
	qUserForUpdate = qUserByID + ` FOR UPDATE`
	qSetProfile    = `UPDATE users SET profile = $2, updated_at = $3 WHERE id = $1`

	qLockoutForUpdate = `SELECT failures, locks, locked_until FROM users WHERE id = $1 FOR UPDATE`
	qSetLockout       = `UPDATE users SET failures = $2, locks = $3, locked_until = $4 WHERE id = $1`

	// Locks a user's row until the end of the transaction: the statement
	// after it, with a snapshot of its own, sees every reset token committed
	// before, and no other password change or reset token can commit in
	// between.
	qLockUserRow = `SELECT FROM users WHERE id = $1 FOR UPDATE`

	// The statements of TakeResetRequest, under the user's row lock.
	qForgetResetRequests = `DELETE FROM reset_requests WHERE user_id = $1 AND requested_at <= $2`
	qCountResetRequests  = `SELECT count(*), count(*) FILTER (WHERE from_key = $2)
		FROM reset_requests WHERE user_id = $1`
	qAddResetRequest = `INSERT INTO reset_requests (user_id, from_key, requested_at) VALUES ($1, $2, $3)`

	// Changes the hash of user $1 when $4 is empty or the current hash, and
	// then deletes the user's reset tokens; says whether the user exists and
	// whether it changed.
	qSetPasswordHash = `WITH changed AS (
		UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3
		WHERE id = $1 AND ($4::text = '' OR password_hash = $4::text)
		RETURNING id),
	resets AS (
		DELETE FROM reset_tokens WHERE user_id IN (SELECT id FROM changed))
	SELECT EXISTS (SELECT FROM users WHERE id = $1), EXISTS (SELECT FROM changed)`

	// The user's reset tokens go with it (ON DELETE CASCADE).
	qDeleteUser = `DELETE FROM users WHERE id = $1`

	// Replaces the reset tokens of user $2 with the new one. No row
	// inserted: no such user.
	qReplaceReset = `WITH old AS (
		DELETE FROM reset_tokens WHERE user_id = $2)
	INSERT INTO reset_tokens (hash, user_id, expires_at)
	SELECT $1, id, $3 FROM users WHERE id = $2`

	// One statement, so of two concurrent consumers only one gets the row.
	// An expired token is deleted too, and reported as not valid.
	qConsumeReset = `DELETE FROM reset_tokens WHERE hash = $1 RETURNING user_id, expires_at > $2`

	// Replaces the pending email changes of user $2 with the new one. No
	// row inserted: no such user.
	qReplaceChange = `WITH old AS (
		DELETE FROM email_changes WHERE user_id = $2)
	INSERT INTO email_changes (hash, user_id, new_email, expires_at, cancel_hash)
	SELECT $1, id, $3, $4, $5 FROM users WHERE id = $2`

	// Takes the pending change out by its cancellation hash.
	qTakeCancel = `DELETE FROM email_changes WHERE cancel_hash = $1 RETURNING user_id, new_email, expires_at > $2`

	// Takes the pending change out; of concurrent takers one gets the row.
	qTakeChange = `DELETE FROM email_changes WHERE hash = $1 RETURNING user_id, new_email, expires_at > $2`

	// Sets the email of user $1 and answers the user and the email it had.
	qSetEmail = `WITH old AS (
		SELECT id, email FROM users WHERE id = $1 FOR UPDATE)
	UPDATE users AS u SET email = $2, updated_at = $3 FROM old WHERE u.id = old.id
	RETURNING u.id, u.email, u.password_hash, u.profile, u.created_at, u.updated_at, u.password_changed_at, old.email`

	qDeleteUserChanges = `DELETE FROM email_changes WHERE user_id = $1`
	qDeleteUserResets  = `DELETE FROM reset_tokens WHERE user_id = $1`
)

// wrapAccount is wrap for the account.Store methods: the sentinel errors of
// package account go back as they are.
func wrapAccount(op string, err error) error {
	if err == nil || errors.Is(err, account.ErrUserNotFound) ||
		errors.Is(err, account.ErrEmailTaken) || errors.Is(err, account.ErrInvalidResetToken) ||
		errors.Is(err, account.ErrInvalidEmailChangeToken) {
		return err
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// isEmailTaken reports whether err is a unique violation of the users'
// email constraint; a duplicate id (the primary key) is another error.
func isEmailTaken(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == codeUniqueViolation && e.ConstraintName == "users_email_key"
}

// stored is t as the store gives it back: UTC, to the microsecond, the zero
// time as is.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Microsecond).UTC()
}

// CreateUser implements account.Store.
func (s *Store) CreateUser(ctx context.Context, u *account.User) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, qInsertUser,
		u.ID, u.Email, u.PasswordHash, blob(u.Profile),
		u.CreatedAt, u.UpdatedAt, timestamptz(u.PasswordChangedAt))
	if isEmailTaken(err) {
		return account.ErrEmailTaken
	}
	return wrapAccount("create user", err)
}

// UserByID implements account.Store.
func (s *Store) UserByID(ctx context.Context, id string) (*account.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, qUserByID, id))
	return u, wrapAccount("user by id", err)
}

// UserByEmail implements account.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (*account.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, qUserByMail, email))
	return u, wrapAccount("user by email", err)
}

// UpdateProfile implements account.Store: a transaction that locks the
// user's row, calls update and writes its result. update runs while the row
// is locked, so it should be quick; it runs again only when PostgreSQL broke
// a deadlock by aborting the transaction.
func (s *Store) UpdateProfile(ctx context.Context, id string, now time.Time, update func(profile []byte) ([]byte, error)) (*account.User, error) {
	var (
		u         *account.User
		updateErr error
	)
	err := s.run(ctx, func(ctx context.Context) error {
		updateErr = nil
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var err error
			u, err = scanUser(tx.QueryRow(ctx, qUserForUpdate, id))
			if err != nil {
				return err
			}
			p, err := update(u.Profile)
			if err != nil {
				updateErr = err
				return err
			}
			if _, err := tx.Exec(ctx, qSetProfile, id, blob(p), now); err != nil {
				return err
			}
			u.Profile = bytes.Clone(blob(p))
			u.UpdatedAt = stored(now)
			return nil
		})
	})
	if updateErr != nil && errors.Is(err, updateErr) {
		return nil, updateErr // the caller's, as is
	}
	if err != nil {
		return nil, wrapAccount("update profile", err)
	}
	return u, nil
}

// SetPasswordHash implements account.Store: a batch of two statements, one
// transaction. The first locks the user's row, so that concurrent changes
// with the same ifHash queue and only the first finds it; the second
// compares, writes and deletes the reset tokens.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash, ifHash string, now time.Time) (bool, error) {
	var exists, changed bool
	err := s.run(ctx, func(ctx context.Context) error {
		b := new(pgx.Batch)
		b.Queue(qLockUserRow, id)
		b.Queue(qSetPasswordHash, id, hash, now, ifHash).QueryRow(func(row pgx.Row) error {
			return row.Scan(&exists, &changed)
		})
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err == nil && !exists {
		err = account.ErrUserNotFound
	}
	if err != nil {
		return false, wrapAccount("set password hash", err)
	}
	return changed, nil
}

// DeleteUser implements account.Store: one DELETE. The lockout state is
// part of the user's row, and the reset tokens go with it (ON DELETE
// CASCADE). The user's sessions are not the account store's: revoke them
// through the session store.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, qDeleteUser, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = account.ErrUserNotFound
	}
	return wrapAccount("delete user", err)
}

// UpdateLockout implements account.Store: a transaction that locks the
// user's row, calls update and writes its result unless it is unchanged.
// Concurrent failed logins queue on the row lock, so all are counted.
func (s *Store) UpdateLockout(ctx context.Context, id string, update func(account.Lockout) account.Lockout) (account.Lockout, error) {
	var l account.Lockout
	err := s.run(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var (
				cur   account.Lockout
				until pgtype.Timestamptz
			)
			err := tx.QueryRow(ctx, qLockoutForUpdate, id).Scan(&cur.Failures, &cur.Locks, &until)
			if errors.Is(err, pgx.ErrNoRows) {
				return account.ErrUserNotFound
			}
			if err != nil {
				return err
			}
			if until.Valid {
				cur.LockedUntil = until.Time.UTC()
			}
			l = update(cur)
			l.LockedUntil = stored(l.LockedUntil)
			if l.Failures == cur.Failures && l.Locks == cur.Locks && l.LockedUntil.Equal(cur.LockedUntil) {
				return nil
			}
			_, err = tx.Exec(ctx, qSetLockout, id, l.Failures, l.Locks, timestamptz(l.LockedUntil))
			return err
		})
	})
	if err != nil {
		return account.Lockout{}, wrapAccount("update lockout", err)
	}
	return l, nil
}

// CreateResetToken implements account.Store: a batch of two statements,
// one transaction. The first locks the user's row, so that of two
// concurrent calls the second deletes the first one's token.
func (s *Store) CreateResetToken(ctx context.Context, userID string, hash [32]byte, expiresAt time.Time) error {
	var inserted int64
	err := s.run(ctx, func(ctx context.Context) error {
		b := new(pgx.Batch)
		b.Queue(qLockUserRow, userID)
		b.Queue(qReplaceReset, hash[:], userID, expiresAt).Exec(func(tag pgconn.CommandTag) error {
			inserted = tag.RowsAffected()
			return nil
		})
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err == nil && inserted == 0 {
		err = account.ErrUserNotFound
	}
	return wrapAccount("create reset token", err)
}

// TakeResetRequest implements account.Store: a transaction that locks the
// user's row (concurrent requests for one account, from any node, take
// turns), forgets the user's requests out of the window, counts the others
// and adds this one when it fits.
func (s *Store) TakeResetRequest(ctx context.Context, userID, from string, now time.Time, l account.ResetLimit) (bool, error) {
	var ok bool
	err := s.run(ctx, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, qLockUserRow, userID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return account.ErrUserNotFound
			}
			if _, err := tx.Exec(ctx, qForgetResetRequests, userID, now.Add(-l.Window)); err != nil {
				return err
			}
			var total, fromKey int
			if err := tx.QueryRow(ctx, qCountResetRequests, userID, from).Scan(&total, &fromKey); err != nil {
				return err
			}
			if ok = total < l.Total && fromKey < l.PerKey; !ok {
				return nil
			}
			_, err = tx.Exec(ctx, qAddResetRequest, userID, from, now)
			return err
		})
	})
	if err != nil {
		return false, wrapAccount("take reset request", err)
	}
	return ok, nil
}

// ConsumeResetToken implements account.Store: one DELETE ... RETURNING.
func (s *Store) ConsumeResetToken(ctx context.Context, hash [32]byte, now time.Time) (string, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		userID string
		valid  bool
	)
	err := s.pool.QueryRow(ctx, qConsumeReset, hash[:], now).Scan(&userID, &valid)
	switch {
	case errors.Is(err, pgx.ErrNoRows) || err == nil && !valid:
		return "", account.ErrInvalidResetToken
	case err != nil:
		return "", wrapAccount("consume reset token", err)
	}
	return userID, nil
}

// scanUser reads one row of userCols. pgx.ErrNoRows becomes
// ErrUserNotFound. Times come back in UTC.
func scanUser(row pgx.Row) (*account.User, error) {
	u := new(account.User)
	var changed pgtype.Timestamptz
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Profile, &u.CreatedAt, &u.UpdatedAt, &changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, account.ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	u.Profile = blob(u.Profile)
	u.CreatedAt = u.CreatedAt.UTC()
	u.UpdatedAt = u.UpdatedAt.UTC()
	if changed.Valid {
		u.PasswordChangedAt = changed.Time.UTC()
	}
	return u, nil
}

// CreateEmailChange implements account.Store: a batch of two statements,
// one transaction. The first locks the user's row, so that of two
// concurrent calls the second deletes the first one's change.
func (s *Store) CreateEmailChange(ctx context.Context, userID, newEmail string, hash, cancelHash [32]byte, expiresAt time.Time) error {
	var inserted int64
	err := s.run(ctx, func(ctx context.Context) error {
		b := new(pgx.Batch)
		b.Queue(qLockUserRow, userID)
		b.Queue(qReplaceChange, hash[:], userID, newEmail, expiresAt, cancelHash[:]).Exec(func(tag pgconn.CommandTag) error {
			inserted = tag.RowsAffected()
			return nil
		})
		return s.pool.SendBatch(ctx, b).Close()
	})
	if err == nil && inserted == 0 {
		err = account.ErrUserNotFound
	}
	return wrapAccount("create email change", err)
}

// CancelEmailChanges implements account.Store.
func (s *Store) CancelEmailChanges(ctx context.Context, userID string) (bool, error) {
	var n int64
	err := s.run(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, qDeleteUserChanges, userID)
		n = tag.RowsAffected()
		return err
	})
	return n > 0, wrapAccount("cancel email changes", err)
}

// CancelEmailChange implements account.Store: one statement takes the
// change out, expired or not.
func (s *Store) CancelEmailChange(ctx context.Context, cancelHash [32]byte, now time.Time) (string, string, error) {
	var (
		userID, newEmail string
		valid            bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		return s.pool.QueryRow(ctx, qTakeCancel, cancelHash[:], now).Scan(&userID, &newEmail, &valid)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", "", account.ErrInvalidEmailChangeToken
	case err != nil:
		return "", "", wrapAccount("cancel email change", err)
	case !valid:
		return "", "", account.ErrInvalidEmailChangeToken
	}
	return userID, newEmail, nil
}

// ApplyEmailChange implements account.Store: a transaction that takes the
// change out (concurrent callers queue on its row and find it gone), sets
// the email under the user's row lock and deletes the user's other changes
// and reset tokens. A taken address (the users_email_key constraint) rolls
// it all back, the change included; an expired change is deleted and
// committed.
func (s *Store) ApplyEmailChange(ctx context.Context, hash [32]byte, now time.Time) (*account.User, string, error) {
	var (
		u       *account.User
		old     string
		expired bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		expired = false
		return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			var (
				userID, newEmail string
				valid            bool
			)
			err := tx.QueryRow(ctx, qTakeChange, hash[:], now).Scan(&userID, &newEmail, &valid)
			if errors.Is(err, pgx.ErrNoRows) {
				return account.ErrInvalidEmailChangeToken
			}
			if err != nil {
				return err
			}
			if !valid {
				expired = true
				return nil
			}
			u = new(account.User)
			var changed pgtype.Timestamptz
			err = tx.QueryRow(ctx, qSetEmail, userID, newEmail, now).Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Profile,
				&u.CreatedAt, &u.UpdatedAt, &changed, &old)
			if errors.Is(err, pgx.ErrNoRows) {
				return account.ErrInvalidEmailChangeToken // cannot happen: the change goes with its user
			}
			if isEmailTaken(err) {
				return account.ErrEmailTaken
			}
			if err != nil {
				return err
			}
			u.Profile = blob(u.Profile)
			u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
			if changed.Valid {
				u.PasswordChangedAt = changed.Time.UTC()
			}
			for _, q := range []string{qDeleteUserChanges, qDeleteUserResets} {
				if _, err := tx.Exec(ctx, q, userID); err != nil {
					return err
				}
			}
			return nil
		})
	})
	switch {
	case err != nil:
		return nil, "", wrapAccount("apply email change", err)
	case expired:
		return nil, "", account.ErrInvalidEmailChangeToken
	}
	return u, old, nil
}
