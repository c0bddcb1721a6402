package redis

import (
	"context"
	"net/url"
	"strings"
	"sync"

	"github.com/redis/rueidis"
)

// Listen calls fn with the ids of sessions that changed in Redis, whoever
// changed them, until ctx ends (its error is returned) or the Store is
// closed (nil). ids nil means that anything may have changed: the client's
// connection broke, or Redis flushed its tracking. It lets a cache above the
// Store (sessiond.WithCache) drop what Redis no longer vouches for.
//
// The feed is Redis's own client-side caching invalidations, which cover
// the records this Store read through its cache. A record read from the
// server instead (the Store's own write of it is less than a moment old,
// see doc.go) is not tracked, so later changes to it would go unannounced:
// such a read is announced as a change itself, before it is returned, which
// keeps a cache from holding it (sessiond's cache refuses a fill that an
// announcement overtook). Without the client-side cache (WithCacheTTL(0))
// nothing is tracked and every read is announced.
func (s *Store) Listen(ctx context.Context, fn func(ids []string)) error {
	id := s.changes.add(fn)
	defer s.changes.remove(id)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return nil
	}
}

// changeFeed is the set of Listen callbacks.
type changeFeed struct {
	mu   sync.RWMutex
	next int
	fns  map[int]func(ids []string)
}

func (f *changeFeed) add(fn func(ids []string)) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fns == nil {
		f.fns = make(map[int]func(ids []string))
	}
	f.next++
	f.fns[f.next] = fn
	return f.next
}

func (f *changeFeed) remove(id int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.fns, id)
}

// announce calls every callback with ids.
func (f *changeFeed) announce(ids []string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, fn := range f.fns {
		fn(ids)
	}
}

// listening reports whether anyone listens, so that the work of finding
// ids is skipped when nobody does.
func (f *changeFeed) listening() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.fns) > 0
}

// invalidated is the client's OnInvalidations callback: the keys Redis
// says changed, or nil when the client dropped its whole cache. It runs on
// a connection's reader, so it only parses keys and passes ids on.
func (s *Store) invalidated(keys []rueidis.RedisMessage) {
	if !s.changes.listening() {
		return
	}
	if keys == nil {
		s.changes.announce(nil)
		return
	}
	var ids []string
	for _, m := range keys {
		k, err := m.ToString()
		if err != nil {
			continue
		}
		if id, ok := s.k.recordID(k); ok {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		s.changes.announce(ids)
	}
}

// recordID returns the session id of a record key (p s:{tag}:id).
func (k keys) recordID(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, k.p+"s:{")
	if !ok {
		return "", false
	}
	_, eid, ok := strings.Cut(rest, "}:")
	if !ok || eid == "" {
		return "", false
	}
	id, err := url.PathUnescape(eid)
	if err != nil {
		return "", false
	}
	return id, true
}
