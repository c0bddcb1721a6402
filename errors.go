package sessiond

import "errors"

// Sentinel errors. Callers test for them with errors.Is; stores and the
// Manager may wrap them with more context.
var (
	// ErrMalformedToken: the text is not a sessiond token (wrong prefix,
	// length, alphabet or checksum). It is found without a store lookup.
	ErrMalformedToken = errors.New("sessiond: malformed token")

	// ErrNotFound: no session matches the token or id. Stores return it for
	// a missing record; the Manager also returns it for a token whose
	// session exists under another token (it was rotated).
	ErrNotFound = errors.New("sessiond: session not found")

	// ErrExpired: the session's idle or absolute deadline has passed.
	ErrExpired = errors.New("sessiond: session expired")

	// ErrRevoked: the session was ended (logout, Force Logout, admin, ...).
	ErrRevoked = errors.New("sessiond: session revoked")

	// ErrInvalidKey: a session data key does not match [A-Za-z0-9._-]{1,128}.
	ErrInvalidKey = errors.New("sessiond: invalid data key")

	// ErrValueTooLarge: one session data value is over Policy.MaxValueBytes.
	ErrValueTooLarge = errors.New("sessiond: session data value too large")

	// ErrDataTooLarge: the write would take a session's data (keys and
	// values together) over Policy.MaxDataBytes. Nothing was written.
	ErrDataTooLarge = errors.New("sessiond: session data too large")

	// ErrCredentialsChanged: Create was asked to require a revocation
	// generation of the user (CreateParams.Generation,
	// CreateOptions.ExpectGeneration) that is no longer current: the
	// user's sessions were all ended (RevokeByUser: a password change or
	// reset, "sign out everywhere", an administrator's Force Logout) after
	// the caller read the generation, so the credentials the caller checked
	// may be the ones that were just replaced. Nothing was created. Answer
	// it as a wrong password.
	ErrCredentialsChanged = errors.New("sessiond: credentials changed during sign-in")

	// ErrInvalidPolicy: a Policy field is out of range.
	ErrInvalidPolicy = errors.New("sessiond: invalid policy")
)
