package sessiond

import (
	"context"
	"time"
)

// Store keeps sessions. It is deliberately dumb: it keeps records and
// applies the few changes that must be atomic; every rule (lifetimes,
// sliding, limits, token format) lives in the Manager.
//
// The contract every implementation meets, checked by package storetest:
//
//   - A session is active at time t when it is not revoked and both its
//     deadlines are after t. Methods that take a time use it as "now".
//   - Missing records give ErrNotFound, never (nil, nil). Any other error is
//     a failure of the store itself (unreachable, timed out, corrupt) and
//     callers must treat the session as unknown: sessiond fails closed.
//   - A method returns only after its change is durable to the store's own
//     standard (fsync'd for SQLite and PostgreSQL): an acknowledged
//     revocation survives a crash.
//   - Every method is safe for concurrent use.
//   - Returned sessions are the caller's to keep: the store holds no
//     reference to them, and the caller may not change the store's copy
//     through them.
//
// Expired and revoked records may linger until DeleteExpired runs; callers
// check Session.Check, so lingering records are never taken for live ones.
type Store interface {
	// Create stores s, a new session with a unique ID and TokenHash. s.Data
	// holds its initial data (may be nil). s.CreatedAt is "now" for the
	// side effects below.
	//
	// When opts.Replace names an active session, that session is revoked
	// with opts.ReplaceReason in the same atomic step, and with
	// opts.CarryData its data is copied into s first (s.Data wins on
	// equal keys). A Replace id that is not active is ignored.
	//
	// When opts.MaxPerUser > 0 and s has a user, the user's least recently
	// used active sessions are revoked with ReasonLimit, in the same atomic
	// step, so that at most MaxPerUser remain including s. "Least recently
	// used" orders by LastSeenAt, then by ID, both ascending.
	//
	// When opts.ExpectGeneration is set and s has a user, Create first
	// compares the user's revocation generation (UserGeneration) with it,
	// in the same atomic step as the insert: when they differ nothing
	// changes and the error is ErrCredentialsChanged. A RevokeByUser for
	// the user is thus either before the Create (which is refused, if the
	// generation was read before the revocation) or after it (and ends the
	// new session).
	//
	// Carried data is not held to a size limit: the Manager never passes
	// initial data and CarryData together.
	Create(ctx context.Context, s *Session, opts CreateOptions) error

	// ByTokenHash returns the session whose current token hashes to h,
	// revoked and expired ones included, without its Data.
	ByTokenHash(ctx context.Context, h TokenHash) (*Session, error)

	// ByID returns the session with the given id, revoked and expired ones
	// included, without its Data.
	ByID(ctx context.Context, id string) (*Session, error)

	// ListByUser returns the user's sessions active at now, the most
	// recently used (LastSeenAt) first, without their Data.
	ListByUser(ctx context.Context, userID string, now time.Time) ([]*Session, error)

	// Touch records use of sessions: each one's LastSeenAt and
	// IdleExpiresAt are set to the given values when they are later than the
	// stored ones. Sessions that are missing, revoked, or already expired at
	// the touch's LastSeenAt (a deadline at or before it) are skipped without
	// an error, so a late touch never revives an ended session. A batch is
	// applied as a whole or not at all.
	Touch(ctx context.Context, touches []Touch) error

	// Rotate replaces the token of the session id, active at now, from old
	// to new. Only one of several concurrent rotations from the same old
	// hash succeeds; the others, and any call for a session that is not
	// active or whose token is no longer old, get ErrNotFound. From the
	// moment Rotate returns, ByTokenHash(old) finds nothing. In the same
	// atomic step it sets PrevTokenHash to old and RotatedAt to now.
	Rotate(ctx context.Context, id string, old, new TokenHash, now time.Time) error

	// Reauthenticate records a fresh proof of the password in the session
	// id: in one atomic step it replaces the token from old to new, as
	// Rotate does, and sets AuthenticatedAt to at, which is also "now" for
	// the activity check. The rules of Rotate hold: only one of several
	// concurrent calls from the same old hash succeeds, the others and any
	// call for a session that is not active at at or whose token is no
	// longer old get ErrNotFound (and change nothing), and from the moment
	// it returns ByTokenHash(old) finds nothing. The new token starts a new
	// chain: PrevTokenHash becomes zero and RotatedAt at.
	Reauthenticate(ctx context.Context, id string, old, new TokenHash, at time.Time) error

	// Revoke ends the session id, active at now, recording now and reason.
	// It returns ErrNotFound when there is no such active session.
	Revoke(ctx context.Context, id string, now time.Time, reason string) error

	// RevokeByUser ends every session of the user that is active at now,
	// except the session exceptID (may be empty), and returns how many
	// it ended. It is one atomic step: a session of the user created
	// before it started is either ended or was the exception. In the same
	// step it advances the user's revocation generation by one, also when
	// it ends no session.
	RevokeByUser(ctx context.Context, userID, exceptID string, now time.Time, reason string) (int, error)

	// UserGeneration returns the user's revocation generation: how many
	// times RevokeByUser ran for the user, 0 for a user it never ran for.
	// It only grows, so a caller that reads it before checking the user's
	// credentials and passes it to Create (CreateOptions.ExpectGeneration)
	// never starts a session that a revocation in between should have
	// ended. The generation is kept by the session store, with the
	// sessions, whatever store keeps the accounts.
	UserGeneration(ctx context.Context, userID string) (uint64, error)

	// Data returns the session's data (an empty, non-nil map when it has
	// none). It returns ErrNotFound for a session that is not active at now.
	Data(ctx context.Context, id string, now time.Time) (map[string][]byte, error)

	// SetData sets one key of an active session's data. Writes to different
	// keys never lose each other, whatever their concurrency. When the
	// data's size afterwards (the sum of len(key)+len(value) over all keys)
	// would be over maxBytes, nothing is written and the error is
	// ErrDataTooLarge.
	SetData(ctx context.Context, id, key string, value []byte, maxBytes int, now time.Time) error

	// DeleteData removes one key of an active session's data; a missing key
	// is not an error.
	DeleteData(ctx context.Context, id, key string, now time.Time) error

	// DeleteExpired removes up to limit sessions whose earlier deadline is
	// at or before now (revoked ones included, since they expire too) and
	// returns how many it removed. Callers loop while it returns limit.
	DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error)
}

// CreateOptions are the atomic side effects of Store.Create.
type CreateOptions struct {
	// MaxPerUser > 0 caps the user's active sessions (see Store.Create).
	MaxPerUser int
	// Replace is the id of a session that the new one replaces (login from
	// an anonymous session, or over an older one); empty for none.
	Replace string
	// ReplaceReason is recorded on the replaced session.
	ReplaceReason string
	// CarryData copies the replaced session's data into the new one.
	CarryData bool
	// ExpectGeneration, when not nil, is the revocation generation of the
	// session's user that the caller read before checking its credentials
	// (Store.UserGeneration): Create refuses with ErrCredentialsChanged
	// when it is no longer the user's. Default nil: no check. Ignored for
	// an anonymous session.
	ExpectGeneration *uint64
}

// Touch is one session's use, for Store.Touch.
type Touch struct {
	ID            string
	LastSeenAt    time.Time
	IdleExpiresAt time.Time
}
