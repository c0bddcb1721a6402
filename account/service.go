package account

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
)

// ErrInvalidConfig: a Config field is out of range.
var ErrInvalidConfig = errors.New("account: invalid config")

// ResetTokenPrefix starts every password-reset token.
const ResetTokenPrefix = "sdp_"

// Config defaults, as documented on the fields.
const (
	DefaultLockoutThreshold   = 5
	DefaultLockoutDuration    = time.Minute
	DefaultLockoutMaxDuration = time.Hour
	DefaultResetTokenTTL      = 30 * time.Minute
	DefaultEmailChangeTTL     = time.Hour
	DefaultMaxProfileBytes    = 16 << 10
)

// Config holds the account rules. The zero value of every field means its
// documented default, so Config{} is the configuration of a stock sessiond.
type Config struct {
	// PasswordMinLength is the fewest characters of a new password.
	// Default 8.
	PasswordMinLength int
	// PasswordMaxBytes is the most bytes of a new password, at most
	// MaxPasswordBytes. Default 256 (see DefaultPasswordMaxBytes).
	PasswordMaxBytes int

	// LockoutThreshold is how many consecutive failed password checks lock
	// an account. Default DefaultLockoutThreshold; negative switches
	// lockout off, as LockoutOff does.
	LockoutThreshold int
	// LockoutOff switches lockout off. Default false.
	LockoutOff bool
	// LockoutDuration is how long the first lock lasts; each further lock
	// before a successful sign-in lasts twice the one before. Default 1m.
	LockoutDuration time.Duration
	// LockoutMaxDuration caps the length of a lock. Default 1h.
	LockoutMaxDuration time.Duration

	// ResetTokenTTL is how long a password-reset token is valid.
	// Default 30m.
	ResetTokenTTL time.Duration
	// EmailChangeTTL is how long the confirmation token of a change of
	// email is valid. Default 1h.
	EmailChangeTTL time.Duration

	// MaxProfileBytes caps a user's profile, as compact JSON.
	// Default 16 KiB.
	MaxProfileBytes int

	// HashParams are the argon2id parameters of new password hashes.
	// Default DefaultHashParams (OWASP's m=19456 KiB, t=2, p=1). Hashes
	// with weaker parameters are upgraded at the next sign-in. Anything
	// below the default is for tests only.
	HashParams HashParams
	// HashConcurrency is how many password hashes run at once; the others
	// wait. Default DefaultHashConcurrency(): half of GOMAXPROCS, at
	// least 1.
	HashConcurrency int
	// HashStormShare is the share of the hash slots' CPU time that
	// password hashing may take while logins queue for a slot (see
	// Hasher.SetStormShare): the rest stays with session validation.
	// Default DefaultHashStormShare; 1 lets a storm take the slots whole.
	HashStormShare float64
}

// DefaultHashStormShare is Config.HashStormShare's default.
const DefaultHashStormShare = 0.5

