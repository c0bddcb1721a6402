// Package memstore is an in-memory sessiond.Store: for tests, and for
// programs that want sessions without persistence (everything is lost when
// the process ends).
package memstore

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
)

// Store keeps sessions in maps behind one lock. The zero value is not
// usable; call New.
type Store struct {
	mu      sync.RWMutex
	byID    map[string]*sessiond.Session
	byHash  map[sessiond.TokenHash]string
	byUser  map[string]map[string]struct{}
	dataLen map[string]int
	gens    map[string]uint64 // revocation generation by user; absent is 0
}

var _ sessiond.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		byID:    make(map[string]*sessiond.Session),
		byHash:  make(map[sessiond.TokenHash]string),
		byUser:  make(map[string]map[string]struct{}),
		dataLen: make(map[string]int),
		gens:    make(map[string]uint64),
	}
}

func active(s *sessiond.Session, now time.Time) bool { return s.Check(now) == nil }

// Create implements sessiond.Store.
func (st *Store) Create(ctx context.Context, s *sessiond.Session, opts sessiond.CreateOptions) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := s.Clone()
	if c.Data == nil {
		c.Data = make(map[string][]byte)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	now := c.CreatedAt
	if g := opts.ExpectGeneration; g != nil && c.UserID != "" && st.gens[c.UserID] != *g {
		return sessiond.ErrCredentialsChanged
	}
	if old, ok := st.byID[opts.Replace]; ok && opts.Replace != "" && active(old, now) {
		if opts.CarryData {
			for k, v := range old.Data {
				if _, ok := c.Data[k]; !ok {
					c.Data[k] = v
				}
			}
		}
		st.revoke(old, now, opts.ReplaceReason)
	}
	if opts.MaxPerUser > 0 && c.UserID != "" {
		live := st.activeOf(c.UserID, now)
		if extra := len(live) + 1 - opts.MaxPerUser; extra > 0 {
			// live is most recently used first: the tail is the least.
			for _, old := range live[len(live)-extra:] {
				st.revoke(old, now, sessiond.ReasonLimit)
			}
		}
	}
	st.byID[c.ID] = c
	st.byHash[c.TokenHash] = c.ID
	st.dataLen[c.ID] = sessiond.DataSize(c.Data)
	if c.UserID != "" {
		ids := st.byUser[c.UserID]
		if ids == nil {
			ids = make(map[string]struct{})
			st.byUser[c.UserID] = ids
		}
		ids[c.ID] = struct{}{}
	}
	return nil
}

func (st *Store) revoke(s *sessiond.Session, now time.Time, reason string) {
	s.RevokedAt, s.RevokeReason = now, reason
}

// activeOf returns the user's active sessions, most recently used first.
func (st *Store) activeOf(userID string, now time.Time) []*sessiond.Session {
	var out []*sessiond.Session
	for id := range st.byUser[userID] {
		if s := st.byID[id]; active(s, now) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *sessiond.Session) int {
		if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out
}

func withoutData(s *sessiond.Session) *sessiond.Session {
	c := *s
	c.Data = nil
	return &c
}

// ByTokenHash implements sessiond.Store.
func (st *Store) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	id, ok := st.byHash[h]
	if !ok {
		return nil, sessiond.ErrNotFound
	}
	return withoutData(st.byID[id]), nil
}

// ByID implements sessiond.Store.
func (st *Store) ByID(ctx context.Context, id string) (*sessiond.Session, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	s, ok := st.byID[id]
	if !ok {
		return nil, sessiond.ErrNotFound
	}
	return withoutData(s), nil
}

// ListByUser implements sessiond.Store.
func (st *Store) ListByUser(ctx context.Context, userID string, now time.Time) ([]*sessiond.Session, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	live := st.activeOf(userID, now)
	out := make([]*sessiond.Session, len(live))
	for i, s := range live {
		out[i] = withoutData(s)
	}
	return out, nil
}

