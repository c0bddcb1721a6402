package sessiond

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// CacheConfig sizes the Manager's cache of validated sessions.
//
// The cache makes "who is this?" cost a hash and a map lookup instead of a
// store read. It stays correct because every change the Manager makes
// (revoke, rotate, force logout, limit eviction) removes the affected
// entries, changes made elsewhere arrive through Invalidate (PostgreSQL
// LISTEN/NOTIFY wires it on a cluster), and no entry is trusted longer than
// MaxAge, the bound on how stale an answer can be when a change went
// unannounced or the store became unreachable (sessiond fails closed once
// an entry is older than that).
type CacheConfig struct {
	// Size is the most sessions kept. Default 100,000.
	Size int
	// MaxAge is how long a cached session is used before the store is
	// read again. Default 2s.
	MaxAge time.Duration
}

// WithCache turns on the cache of validated sessions. Use it when every
// change to the store either goes through this Manager or is announced
// through Invalidate (or when MaxAge of staleness is acceptable). Stores
// that cache on their own with server-assisted invalidation (Redis) do not
// need it.
func WithCache(c CacheConfig) Option {
	if c.Size <= 0 {
		c.Size = 100_000
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 2 * time.Second
	}
	return func(m *Manager) { m.cache = newSessionCache(c) }
}

// sessionCache maps token hashes to session snapshots. Entries are
// immutable: a change replaces the entry.
//
// The fill race: a validation reads a session from the store while another
// request revokes it and invalidates; if the read finishes after the
// invalidation, it must not put the stale copy in. Fills therefore note the
// invalidation counter before reading and insert only if it has not moved;
// fills and invalidations serialise on mu (hits take no lock).
type sessionCache struct {
	cfg   CacheConfig
	c     *otter.Cache[TokenHash, *cached]
	mu    sync.Mutex
	epoch atomic.Uint64
	byID  map[string]indexed
	users map[string]map[string]struct{}
}

// indexed is where a session id's entry is.
type indexed struct {
	h      TokenHash
	userID string
}

type cached struct {
	s        Session
	loadedAt time.Time
}

func newSessionCache(cfg CacheConfig) *sessionCache {
	sc := &sessionCache{cfg: cfg, byID: make(map[string]indexed), users: make(map[string]map[string]struct{})}
	sc.c = otter.Must(&otter.Options[TokenHash, *cached]{
		MaximumSize: cfg.Size,
		// Eviction by size: keep the indexes in step. Invalidations clean
		// the indexes themselves, under mu.
		OnDeletion: func(e otter.DeletionEvent[TokenHash, *cached]) {
			if !e.WasEvicted() {
				return
			}
			// This runs later, on another goroutine: the same session may
			// have been cached again meanwhile, and then stays indexed.
			sc.mu.Lock()
			defer sc.mu.Unlock()
			if _, back := sc.c.GetIfPresent(e.Key); !back {
				sc.unindex(e.Value.s.ID, e.Key)
			}
		},
	})
	return sc
}

// get returns the snapshot for h if it is fresh at now.
func (sc *sessionCache) get(h TokenHash, now time.Time) (*cached, bool) {
	e, ok := sc.c.GetIfPresent(h)
	if !ok || now.Sub(e.loadedAt) >= sc.cfg.MaxAge || now.Before(e.loadedAt) {
		return nil, false
	}
	return e, true
}

// fill inserts s, read from the store at loadedAt, unless an invalidation
// happened since epoch was read.
func (sc *sessionCache) fill(s *Session, loadedAt time.Time, epoch uint64) {
	e := &cached{s: *s, loadedAt: loadedAt}
	e.s.Data = nil
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.epoch.Load() != epoch {
		return
	}
	sc.c.Set(s.TokenHash, e)
	sc.byID[s.ID] = indexed{h: s.TokenHash, userID: s.UserID}
	if s.UserID != "" {
		ids := sc.users[s.UserID]
		if ids == nil {
			ids = make(map[string]struct{})
			sc.users[s.UserID] = ids
		}
		ids[s.ID] = struct{}{}
	}
}

// update replaces the snapshot of an entry still present (after a touch),
// keeping its load time.
func (sc *sessionCache) update(s *Session) {
	sc.c.ComputeIfPresent(s.TokenHash, func(old *cached) (*cached, otter.ComputeOp) {
		if old.s.ID != s.ID {
			return old, otter.CancelOp
		}
		n := *old
		n.s.LastSeenAt, n.s.IdleExpiresAt = s.LastSeenAt, s.IdleExpiresAt
		return &n, otter.WriteOp
	})
}

// unindex forgets session id if its index still points at h (a newer
// entry of the same session keeps the index).
func (sc *sessionCache) unindex(id string, h TokenHash) {
	ix, ok := sc.byID[id]
	if !ok || ix.h != h {
		return
	}
	delete(sc.byID, id)
	if ids := sc.users[ix.userID]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(sc.users, ix.userID)
		}
	}
}

// invalidateIDs drops the sessions with the given ids; nil drops all.
func (sc *sessionCache) invalidateIDs(ids []string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.epoch.Add(1)
	if ids == nil {
		sc.c.InvalidateAll()
		clear(sc.byID)
		clear(sc.users)
		return
	}
	for _, id := range ids {
		sc.dropLocked(id)
	}
}

// invalidateUser drops every session of userID.
func (sc *sessionCache) invalidateUser(userID string) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.epoch.Add(1)
	for id := range sc.users[userID] {
		sc.dropLocked(id)
	}
}

func (sc *sessionCache) dropLocked(id string) {
	ix, ok := sc.byID[id]
	if !ok {
		return
	}
	sc.c.Invalidate(ix.h)
	sc.unindex(id, ix.h)
}
