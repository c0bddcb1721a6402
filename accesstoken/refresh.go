package accesstoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"

	"github.com/sessiond/sessiond"
)

// Refresh tokens renew access tokens. Each is single use: a refresh returns
// the next token of the session's chain and the presented one stops
// working. The text is
//
//	sdr_ + base64url(session id (16 bytes) ‖ secret (32 bytes)) + 6-char CRC-32
//
// The store keeps only the hash of the current token, as the session's
// token hash. The first secret is random; every next token is derived from
// the one before with HMAC-SHA256 under a server key:
//
//	secret(n+1) = HMAC(key, text(n))
//
// so sessiond can tell, from the session's current hash alone, whether a
// presented token is a genuine earlier link of the chain (it derives forward
// to the current one) or a forgery (it derives to nothing). A genuine
// earlier token presented again means two parties hold the chain: the
// session is revoked (theft detection). The one exception is the grace
// window: when the presented token is the immediate predecessor of the
// current one and the last refresh is younger than the grace window, the
// request is an honest race (two tabs, a retry after a lost answer), and it
// gets the same current token again, with no rotation and no revocation.
//
// Since issue 20 the 32-byte secret is a core of 16 bytes and a tag of 16:
//
//	core(first) random, core(n+1) = HMAC(key, text(n))[:16]
//	tag = HMAC(key, "sessiond refresh tag" ‖ session id ‖ core)[:16]
//
// so one HMAC tells a token sessiond minted for the session (Genuine) from
// a forgery, whatever the chain's length. The current token and its
// predecessor are recognised by their hashes (the session keeps both,
// Session.PrevTokenHash); only a genuine token older than that (theft:
// revoke) or of a chain that ended (reauthentication: refuse) is walked
// forward with Steps, bounded by the caller. Tokens minted before tags
// (untagged) keep working as the current token or its predecessor; an
// older untagged token is refused without being walked, so it no longer
// revokes its session (theft detection resumes with the next, tagged,
// link).
const RefreshPrefix = "sdr_"

const (
	sidBytes        = 16
	refreshBody     = 64 // base64url of 48 bytes
	refreshTokenLen = len(RefreshPrefix) + refreshBody + 6
)

// ErrMalformedRefresh: not the text of a refresh token.
var ErrMalformedRefresh = errors.New("accesstoken: malformed refresh token")

// Chain derives refresh tokens under a server key.
type Chain struct {
	key []byte
}

// NewChain returns a Chain under key (at least 32 bytes).
func NewChain(key []byte) (*Chain, error) {
	if len(key) < 32 {
		return nil, errors.New("accesstoken: the refresh chain key must be at least 32 bytes")
	}
	return &Chain{key: append([]byte(nil), key...)}, nil
}

// First returns the first refresh token of session id (32 hex characters).
func (c *Chain) First(id string, r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var core [coreBytes]byte
	if _, err := io.ReadFull(r, core[:]); err != nil {
		return "", err
	}
	return c.encode(id, core)
}

// coreBytes is the length of the chain material in a secret; the rest is
// the tag.
const coreBytes = 16

var tagLabel = []byte("sessiond refresh tag")

// tag is the tag of core in session sid (16 raw bytes).
func (c *Chain) tag(sid, core []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write(tagLabel)
	m.Write(sid)
	m.Write(core)
	return m.Sum(nil)[:32-coreBytes]
}

// encode builds the token of session id with core and its tag.
func (c *Chain) encode(id string, core [coreBytes]byte) (string, error) {
	sid, err := hex.DecodeString(id)
	if err != nil || len(sid) != sidBytes {
		return "", errors.New("accesstoken: session ids must be 32 hex characters")
	}
	var secret [32]byte
	copy(secret[:], core[:])
	copy(secret[coreBytes:], c.tag(sid, core[:]))
	return encodeRefresh(id, secret)
}

// Genuine reports whether tok, a well-formed refresh token, was minted by
// a Chain under this key (First or Next) for the session it names: one
// HMAC, whatever the chain's length. Tokens minted before tags existed are
// not genuine.
func (c *Chain) Genuine(tok string) bool {
	if _, err := RefreshSessionID(tok); err != nil {
		return false
	}
	raw, _ := b64.Strict().DecodeString(tok[len(RefreshPrefix) : len(RefreshPrefix)+refreshBody])
	sid, secret := raw[:sidBytes], raw[sidBytes:]
	return hmac.Equal(secret[coreBytes:], c.tag(sid, secret[:coreBytes]))
}

// Next returns the token that follows tok in its chain.
func (c *Chain) Next(tok string) (string, error) {
	id, err := RefreshSessionID(tok)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(tok))
	var core [coreBytes]byte
	copy(core[:], m.Sum(nil))
	return c.encode(id, core)
}

// Steps returns how many derivations lead from tok to the token whose hash
// is current, trying at most max; ok is false when none within max does
// (tok is not an earlier link of this chain). It costs up to max+1 HMACs:
// callers walk only Genuine tokens that are neither the current one nor
// its predecessor.
func (c *Chain) Steps(tok string, current sessiond.TokenHash, max int) (n int, ok bool) {
	for n = 0; n <= max; n++ {
		if sessiond.HashToken(tok).Equal(current) {
			return n, true
		}
		next, err := c.Next(tok)
		if err != nil {
			return 0, false
		}
		tok = next
	}
	return 0, false
}

func encodeRefresh(id string, secret [32]byte) (string, error) {
	sid, err := hex.DecodeString(id)
	if err != nil || len(sid) != sidBytes {
		return "", errors.New("accesstoken: session ids must be 32 hex characters")
	}
	raw := make([]byte, 0, sidBytes+len(secret))
	raw = append(append(raw, sid...), secret[:]...)
	buf := make([]byte, refreshTokenLen)
	n := copy(buf, RefreshPrefix)
	b64.Encode(buf[n:], raw)
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc32.ChecksumIEEE(buf[:n+refreshBody]))
	b64.Encode(buf[n+refreshBody:], sum[:])
	return string(buf), nil
}

// RefreshSessionID checks tok's format and checksum and returns the
// session id it carries.
func RefreshSessionID(tok string) (string, error) {
	if len(tok) != refreshTokenLen || tok[:len(RefreshPrefix)] != RefreshPrefix {
		return "", ErrMalformedRefresh
	}
	raw, err := b64.Strict().DecodeString(tok[len(RefreshPrefix) : len(RefreshPrefix)+refreshBody])
	if err != nil || len(raw) != sidBytes+32 {
		return "", ErrMalformedRefresh
	}
	sum, err := b64.Strict().DecodeString(tok[len(RefreshPrefix)+refreshBody:])
	if err != nil || len(sum) != 4 || binary.BigEndian.Uint32(sum) != crc32.ChecksumIEEE([]byte(tok[:len(RefreshPrefix)+refreshBody])) {
		return "", ErrMalformedRefresh
	}
	return hex.EncodeToString(raw[:sidBytes]), nil
}
