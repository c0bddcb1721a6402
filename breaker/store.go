package breaker

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
)

// Store is a sessiond.Store whose every call goes through a Breaker. Its
// answers are the wrapped store's, except ErrOpen while the breaker
// refuses calls.
type Store struct {
	st sessiond.Store
	b  *Breaker
}

var _ sessiond.Store = (*Store)(nil)

// WrapStore returns st behind b.
func WrapStore(st sessiond.Store, b *Breaker) *Store { return &Store{st: st, b: b} }

// Breaker returns the store's breaker.
func (s *Store) Breaker() *Breaker { return s.b }

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() sessiond.Store { return s.st }

// Create is the wrapped store's Create, through the breaker.
func (s *Store) Create(ctx context.Context, ss *sessiond.Session, opts sessiond.CreateOptions) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Create(ctx, ss, opts) })
}

// ByTokenHash is the wrapped store's ByTokenHash, through the breaker.
func (s *Store) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (out *sessiond.Session, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { out, err = s.st.ByTokenHash(ctx, h); return err })
	return out, err
}

// ByID is the wrapped store's ByID, through the breaker.
func (s *Store) ByID(ctx context.Context, id string) (out *sessiond.Session, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { out, err = s.st.ByID(ctx, id); return err })
	return out, err
}

// ListByUser is the wrapped store's ListByUser, through the breaker.
func (s *Store) ListByUser(ctx context.Context, userID string, now time.Time) (out []*sessiond.Session, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { out, err = s.st.ListByUser(ctx, userID, now); return err })
	return out, err
}

// Touch is the wrapped store's Touch, through the breaker.
func (s *Store) Touch(ctx context.Context, touches []sessiond.Touch) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Touch(ctx, touches) })
}

// Rotate is the wrapped store's Rotate, through the breaker.
func (s *Store) Rotate(ctx context.Context, id string, old, new sessiond.TokenHash, now time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Rotate(ctx, id, old, new, now) })
}

// Reauthenticate is the wrapped store's Reauthenticate, through the breaker.
func (s *Store) Reauthenticate(ctx context.Context, id string, old, new sessiond.TokenHash, at time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Reauthenticate(ctx, id, old, new, at) })
}

// Revoke is the wrapped store's Revoke, through the breaker.
func (s *Store) Revoke(ctx context.Context, id string, now time.Time, reason string) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Revoke(ctx, id, now, reason) })
}

// RevokeByUser is the wrapped store's RevokeByUser, through the breaker.
func (s *Store) RevokeByUser(ctx context.Context, userID, exceptID string, now time.Time, reason string) (n int, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error {
		n, err = s.st.RevokeByUser(ctx, userID, exceptID, now, reason)
		return err
	})
	return n, err
}

// UserGeneration is the wrapped store's UserGeneration, through the breaker.
func (s *Store) UserGeneration(ctx context.Context, userID string) (g uint64, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { g, err = s.st.UserGeneration(ctx, userID); return err })
	return g, err
}

// Data is the wrapped store's Data, through the breaker.
func (s *Store) Data(ctx context.Context, id string, now time.Time) (m map[string][]byte, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { m, err = s.st.Data(ctx, id, now); return err })
	return m, err
}

// SetData is the wrapped store's SetData, through the breaker.
func (s *Store) SetData(ctx context.Context, id, key string, value []byte, maxBytes int, now time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.SetData(ctx, id, key, value, maxBytes, now) })
}

// DeleteData is the wrapped store's DeleteData, through the breaker.
func (s *Store) DeleteData(ctx context.Context, id, key string, now time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.DeleteData(ctx, id, key, now) })
}

// DeleteExpired is the wrapped store's DeleteExpired, through the breaker.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (n int, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { n, err = s.st.DeleteExpired(ctx, now, limit); return err })
	return n, err
}
