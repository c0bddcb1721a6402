package sessiond

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// Manager applies the session rules over a Store. It is safe for concurrent
// use and holds no state of its own besides its configuration, so any
// number of Managers (in one process or on many nodes) may share a store.
type Manager struct {
	store  Store
	policy Policy
	now    func() time.Time
	rand   io.Reader

	cache    *sessionCache  // nil: every validation reads the store (WithCache)
	rejected *rejectedCache // nil: every refusal reads the store (WithRejectedCache)
	pending  pendingTouches
}

// Option configures a Manager's collaborators.
type Option func(*Manager)

// WithClock sets the Manager's clock. Default time.Now.
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithRand sets the source of every token and id. Default crypto/rand.Reader.
// Anything but a CSPRNG is only for tests.
func WithRand(r io.Reader) Option { return func(m *Manager) { m.rand = r } }

// NewManager returns a Manager over store with policy p (zero fields take
// their defaults). It returns ErrInvalidPolicy for a field out of range.
func NewManager(store Store, p Policy, opts ...Option) (*Manager, error) {
	if store == nil {
		return nil, errors.New("sessiond: NewManager: nil store")
	}
	p, err := p.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Manager{store: store, policy: p, now: time.Now, rand: rand.Reader}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// Policy returns the Manager's policy with defaults filled in.
func (m *Manager) Policy() Policy { return m.policy }

// Store returns the Manager's store.
func (m *Manager) Store() Store { return m.store }

// Now returns the Manager's idea of the current time, in UTC and truncated
// to the microsecond, the finest precision every store keeps.
func (m *Manager) Now() time.Time { return m.now().UTC().Truncate(time.Microsecond) }

// CreateParams describe a new session.
type CreateParams struct {
	// UserID of the session's user; empty for an anonymous session.
	UserID string
	// RememberMe selects the remember-me lifetimes.
	RememberMe bool
	// UserAgent and IP describe the client.
	UserAgent string
	IP        string
	// Authenticated says that the user has just proved their password
	// (a sign-in): the session's AuthenticatedAt is its creation time.
	// Default false: no proof (anonymous and administrator-made sessions).
	Authenticated bool
	// Transport is how the token is handed out (TransportCookie, ...),
	// kept as Session.Transport. Default "": unknown, not browser-bound.
	Transport string
	// Data is the initial session data; keys and sizes are checked as in
	// SetData.
	Data map[string][]byte
	// Replace is the token the request carried, if any. When it names an
	// active session, that session ends as the new one is created (fixation
	// defence), and if it was anonymous its data moves to the new session.
	// Replace and Data do not go together.
	Replace string
	// Generation, when not nil, is the user's revocation generation read
	// with Manager.UserGeneration before the credentials were checked:
	// Create refuses with ErrCredentialsChanged, creating nothing, when
	// the user's sessions were all ended since (a password change, reset
	// or Force Logout landed while the password was being checked against
	// the old hash). Default nil: no check (anonymous and
	// administrator-made sessions).
	Generation *uint64
	// NewToken makes the session's token text from its new id. Default: a
	// fresh session token. Client-side sessions use it to start a
	// refresh-token chain whose tokens carry the session id.
	NewToken func(id string) (string, error)
}

// ErrDataAndReplace: CreateParams had both Data and Replace, and the carried
// data and the new data could together break the size limit.
var ErrDataAndReplace = errors.New("sessiond: Create: Data and Replace are exclusive")

// Create starts a new session and returns it with its token. The token is
// returned only here and by Rotate; sessiond keeps only its hash.
func (m *Manager) Create(ctx context.Context, p CreateParams) (*Session, string, error) {
	if err := m.checkData(p.Data, p.UserID == ""); err != nil {
		return nil, "", err
	}
	if p.Replace != "" && len(p.Data) > 0 {
		return nil, "", ErrDataAndReplace
	}
	now := m.Now()
	id, err := m.newID()
	if err != nil {
		return nil, "", err
	}
	var token string
	if p.NewToken != nil {
		token, err = p.NewToken(id)
	} else {
		token, err = NewSecret(m.rand, TokenPrefix)
	}
	if err != nil {
		return nil, "", err
	}
	idleAt, absAt := m.policy.deadlines(now, p.RememberMe)
	s := &Session{
		ID:                id,
		TokenHash:         HashToken(token),
		UserID:            p.UserID,
		RememberMe:        p.RememberMe,
		CreatedAt:         now,
		LastSeenAt:        now,
		IdleExpiresAt:     idleAt,
		AbsoluteExpiresAt: absAt,
		Device:            ParseDevice(p.UserAgent),
		IP:                p.IP,
		Data:              p.Data,
		Transport:         p.Transport,
	}
	if p.Authenticated && p.UserID != "" {
		s.AuthenticatedAt = now
	}
	var opts CreateOptions
	if p.UserID != "" {
		opts.MaxPerUser = m.policy.MaxSessionsPerUser
	}
	if p.UserID != "" && p.Generation != nil {
		g := *p.Generation
		opts.ExpectGeneration = &g
	}
	if p.Replace != "" {
		old, err := m.lookup(ctx, p.Replace, now)
		switch {
		case err == nil:
			opts.Replace = old.ID
			opts.ReplaceReason = ReasonReplaced
			opts.CarryData = old.Anonymous()
		case isRejection(err):
			// A dead or foreign token replaces nothing.
		default:
			return nil, "", err
		}
	}
	if opts.MaxPerUser > 0 {
		// The store picks whom to evict by last use: it must know it.
		if err := m.pending.flushUser(ctx, m.store, p.UserID); err != nil {
			return nil, "", err
		}
	}
	err = m.store.Create(ctx, s, opts)
	if p.NewToken != nil {
		m.installed(token)
	}
	if err != nil {
		return nil, "", err
	}
	if m.cache != nil {
		if opts.Replace != "" {
			m.cache.invalidateIDs([]string{opts.Replace})
		}
		if opts.MaxPerUser > 0 {
			m.cache.invalidateUser(p.UserID) // evictions are the store's choice
		}
	}
	s = s.Clone()
	s.Data = nil
	return s, token, nil
}

// Validate answers "who is this?" for a token: the active session it
// belongs to, or ErrMalformedToken, ErrNotFound, ErrExpired or ErrRevoked.
// Any other error is a store failure and must be treated as "not signed in".
//
// Validation is use: it slides the idle deadline. The store is written at
// most once per Policy.TouchInterval per session.
func (m *Manager) Validate(ctx context.Context, token string) (*Session, error) {
	now := m.Now()
	s, err := m.lookup(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if err := m.slide(ctx, s, now); err != nil {
		return nil, err
	}
	return s, nil
}

// Peek is Validate without the slide: it does not count as use.
func (m *Manager) Peek(ctx context.Context, token string) (*Session, error) {
	return m.lookup(ctx, token, m.Now())
}

// IsRejection reports whether err means "this token does not sign anyone
// in" (malformed, unknown, expired, revoked), as opposed to a failure of the
// store.
func IsRejection(err error) bool { return isRejection(err) }

func isRejection(err error) bool {
	return errors.Is(err, ErrMalformedToken) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrExpired) || errors.Is(err, ErrRevoked)
}

func (m *Manager) lookup(ctx context.Context, token string, now time.Time) (*Session, error) {
	if err := ParseToken(token); err != nil {
		return nil, err
	}
	h := HashToken(token)
	var epoch uint64
	if m.cache != nil {
		if e, ok := m.cache.get(h, now); ok && e.s.TokenHash.Equal(h) && e.s.Check(now) == nil {
			s := e.s
			return &s, nil
		}
		// A miss, a stale entry, or a snapshot that looks expired (another
		// node may have slid it since): ask the store.
		epoch = m.cache.epoch.Load()
	}
	var rejEpoch uint64
	if m.rejected != nil {
		if err, ok := m.rejected.get(h); ok {
			return nil, err
		}
		rejEpoch = m.rejected.epoch.Load()
	}
	s, err := m.store.ByTokenHash(ctx, h)
	if err == nil && !s.TokenHash.Equal(h) {
		s, err = nil, ErrNotFound
	}
	if err == nil {
		err = s.Check(now)
	}
	if err != nil {
		if m.rejected != nil {
			if final, ok := finalRefusal(s, err, now); ok {
				m.rejected.add(h, final, rejEpoch)
			}
		}
		return nil, err
	}
	if m.cache != nil {
		m.cache.fill(s, now, epoch)
	}
	return s, nil
}

// Invalidate drops the given sessions from the cache (nil: all of them).
// Feeds of changes made elsewhere call it, such as PostgreSQL notifications
// of revocations on other nodes. Without a cache it does nothing.
func (m *Manager) Invalidate(ids []string) {
	if m.cache != nil {
		m.cache.invalidateIDs(ids)
	}
}

// installed is called after a store write that may have made token,
// chosen by the caller, a session's current token: a refusal of it
// remembered before then must go (see WithRejectedCache; tokens that do
// not parse as session tokens are never remembered).
func (m *Manager) installed(token string) {
	if m.rejected != nil && ParseToken(token) == nil {
		m.rejected.forget(HashToken(token))
	}
}

func (m *Manager) invalidate(id string) {
	if m.cache != nil {
		m.cache.invalidateIDs([]string{id})
	}
}

// slide extends s's idle deadline to now plus its idle timeout (never past
// the absolute deadline) and writes it when the stored copy is older than
// the touch interval.
func (m *Manager) slide(ctx context.Context, s *Session, now time.Time) error {
	if now.Sub(s.LastSeenAt) < m.policy.touchInterval(s.RememberMe) {
		return nil
	}
	idle, _ := m.policy.timeouts(s.RememberMe)
	t := Touch{ID: s.ID, LastSeenAt: now, IdleExpiresAt: minTime(now.Add(idle), s.AbsoluteExpiresAt)}
	if !m.pending.add(t, s.UserID) {
		if err := m.store.Touch(ctx, []Touch{t}); err != nil {
			return err
		}
	}
	s.LastSeenAt, s.IdleExpiresAt = t.LastSeenAt, t.IdleExpiresAt
	if m.cache != nil {
		m.cache.update(s)
	}
	return nil
}

// Rotate gives the session of token a new token, keeping its id, data and
// deadlines; the old token stops working at once. Of concurrent rotations of
// one token only one succeeds; the others get ErrNotFound.
func (m *Manager) Rotate(ctx context.Context, token string) (*Session, string, error) {
	now := m.Now()
	s, err := m.lookup(ctx, token, now)
	if err != nil {
		return nil, "", err
	}
	return m.rotate(ctx, s, now)
}

func (m *Manager) rotate(ctx context.Context, s *Session, now time.Time) (*Session, string, error) {
	token, err := NewSecret(m.rand, TokenPrefix)
	if err != nil {
		return nil, "", err
	}
	h := HashToken(token)
	if err := m.store.Rotate(ctx, s.ID, s.TokenHash, h, now); err != nil {
		return nil, "", err
	}
	m.invalidate(s.ID)
	s.PrevTokenHash, s.TokenHash, s.RotatedAt = s.TokenHash, h, now
	return s, token, nil
}

// Renew replaces the token of s, an active session as read from the store,
// with newToken, and records the use (last seen now, idle deadline slid)
// whatever the touch interval: it is the rotation step of a refresh. Of
// concurrent renewals from the same token one wins; the others get
// ErrNotFound.
func (m *Manager) Renew(ctx context.Context, s *Session, newToken string) (*Session, error) {
	now := m.Now()
	if err := s.Check(now); err != nil {
		return nil, err
	}
	h := HashToken(newToken)
	// The rotation records its own time (RotatedAt), from which the
	// grace window of a refresh racing this one is measured; the touch
	// only slides the idle deadline.
	idle, _ := m.policy.timeouts(s.RememberMe)
	t := Touch{ID: s.ID, LastSeenAt: now, IdleExpiresAt: minTime(now.Add(idle), s.AbsoluteExpiresAt)}
	if err := m.store.Touch(ctx, []Touch{t}); err != nil {
		return nil, err
	}
	err := m.store.Rotate(ctx, s.ID, s.TokenHash, h, now)
	m.installed(newToken)
	if err != nil {
		return nil, err
	}
	m.invalidate(s.ID)
	c := s.Clone()
	c.TokenHash, c.LastSeenAt, c.IdleExpiresAt = h, t.LastSeenAt, t.IdleExpiresAt
	c.PrevTokenHash, c.RotatedAt = s.TokenHash, now
	return c, nil
}

// Fresh reports whether the user of s proved their password within the
// policy's ReauthWindow, as sensitive actions require.
func (m *Manager) Fresh(s *Session) bool {
	return s.AuthenticatedWithin(m.Now(), m.policy.ReauthWindow)
}

// Reauthenticate records that the user of s, an active session as
// validated, has just proved their password again: the session's
// AuthenticatedAt becomes now and it gets a new token, newToken or (when
// empty) a fresh session token, which it returns. The old token stops
// working at once. Of concurrent calls from the same token one wins; the
// others get ErrNotFound. Checking the password is the caller's business.
func (m *Manager) Reauthenticate(ctx context.Context, s *Session, newToken string) (*Session, string, error) {
	now := m.Now()
	if err := s.Check(now); err != nil {
		return nil, "", err
	}
	if s.Anonymous() {
		return nil, "", fmt.Errorf("sessiond: Reauthenticate: %w: anonymous session", ErrNotFound)
	}
	chosen := newToken != ""
	if !chosen {
		var err error
		if newToken, err = NewSecret(m.rand, TokenPrefix); err != nil {
			return nil, "", err
		}
	}
	h := HashToken(newToken)
	err := m.store.Reauthenticate(ctx, s.ID, s.TokenHash, h, now)
	m.invalidate(s.ID) // also on error: the outcome may be unknown
	if chosen {
		m.installed(newToken)
	}
	if err != nil {
		return nil, "", err
	}
	c := s.Clone()
	c.TokenHash, c.AuthenticatedAt = h, now
	c.PrevTokenHash, c.RotatedAt = TokenHash{}, now
	return c, newToken, nil
}

// Revoke ends the session id with reason. It returns ErrNotFound when no
// active session has that id.
func (m *Manager) Revoke(ctx context.Context, id, reason string) error {
	err := m.store.Revoke(ctx, id, m.Now(), reason)
	m.invalidate(id) // also on error: the outcome may be unknown
	return err
}

// RevokeToken ends the session of token (logout) and returns it.
func (m *Manager) RevokeToken(ctx context.Context, token, reason string) (*Session, error) {
	now := m.Now()
	s, err := m.lookup(ctx, token, now)
	if err != nil {
		return nil, err
	}
	err = m.store.Revoke(ctx, s.ID, now, reason)
	m.invalidate(s.ID)
	if err != nil {
		return nil, err
	}
	s.RevokedAt, s.RevokeReason = now, reason
	return s, nil
}

// RevokeUser ends every active session of the user except exceptID (empty
// for none) and returns how many it ended. With an exception this is Force
// Logout; without, "sign out everywhere".
func (m *Manager) RevokeUser(ctx context.Context, userID, exceptID, reason string) (int, error) {
	if userID == "" {
		return 0, fmt.Errorf("sessiond: RevokeUser: %w: empty user id", ErrNotFound)
	}
	n, err := m.store.RevokeByUser(ctx, userID, exceptID, m.Now(), reason)
	if m.cache != nil {
		m.cache.invalidateUser(userID)
	}
	return n, err
}

// UserGeneration returns the user's revocation generation, which every
// RevokeUser advances. A sign-in reads it before it reads the password
// hash it checks, and passes it as CreateParams.Generation: a Force Logout
// that lands while the password is being checked then refuses the new
// session instead of missing it.
func (m *Manager) UserGeneration(ctx context.Context, userID string) (uint64, error) {
	if userID == "" {
		return 0, fmt.Errorf("sessiond: UserGeneration: %w: empty user id", ErrNotFound)
	}
	return m.store.UserGeneration(ctx, userID)
}

// List returns the user's active sessions, the most recently used first.
func (m *Manager) List(ctx context.Context, userID string) ([]*Session, error) {
	if userID == "" {
		return nil, nil
	}
	now := m.Now()
	all, err := m.store.ListByUser(ctx, userID, now)
	if err != nil {
		return nil, err
	}
	// The store filters too; this keeps the rule in one place for stores
	// whose clock-based filtering is coarser.
	live := all[:0]
	for _, s := range all {
		if s.Check(now) == nil {
			live = append(live, s)
		}
	}
	// Uses not yet written count too, so the order is the true one.
	if m.pending.overlay(live) {
		sortByUse(live)
	}
	return live, nil
}

// Get returns the active session id of user (ErrNotFound when it is not
// the user's or not active). An empty userID matches any session.
func (m *Manager) Get(ctx context.Context, id, userID string) (*Session, error) {
	s, err := m.store.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if userID != "" && s.UserID != userID {
		return nil, ErrNotFound
	}
	if err := s.Check(m.Now()); err != nil {
		return nil, err
	}
	return s, nil
}

// Data returns the data of the active session id.
func (m *Manager) Data(ctx context.Context, id string) (map[string][]byte, error) {
	return m.store.Data(ctx, id, m.Now())
}

// SetData sets one key of the active session id. It returns ErrInvalidKey,
// ErrValueTooLarge or ErrDataTooLarge when the write breaks a limit, and
// then changes nothing.
func (m *Manager) SetData(ctx context.Context, id, key string, value []byte) error {
	return m.setData(ctx, id, key, value, m.policy.MaxDataBytes)
}

// SetSessionData is SetData for s, whose kind chooses the limit: an
// anonymous session's data is held to Policy.MaxAnonymousDataBytes.
func (m *Manager) SetSessionData(ctx context.Context, s *Session, key string, value []byte) error {
	return m.setData(ctx, s.ID, key, value, m.policy.maxDataBytes(s.Anonymous()))
}

func (m *Manager) setData(ctx context.Context, id, key string, value []byte, maxBytes int) error {
	if !ValidKey(key) {
		return ErrInvalidKey
	}
	if len(value) > m.policy.MaxValueBytes {
		return ErrValueTooLarge
	}
	return m.store.SetData(ctx, id, key, value, maxBytes, m.Now())
}

// DeleteData removes one key of the active session id.
func (m *Manager) DeleteData(ctx context.Context, id, key string) error {
	if !ValidKey(key) {
		return ErrInvalidKey
	}
	return m.store.DeleteData(ctx, id, key, m.Now())
}

func (m *Manager) checkData(data map[string][]byte, anonymous bool) error {
	for k, v := range data {
		if !ValidKey(k) {
			return ErrInvalidKey
		}
		if len(v) > m.policy.MaxValueBytes {
			return ErrValueTooLarge
		}
	}
	if DataSize(data) > m.policy.maxDataBytes(anonymous) {
		return ErrDataTooLarge
	}
	return nil
}

// sweepBatch is how many sessions one DeleteExpired call removes.
const sweepBatch = 1000

// Sweep removes every session that expired (revoked ones included) and
// returns how many. Expired sessions are refused whether swept or not; the
// sweep only reclaims space.
func (m *Manager) Sweep(ctx context.Context) (int, error) {
	total := 0
	for {
		n, err := m.store.DeleteExpired(ctx, m.Now(), sweepBatch)
		total += n
		if err != nil || n < sweepBatch {
			return total, err
		}
	}
}

// RunSweeper calls Sweep every interval until ctx ends. Errors are passed to
// onError (may be nil) and do not stop the loop. It returns ctx.Err().
func (m *Manager) RunSweeper(ctx context.Context, every time.Duration, onError func(error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := m.Sweep(ctx); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// newID returns a fresh public session id: 128 random bits in hex.
func (m *Manager) newID() (string, error) {
	return NewID(m.rand)
}

// NewID returns 128 random bits from r (crypto/rand.Reader when nil) as 32
// hex characters: the form of session and user ids.
func NewID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("sessiond: reading randomness: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
