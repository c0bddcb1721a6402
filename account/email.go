package account

import (
	"context"
	"errors"
	"time"

	"github.com/sessiond/sessiond"
)

// EmailChangeTokenPrefix starts every confirmation token of a change of
// email.
const EmailChangeTokenPrefix = "sde_"

// EmailChangeCancelPrefix starts every cancellation token of a change of
// email (the one sent to the current address).
const EmailChangeCancelPrefix = "sdx_"

// EmailChangeRequest is a change of email waiting for its confirmation.
type EmailChangeRequest struct {
	// Token confirms the change: for the new address and nobody else.
	Token string
	// CancelToken cancels it: for the current address and nobody else.
	CancelToken string
	// User is the user as it is, with the current address.
	User *User
	// NewEmail is the new address, normalised.
	NewEmail  string
	ExpiresAt time.Time
}

// RequestEmailChange starts a change of the email of the user id to
// newEmail: a confirmation token, which the caller must deliver to the new
// address and nobody else, and a cancellation token for the current
// address, valid until the change expires (EmailChangeTTL). Older pending
// changes of the user stop working. The change takes effect with
// ConfirmEmailChange; CancelEmailChange, or a change or reset of the
// password, voids it.
//
// A malformed address gives ErrInvalidEmail, the current one
// ErrEmailUnchanged, one another account has ErrEmailTaken (checked again
// when the change is applied). A missing user gives ErrUserNotFound.
// Checking that the request comes from the account's owner (a fresh
// session) is the caller's business.
func (s *Service) RequestEmailChange(ctx context.Context, id, newEmail string) (*EmailChangeRequest, error) {
	normalized, err := NormalizeEmail(newEmail)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if u.Email == normalized {
		return nil, ErrEmailUnchanged
	}
	switch _, err := s.store.UserByEmail(ctx, normalized); {
	case err == nil:
		return nil, ErrEmailTaken
	case !errors.Is(err, ErrUserNotFound):
		return nil, err
	}
	token, err := sessiond.NewSecret(s.rand, EmailChangeTokenPrefix)
	if err != nil {
		return nil, err
	}
	cancel, err := sessiond.NewSecret(s.rand, EmailChangeCancelPrefix)
	if err != nil {
		return nil, err
	}
	expiresAt := s.Now().Add(s.cfg.EmailChangeTTL)
	if err := s.store.CreateEmailChange(ctx, id, normalized, sessiond.HashToken(token), sessiond.HashToken(cancel), expiresAt); err != nil {
		return nil, err
	}
	return &EmailChangeRequest{Token: token, CancelToken: cancel, User: public(u), NewEmail: normalized, ExpiresAt: expiresAt}, nil
}

// CancelEmailChange voids the pending change of email whose cancellation
// token this is, and returns its user and the address it would have set.
// A malformed, unknown, used, superseded or expired token gives
// ErrInvalidEmailChangeToken.
func (s *Service) CancelEmailChange(ctx context.Context, cancelToken string) (u *User, newEmail string, err error) {
	if !sessiond.CheckSecret(cancelToken, EmailChangeCancelPrefix) {
		return nil, "", ErrInvalidEmailChangeToken
	}
	userID, newEmail, err := s.store.CancelEmailChange(ctx, sessiond.HashToken(cancelToken), s.Now())
	if err != nil {
		return nil, "", err
	}
	u, err = s.User(ctx, userID)
	if err != nil {
		return nil, "", err
	}
	return u, newEmail, nil
}

// CancelEmailChanges voids every pending change of email of the user id
// and reports whether there was one: a step of every recovery (a change
// or reset of the password, signing out everywhere), so that a change
// requested by someone who held the account cannot be confirmed later.
func (s *Service) CancelEmailChanges(ctx context.Context, id string) (bool, error) {
	return s.store.CancelEmailChanges(ctx, id)
}

// ConfirmEmailChange applies the change of email whose confirmation token
// this is, and returns the user with the new address and the address it
// had before. The token is used up; the user's reset tokens stop working.
// Ending the user's other sessions is the caller's business.
//
// A malformed, unknown, used, superseded or expired token gives
// ErrInvalidEmailChangeToken. When another account took the new address
// in the meantime the answer is ErrEmailTaken and nothing changes.
func (s *Service) ConfirmEmailChange(ctx context.Context, token string) (u *User, oldEmail string, err error) {
	if !sessiond.CheckSecret(token, EmailChangeTokenPrefix) {
		return nil, "", ErrInvalidEmailChangeToken
	}
	u, oldEmail, err = s.store.ApplyEmailChange(ctx, sessiond.HashToken(token), s.Now())
	if err != nil {
		return nil, "", err
	}
	s.users.drop(u.ID)
	return public(u), oldEmail, nil
}
