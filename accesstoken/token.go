package accesstoken

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/sessiond/sessiond"
)

// Claims are the claims of a sessiond access token. Nothing in them is
// secret: a token is signed, not encrypted.
type Claims struct {
	Issuer     string           `json:"iss"`
	Subject    string           `json:"sub"`           // the user id
	Audience   jwt.Audience     `json:"aud,omitempty"` // who may accept it
	IssuedAt   *jwt.NumericDate `json:"iat"`
	NotBefore  *jwt.NumericDate `json:"nbf"`
	Expiry     *jwt.NumericDate `json:"exp"`
	ID         string           `json:"jti"`
	SessionID  string           `json:"sid"`         // the server-side session
	RememberMe bool             `json:"remember_me"` // the session's kind
	AMR        []string         `json:"amr,omitempty"`
	// AuthTime is when the user last proved who they are in the session
	// (OpenID Connect's auth_time): the sign-in, or the latest
	// reauthentication or change of password. Absent for a session
	// without a proof (an administrator's).
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
}

// Params describe the session a token is issued for.
type Params struct {
	UserID     string
	SessionID  string
	RememberMe bool
	// AMR are the authentication methods (RFC 8176), e.g. ["pwd"].
	AMR []string
	// AuthTime is the session's AuthenticatedAt; zero for none.
	AuthTime time.Time
}

// Issuer signs access tokens.
type Issuer struct {
	// Name is the "iss" claim, e.g. "https://login.example.com".
	Name string
	// Audience is the "aud" claim (may be empty).
	Audience []string
	// TTL is the lifetime of a token. Default 5m.
	TTL time.Duration
}

// Issue signs a token for p with the ring's signing key at now.
func (is *Issuer) Issue(ring *Ring, p Params, now time.Time) (string, *Claims, error) {
	k, err := ring.Signing(now)
	if err != nil {
		return "", nil, err
	}
	ttl := is.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: k.Private},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.ID))
	if err != nil {
		return "", nil, fmt.Errorf("accesstoken: %w", err)
	}
	jti, err := sessiond.NewID(nil)
	if err != nil {
		return "", nil, err
	}
	now = now.UTC()
	c := &Claims{
		Issuer: is.Name, Subject: p.UserID, Audience: jwt.Audience(is.Audience),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(ttl)),
		ID: jti, SessionID: p.SessionID, RememberMe: p.RememberMe, AMR: p.AMR,
	}
	if !p.AuthTime.IsZero() {
		c.AuthTime = jwt.NewNumericDate(p.AuthTime.UTC())
	}
	tok, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		return "", nil, fmt.Errorf("accesstoken: %w", err)
	}
	return tok, c, nil
}

// JWKS returns the JSON Web Key Set document of keys.
func JWKS(keys []*Key) ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: k.ID, Algorithm: string(jose.EdDSA), Use: "sig"})
	}
	return json.Marshal(set)
}

// Errors of verification.
var (
	ErrInvalid    = errors.New("accesstoken: invalid token")
	ErrUnknownKey = errors.New("accesstoken: token signed by an unknown key")
	ErrExpired    = errors.New("accesstoken: token expired")
)

// Expected are the checks Verify applies besides the signature.
type Expected struct {
	Issuer string
	// Audience, when set, must be among the token's audiences.
	Audience string
	// Leeway allows for clock skew between services. Default 30s.
	Leeway time.Duration
}

// Verify checks token's signature with the key its "kid" names (found by
// keyFor), then issuer, audience and the time claims at now.
//
// Only the canonical text of a token verifies: three segments of unpadded
// base64url, nothing that a lenient decoder would skip (line breaks) or
// ignore (set bits past the last byte). The JOSE library decodes leniently
// and checks the signature over the segments re-encoded, so without this
// check many texts would pass for one signed token, and a deny-list or
// cache keyed by token text could be walked around.
func Verify(token string, keyFor func(kid string) (ed25519.PublicKey, bool), want Expected, now time.Time) (*Claims, error) {
	if !canonicalCompact(token) {
		return nil, ErrInvalid
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(parsed.Headers) != 1 {
		return nil, ErrInvalid
	}
	h := parsed.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "" && typ != "JWT" {
		return nil, ErrInvalid
	}
	pub, ok := keyFor(h.KeyID)
	if !ok {
		return nil, ErrUnknownKey
	}
	var c Claims
	if err := parsed.Claims(pub, &c); err != nil {
		return nil, ErrInvalid
	}
	leeway := want.Leeway
	if leeway <= 0 {
		leeway = 30 * time.Second
	}
	std := jwt.Claims{Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
		IssuedAt: c.IssuedAt, NotBefore: c.NotBefore, Expiry: c.Expiry, ID: c.ID}
	exp := jwt.Expected{Issuer: want.Issuer, Time: now}
	if want.Audience != "" {
		exp.AnyAudience = jwt.Audience{want.Audience}
	}
	if c.Expiry == nil || c.Subject == "" || c.SessionID == "" {
		return nil, ErrInvalid
	}
	if err := std.ValidateWithLeeway(exp, leeway); err != nil {
		if errors.Is(err, jwt.ErrExpired) {
			return nil, ErrExpired
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	// RFC 7519 wants now before exp; the JOSE library still accepts a token
	// at exactly exp+leeway. A deadline that equals now has passed, as for
	// sessions.
	if !now.Before(c.Expiry.Time().Add(leeway)) {
		return nil, ErrExpired
	}
	return &c, nil
}

// canonicalCompact reports whether token is a compact serialisation in
// canonical unpadded base64url: exactly three segments, each only of the
// URL-safe alphabet, of a length that unpadded base64 can have, and with
// the unused low bits of its last character zero.
func canonicalCompact(token string) bool {
	segments := 0
	start := 0
	for i := 0; i <= len(token); i++ {
		if i < len(token) && token[i] != '.' {
			if !isB64URL(token[i]) {
				return false
			}
			continue
		}
		if !canonicalSegment(token[start:i]) {
			return false
		}
		segments++
		start = i + 1
	}
	return segments == 3
}

func canonicalSegment(seg string) bool {
	switch len(seg) % 4 {
	case 0:
		return true
	case 2: // one byte: 12 bits encoded, the low 4 unused
		return b64Value(seg[len(seg)-1])&0xf == 0
	case 3: // two bytes: 18 bits encoded, the low 2 unused
		return b64Value(seg[len(seg)-1])&0x3 == 0
	}
	return false // a length unpadded base64 never has
}

func isB64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// b64Value is the value of a base64url character (c must be one).
func b64Value(c byte) byte {
	switch {
	case 'A' <= c && c <= 'Z':
		return c - 'A'
	case 'a' <= c && c <= 'z':
		return c - 'a' + 26
	case '0' <= c && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63
}
