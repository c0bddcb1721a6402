package account

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/sessiond/sessiond"
)

// Email addresses and look-alikes.
//
// An account is stored and found under the normalised form of its email
// (NormalizeEmail): trimmed, in Unicode's compatibility form NFKC and in
// lower case. NFKC folds the characters that are another's compatibility
// variant, so "ａda@example.com" (fullwidth), "ada@example.com" and
// "ADA@EXAMPLE.COM" are one address.
//
// NFKC does not fold characters of other scripts that merely look alike:
// "ada@exаmple.com" with a Cyrillic "а" stays a different address, and so
// would its IDNA (UTS #46) form, the distinct domain xn--exmple-4nf.com.
// Telling such look-alikes apart needs Unicode's confusables data and a
// mixed-script policy, and still leaves whole-script look-alikes; so a new
// address (registration, change of email) must be ASCII once normalised,
// and any other is refused with ErrInvalidEmail. An internationalised
// domain can still be used in its ASCII (xn--) form. Accounts stored
// before this rule, which may be non-ASCII or not NFKC, are still found:
// a lookup that finds nothing under the normalised form tries the form
// they were stored under (trimmed and in lower case only).

// MaxEmailLength is the longest email accepted, in bytes (RFC 5321's
// limit on a forward path, less the angle brackets).
const MaxEmailLength = 254

// NormalizeEmail returns s trimmed of surrounding space, in NFKC and in
// lower case, which is the form stored and compared, or ErrInvalidEmail
// (wrapped with the reason) when it is not a plausible address: exactly
// one @, a local part of 1 to 64 bytes, no display name, comment or
// quoting, at most MaxEmailLength bytes, and a domain of at least two
// dot-separated labels of letters, digits and inner hyphens whose last
// label is not all digits. Addresses without a dot in the domain
// (user@localhost) and IP literals are refused: nobody signs up with
// them. It accepts non-ASCII addresses, so that accounts stored before
// they were refused can be found; a new address must also pass
// newEmail's check.
func NormalizeEmail(s string) (string, error) {
	bad := func(why string) (string, error) { return "", fmt.Errorf("%w: %s", ErrInvalidEmail, why) }
	if !utf8.ValidString(s) {
		return bad("not UTF-8") // checked first: ToLower would mend it
	}
	e := strings.TrimSpace(s)
	if len(e) > 4*MaxEmailLength {
		return bad(fmt.Sprintf("longer than %d characters", MaxEmailLength)) // before normalising it
	}
	e = norm.NFKC.String(strings.ToLower(norm.NFKC.String(e)))
	switch {
	case e == "":
		return bad("empty")
	case len(e) > MaxEmailLength:
		return bad(fmt.Sprintf("longer than %d characters", MaxEmailLength))
	case strings.ToLower(e) != e:
		return bad("no stable lower-case form") // so that the form is a fixed point
	case strings.Count(e, "@") != 1:
		return bad("must contain exactly one @")
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) || strings.ContainsRune(`"()<>,;:\[]`, r) {
			return bad(fmt.Sprintf("must not contain %q", r))
		}
	}
	local, domain, _ := strings.Cut(e, "@")
	if local == "" || len(local) > 64 {
		return bad("the part before @ must have 1 to 64 characters")
	}
	addr, err := mail.ParseAddress(e)
	if err != nil || addr.Name != "" || addr.Address != e {
		return bad("not an email address")
	}
	if err := checkDomain(domain); err != nil {
		return bad(err.Error())
	}
	return e, nil
}

// newEmail is NormalizeEmail for an address about to be stored: it must
// also be ASCII once normalised, or ErrInvalidEmail (see "Email addresses
// and look-alikes" above).
func newEmail(s string) (string, error) {
	e, err := NormalizeEmail(s)
	if err != nil {
		return "", err
	}
	for _, r := range e {
		if r >= utf8.RuneSelf {
			return "", fmt.Errorf("%w: must be ASCII (an internationalised domain in its xn-- form): %q could be mistaken for another character", ErrInvalidEmail, r)
		}
	}
	return e, nil
}

// userByEmail returns the user of the address typed as raw, whose
// normalised form is normalized: stored under normalized, or else under
// the form of accounts stored before NFKC (trimmed and in lower case).
func (s *Service) userByEmail(ctx context.Context, raw, normalized string) (*User, error) {
	u, err := s.store.UserByEmail(ctx, normalized)
	if !errors.Is(err, ErrUserNotFound) {
		return u, err
	}
	if legacy := strings.ToLower(strings.TrimSpace(raw)); legacy != normalized {
		return s.store.UserByEmail(ctx, legacy)
	}
	return nil, err
}

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
// A malformed or non-ASCII address gives ErrInvalidEmail, the current one
// ErrEmailUnchanged, one another account has ErrEmailTaken (checked again
// when the change is applied). A missing user gives ErrUserNotFound.
// Checking that the request comes from the account's owner (a fresh
// session) is the caller's business.
func (s *Service) RequestEmailChange(ctx context.Context, id, email string) (*EmailChangeRequest, error) {
	normalized, err := newEmail(email)
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
