package sessiond

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultRejectedCacheSize is the size of the cache of refused tokens when
// WithRejectedCache is given 0.
const DefaultRejectedCacheSize = 100_000

// WithRejectedCache turns on the cache of refused tokens: the hashes of
// tokens the store answered "no such token" for, or whose session it
// found revoked or past its absolute deadline, at most size of them
// (0: DefaultRejectedCacheSize). A repeated dead token is then refused
// from memory (ErrNotFound, ErrRevoked or ErrExpired, as the store said)
// instead of by a store read. It needs no invalidation and so goes with
// any store, with or without WithCache: every state it remembers is final.
//
// Why a remembered refusal can never refuse a valid token:
//   - Revocation and the absolute deadline are final: no Store method
//     clears RevokedAt or moves AbsoluteExpiresAt, and a hash that a
//     rotation replaced is never current again (Rotate, Renew,
//     Reauthenticate always install a new hash).
//   - "No such token" becomes "valid" only if a session is later given
//     that hash. Every session token is NewSecret's 256 random bits from
//     a CSPRNG, minted after the lookup (on this node or another: a token
//     is shown to its client only once its session is stored, so nobody
//     can present it before): a guess matching it is a 2^-256 event.
//     Tokens a caller chooses (CreateParams.NewToken, Renew's and
//     Reauthenticate's newToken: refresh-chain links) do not parse as
//     session tokens, and lookup refuses them as malformed before any
//     cache; a caller-chosen token that did parse is forgotten here as it
//     is installed, with an epoch that closes the fill race (see cache.go).
//   - A session found past its idle deadline is not remembered: a touch
//     still on its way (this node's batch, or another node's) may move
//     that deadline, and only the store's next answer knows.
//
// Eviction is W-TinyLFU (otter, as the session cache): a hash is kept
// over another by how often it was refused lately. A flood of random
// tokens, each refused once, mostly churns the small admission window and
// leaves the hashes that keep coming back (TestRejectedCacheResistsRandomFlood:
// with two random tokens for each repeated one, about one repeat in six
// is read again, where an LRU would read them all); and any entry it
// does push out costs one store read later, no more than the random
// token itself cost: the flood gains nothing by it. (Random tokens each cost one
// store read whatever this cache does: the per-address limit of rejected
// tokens in package flows is there for them.)
func WithRejectedCache(size int) Option {
	if size <= 0 {
		size = DefaultRejectedCacheSize
	}
	return func(m *Manager) { m.rejected = newRejectedCache(size) }
}

// rejectedCache maps the hashes of refused tokens to the refusal.
type rejectedCache struct {
	c     *otter.Cache[TokenHash, error]
	mu    sync.Mutex // serialises add and forget
	epoch atomic.Uint64
}

func newRejectedCache(size int) *rejectedCache {
	return &rejectedCache{c: otter.Must(&otter.Options[TokenHash, error]{MaximumSize: size})}
}

// get returns the remembered refusal of h.
func (rc *rejectedCache) get(h TokenHash) (error, bool) {
	return rc.c.GetIfPresent(h)
}

// add remembers err for h, unless a token was installed since epoch was
// read (the lookup's store read may predate it).
func (rc *rejectedCache) add(h TokenHash, err error, epoch uint64) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.epoch.Load() == epoch {
		rc.c.Set(h, err)
	}
}

// forget drops h as it becomes the hash of a session's token.
func (rc *rejectedCache) forget(h TokenHash) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.epoch.Add(1)
	rc.c.Invalidate(h)
}

// finalRefusal returns the sentinel of err, a refusal by the store of
// the hash (s nil when it has no session for it) at now, and whether that
// refusal can never change.
func finalRefusal(s *Session, err error, now time.Time) (error, bool) {
	switch {
	case errors.Is(err, ErrNotFound):
		return ErrNotFound, true
	case errors.Is(err, ErrRevoked):
		return ErrRevoked, true
	case errors.Is(err, ErrExpired) && s != nil && !now.Before(s.AbsoluteExpiresAt):
		return ErrExpired, true
	}
	return nil, false
}
