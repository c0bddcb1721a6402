// Package httperror is the one table from sessiond's errors to their HTTP
// answers: a status and a stable code (the contract's error codes, in
// docs/http-api.md) with a message for developers. The JSON API answers
// with it, and the browser pages take the status from it and word the
// message for people by code. Status codes are chosen here and nowhere
// else.
package httperror

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
)

// Error is an error with its HTTP answer.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when positive, is sent as Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Internal reports whether the error is a failure of sessiond or below it
// rather than the client's (5xx): details go to the log only.
func (e *Error) Internal() bool { return e.Status >= 500 }

func newError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// The answers of the HTTP layer's own refusals.
var (
	Unauthenticated  = newError(http.StatusUnauthorized, "unauthenticated", "a valid session is required")
	NotFound         = newError(http.StatusNotFound, "not_found", "no such resource")
	MethodNotAllowed = newError(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this path")
	CrossOrigin      = newError(http.StatusForbidden, "cross_origin", "cross-origin request refused")
	AdminDisabled    = newError(http.StatusForbidden, "admin_disabled", "no admin key is configured")
	InvalidAdminKey  = newError(http.StatusUnauthorized, "invalid_admin_key", "a valid admin key is required")
	AuditDisabled    = newError(http.StatusNotFound, "audit_disabled", "no audit trail is kept")
	WebhooksDisabled = newError(http.StatusNotFound, "webhooks_disabled", "no lifecycle webhook is configured")
	UnsupportedMedia = newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json")
	InvalidBody      = newError(http.StatusBadRequest, "invalid_body", "the body could not be read")
	InternalError    = newError(http.StatusInternalServerError, "internal_error", "internal error")
	Unavailable      = newError(http.StatusServiceUnavailable, "unavailable", "a backing store is unavailable; try again")
)

// InvalidJSON is a body that is not the JSON the route takes; message
// says how, without echoing the input.
func InvalidJSON(message string) *Error {
	return newError(http.StatusBadRequest, "invalid_json", message)
}

// InvalidField is a request field or parameter with a wrong value.
func InvalidField(message string) *Error {
	return newError(http.StatusBadRequest, "invalid_field", message)
}

// UnknownField is a body with a field the route does not take.
func UnknownField(message string) *Error {
	return newError(http.StatusBadRequest, "unknown_field", message)
}

// BodyTooLarge is a body over limit bytes.
func BodyTooLarge(limit int64) *Error {
	return newError(http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body is over %d bytes", limit))
}

// From maps any error to its answer; now is the time a Retry-After counts
// from. Unknown errors are failures below the rules, in practice a store
// that is down or slow: sessiond fails closed with 503, never a pass.
func From(err error, now time.Time) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var locked *account.LockedError
	var limited *flows.RateLimitedError
	switch {
	case errors.Is(err, flows.ErrUnauthenticated):
		return Unauthenticated
	case errors.Is(err, flows.ErrReauthenticationRequired):
		return newError(http.StatusForbidden, "reauthentication_required",
			"this action needs a recent confirmation of your password: POST /v1/session/reauthenticate first")
	case errors.As(err, &limited):
		msg := "too many failed sign-ins from this address; try again later"
		switch {
		case limited.RejectedTokens:
			msg = "too many invalid tokens from this address; try again later"
		case limited.Anonymous:
			msg = "too many new sessions from this address; try again later"
		}
		return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: msg, RetryAfter: limited.RetryAfter}
	case errors.As(err, &locked):
		return &Error{Status: http.StatusTooManyRequests, Code: "account_locked",
			Message: "too many failed sign-in attempts; try again later", RetryAfter: locked.RetryAfter(now)}
	case errors.Is(err, flows.ErrNoSuchSession):
		return NotFound
	case errors.Is(err, flows.ErrInvalidTransport):
		return InvalidField(`transport must be "cookie", "token", "jwt" or "jwt_cookie"`)
	case errors.Is(err, flows.ErrMissingUserID):
		return InvalidField(`"user_id" is required`)
	case errors.Is(err, flows.ErrClientSideOff):
		return newError(http.StatusBadRequest, "jwt_unavailable",
			"client-side sessions are not configured on this server (no key-encryption key)")
	case errors.Is(err, flows.ErrInvalidRefreshToken):
		return newError(http.StatusUnauthorized, "invalid_refresh_token", "the refresh token is invalid, expired or its session ended")
	case errors.Is(err, flows.ErrRefreshTokenReused):
		return newError(http.StatusUnauthorized, "refresh_token_reused", "this refresh token was already used; the session has been ended")
	case errors.Is(err, account.ErrInvalidCredentials):
		return newError(http.StatusUnauthorized, "invalid_credentials", "the email or password is wrong")
	case errors.Is(err, account.ErrWeakPassword):
		return newError(http.StatusBadRequest, "weak_password", strings.TrimPrefix(err.Error(), "account: "))
	case errors.Is(err, account.ErrInvalidEmail):
		return newError(http.StatusBadRequest, "invalid_email", "the email address is not valid")
	case errors.Is(err, account.ErrEmailTaken):
		return newError(http.StatusConflict, "email_taken", "an account with this email exists")
	case errors.Is(err, account.ErrInvalidEmailChangeToken):
		return newError(http.StatusBadRequest, "invalid_token", "the confirmation token is invalid, used, superseded or expired")
	case errors.Is(err, account.ErrEmailUnchanged):
		return newError(http.StatusBadRequest, "email_unchanged", "the new email address is the account's current one")
	case errors.Is(err, account.ErrInvalidResetToken):
		return newError(http.StatusBadRequest, "invalid_token", "the reset token is invalid, used or expired")
	case errors.Is(err, account.ErrInvalidProfile):
		return newError(http.StatusBadRequest, "invalid_profile", strings.TrimPrefix(err.Error(), "account: "))
	case errors.Is(err, account.ErrUserNotFound):
		return newError(http.StatusNotFound, "user_not_found", "no such user")
	case errors.Is(err, sessiond.ErrInvalidKey):
		return newError(http.StatusBadRequest, "invalid_key", "session data keys match [A-Za-z0-9._-]{1,128}")
	case errors.Is(err, sessiond.ErrValueTooLarge):
		return newError(http.StatusRequestEntityTooLarge, "value_too_large", "the value is over the size limit")
	case errors.Is(err, sessiond.ErrDataTooLarge):
		return newError(http.StatusRequestEntityTooLarge, "data_too_large", "the session data would be over its size limit")
	case sessiond.IsRejection(err):
		return Unauthenticated
	case errors.Is(err, context.Canceled):
		return newError(499, "canceled", "the request was canceled")
	}
	return Unavailable
}
