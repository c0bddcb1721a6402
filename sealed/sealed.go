// Package sealed keeps a whole session, data included, in the cookie
// itself, sealed with XChaCha20-Poly1305: no store, nothing to look up,
// nothing to share between servers but the key.
//
// The honest limit: a sealed session cannot be revoked before it expires.
// Logout clears the cookie in the browser that asks, but a copy of the
// cookie taken earlier stays valid until its idle or absolute deadline. The
// only way to end every sealed session at once is to retire the key they
// were sealed with (Keys: drop it from the list). Use server-side sessions
// (package sessiond with a Store) when "sign out everywhere" and Force
// Logout must work; use sealed sessions for low-stakes state (a cart, a
// preference, a short-lived sign-in behind another check).
//
// Keys rotate without signing anyone out: seal with the first key, open with
// any listed key, and drop a retired key only after the longest lifetime has
// passed.
package sealed

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Errors of this package.
var (
	// ErrTooLarge: the sealed session would not fit in a cookie. Browsers
	// keep cookies up to about 4096 bytes including name and attributes.
	ErrTooLarge = errors.New("sealed: session too large for a cookie")
	// ErrInvalid: the cookie was not sealed by any current key, was
	// altered, or is not a sealed session at all.
	ErrInvalid = errors.New("sealed: invalid or tampered cookie")
	// ErrExpired: the session's idle or absolute deadline has passed.
	ErrExpired = errors.New("sealed: session expired")
	// ErrKey: a key is not 32 bytes.
	ErrKey = errors.New("sealed: keys must be 32 bytes")
)

// MaxSealedLen is the longest sealed value Seal returns: leaves room for
// the cookie's name and attributes within the browsers' 4096 bytes.
const MaxSealedLen = 3800

// version prefixes every sealed value, for future formats.
const version = "s1."

// Session is the state a sealed cookie carries.
type Session struct {
	UserID            string                     `json:"u,omitempty"`
	RememberMe        bool                       `json:"r,omitempty"`
	CreatedAt         time.Time                  `json:"c"`
	LastSeenAt        time.Time                  `json:"l"`
	IdleExpiresAt     time.Time                  `json:"i"`
	AbsoluteExpiresAt time.Time                  `json:"a"`
	Data              map[string]json.RawMessage `json:"d,omitempty"`
}

// Check returns ErrExpired when a deadline is at or before now.
func (s *Session) Check(now time.Time) error {
	if !now.Before(s.IdleExpiresAt) || !now.Before(s.AbsoluteExpiresAt) {
		return ErrExpired
	}
	return nil
}

// Keys seal and open sessions. The first key seals; every key opens.
type Keys struct {
	keys []key
}

type key struct {
	id [4]byte // first bytes of SHA-256(key): picks the key without trying all
	k  []byte
}

// NewKeys returns a key set; each key is 32 random bytes (see NewKey).
func NewKeys(keys ...[]byte) (*Keys, error) {
	if len(keys) == 0 {
		return nil, ErrKey
	}
	ks := &Keys{}
	for _, k := range keys {
		if len(k) != chacha20poly1305.KeySize {
			return nil, ErrKey
		}
		sum := sha256.Sum256(k)
		var kk key
		copy(kk.id[:], sum[:4])
		kk.k = append([]byte(nil), k...)
		ks.keys = append(ks.keys, kk)
	}
	return ks, nil
}

// NewKey returns 32 bytes from crypto/rand.
func NewKey() []byte {
	k := make([]byte, chacha20poly1305.KeySize)
	_, _ = rand.Read(k) // crypto/rand.Read never fails (Go 1.24+)
	return k
}

var b64 = base64.RawURLEncoding

// Seal returns the sealed text of s, bound to name (the cookie's name, so a
// value cannot be moved to another cookie). It returns ErrTooLarge when the
// result would be longer than MaxSealedLen.
func (ks *Keys) Seal(name string, s *Session) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("sealed: %w", err)
	}
	k := ks.keys[0]
	aead, err := chacha20poly1305.NewX(k.k)
	if err != nil {
		return "", err
	}
	// id (4) | nonce (24) | ciphertext+tag
	buf := make([]byte, 4+aead.NonceSize(), 4+aead.NonceSize()+len(plain)+aead.Overhead())
	copy(buf, k.id[:])
	if _, err := rand.Read(buf[4:]); err != nil {
		return "", err
	}
	buf = aead.Seal(buf, buf[4:], plain, ad(name, k.id))
	out := version + b64.EncodeToString(buf)
	if len(out) > MaxSealedLen {
		return "", fmt.Errorf("%w: %d bytes sealed, at most %d", ErrTooLarge, len(out), MaxSealedLen)
	}
	return out, nil
}

// Open returns the session sealed in text under name by any of the keys.
// It returns ErrInvalid for anything else, and ErrExpired (with the
// session) when it opened but a deadline has passed at now.
func (ks *Keys) Open(name, text string, now time.Time) (*Session, error) {
	if !strings.HasPrefix(text, version) || len(text) > MaxSealedLen {
		return nil, ErrInvalid
	}
	// Strict, and no line breaks (which even strict decoding skips): one
	// sealed value has exactly one text, so nothing keyed by cookie text
	// can be walked around with variants of it.
	body := text[len(version):]
	if strings.ContainsAny(body, "\r\n") {
		return nil, ErrInvalid
	}
	raw, err := b64.Strict().DecodeString(body)
	if err != nil || len(raw) < 4+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
		return nil, ErrInvalid
	}
	for _, k := range ks.keys {
		if [4]byte(raw[:4]) != k.id {
			continue
		}
		aead, err := chacha20poly1305.NewX(k.k)
		if err != nil {
			return nil, err
		}
		nonce := raw[4 : 4+aead.NonceSize()]
		plain, err := aead.Open(nil, nonce, raw[4+aead.NonceSize():], ad(name, k.id))
		if err != nil {
			return nil, ErrInvalid
		}
		var s Session
		if err := json.Unmarshal(plain, &s); err != nil {
			return nil, ErrInvalid
		}
		if err := s.Check(now); err != nil {
			return &s, err
		}
		return &s, nil
	}
	return nil, ErrInvalid
}

func ad(name string, id [4]byte) []byte {
	return append([]byte(version+name+"\x00"), id[:]...)
}
