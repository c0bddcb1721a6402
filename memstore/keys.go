package memstore

import (
	"context"
	"sync"

	"github.com/sessiond/sessiond/accesstoken"
)

// Keys is an in-memory accesstoken.KeyStore.
type Keys struct {
	mu   sync.Mutex
	keys map[string]accesstoken.StoredKey
}

var _ accesstoken.KeyStore = (*Keys)(nil)

// NewKeys returns an empty key store.
func NewKeys() *Keys { return &Keys{keys: make(map[string]accesstoken.StoredKey)} }

// SigningKeys implements accesstoken.KeyStore.
func (k *Keys) SigningKeys(ctx context.Context) ([]accesstoken.StoredKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]accesstoken.StoredKey, 0, len(k.keys))
	for _, v := range k.keys {
		v.Sealed = append([]byte(nil), v.Sealed...)
		out = append(out, v)
	}
	return out, nil
}

// AddSigningKey implements accesstoken.KeyStore.
func (k *Keys) AddSigningKey(ctx context.Context, key accesstoken.StoredKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.keys[key.ID]; ok {
		return accesstoken.ErrKeyExists
	}
	key.Sealed = append([]byte(nil), key.Sealed...)
	k.keys[key.ID] = key
	return nil
}

// DeleteSigningKey implements accesstoken.KeyStore.
func (k *Keys) DeleteSigningKey(ctx context.Context, id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.keys, id)
	return nil
}
