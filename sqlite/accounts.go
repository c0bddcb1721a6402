package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

var _ account.Store = (*Store)(nil)

// accountStmts are the prepared statements of the account.Store methods.
type accountStmts struct {
	// Read pool.
	userByID, userByEmail *sql.Stmt
	// Write pool.
	insertUser, userForUpdate, setProfile, passwordHash, setPasswordHash,
	deleteUser, lockout, setLockout, deleteResets, insertReset,
	consumeReset, deleteChanges, insertChange, emailChange, setEmail,
	deleteChange, takeCancel *sql.Stmt
}

// The columns of a user as scanUser reads them.
const userCols = `id, email, password_hash, profile, created_at, updated_at, password_changed_at`

var accountReadStmts = []stmt{
	{func(s *Store) **sql.Stmt { return &s.userByID },
		`SELECT ` + userCols + ` FROM users WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.userByEmail },
		`SELECT ` + userCols + ` FROM users WHERE email = ?1`},
}

var accountWriteStmts = []stmt{
	{func(s *Store) **sql.Stmt { return &s.insertUser },
		`INSERT INTO users (` + userCols + `) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)`},
	// The read half of UpdateProfile, on the writer, in its transaction.
	{func(s *Store) **sql.Stmt { return &s.userForUpdate },
		`SELECT ` + userCols + ` FROM users WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.setProfile },
		`UPDATE users SET profile = ?2, updated_at = ?3 WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.passwordHash },
		`SELECT password_hash FROM users WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.setPasswordHash },
		`UPDATE users SET password_hash = ?2, password_changed_at = ?3, updated_at = ?3
		WHERE id = ?1`},
	// The user's reset tokens go with it (ON DELETE CASCADE).
	{func(s *Store) **sql.Stmt { return &s.deleteUser },
		`DELETE FROM users WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.lockout },
		`SELECT failures, locks, locked_until FROM users WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.setLockout },
		`UPDATE users SET failures = ?2, locks = ?3, locked_until = ?4 WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.deleteResets },
		`DELETE FROM reset_tokens WHERE user_id = ?1`},
	// No row inserted: no such user.
	{func(s *Store) **sql.Stmt { return &s.insertReset },
		`INSERT INTO reset_tokens (hash, user_id, expires_at)
		SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2)`},
	// One statement, so of two concurrent consumers only one gets the row.
	// An expired token is deleted too, and reported as not valid.
	{func(s *Store) **sql.Stmt { return &s.consumeReset },
		`DELETE FROM reset_tokens WHERE hash = ?1 RETURNING user_id, expires_at > ?2`},
	{func(s *Store) **sql.Stmt { return &s.deleteChanges },
		`DELETE FROM email_changes WHERE user_id = ?1`},
	// No row inserted: no such user.
	{func(s *Store) **sql.Stmt { return &s.insertChange },
		`INSERT INTO email_changes (hash, user_id, new_email, expires_at, cancel_hash)
		SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?2)`},
	{func(s *Store) **sql.Stmt { return &s.takeCancel },
		`DELETE FROM email_changes WHERE cancel_hash = ?1 RETURNING user_id, new_email, expires_at > ?2`},
	{func(s *Store) **sql.Stmt { return &s.emailChange },
		`SELECT c.user_id, c.new_email, c.expires_at > ?2, u.email
		FROM email_changes AS c JOIN users AS u ON u.id = c.user_id WHERE c.hash = ?1`},
	{func(s *Store) **sql.Stmt { return &s.setEmail },
		`UPDATE users SET email = ?2, updated_at = ?3 WHERE id = ?1`},
	{func(s *Store) **sql.Stmt { return &s.deleteChange },
		`DELETE FROM email_changes WHERE hash = ?1`},
}

// wrapAccount is wrap for the account.Store methods: the sentinel errors of
// package account go back as they are.
func wrapAccount(op string, err error) error {
	if err == nil || errors.Is(err, account.ErrUserNotFound) ||
		errors.Is(err, account.ErrEmailTaken) || errors.Is(err, account.ErrInvalidResetToken) ||
		errors.Is(err, account.ErrInvalidEmailChangeToken) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// isUniqueViolation reports whether err is SQLite's SQLITE_CONSTRAINT_UNIQUE
// (a UNIQUE column or index; a duplicate PRIMARY KEY is
// SQLITE_CONSTRAINT_PRIMARYKEY). The driver turns extended result codes on,
// so the code tells which constraint kind failed.
func isUniqueViolation(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// stored is t as the store gives it back: UTC, to the microsecond, the zero
// time as is.
func stored(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

// CreateUser implements account.Store. The email is the only UNIQUE column
// of users, so a unique violation is a taken email; a duplicate id is a
// failure of the caller.
func (s *Store) CreateUser(ctx context.Context, u *account.User) error {
	_, err := s.insertUser.ExecContext(ctx,
		u.ID, u.Email, u.PasswordHash, string(u.Profile),
		micros(u.CreatedAt), micros(u.UpdatedAt), nullMicros(u.PasswordChangedAt))
	if isUniqueViolation(err) {
		return account.ErrEmailTaken
	}
	return wrapAccount("create user", err)
}

// UserByID implements account.Store.
func (s *Store) UserByID(ctx context.Context, id string) (*account.User, error) {
	u, err := scanUser(s.userByID.QueryRowContext(ctx, id))
	return u, wrapAccount("user by id", err)
}

// UserByEmail implements account.Store.
func (s *Store) UserByEmail(ctx context.Context, email string) (*account.User, error) {
	u, err := scanUser(s.userByEmail.QueryRowContext(ctx, email))
	return u, wrapAccount("user by email", err)
}

// UpdateProfile implements account.Store. The read, update and write are
// one write transaction, so update runs once, holding the database's write
// lock: it should be quick.
func (s *Store) UpdateProfile(ctx context.Context, id string, now time.Time, update func(profile []byte) ([]byte, error)) (*account.User, error) {
	var (
		u         *account.User
		updateErr error
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.StmtContext(ctx, s.userForUpdate).QueryRowContext(ctx, id))
		if err != nil {
			return err
		}
		p, err := update(u.Profile)
		if err != nil {
			updateErr = err
			return err
		}
		if _, err := tx.StmtContext(ctx, s.setProfile).ExecContext(ctx, id, string(p), micros(now)); err != nil {
			return err
		}
		u.Profile = bytes.Clone(p)
		if u.Profile == nil {
			u.Profile = []byte{} // as it reads back
		}
		u.UpdatedAt = stored(now)
		return nil
	})
	if updateErr != nil && errors.Is(err, updateErr) {
		return nil, err // the caller's, as is
	}
	if err != nil {
		return nil, wrapAccount("update profile", err)
	}
	return u, nil
}

// SetPasswordHash implements account.Store: the comparison, the write and
// the deletion of the reset tokens are one write transaction.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash, ifHash string, now time.Time) (bool, error) {
	swapped := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur string
		err := tx.StmtContext(ctx, s.passwordHash).QueryRowContext(ctx, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrUserNotFound
		}
		if err != nil {
			return err
		}
		if ifHash != "" && cur != ifHash {
			return nil
		}
		if _, err := tx.StmtContext(ctx, s.setPasswordHash).ExecContext(ctx, id, hash, micros(now)); err != nil {
			return err
		}
		if _, err := tx.StmtContext(ctx, s.deleteResets).ExecContext(ctx, id); err != nil {
			return err
		}
		swapped = true
		return nil
	})
	if err != nil {
		return false, wrapAccount("set password hash", err)
	}
	return swapped, nil
}

// DeleteUser implements account.Store: one DELETE. The lockout state is
// part of the user's row, and the reset tokens go with it (ON DELETE
// CASCADE). The user's sessions are not the account store's: revoke them
// through the session store.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	res, err := s.deleteUser.ExecContext(ctx, id)
	if err = oneRow(res, err); errors.Is(err, sessiond.ErrNotFound) {
		err = account.ErrUserNotFound
	}
	return wrapAccount("delete user", err)
}

// UpdateLockout implements account.Store. The read, update and write are
// one write transaction, so update runs once; an unchanged state is not
// written.
func (s *Store) UpdateLockout(ctx context.Context, id string, update func(account.Lockout) account.Lockout) (account.Lockout, error) {
	var l account.Lockout
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur account.Lockout
		err := tx.StmtContext(ctx, s.lockout).QueryRowContext(ctx, id).
			Scan(&cur.Failures, &cur.Locks, microsDest{&cur.LockedUntil})
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrUserNotFound
		}
		if err != nil {
			return err
		}
		l = update(cur)
		l.LockedUntil = stored(l.LockedUntil)
		if l.Failures == cur.Failures && l.Locks == cur.Locks && l.LockedUntil.Equal(cur.LockedUntil) {
			return nil
		}
		_, err = tx.StmtContext(ctx, s.setLockout).ExecContext(ctx,
			id, l.Failures, l.Locks, nullMicros(l.LockedUntil))
		return err
	})
	if err != nil {
		return account.Lockout{}, wrapAccount("update lockout", err)
	}
	return l, nil
}

// CreateResetToken implements account.Store: the deletion of the user's
// other tokens and the insertion are one write transaction.
func (s *Store) CreateResetToken(ctx context.Context, userID string, hash [32]byte, expiresAt time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.StmtContext(ctx, s.deleteResets).ExecContext(ctx, userID); err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.insertReset).ExecContext(ctx, hash[:], userID, micros(expiresAt))
		if err = oneRow(res, err); errors.Is(err, sessiond.ErrNotFound) {
			return account.ErrUserNotFound
		}
		return err
	})
	return wrapAccount("create reset token", err)
}

// TakeResetRequest implements account.Store: one write transaction
// (BEGIN IMMEDIATE, so processes on the file take turns) forgets the
// user's requests out of the window, counts the others and adds this one
// when it fits.
func (s *Store) TakeResetRequest(ctx context.Context, userID, from string, now time.Time, l account.ResetLimit) (bool, error) {
	var ok bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1)`, userID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return account.ErrUserNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM reset_requests WHERE user_id = ?1 AND requested_at <= ?2`,
			userID, micros(now.Add(-l.Window))); err != nil {
			return err
		}
		var total, fromKey int
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(from_key = ?2), 0)
			FROM reset_requests WHERE user_id = ?1`, userID, from).Scan(&total, &fromKey); err != nil {
			return err
		}
		if ok = total < l.Total && fromKey < l.PerKey; !ok {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO reset_requests (user_id, from_key, requested_at) VALUES (?1, ?2, ?3)`,
			userID, from, micros(now))
		return err
	})
	if err != nil {
		return false, wrapAccount("take reset request", err)
	}
	return ok, nil
}

// ConsumeResetToken implements account.Store: one DELETE ... RETURNING.
func (s *Store) ConsumeResetToken(ctx context.Context, hash [32]byte, now time.Time) (string, error) {
	var (
		userID string
		valid  bool
	)
	err := s.consumeReset.QueryRowContext(ctx, hash[:], micros(now)).Scan(&userID, &valid)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && !valid:
		return "", account.ErrInvalidResetToken
	case err != nil:
		return "", wrapAccount("consume reset token", err)
	}
	return userID, nil
}

// scanUser reads one row of userCols. sql.ErrNoRows becomes
// ErrUserNotFound.
func scanUser(r interface{ Scan(...any) error }) (*account.User, error) {
	u := new(account.User)
	var profile string
	err := r.Scan(&u.ID, &u.Email, &u.PasswordHash, &profile,
		microsDest{&u.CreatedAt}, microsDest{&u.UpdatedAt}, microsDest{&u.PasswordChangedAt})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, account.ErrUserNotFound
	}
	if err != nil {
		return nil, err
	}
	u.Profile = []byte(profile)
	return u, nil
}

// CreateEmailChange implements account.Store: the deletion of the user's
// other pending changes and the insertion are one write transaction.
func (s *Store) CreateEmailChange(ctx context.Context, userID, newEmail string, hash, cancelHash [32]byte, expiresAt time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.StmtContext(ctx, s.deleteChanges).ExecContext(ctx, userID); err != nil {
			return err
		}
		res, err := tx.StmtContext(ctx, s.insertChange).ExecContext(ctx, hash[:], userID, newEmail, micros(expiresAt), cancelHash[:])
		if err = oneRow(res, err); errors.Is(err, sessiond.ErrNotFound) {
			return account.ErrUserNotFound
		}
		return err
	})
	return wrapAccount("create email change", err)
}

// CancelEmailChanges implements account.Store.
func (s *Store) CancelEmailChanges(ctx context.Context, userID string) (bool, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.StmtContext(ctx, s.deleteChanges).ExecContext(ctx, userID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
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
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		return tx.StmtContext(ctx, s.takeCancel).QueryRowContext(ctx, cancelHash[:], micros(now)).Scan(&userID, &newEmail, &valid)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", account.ErrInvalidEmailChangeToken
	case err != nil:
		return "", "", wrapAccount("cancel email change", err)
	case !valid:
		return "", "", account.ErrInvalidEmailChangeToken
	}
	return userID, newEmail, nil
}

// ApplyEmailChange implements account.Store: one write transaction, so
// that of concurrent calls for one hash only the first finds the change.
// A taken address rolls the whole transaction back; an expired change is
// deleted and committed.
func (s *Store) ApplyEmailChange(ctx context.Context, hash [32]byte, now time.Time) (*account.User, string, error) {
	var (
		u        *account.User
		old      string
		expired  bool
		errTaken error
	)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			userID, newEmail string
			valid            bool
		)
		err := tx.StmtContext(ctx, s.emailChange).QueryRowContext(ctx, hash[:], micros(now)).Scan(&userID, &newEmail, &valid, &old)
		if errors.Is(err, sql.ErrNoRows) {
			return account.ErrInvalidEmailChangeToken
		}
		if err != nil {
			return err
		}
		if !valid {
			expired = true
			_, err := tx.StmtContext(ctx, s.deleteChange).ExecContext(ctx, hash[:])
			return err
		}
		if _, err := tx.StmtContext(ctx, s.setEmail).ExecContext(ctx, userID, newEmail, micros(now)); err != nil {
			if isUniqueViolation(err) {
				errTaken = account.ErrEmailTaken
				return errTaken
			}
			return err
		}
		for _, st := range []*sql.Stmt{s.deleteChanges, s.deleteResets} {
			if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, userID); err != nil {
				return err
			}
		}
		u, err = scanUser(tx.StmtContext(ctx, s.userForUpdate).QueryRowContext(ctx, userID))
		return err
	})
	switch {
	case errTaken != nil && errors.Is(err, errTaken):
		return nil, "", account.ErrEmailTaken
	case err != nil:
		return nil, "", wrapAccount("apply email change", err)
	case expired:
		return nil, "", account.ErrInvalidEmailChangeToken
	}
	return u, old, nil
}