func (c Config) withDefaults() (Config, error) {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&c.PasswordMinLength, DefaultPasswordMinLength)
	setInt(&c.PasswordMaxBytes, DefaultPasswordMaxBytes)
	setInt(&c.LockoutThreshold, DefaultLockoutThreshold)
	if c.LockoutOff {
		c.LockoutThreshold = -1
	}
	setDur(&c.LockoutDuration, DefaultLockoutDuration)
	setDur(&c.LockoutMaxDuration, DefaultLockoutMaxDuration)
	setDur(&c.ResetTokenTTL, DefaultResetTokenTTL)
	setDur(&c.EmailChangeTTL, DefaultEmailChangeTTL)
	setInt(&c.MaxProfileBytes, DefaultMaxProfileBytes)
	c.HashParams = c.HashParams.withDefaults()
	setInt(&c.HashConcurrency, DefaultHashConcurrency())
	if c.HashStormShare == 0 {
		c.HashStormShare = DefaultHashStormShare
	}

	bad := func(format string, args ...any) (Config, error) {
		return c, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...)
	}
	switch {
	case c.PasswordMinLength < 1:
		return bad("PasswordMinLength must be at least 1, got %d", c.PasswordMinLength)
	case c.PasswordMaxBytes < c.PasswordMinLength || c.PasswordMaxBytes > MaxPasswordBytes:
		return bad("PasswordMaxBytes must be in [PasswordMinLength, %d], got %d", MaxPasswordBytes, c.PasswordMaxBytes)
	case c.LockoutDuration < time.Second:
		return bad("LockoutDuration must be at least 1s, got %v", c.LockoutDuration)
	case c.LockoutMaxDuration < c.LockoutDuration:
		return bad("LockoutMaxDuration %v is shorter than LockoutDuration %v", c.LockoutMaxDuration, c.LockoutDuration)
	case c.ResetTokenTTL < time.Second:
		return bad("ResetTokenTTL must be at least 1s, got %v", c.ResetTokenTTL)
	case c.EmailChangeTTL < time.Second:
		return bad("EmailChangeTTL must be at least 1s, got %v", c.EmailChangeTTL)
	case c.MaxProfileBytes < len("{}"):
		return bad("MaxProfileBytes must be at least 2, got %d", c.MaxProfileBytes)
	case c.HashConcurrency < 1:
		return bad("HashConcurrency must be at least 1, got %d", c.HashConcurrency)
	case !(c.HashStormShare > 0 && c.HashStormShare <= 1):
		return bad("HashStormShare must be in (0, 1], got %v", c.HashStormShare)
	}
	if err := c.HashParams.check(); err != nil {
		return bad("HashParams: %v", err)
	}
	return c, nil
}

// lockDuration is the length of the n-th lock (n >= 1). The doubling
// stops at LockoutMaxDuration before it could overflow: a lock that
// wrapped to a negative length would be no lock at all.
func (c *Config) lockDuration(n int) time.Duration {
	d := c.LockoutDuration
	for i := 1; i < n && d < c.LockoutMaxDuration; i++ {
		if d > c.LockoutMaxDuration/2 {
			return c.LockoutMaxDuration
		}
		d *= 2
	}
	return min(d, c.LockoutMaxDuration)
}

// LockedError is the error of a password check on a locked account.
// errors.Is(err, ErrLocked) holds for it.
type LockedError struct {
	// Until is when the lock ends.
	Until time.Time
}

