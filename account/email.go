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

// RequestEmailChange starts a change of the email of the user id to
// newEmail: it returns a confirmation token, which the caller must deliver
// to the new address and nobody else, with the user (as it is, with the
// old address), the normalised new address and the token's expiry
// (EmailChangeTTL). Older pending changes of the user stop working. The
// change takes effect with ConfirmEmailChange.
//
// A malformed address gives ErrInvalidEmail, the current one
// ErrEmailUnchanged, one another account has ErrEmailTaken (checked again
// when the change is applied). A missing user gives ErrUserNotFound.
// Checking that the request comes from the account's owner (a fresh
// session) is the caller's business.
func (s *Service) RequestEmailChange(ctx context.Context, id, newEmail string) (token string, u *User, normalized string, expiresAt time.Time, err error) {
	normalized, err = NormalizeEmail(newEmail)
	if err != nil {
		return "", nil, "", time.Time{}, err
	}
	u, err = s.store.UserByID(ctx, id)
	if err != nil {
		return "", nil, "", time.Time{}, err
	}
	if u.Email == normalized {
		return "", nil, "", time.Time{}, ErrEmailUnchanged
	}
	switch _, err := s.store.UserByEmail(ctx, normalized); {
	case err == nil:
		return "", nil, "", time.Time{}, ErrEmailTaken
	case !errors.Is(err, ErrUserNotFound):
		return "", nil, "", time.Time{}, err
	}
	token, err = sessiond.NewSecret(s.rand, EmailChangeTokenPrefix)
	if err != nil {
		return "", nil, "", time.Time{}, err
	}
	expiresAt = s.Now().Add(s.cfg.EmailChangeTTL)
	if err := s.store.CreateEmailChange(ctx, id, normalized, sessiond.HashToken(token), expiresAt); err != nil {
		return "", nil, "", time.Time{}, err
	}
	return token, public(u), normalized, expiresAt, nil
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
