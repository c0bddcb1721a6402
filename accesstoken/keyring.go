package accesstoken

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"time"
)

// Keyring is a node's view of the shared signing keys: it loads them from
// the KeyStore, opens them with the key-encryption key, and keeps the Ring
// for signing and publishing. Run reloads it now and then, so a key added
// on one node (or by `sessiond keys rotate`) reaches every node well
// before it starts signing.
type Keyring struct {
	store KeyStore
	enc   *KeyEncryption
	now   func() time.Time
	ring  atomic.Pointer[Ring]
}

// NewKeyring returns a Keyring with an empty ring; call Load.
func NewKeyring(store KeyStore, enc *KeyEncryption, now func() time.Time) *Keyring {
	if now == nil {
		now = time.Now
	}
	k := &Keyring{store: store, enc: enc, now: now}
	k.ring.Store(NewRing(nil))
	return k
}

// Ring returns the keys as last loaded.
func (k *Keyring) Ring() *Ring { return k.ring.Load() }

// Load reads and opens every stored key. A key that does not open (another
// key-encryption key) is an error: better to fail loudly than to publish a
// partial set.
func (k *Keyring) Load(ctx context.Context) (*Ring, error) {
	stored, err := k.store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]*Key, 0, len(stored))
	for _, sk := range stored {
		priv, err := k.enc.Open(sk.ID, sk.Sealed)
		if err != nil {
			return nil, err
		}
		keys = append(keys, &Key{ID: sk.ID, Private: priv, CreatedAt: sk.CreatedAt.UTC(), ActiveAt: sk.ActiveAt.UTC()})
	}
	r := NewRing(keys)
	k.ring.Store(r)
	return r, nil
}

// Rotate adds a new key that starts signing after delay, and reloads.
func (k *Keyring) Rotate(ctx context.Context, delay time.Duration) (*Key, error) {
	key, err := NewKey(k.now().Truncate(time.Microsecond), delay)
	if err != nil {
		return nil, err
	}
	sealed, err := k.enc.Seal(key)
	if err != nil {
		return nil, err
	}
	if err := k.store.AddSigningKey(ctx, StoredKey{ID: key.ID, Sealed: sealed, CreatedAt: key.CreatedAt, ActiveAt: key.ActiveAt}); err != nil {
		return nil, err
	}
	if _, err := k.Load(ctx); err != nil {
		return nil, err
	}
	return key, nil
}

// EnsureKey adds a first key, signing at once, when there is none.
func (k *Keyring) EnsureKey(ctx context.Context) error {
	r, err := k.Load(ctx)
	if err != nil {
		return err
	}
	if len(r.Keys()) > 0 {
		return nil
	}
	_, err = k.Rotate(ctx, 0)
	return err
}

// Prune deletes the keys whose tokens have all expired (see Ring) and
// returns how many.
func (k *Keyring) Prune(ctx context.Context, maxTTL, skew time.Duration) (int, error) {
	r, err := k.Load(ctx)
	if err != nil {
		return 0, err
	}
	expired := r.Expired(k.now(), maxTTL, skew)
	for _, key := range expired {
		if err := k.store.DeleteSigningKey(ctx, key.ID); err != nil {
			return 0, err
		}
	}
	if len(expired) > 0 {
		if _, err := k.Load(ctx); err != nil {
			return 0, err
		}
	}
	return len(expired), nil
}

// Run reloads the keys every interval and prunes expired ones, until ctx
// ends. Errors go to onError (may be nil); the last good ring stays in use.
func (k *Keyring) Run(ctx context.Context, every, maxTTL, skew time.Duration, onError func(error)) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if _, err := k.Prune(ctx, maxTTL, skew); err != nil && onError != nil && ctx.Err() == nil {
				onError(fmt.Errorf("signing keys: %w", err))
			}
		}
	}
}

// ChainKey derives the refresh-chain key from the key-encryption key, so a
// deployment configures one secret for both.
func (e *KeyEncryption) ChainKey() []byte { return e.derive("sessiond refresh chain v1") }

// OutboxKey derives the key that seals queued notifications (they may
// carry reset and email-change tokens) from the key-encryption key.
func (e *KeyEncryption) OutboxKey() []byte { return e.derive("sessiond notification outbox v1") }

// derive is a 32-byte key for purpose: HMAC-SHA256 of it under the KEK.
func (e *KeyEncryption) derive(purpose string) []byte {
	m := hmac.New(sha256.New, e.kek)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