// Touch implements sessiond.Store.
func (st *Store) Touch(ctx context.Context, touches []sessiond.Touch) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, t := range touches {
		s, ok := st.byID[t.ID]
		if !ok || s.Check(t.LastSeenAt) != nil {
			continue
		}
		if t.LastSeenAt.After(s.LastSeenAt) {
			s.LastSeenAt = t.LastSeenAt
		}
		if t.IdleExpiresAt.After(s.IdleExpiresAt) {
			s.IdleExpiresAt = t.IdleExpiresAt
		}
	}
	return nil
}

// Rotate implements sessiond.Store.
func (st *Store) Rotate(ctx context.Context, id string, old, new sessiond.TokenHash, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byID[id]
	if !ok || !active(s, now) || s.TokenHash != old {
		return sessiond.ErrNotFound
	}
	delete(st.byHash, old)
	s.TokenHash, s.PrevTokenHash, s.RotatedAt = new, old, now
	st.byHash[new] = id
	return nil
}

// Reauthenticate implements sessiond.Store.
func (st *Store) Reauthenticate(ctx context.Context, id string, old, new sessiond.TokenHash, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byID[id]
	if !ok || !active(s, at) || s.TokenHash != old {
		return sessiond.ErrNotFound
	}
	delete(st.byHash, old)
	s.TokenHash, s.AuthenticatedAt = new, at
	s.PrevTokenHash, s.RotatedAt = sessiond.TokenHash{}, at
	st.byHash[new] = id
	return nil
}

// Revoke implements sessiond.Store.
func (st *Store) Revoke(ctx context.Context, id string, now time.Time, reason string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byID[id]
	if !ok || !active(s, now) {
		return sessiond.ErrNotFound
	}
	st.revoke(s, now, reason)
	return nil
}

// RevokeByUser implements sessiond.Store.
func (st *Store) RevokeByUser(ctx context.Context, userID, exceptID string, now time.Time, reason string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.gens[userID]++
	n := 0
	for id := range st.byUser[userID] {
		if s := st.byID[id]; id != exceptID && active(s, now) {
			st.revoke(s, now, reason)
			n++
		}
	}
	return n, nil
}

// UserGeneration implements sessiond.Store.
func (st *Store) UserGeneration(ctx context.Context, userID string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.gens[userID], nil
}

// Data implements sessiond.Store.
func (st *Store) Data(ctx context.Context, id string, now time.Time) (map[string][]byte, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	s, ok := st.byID[id]
	if !ok || !active(s, now) {
		return nil, sessiond.ErrNotFound
	}
	out := make(map[string][]byte, len(s.Data))
	for k, v := range s.Data {
		out[k] = append([]byte(nil), v...)
	}
	return out, nil
}

// SetData implements sessiond.Store.
func (st *Store) SetData(ctx context.Context, id, key string, value []byte, maxBytes int, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byID[id]
	if !ok || !active(s, now) {
		return sessiond.ErrNotFound
	}
	size := st.dataLen[id] + len(key) + len(value)
	if prev, ok := s.Data[key]; ok {
		size -= len(key) + len(prev)
	}
	if size > maxBytes {
		return sessiond.ErrDataTooLarge
	}
	s.Data[key] = append([]byte(nil), value...)
	st.dataLen[id] = size
	return nil
}

// DeleteData implements sessiond.Store.
func (st *Store) DeleteData(ctx context.Context, id, key string, now time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.byID[id]
	if !ok || !active(s, now) {
		return sessiond.ErrNotFound
	}
	if prev, ok := s.Data[key]; ok {
		st.dataLen[id] -= len(key) + len(prev)
		delete(s.Data, key)
	}
	return nil
}

// DeleteExpired implements sessiond.Store.
func (st *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	n := 0
	for id, s := range st.byID {
		if n >= limit {
			break
		}
		if now.Before(s.ExpiresAt()) {
			continue
		}
		delete(st.byID, id)
		delete(st.byHash, s.TokenHash)
		delete(st.dataLen, id)
		if ids := st.byUser[s.UserID]; ids != nil {
			delete(ids, id)
			if len(ids) == 0 {
				delete(st.byUser, s.UserID)
			}
		}
		n++
	}
	return n, nil
}

// Len returns how many sessions the store holds, swept or not.
func (st *Store) Len() int {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.byID)
}
