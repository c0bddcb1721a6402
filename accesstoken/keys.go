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
	// CreatedAt is when the key was added; from then on it is published.
	CreatedAt time.Time
	// ActiveAt is when it starts signing: a while after CreatedAt, so that
	// every verifier's cached JWKS has it before the first token it signs
	// arrives.
	ActiveAt time.Time
}

// Public returns the verification key.
func (k *Key) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// NewKey returns a fresh Ed25519 key created at now that starts signing
// after delay.
func NewKey(now time.Time, delay time.Duration) (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	return &Key{ID: keyID(priv.Public().(ed25519.PublicKey)), Private: priv, CreatedAt: now, ActiveAt: now.Add(delay)}, nil
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Ring is the set of keys at one moment, ordered by ActiveAt, newest first.
//
// The rules: the signing key is the newest key that is active. A key
// retires when a newer one becomes active; it stays published until every
// token it may have signed has expired (the longest token lifetime plus
// clock skew after it retired), and may be deleted after that. A key not
// yet active is published already.
type Ring struct {
	keys []*Key
}

// NewRing orders keys newest first.
func NewRing(keys []*Key) *Ring {
	ks := append([]*Key(nil), keys...)
	sort.Slice(ks, func(i, j int) bool {
		if !ks[i].ActiveAt.Equal(ks[j].ActiveAt) {
			return ks[i].ActiveAt.After(ks[j].ActiveAt)
		}
		return ks[i].ID > ks[j].ID
	})
	return &Ring{keys: ks}
}

// ErrNoKey: there is no signing key; add one with `sessiond keys rotate`.
var ErrNoKey = errors.New("accesstoken: no signing key")

// Signing returns the key that signs at now: the newest active key, or,
// when none is active yet (a first key just added), the oldest key.
func (r *Ring) Signing(now time.Time) (*Key, error) {
	if len(r.keys) == 0 {
		return nil, ErrNoKey
	}
	for _, k := range r.keys {
		if !now.Before(k.ActiveAt) {
			return k, nil
		}
	}
	return r.keys[len(r.keys)-1], nil
}

// retiredAt returns when key i stopped signing: when the next newer key
// became active (zero if none has).
func (r *Ring) retiredAt(i int, now time.Time) time.Time {
	for j := i - 1; j >= 0; j-- {
		if !now.Before(r.keys[j].ActiveAt) {
			return r.keys[j].ActiveAt
		}
	}
	return time.Time{}
}

// Published returns the keys that may verify a live token at now, or will
// soon sign: every key but the expired ones.
func (r *Ring) Published(now time.Time, maxTTL, skew time.Duration) []*Key {
	var out []*Key
	for i, k := range r.keys {
		if !r.expired(i, now, maxTTL, skew) {
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
		if r.expired(i, now, maxTTL, skew) {
			out = append(out, k)
		}
	}
	return out
}

func (r *Ring) expired(i int, now time.Time, maxTTL, skew time.Duration) bool {
	ret := r.retiredAt(i, now)
	return !ret.IsZero() && !now.Before(ret.Add(maxTTL+skew))
}

// Keys returns every key, newest first.
func (r *Ring) Keys() []*Key { return r.keys }

// PublicKey returns the verification key with the given id, for Verify.
func (r *Ring) PublicKey(kid string) (ed25519.PublicKey, bool) {
	for _, k := range r.keys {
		if k.ID == kid {
			return k.Public(), true
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

var b64 = base64.RawURLEncoding
