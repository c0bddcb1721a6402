package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// apiError is an error with its HTTP answer. Handlers return these for
// request-level problems; anything else goes through errorFor.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

var (
	errUnauthenticated = errorf(http.StatusUnauthorized, "unauthenticated", "a valid session is required")
	errNotFound        = errorf(http.StatusNotFound, "not_found", "no such resource")
)

// errorFor maps any error to its HTTP answer. It is the one place where
// errors become statuses; unknown errors are internal and say nothing.
func errorFor(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var locked *account.LockedError
	var limited *RateLimitedError
	switch {
	case errors.Is(err, ErrReauthenticationRequired):
		return errReauthRequired
	case errors.As(err, &limited):
		return &apiError{status: http.StatusTooManyRequests, code: "rate_limited",
			message: "too many failed sign-ins from this address; try again later", retryAfter: limited.RetryAfter}
	case errors.As(err, &locked):
		return &apiError{status: http.StatusTooManyRequests, code: "account_locked",
			message: "too many failed sign-in attempts; try again later", retryAfter: locked.RetryAfter(time.Now())}
	case errors.Is(err, account.ErrInvalidCredentials):
		return errorf(http.StatusUnauthorized, "invalid_credentials", "the email or password is wrong")
	case errors.Is(err, account.ErrWeakPassword):
		return errorf(http.StatusBadRequest, "weak_password", trimPrefix(err.Error(), "account: "))
	case errors.Is(err, account.ErrInvalidEmail):
		return errorf(http.StatusBadRequest, "invalid_email", "the email address is not valid")
	case errors.Is(err, account.ErrEmailTaken):
		return errorf(http.StatusConflict, "email_taken", "an account with this email exists")
	case errors.Is(err, account.ErrInvalidEmailChangeToken):
		return errorf(http.StatusBadRequest, "invalid_token", "the confirmation token is invalid, used, superseded or expired")
	case errors.Is(err, account.ErrEmailUnchanged):
		return errorf(http.StatusBadRequest, "email_unchanged", "the new email address is the account's current one")
	case errors.Is(err, account.ErrInvalidResetToken):
		return errorf(http.StatusBadRequest, "invalid_token", "the reset token is invalid, used or expired")
	case errors.Is(err, account.ErrInvalidProfile):
		return errorf(http.StatusBadRequest, "invalid_profile", trimPrefix(err.Error(), "account: "))
	case errors.Is(err, account.ErrUserNotFound):
		return errorf(http.StatusNotFound, "user_not_found", "no such user")
	case errors.Is(err, sessiond.ErrInvalidKey):
		return errorf(http.StatusBadRequest, "invalid_key", "session data keys match [A-Za-z0-9._-]{1,128}")
	case errors.Is(err, sessiond.ErrValueTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "value_too_large", "the value is over the size limit")
	case errors.Is(err, sessiond.ErrDataTooLarge):
		return errorf(http.StatusRequestEntityTooLarge, "data_too_large", "the session data would be over its size limit")
	case sessiond.IsRejection(err):
		return errUnauthenticated
	case errors.Is(err, context.Canceled):
		return errorf(499, "canceled", "the request was canceled")
	}
	// Everything else is a failure below the rules, in practice a store
	// that is down or slow. sessiond fails closed: 503, never a pass.
	return errorf(http.StatusServiceUnavailable, "unavailable", "a backing store is unavailable; try again")
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// writeError answers with the JSON error body of err, logging internal
// errors (never a request body, token or password: only err itself).
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := errorFor(err)
	if ae.status >= 500 {
		s.log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "status", ae.status, "err", err)
	} else if ae.status == http.StatusTooManyRequests {
		s.log.InfoContext(r.Context(), "request refused", "route", r.Pattern, "code", ae.code, "ip", s.clientIP(r))
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(ae.retryAfter)))
	}
	writeErrorBody(w, ae.status, ae.code, ae.message)
}

func retrySeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}
