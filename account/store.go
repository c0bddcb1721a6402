package account

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of the account package.
var (
	// ErrUserNotFound: no user has that id or email.
	ErrUserNotFound = errors.New("account: user not found")
	// ErrEmailTaken: another user already has the (normalised) email.
	ErrEmailTaken = errors.New("account: email taken")
	// ErrInvalidEmail: the email is not a plausible address.
	ErrInvalidEmail = errors.New("account: invalid email")
	// ErrWeakPassword: a new password breaks the password policy.
	ErrWeakPassword = errors.New("account: weak password")
	// ErrInvalidCredentials: unknown email or wrong password, told apart
	// by nobody.
	ErrInvalidCredentials = errors.New("account: invalid credentials")
	// ErrLocked: too many failed logins; see LockedError for until when.
	ErrLocked = errors.New("account: account locked")
	// ErrInvalidResetToken: the reset token is unknown, used or expired.
	ErrInvalidResetToken = errors.New("account: invalid reset token")
	// ErrInvalidProfile: the profile is not a JSON object or is too large.
	ErrInvalidProfile = errors.New("account: invalid profile")
	// ErrInvalidEmailChangeToken: the email change's confirmation token is
	// unknown, used, superseded or expired.
	ErrInvalidEmailChangeToken = errors.New("account: invalid email change token")
	// ErrEmailUnchanged: the new email is the account's current one.
	ErrEmailUnchanged = errors.New("account: the new email address is the current one")
)

// User is an account. PasswordHash is a PHC string and never leaves the
// process in an answer.
type User struct {
	ID           string
	Email        string // normalised: trimmed, lower case
	PasswordHash string
	// Profile is a JSON object, as bytes ("{}" when empty).
	Profile   []byte
	CreatedAt time.Time
	UpdatedAt time.Time
	// PasswordChangedAt is when the password was last set.
	PasswordChangedAt time.Time
}

// Lockout is the brute-force state of one account.
type Lockout struct {
	// Failures counts consecutive failed logins since the last success or
	// the last lock.
	Failures int
	// Locks counts the locks since the last success; each lock lasts twice
	// the one before.
	Locks int
	// LockedUntil is zero or the end of the current lock.
	LockedUntil time.Time
}

// ResetLimit bounds the password-reset requests of one account that may
// issue a token, over a sliding window: fewer than PerKey from one client
// key (an address, an IPv6 /64) and fewer than Total from every key
// together in the Window before a request. Limits of zero or less refuse
// every request.
type ResetLimit struct {
	Window        time.Duration
	PerKey, Total int
}

