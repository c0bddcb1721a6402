package sessiond

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"unsafe"
)

// A secret token as text: a kind prefix, 256 random bits in unpadded
// base64url, and a CRC-32 checksum of everything before it, also base64url:
//
//	sdt_ + 43 characters of randomness + 6 characters of checksum
//
// The prefix lets secret scanners recognise a leaked sessiond token; the
// checksum lets a typo or a forged string be refused before any store lookup.
// The checksum is not a secret and adds no strength: the 256 random bits do.
const (
	// TokenPrefix starts every session token.
	TokenPrefix = "sdt_"

	secretBytes   = 32
	secretChars   = 43 // base64.RawURLEncoding.EncodedLen(secretBytes)
	checksumChars = 6  // base64.RawURLEncoding.EncodedLen(4)
)

var b64 = base64.RawURLEncoding

// TokenLen is the length of a session token's text.
const TokenLen = len(TokenPrefix) + secretChars + checksumChars

// TokenHash is the SHA-256 of a token's text. It is what stores keep and look
// sessions up by; the token itself is never stored. Because a token carries
// 256 random bits, a fast hash is enough: nobody can search that space.
type TokenHash [sha256.Size]byte

// String returns the hash in hex, for stores that keep it as text.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// Equal compares two hashes in constant time.
func (h TokenHash) Equal(o TokenHash) bool {
	return subtle.ConstantTimeCompare(h[:], o[:]) == 1
}

// HashToken returns the hash that a store keeps for token.
func HashToken(token string) TokenHash { return sha256.Sum256(bytesOf(token)) }

// NewSecret returns fresh token text with the given prefix, reading 256 bits
// from r (crypto/rand.Reader when r is nil). Other secrets of sessiond
// (refresh and reset tokens) use it with prefixes of their own.
func NewSecret(r io.Reader, prefix string) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var raw [secretBytes]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", fmt.Errorf("sessiond: reading randomness: %w", err)
	}
	buf := make([]byte, len(prefix)+secretChars+checksumChars)
	n := copy(buf, prefix)
	b64.Encode(buf[n:], raw[:])
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(buf[:n+secretChars]))
	b64.Encode(buf[n+secretChars:], sum[:])
	return string(buf), nil
}

// CheckSecret reports whether text is well-formed token text with the given
// prefix: the right length, alphabet and checksum. It does not allocate.
func CheckSecret(text, prefix string) bool {
	if len(text) != len(prefix)+secretChars+checksumChars || text[:len(prefix)] != prefix {
		return false
	}
	body := text[len(prefix) : len(prefix)+secretChars]
	var bad byte
	for i := 0; i < len(body); i++ {
		bad |= b64Values[body[i]]
	}
	// The last character of 43 encodes only 4 bits of the 256; the other 2
	// bits must be zero or the text has no canonical decoding.
	if bad&0x80 != 0 || b64Values[body[secretChars-1]]&0x3 != 0 {
		return false
	}
	// The 6-character checksum: 36 bits, of which the last 4 must be zero.
	var sum uint64
	for i := len(prefix) + secretChars; i < len(text); i++ {
		v := b64Values[text[i]]
		if v&0x80 != 0 {
			return false
		}
		sum = sum<<6 | uint64(v)
	}
	if sum&0xf != 0 {
		return false
	}
	return uint32(sum>>4) == crc32.ChecksumIEEE(bytesOf(text[:len(prefix)+secretChars]))
}

// bytesOf views s as bytes without copying, for functions that only read
// their argument (hashes and checksums), so the hot path does not allocate.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// b64Values maps a base64url character to its value, anything else to 0xff.
var b64Values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// ParseToken checks that text is a well-formed session token.
// It returns ErrMalformedToken when it is not.
func ParseToken(text string) error {
	if !CheckSecret(text, TokenPrefix) {
		return ErrMalformedToken
	}
	return nil
}
