package httperror_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/httperror"
)

// TestFrom holds the table to the contract's codes and statuses, for each
// error as it comes and wrapped.
func TestFrom(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{flows.ErrUnauthenticated, 401, "unauthenticated"},
		{sessiond.ErrNotFound, 401, "unauthenticated"},
		{sessiond.ErrExpired, 401, "unauthenticated"},
		{sessiond.ErrRevoked, 401, "unauthenticated"},
		{sessiond.ErrMalformedToken, 401, "unauthenticated"},
		{flows.ErrReauthenticationRequired, 403, "reauthentication_required"},
		{&flows.RateLimitedError{RetryAfter: 3 * time.Second}, 429, "rate_limited"},
		{&flows.RateLimitedError{RetryAfter: 3 * time.Second, RejectedTokens: true}, 429, "rate_limited"},
		{&account.LockedError{Until: now.Add(time.Minute)}, 429, "account_locked"},
		{flows.ErrNoSuchSession, 404, "not_found"},
		{flows.ErrInvalidTransport, 400, "invalid_field"},
		{flows.ErrMissingUserID, 400, "invalid_field"},
		{flows.ErrClientSideOff, 400, "jwt_unavailable"},
		{flows.ErrInvalidRefreshToken, 401, "invalid_refresh_token"},
		{flows.ErrRefreshTokenReused, 401, "refresh_token_reused"},
		{account.ErrInvalidCredentials, 401, "invalid_credentials"},
		{account.ErrWeakPassword, 400, "weak_password"},
		{account.ErrInvalidEmail, 400, "invalid_email"},
		{account.ErrEmailTaken, 409, "email_taken"},
		{account.ErrInvalidEmailChangeToken, 400, "invalid_token"},
		{account.ErrEmailUnchanged, 400, "email_unchanged"},
		{account.ErrInvalidResetToken, 400, "invalid_token"},
		{account.ErrInvalidProfile, 400, "invalid_profile"},
		{account.ErrUserNotFound, 404, "user_not_found"},
		{sessiond.ErrInvalidKey, 400, "invalid_key"},
		{sessiond.ErrValueTooLarge, 413, "value_too_large"},
		{sessiond.ErrDataTooLarge, 413, "data_too_large"},
		{context.Canceled, 499, "canceled"},
		{errors.New("connection refused"), 503, "unavailable"},
		{context.DeadlineExceeded, 503, "unavailable"},
		{httperror.InvalidJSON("x"), 400, "invalid_json"},
		{httperror.BodyTooLarge(10), 413, "body_too_large"},
		{httperror.CrossOrigin, 403, "cross_origin"},
	} {
		for _, err := range []error{c.err, fmt.Errorf("wrapped: %w", c.err)} {
			e := httperror.From(err, now)
			if e.Status != c.status || e.Code != c.code {
				t.Errorf("From(%v) = %d %s, want %d %s", err, e.Status, e.Code, c.status, c.code)
			}
			if e.Message == "" {
				t.Errorf("From(%v) has no message", err)
			}
			if e.Internal() != (c.status >= 500) {
				t.Errorf("From(%v).Internal() = %v", err, e.Internal())
			}
		}
	}
}

// TestRetryAfter: the wait of a lock counts from the time given, not the
// wall clock.
func TestRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e := httperror.From(&account.LockedError{Until: now.Add(90 * time.Second)}, now)
	if e.RetryAfter != 90*time.Second {
		t.Errorf("RetryAfter %v, want 1m30s", e.RetryAfter)
	}
	if e := httperror.From(&flows.RateLimitedError{RetryAfter: 2 * time.Second}, now); e.RetryAfter != 2*time.Second || e.Status != http.StatusTooManyRequests {
		t.Errorf("rate limited: %+v", e)
	}
}