// Store keeps accounts, their lockout state and password-reset tokens.
// It is dumb like sessiond.Store: every rule (normalising emails, hashing,
// policies, lockout arithmetic, token format) lives in Service.
//
// The contract every implementation meets, checked by storetest.RunAccounts:
//
//   - Missing records give ErrUserNotFound (or ErrInvalidResetToken for
//     reset tokens), never (nil, nil). Any other error is a failure of the
//     store itself.
//   - Every method is safe for concurrent use and durable when it returns.
//   - Users go in and come out as copies: the store keeps no reference to
//     a *User (or its Profile) it was given or returned.
//   - Update functions (UpdateProfile, UpdateLockout) may be called more
//     than once by a store that retries on a conflict; they depend only on
//     their argument. Only the result of the last call is written.
type Store interface {
	// CreateUser stores u; ErrEmailTaken when its Email is in use. Emails
	// are stored and matched exactly as given (Service normalises them).
	CreateUser(ctx context.Context, u *User) error
	// UserByID and UserByEmail return a copy of the user, or
	// ErrUserNotFound.
	UserByID(ctx context.Context, id string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	// UpdateProfile replaces the user's profile with the result of
	// update(current profile), atomically (no lost update between two
	// concurrent merges), sets UpdatedAt to now and returns the updated
	// user. When update returns an error, nothing is written and that
	// error is returned as is. A missing user gives ErrUserNotFound.
	UpdateProfile(ctx context.Context, id string, now time.Time, update func(profile []byte) ([]byte, error)) (*User, error)
	// SetPasswordHash replaces the user's password hash, sets
	// PasswordChangedAt and UpdatedAt to now, and deletes the user's reset
	// tokens, all in one step, and reports true. With ifHash non-empty it
	// does so only when the stored hash is exactly ifHash (an upgrade of
	// the parameters at login, or a change over the hash just checked);
	// otherwise it changes nothing and reports false. Of concurrent calls
	// with the same ifHash at most one reports true. A missing user gives
	// ErrUserNotFound.
	SetPasswordHash(ctx context.Context, id, hash, ifHash string, now time.Time) (bool, error)
	// DeleteUser removes the user, its lockout state and reset tokens;
	// its email is free again. A missing user gives ErrUserNotFound.
	DeleteUser(ctx context.Context, id string) error

	// UpdateLockout applies update to the user's lockout state atomically
	// (concurrent failed logins are all counted) and returns the new state.
	// A user whose state was never written has the zero Lockout. A missing
	// user gives ErrUserNotFound.
	UpdateLockout(ctx context.Context, id string, update func(Lockout) Lockout) (Lockout, error)

	// CreateResetToken stores the hash of a new reset token for the user,
	// deleting the user's other reset tokens in the same step. A missing
	// user gives ErrUserNotFound.
	CreateResetToken(ctx context.Context, userID string, hash [32]byte, expiresAt time.Time) error
	// TakeResetRequest counts a password-reset request for the user from
	// the client key from at now, when it fits l: the user's counted
	// requests after now - l.Window number fewer than l.Total, and those
	// from from fewer than l.PerKey. It reports whether it counted the
	// request; one that does not fit changes nothing. The check and the
	// count are one atomic step over every process sharing the store: of
	// concurrent calls exactly as many report true as fit. Requests at or
	// before now - l.Window are forgotten (the store may delete them).
	// A missing user gives ErrUserNotFound; DeleteUser forgets the user's
	// requests.
	TakeResetRequest(ctx context.Context, userID, from string, now time.Time, l ResetLimit) (bool, error)
	// ConsumeResetToken deletes the reset token with that hash and returns
	// its user, when it exists and expires after now; otherwise
	// ErrInvalidResetToken. Of concurrent calls for one token exactly one
	// wins.
	ConsumeResetToken(ctx context.Context, hash [32]byte, now time.Time) (userID string, err error)

	// CreateEmailChange stores a pending change of the user's email to
	// newEmail under the hash of its confirmation token and the hash of its
	// cancellation token, deleting the user's other pending changes in the
	// same step. Whether newEmail is free is checked when the change is
	// applied. A missing user gives ErrUserNotFound. DeleteUser removes the
	// user's pending changes.
	CreateEmailChange(ctx context.Context, userID, newEmail string, hash, cancelHash [32]byte, expiresAt time.Time) error
	// CancelEmailChanges deletes the user's pending changes of email and
	// reports whether there was one. A missing user has none.
	CancelEmailChanges(ctx context.Context, userID string) (bool, error)
	// CancelEmailChange deletes the pending change whose cancellation token
	// hashes to cancelHash and returns its user and the address it would
	// have set. An unknown one, or one that expires at or before now (it is
	// deleted), gives ErrInvalidEmailChangeToken.
	CancelEmailChange(ctx context.Context, cancelHash [32]byte, now time.Time) (userID, newEmail string, err error)
	// ApplyEmailChange consumes the pending change with that hash and, in
	// the same step, sets its user's email to the new address and
	// UpdatedAt to now, and deletes the user's reset tokens (they went to
	// the old address); it returns the updated user and the email it had
	// before. A change that is unknown, or expires at or before now (it is
	// deleted), gives ErrInvalidEmailChangeToken. When another user has
	// the new address by then, it gives ErrEmailTaken and changes nothing:
	// the change stays pending until it expires. Of concurrent calls for
	// one hash exactly one wins.
	ApplyEmailChange(ctx context.Context, hash [32]byte, now time.Time) (u *User, oldEmail string, err error)
}