func (e *LockedError) Error() string {
	return "account: account locked until " + e.Until.UTC().Format(time.RFC3339)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// RetryAfter returns how long after now the lock ends, rounded up to a
// whole second and at least one second: the value of a Retry-After header.
func (e *LockedError) RetryAfter(now time.Time) time.Duration {
	d := e.Until.Sub(now)
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return max(d, time.Second)
}

// Service applies the account rules over a Store: registration, sign-in
// with lockout, password changes and resets, profiles and deletion. It is
// safe for concurrent use and keeps no state besides its configuration and
// timing statistics, so any number of Services may share a store.
//
// Users returned by a Service never carry their PasswordHash.
type Service struct {
	store  Store
	cfg    Config
	policy PasswordPolicy
	hasher *Hasher
	now    func() time.Time
	rand   io.Reader
	log    *slog.Logger
	onLock func(ctx context.Context, userID string, until time.Time)
	users  *userCache // nil: no cache (WithUserCache)

	// Average time of the store work that only known users cause, waited
	// out for unknown ones; see pad.
	lockoutCost, resetCost latency
}

// Option configures a Service's collaborators.
type Option func(*Service)

// WithClock sets the Service's clock. Default time.Now.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRand sets the source of ids, salts and reset tokens; it must be safe
// for concurrent use. Default crypto/rand.Reader. Anything but a CSPRNG is
// only for tests.
func WithRand(r io.Reader) Option { return func(s *Service) { s.rand = r } }

// WithLogger sets where the Service reports failures it does not return
// (a failed hash upgrade at sign-in). Default: nowhere. It never logs a
// password, hash or token.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithLockObserver sets a func that is told each time failed password
// checks lock an account (once per lock, when it starts), with the user and
// the end of the lock; for an audit trail. It runs in the request that
// caused the lock, with its ctx, and must return quickly. Default: none.
func WithLockObserver(fn func(ctx context.Context, userID string, until time.Time)) Option {
	return func(s *Service) { s.onLock = fn }
}

// NewService returns a Service over store with cfg (zero fields take their
// defaults). It returns ErrInvalidConfig for a field out of range.
func NewService(store Store, cfg Config, opts ...Option) (*Service, error) {
	if store == nil {
		return nil, errors.New("account: NewService: nil store")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Service{
		store:  store,
		cfg:    cfg,
		policy: PasswordPolicy{MinLength: cfg.PasswordMinLength, MaxBytes: cfg.PasswordMaxBytes},
		now:    time.Now,
		rand:   rand.Reader,
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hasher, err = NewHasher(cfg.HashParams, cfg.HashConcurrency, s.rand); err != nil {
		return nil, err
	}
	if err := s.hasher.SetStormShare(cfg.HashStormShare); err != nil {
		return nil, err
	}
	return s, nil
}

// Config returns the Service's configuration with defaults filled in.
func (s *Service) Config() Config { return s.cfg }

// Hasher returns the Service's password hasher.
func (s *Service) Hasher() *Hasher { return s.hasher }

// Now returns the Service's idea of the current time, in UTC and truncated
// to the microsecond, the finest precision every store keeps.
func (s *Service) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// CheckPassword applies the password policy to a new password for the
// account with email; see PasswordPolicy.Check.
func (s *Service) CheckPassword(password, email string) error {
	return s.policy.Check(password, email)
}

// Register creates an account. The email is normalised and must be ASCII
// then (ErrInvalidEmail; see "Email addresses and look-alikes"),
// the password must pass the policy (ErrWeakPassword), and profile must be
// a JSON object of at most MaxProfileBytes or nil for "{}"
// (ErrInvalidProfile). It returns ErrEmailTaken when the email is in use.
func (s *Service) Register(ctx context.Context, email, password string, profile []byte) (*User, error) {
	email, err := newEmail(email)
	if err != nil {
		return nil, err
	}
	if err := s.policy.Check(password, email); err != nil {
		return nil, err
	}
	profile, err = s.normalizeProfile(profile)
	if err != nil {
		return nil, err
	}
	// Spare the hash when the answer is known already; the store has the
	// last word below. (A taken email is no secret: registration says so.)
	switch _, err := s.store.UserByEmail(ctx, email); {
	case err == nil:
		return nil, ErrEmailTaken
	case !errors.Is(err, ErrUserNotFound):
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return nil, err
	}
	id, err := sessiond.NewID(s.rand)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	u := &User{
		ID:                id,
		Email:             email,
		PasswordHash:      hash,
		Profile:           profile,
		CreatedAt:         now,
		UpdatedAt:         now,
		PasswordChangedAt: now,
	}
	if err := s.store.CreateUser(ctx, u); err != nil {
		return nil, err
	}
	return public(u), nil
}

// CreateUser creates an account for an operator (the command line). It is
// Register under another name.
func (s *Service) CreateUser(ctx context.Context, email, password string, profile []byte) (*User, error) {
	return s.Register(ctx, email, password, profile)
}

// Authenticate signs a user in by email and password.
//
// An unknown (or malformed) email and a wrong password both give
// ErrInvalidCredentials, after the same work: an unknown email is checked
// against a dummy hash, and the store write that a known user's failure
// causes is waited out too.
//
// Lockout: every failed check, here and in VerifyPassword, ChangePassword
// and Delete, counts. The check that brings the count to LockoutThreshold
// still answers ErrInvalidCredentials, and locks the account for
// LockoutDuration, doubled for each earlier lock since the last success, at
// most LockoutMaxDuration; the count starts again from zero. While the
// account is locked every check, with the right password too, gives a
// *LockedError (errors.Is(err, ErrLocked)) and is not counted. A success
// clears the count and the lock history.
//
// A password whose hash has weaker parameters than the configured ones is
// rehashed on success.
func (s *Service) Authenticate(ctx context.Context, email, password string) (*User, error) {
	norm, err := NormalizeEmail(email)
	var u *User
	if err == nil {
		u, err = s.userByEmail(ctx, email, norm)
	}
	switch {
	case err == nil:
		if err := s.checkPassword(ctx, u, password); err != nil {
			if errors.Is(err, ErrUserNotFound) { // deleted meanwhile
				return nil, ErrInvalidCredentials
			}
			return nil, err
		}
		return public(u), nil
	case errors.Is(err, ErrUserNotFound) || errors.Is(err, ErrInvalidEmail):
		if err := s.hasher.VerifyDummy(ctx, password); err != nil {
			return nil, err
		}
		if s.lockoutOn() {
			if err := s.lockoutCost.pad(ctx); err != nil {
				return nil, err
			}
		}
		return nil, ErrInvalidCredentials
	default:
		return nil, err
	}
}

// VerifyPassword checks the password of the user id, before a change of
// password or a deletion. A wrong password gives ErrInvalidCredentials and
// counts toward lockout as in Authenticate; a locked account gives a
// *LockedError. A missing user gives ErrUserNotFound.
func (s *Service) VerifyPassword(ctx context.Context, id, password string) (*User, error) {
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.checkPassword(ctx, u, password); err != nil {
		return nil, err
	}
	return public(u), nil
}

func (s *Service) lockoutOn() bool { return s.cfg.LockoutThreshold > 0 }

// checkPassword verifies password against u's hash and records the outcome
// in u's lockout state. After an upgrade of the hash, u has the new one.
func (s *Service) checkPassword(ctx context.Context, u *User, password string) error {
	ok, rehash, err := s.hasher.Verify(ctx, u.PasswordHash, password)
	if err != nil {
		if errors.Is(err, ErrInvalidHash) {
			return fmt.Errorf("account: stored hash of user %s: %w", u.ID, err)
		}
		return err
	}
	if s.lockoutOn() {
		now := s.Now()
		start := time.Now()
		var lockedUntil, newLock time.Time
		_, err := s.store.UpdateLockout(ctx, u.ID, func(l Lockout) Lockout {
			// Retry-safe: the outcome depends on l alone.
			lockedUntil, newLock = time.Time{}, time.Time{}
			switch {
			case now.Before(l.LockedUntil):
				lockedUntil = l.LockedUntil
				return l
			case ok:
				return Lockout{}
			}
			l.Failures++
			if l.Failures >= s.cfg.LockoutThreshold {
				l.Locks++
				l.Failures = 0
				l.LockedUntil = now.Add(s.cfg.lockDuration(l.Locks))
				newLock = l.LockedUntil
			}
			return l
		})
		if err != nil {
			return err
		}
		if !newLock.IsZero() && s.onLock != nil {
			s.onLock(ctx, u.ID, newLock)
		}
		if !ok {
			s.lockoutCost.observe(time.Since(start))
		}
		if !lockedUntil.IsZero() {
			return &LockedError{Until: lockedUntil}
		}
	}
	if !ok {
		return ErrInvalidCredentials
	}
	if rehash {
		s.upgradeHash(ctx, u, password)
	}
	return nil
}

// upgradeHash replaces u's hash with one of the current parameters, unless
// it changed meanwhile. Failure is logged, not returned: the sign-in stands.
func (s *Service) upgradeHash(ctx context.Context, u *User, password string) {
	hash, err := s.hasher.Hash(ctx, password)
	var swapped bool
	if err == nil {
		swapped, err = s.store.SetPasswordHash(ctx, u.ID, hash, u.PasswordHash, s.Now())
		s.users.drop(u.ID)
	}
	if swapped {
		u.PasswordHash = hash
	}
	if err != nil {
		s.log.WarnContext(ctx, "account: upgrading password hash", "user_id", u.ID, "err", err)
	}
}

// ChangePassword sets a new password for the user id after checking the
// current one (which counts toward lockout as in Authenticate:
// ErrInvalidCredentials, *LockedError). The new password must pass the
// policy (ErrWeakPassword). It fails with ErrInvalidCredentials, too, when
// the password was changed by someone else between the check and the
// change. Outstanding reset tokens stop working. Ending the user's other
// sessions is the caller's business.
func (s *Service) ChangePassword(ctx context.Context, id, current, newPassword string) (*User, error) {
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.checkPassword(ctx, u, current); err != nil {
		return nil, err
	}
	if err := s.policy.Check(newPassword, u.Email); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	// Only over the hash just checked: a password changed meanwhile (by a
	// reset, say) is not overridden by someone who knew the old one.
	changed, err := s.store.SetPasswordHash(ctx, id, hash, u.PasswordHash, now)
	s.users.drop(id)
	if err != nil {
		return nil, err
	}
	if !changed {
		return nil, ErrInvalidCredentials
	}
	u.PasswordChangedAt, u.UpdatedAt = now, now
	return public(u), nil
}

// RequestReset starts a password reset for the account with email. For a
// known email it returns a new reset token, which the caller must deliver
// to the user and nobody else, with its user and expiry; older tokens of
// the user stop working. For an unknown email it returns ("", nil, zero
// time, nil) after about the same work, so that the answer can be the
// same. A malformed email gives ErrInvalidEmail.
func (s *Service) RequestReset(ctx context.Context, email string) (token string, u *User, expiresAt time.Time, err error) {
	r, err := s.requestReset(ctx, email, "", nil, nil)
	return r.Token, r.User, r.ExpiresAt, err
}

// RequestResetThen is RequestReset that, for a known email, also calls
// then with the token, the user and the expiry before it returns, within
// the time an unknown email is padded to: the caller's handing over of the
// token (a write into a durable queue) then costs the same whether or not
// the account exists. then may be nil.
func (s *Service) RequestResetThen(ctx context.Context, email string, then func(ctx context.Context, token string, u *User, expiresAt time.Time)) (token string, u *User, expiresAt time.Time, err error) {
	r, err := s.requestReset(ctx, email, "", nil, then)
	return r.Token, r.User, r.ExpiresAt, err
}

// ResetRequest is what RequestResetFrom did.
type ResetRequest struct {
	// Token is the new reset token, which the caller must deliver to User
	// and nobody else; empty when none was issued.
	Token string
	// User is the account; nil for an unknown email.
	User *User
	// ExpiresAt is when Token stops working.
	ExpiresAt time.Time
	// Limited says the account is known but over its limit of reset
	// requests: no token was issued.
	Limited bool
}

// RequestResetFrom is RequestResetThen for a request from the client key
// from (an address, an IPv6 /64), held to l: the request is counted in the
// store, which every node shares, and a known account over the limit gets
// no token (Limited), after the same padding as an unknown email. Unknown
// emails are not counted.
func (s *Service) RequestResetFrom(ctx context.Context, email, from string, l ResetLimit, then func(ctx context.Context, token string, u *User, expiresAt time.Time)) (ResetRequest, error) {
	return s.requestReset(ctx, email, from, &l, then)
}

// requestReset is RequestResetThen, and with l non-nil RequestResetFrom.
func (s *Service) requestReset(ctx context.Context, email, from string, l *ResetLimit, then func(ctx context.Context, token string, u *User, expiresAt time.Time)) (ResetRequest, error) {
	normalized, err := NormalizeEmail(email)
	if err != nil {
		return ResetRequest{}, err
	}
	u, err := s.userByEmail(ctx, email, normalized)
	switch {
	case errors.Is(err, ErrUserNotFound):
		// Do the same token work as for a known user, and wait out the
		// store write.
		if _, _, err := s.newResetToken(); err != nil {
			return ResetRequest{}, err
		}
		if err := s.resetCost.pad(ctx); err != nil {
			return ResetRequest{}, err
		}
		return ResetRequest{}, nil
	case err != nil:
		return ResetRequest{}, err
	}
	if l != nil {
		ok, err := s.store.TakeResetRequest(ctx, u.ID, from, s.Now(), *l)
		switch {
		case errors.Is(err, ErrUserNotFound): // deleted meanwhile
			return ResetRequest{}, nil
		case err != nil:
			return ResetRequest{}, err
		}
		if !ok {
			if err := s.resetCost.pad(ctx); err != nil {
				return ResetRequest{}, err
			}
			return ResetRequest{User: public(u), Limited: true}, nil
		}
	}
	start := time.Now()
	token, expiresAt, err := s.issueResetToken(ctx, u.ID)
	if err != nil {
		return ResetRequest{}, err
	}
	if then != nil {
		then(ctx, token, public(u), expiresAt)
	}
	s.resetCost.observe(time.Since(start))
	return ResetRequest{Token: token, User: public(u), ExpiresAt: expiresAt}, nil
}

// IssueResetToken returns a new reset token for the user id (for the admin
// API, where the calling application delivers it). Older tokens of the
// user stop working. A missing user gives ErrUserNotFound.
func (s *Service) IssueResetToken(ctx context.Context, id string) (token string, expiresAt time.Time, err error) {
	if _, err := s.store.UserByID(ctx, id); err != nil {
		return "", time.Time{}, err
	}
	return s.issueResetToken(ctx, id)
}

func (s *Service) issueResetToken(ctx context.Context, id string) (string, time.Time, error) {
	token, h, err := s.newResetToken()
	if err != nil {
		return "", time.Time{}, err
	}
	expiresAt := s.Now().Add(s.cfg.ResetTokenTTL)
	if err := s.store.CreateResetToken(ctx, id, h, expiresAt); err != nil {
		return "", time.Time{}, err
	}
	return token, expiresAt, nil
}

// newResetToken returns a fresh reset token (256 random bits) and the
// SHA-256 hash under which it is stored.
func (s *Service) newResetToken() (string, [32]byte, error) {
	token, err := sessiond.NewSecret(s.rand, ResetTokenPrefix)
	if err != nil {
		return "", [32]byte{}, err
	}
	return token, sessiond.HashToken(token), nil
}

// ConfirmReset sets a new password with a reset token and returns the
// user. The token is used up, the user's other reset tokens stop working
// and the account's lockout is cleared (the reset proves control of the
// email). Ending the user's sessions is the caller's business.
//
// A malformed, unknown, used or expired token gives ErrInvalidResetToken.
// A password that breaks the policy gives ErrWeakPassword and leaves the
// token usable, with one exception: a password equal to the account's
// email can only be found out after the token is used up, since the store
// tells the token's user only as it consumes it.
func (s *Service) ConfirmReset(ctx context.Context, token, newPassword string) (*User, error) {
	if !sessiond.CheckSecret(token, ResetTokenPrefix) {
		return nil, ErrInvalidResetToken
	}
	if err := s.policy.Check(newPassword, ""); err != nil {
		return nil, err
	}
	now := s.Now()
	id, err := s.store.ConsumeResetToken(ctx, sessiond.HashToken(token), now)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, id)
	if errors.Is(err, ErrUserNotFound) {
		return nil, ErrInvalidResetToken
	} else if err != nil {
		return nil, err
	}
	if err := s.policy.Check(newPassword, u.Email); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(ctx, newPassword)
	if err != nil {
		return nil, err
	}
	_, err = s.store.SetPasswordHash(ctx, id, hash, "", now)
	s.users.drop(id)
	if err != nil {
		if errors.Is(err, ErrUserNotFound) {
			return nil, ErrInvalidResetToken
		}
		return nil, err
	}
	if _, err := s.store.UpdateLockout(ctx, id, func(Lockout) Lockout { return Lockout{} }); err != nil && !errors.Is(err, ErrUserNotFound) {
		return nil, err
	}
	u.PasswordChangedAt, u.UpdatedAt = now, now
	return public(u), nil
}

// User returns the user id, or ErrUserNotFound. The returned User is the
// caller's, except that its Profile bytes may be shared with the user
// cache: replace them, never write into them.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	now := time.Now()
	if u, ok := s.users.get(id, now); ok {
		return u, nil
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, err
	}
	u = public(u)
	s.users.put(u, now)
	return u, nil
}

// UserByEmail returns the user with the email (normalised first), or
// ErrUserNotFound; a malformed email gives ErrInvalidEmail.
func (s *Service) UserByEmail(ctx context.Context, email string) (*User, error) {
	normalized, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	u, err := s.userByEmail(ctx, email, normalized)
	if err != nil {
		return nil, err
	}
	return public(u), nil
}

// UpdateProfile merges patch into the profile of the user id: each key is
// set to its value, and a JSON null (or a nil RawMessage) deletes the key. Concurrent updates of
// different keys never lose each other. A value that is not JSON, or a
// result over MaxProfileBytes, gives ErrInvalidProfile and changes nothing.
func (s *Service) UpdateProfile(ctx context.Context, id string, patch map[string]json.RawMessage) (*User, error) {
	for k, v := range patch {
		if v != nil && !json.Valid(v) {
			return nil, fmt.Errorf("%w: value of %q is not JSON", ErrInvalidProfile, k)
		}
	}
	defer s.users.drop(id)
	u, err := s.store.UpdateProfile(ctx, id, s.Now(), func(cur []byte) ([]byte, error) {
		obj := map[string]json.RawMessage{}
		if len(bytes.TrimSpace(cur)) > 0 {
			if err := json.Unmarshal(cur, &obj); err != nil || obj == nil {
				return nil, fmt.Errorf("account: stored profile is not a JSON object: %v", err)
			}
		}
		for k, v := range patch {
			if v == nil || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
				delete(obj, k)
			} else {
				obj[k] = v
			}
		}
		return s.encodeProfile(obj)
	})
	if err != nil {
		return nil, err
	}
	return public(u), nil
}

