package flows

import (
	"errors"
	"fmt"
	"time"
)

// The errors of the flows. package httperror maps each to its answer.
var (
	// ErrUnauthenticated: the request carries no token of an active
	// session of a user (none, a dead one, an anonymous one where a user
	// is needed, or one whose account is gone).
	ErrUnauthenticated = errors.New("flows: a valid session is required")
	// ErrReauthenticationRequired: a sensitive action in a session whose
	// proof of the password is older than the reauthentication window (or
	// that has none). Nothing changed.
	ErrReauthenticationRequired = errors.New("flows: this action needs a recent confirmation of the password")
	// ErrNoSuchSession: the session named is not an active session of the
	// caller's user (another user's session looks the same).
	ErrNoSuchSession = errors.New("flows: no such session")
	// ErrInvalidTransport: a transport other than cookie, token, jwt and
	// jwt_cookie.
	ErrInvalidTransport = errors.New(`flows: transport must be "cookie", "token", "jwt" or "jwt_cookie"`)
	// ErrClientSideOff: a client-side transport asked of a server without
	// client-side sessions.
	ErrClientSideOff = errors.New("flows: client-side sessions are not configured")
	// ErrInvalidRefreshToken: the refresh token is malformed, forged,
	// expired, or its session ended.
	ErrInvalidRefreshToken = errors.New("flows: the refresh token is invalid, expired or its session ended")
	// ErrRefreshTokenReused: a refresh token was presented again after its
	// grace window: the session was ended.
	ErrRefreshTokenReused = errors.New("flows: the refresh token was already used; the session has been ended")
	// ErrMissingUserID: an administrator's session for no user.
	ErrMissingUserID = errors.New(`flows: "user_id" is required`)
)

// RateLimitedError is the error of a request refused because the client's
// address made too many of its kind: failed sign-ins (or
// reauthentications), new anonymous sessions, or rejected tokens.
type RateLimitedError struct {
	// RetryAfter is how long until the next attempt is allowed.
	RetryAfter time.Duration
	// Anonymous says the limit is that of new anonymous sessions.
	Anonymous bool
	// RejectedTokens says the limit is that of rejected tokens (malformed,
	// unknown, expired, revoked) presented from the address.
	RejectedTokens bool
}

func (e *RateLimitedError) Error() string {
	if e.RejectedTokens {
		return fmt.Sprintf("flows: too many invalid tokens from this address; retry after %v", e.RetryAfter)
	}
	if e.Anonymous {
		return fmt.Sprintf("flows: too many new anonymous sessions from this address; retry after %v", e.RetryAfter)
	}
	return fmt.Sprintf("flows: too many failed sign-ins from this address; retry after %v", e.RetryAfter)
}
