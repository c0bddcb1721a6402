package accesstoken

import (
	"context"
	"errors"
	"time"
)

// StoredKey is a signing key as a KeyStore keeps it: the private key
// sealed by KeyEncryption, never in the clear.
type StoredKey struct {
	ID        string
	Sealed    []byte
	CreatedAt time.Time
	ActiveAt  time.Time
}

// ErrKeyExists: AddSigningKey with an id that is already stored.
var ErrKeyExists = errors.New("accesstoken: key id exists")

// KeyStore keeps the signing keys, shared by every sessiond node of a
// deployment (it lives in the database). Methods are safe for concurrent
// use and durable when they return.
type KeyStore interface {
	// SigningKeys returns every stored key, in any order.
	SigningKeys(ctx context.Context) ([]StoredKey, error)
	// AddSigningKey stores a new key; ErrKeyExists when its id is taken.
	AddSigningKey(ctx context.Context, k StoredKey) error
	// DeleteSigningKey removes a key; a missing id is not an error.
	DeleteSigningKey(ctx context.Context, id string) error
}