// normalizeProfile checks that p is a JSON object (nil or empty: "{}") of
// at most MaxProfileBytes and returns it in compact form.
func (s *Service) normalizeProfile(p []byte) ([]byte, error) {
	p = bytes.TrimSpace(p)
	if len(p) == 0 {
		return []byte("{}"), nil
	}
	var obj map[string]json.RawMessage
	if p[0] != '{' || json.Unmarshal(p, &obj) != nil {
		return nil, fmt.Errorf("%w: not a JSON object", ErrInvalidProfile)
	}
	return s.encodeProfile(obj)
}

func (s *Service) encodeProfile(obj map[string]json.RawMessage) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidProfile, err)
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(out) > s.cfg.MaxProfileBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidProfile, s.cfg.MaxProfileBytes)
	}
	return out, nil
}

// Delete deletes the account id after checking its password (which counts
// toward lockout as in Authenticate: ErrInvalidCredentials, *LockedError).
// Ending the user's sessions is the caller's business.
func (s *Service) Delete(ctx context.Context, id, password string) error {
	if _, err := s.VerifyPassword(ctx, id, password); err != nil {
		return err
	}
	defer s.users.drop(id)
	return s.store.DeleteUser(ctx, id)
}

// DeleteByAdmin deletes the account id without a password check.
func (s *Service) DeleteByAdmin(ctx context.Context, id string) error {
	defer s.users.drop(id)
	return s.store.DeleteUser(ctx, id)
}

