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

func (s *Store) Create(ctx context.Context, ss *sessiond.Session, opts sessiond.CreateOptions) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Create(ctx, ss, opts) })
}

func (s *Store) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (out *sessiond.Session, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { out, err = s.st.ByTokenHash(ctx, h); return err })
	return out, err
}

func (s *Store) ByID(ctx context.Context, id string) (out *sessiond.Session, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { out, err = s.st.ByID(ctx, id); return err })
	return out, err
}

func (s *Store) ListByUser(ctx context.Context, userID string, now time.Time) (out []*sessiond.Session, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { out, err = s.st.ListByUser(ctx, userID, now); return err })
	return out, err
}

func (s *Store) Touch(ctx context.Context, touches []sessiond.Touch) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Touch(ctx, touches) })
}

func (s *Store) Rotate(ctx context.Context, id string, old, new sessiond.TokenHash, now time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Rotate(ctx, id, old, new, now) })
}

func (s *Store) Reauthenticate(ctx context.Context, id string, old, new sessiond.TokenHash, at time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Reauthenticate(ctx, id, old, new, at) })
}

func (s *Store) Revoke(ctx context.Context, id string, now time.Time, reason string) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.Revoke(ctx, id, now, reason) })
}

func (s *Store) RevokeByUser(ctx context.Context, userID, exceptID string, now time.Time, reason string) (n int, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error {
		n, err = s.st.RevokeByUser(ctx, userID, exceptID, now, reason)
		return err
	})
	return n, err
}

func (s *Store) UserGeneration(ctx context.Context, userID string) (g uint64, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { g, err = s.st.UserGeneration(ctx, userID); return err })
	return g, err
}

func (s *Store) Data(ctx context.Context, id string, now time.Time) (m map[string][]byte, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { m, err = s.st.Data(ctx, id, now); return err })
	return m, err
}

func (s *Store) SetData(ctx context.Context, id, key string, value []byte, maxBytes int, now time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.SetData(ctx, id, key, value, maxBytes, now) })
}

func (s *Store) DeleteData(ctx context.Context, id, key string, now time.Time) error {
	return s.b.Do(ctx, func(ctx context.Context) error { return s.st.DeleteData(ctx, id, key, now) })
}

func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (n int, err error) {
	err = s.b.Do(ctx, func(ctx context.Context) error { n, err = s.st.DeleteExpired(ctx, now, limit); return err })
	return n, err
}
