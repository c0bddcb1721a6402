// Package accesstoken issues and verifies sessiond's client-side session
// tokens: short-lived JWTs signed with Ed25519 (EdDSA) that other services
// verify on every request against sessiond's published JWKS, without a
// store lookup. The server-side session stays the source of truth: an
// access token lives minutes, and it is renewed only through a refresh
// token that the session store checks.
//
// This file holds the signing keys and the rules of their rotation: the
// newest key signs; a key that was replaced stays published until every
// token it may have signed has expired, then it is removed.
package accesstoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Key is one signing key.
type Key struct {
	// ID is the JWS "kid": derived from the public key, so it can be
	// recomputed and never collides by accident.
	ID      string
	Private ed25519.PrivateKey
	// CreatedAt is when the key was added; the newest key signs.
	CreatedAt time.Time
	// RetiredAt is when a newer key replaced it (zero while it signs).
	// A retired key verifies tokens until RetiredAt plus the longest
	// access-token lifetime (and clock skew), then it is removed.
	RetiredAt time.Time
}

// Public returns the verification key.
func (k *Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// NewKey returns a fresh Ed25519 key created at now.
func NewKey(now time.Time) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Key{ID: keyID(priv.Public().(ed25519.PublicKey)), Private: priv, CreatedAt: now.UTC()}, nil
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Ring is the set of keys at one moment, newest first.
type Ring struct {
	keys []*Key
}

// NewRing orders keys newest first.
func NewRing(keys []*Key) *Ring {
	ks := append([]*Key(nil), keys...)
	sort.Slice(ks, func(i, j int) bool { return ks[i].CreatedAt.After(ks[j].CreatedAt) })
	return &Ring{keys: ks}
}

// ErrNoKey: there is no signing key; add one with `sessiond keys rotate`.
var ErrNoKey = errors.New("accesstoken: no signing key")

// Signing returns the key that signs: the newest one.
func (r *Ring) Signing() (*Key, error) {
	if len(r.keys) == 0 {
		return nil, ErrNoKey
	}
	return r.keys[0], nil
}

// Published returns the keys that may still verify a live token at now:
// the signing key and every retired key whose tokens may not all have
// expired (retired less than maxTTL+skew ago).
func (r *Ring) Published(now time.Time, maxTTL, skew time.Duration) []*Key {
	var out []*Key
	for i, k := range r.keys {
		if i == 0 || k.RetiredAt.IsZero() || now.Before(k.RetiredAt.Add(maxTTL+skew)) {
			out = append(out, k)
		}
	}
	return out
}

// Expired returns the keys that can be deleted at now: retired long enough
// ago that no token they signed can still be valid.
func (r *Ring) Expired(now time.Time, maxTTL, skew time.Duration) []*Key {
	var out []*Key
	for i, k := range r.keys {
		if i > 0 && !k.RetiredAt.IsZero() && !now.Before(k.RetiredAt.Add(maxTTL+skew)) {
			out = append(out, k)
		}
	}
	return out
}

// Keys returns every key, newest first.
func (r *Ring) Keys() []*Key { return r.keys }

// Lookup returns the key with the given id.
func (r *Ring) Lookup(id string) (*Key, bool) {
	for _, k := range r.keys {
		if k.ID == id {
			return k, true
		}
	}
	return nil, false
}

// KeyEncryption seals private keys at rest with a 32-byte key-encryption
// key (from the environment or a file), so a copy of the database alone
// cannot sign tokens.
type KeyEncryption struct {
	kek []byte
}

// ErrKEK: the key-encryption key is not 32 bytes.
var ErrKEK = errors.New("accesstoken: the key-encryption key must be 32 bytes (base64)")

// NewKeyEncryption takes the key-encryption key as base64 (std or URL,
// padded or not) of 32 bytes.
func NewKeyEncryption(b64 string) (*KeyEncryption, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(b64); err == nil && len(k) == chacha20poly1305.KeySize {
			return &KeyEncryption{kek: k}, nil
		}
	}
	return nil, ErrKEK
}

// Seal encrypts a private key; the key id is bound as associated data so
// a sealed key cannot be swapped under another id.
func (e *KeyEncryption) Seal(k *Key) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(e.kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+ed25519.SeedSize+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, k.Private.Seed(), []byte(k.ID)), nil
}

// Open decrypts a sealed private key and checks that it matches id.
func (e *KeyEncryption) Open(id string, sealed []byte) (ed25519.PrivateKey, error) {
	aead, err := chacha20poly1305.NewX(e.kek)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("accesstoken: sealed key %s is truncated", id)
	}
	seed, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(id))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("accesstoken: key %s does not open with this key-encryption key", id)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if keyID(priv.Public().(ed25519.PublicKey)) != id {
		return nil, fmt.Errorf("accesstoken: key %s does not match its id", id)
	}
	return priv, nil
}