// public returns u without its password hash.
func public(u *User) *User {
	c := *u
	c.PasswordHash = ""
	return &c
}

// latency keeps the durations of the latest store writes that only known
// users cause, so that the answer for an unknown user can wait as long as
// such a write takes. Each pad waits for one of the recent durations drawn
// at random: the unknown path then takes the same distribution of times as
// the known one, not merely the same mean. (A moving average was pulled far
// above the typical write by a rare slow sync, which made unknown emails
// measurably slower in the median than wrong passwords.) Durations are real
// (monotonic) time, not the Service's clock.
type latency struct {
	writes ring
	// overshoot keeps how late the latest pads' timers woke their
	// goroutine: on a loaded machine a wake-up waits for a CPU, by
	// milliseconds. A write's duration already holds such a wait (for its
	// sync), so a pad takes one recent overshoot off the duration it
	// drew, instead of paying the wait twice.
	overshoot ring
}

// ring holds the latest latencyWindow durations for drawing at random.
type ring struct {
	n    atomic.Uint64 // durations added
	slot [latencyWindow]atomic.Int64
}

// latencyWindow is how many recent durations a pad draws from.
const latencyWindow = 64

// maxPad bounds a pad, so that one slow store write cannot slow
// unknown-user answers by much.
const maxPad = 250 * time.Millisecond

func (r *ring) add(d time.Duration) {
	i := r.n.Add(1) - 1
	r.slot[i%latencyWindow].Store(int64(d))
}

// sample returns one of the latest durations at random, 0 before the first.
func (r *ring) sample() time.Duration {
	n := min(r.n.Load(), latencyWindow)
	if n == 0 {
		return 0
	}
	return time.Duration(r.slot[mrand.N(n)].Load())
}

func (l *latency) observe(d time.Duration) { l.writes.add(min(max(d, 0), maxPad)) }

// pad waits for a duration drawn from the recent writes, less a recent
// overshoot of the timer, or until ctx ends.
func (l *latency) pad(ctx context.Context) error {
	d := l.writes.sample() - l.overshoot.sample()
	if d <= 0 {
		return nil
	}
	start := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		l.overshoot.add(min(max(time.Since(start)-d, 0), maxPad))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
