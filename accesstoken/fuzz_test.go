package accesstoken

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// The fuzz targets sign with a fixed key at a fixed moment, so that the
// tokens in testdata/fuzz stay valid seeds from one run to the next.
var (
	fuzzKey = func() *Key {
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
		return &Key{ID: keyID(priv.Public().(ed25519.PublicKey)), Private: priv}
	}()
	fuzzNow    = time.Unix(1_800_000_000, 0).UTC()
	fuzzIssuer = "https://login.example"
	fuzzWant   = Expected{Issuer: fuzzIssuer, Leeway: 30 * time.Second}
)

func fuzzKeyFor(kid string) (ed25519.PublicKey, bool) {
	if kid == fuzzKey.ID {
		return fuzzKey.Public(), true
	}
	return nil, false
}

// signCompact signs header and payload (any bytes) with the fuzz key as a
// compact JWS, the way any EdDSA signer would.
func signCompact(header, payload []byte) string {
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	return input + "." + b64.EncodeToString(ed25519.Sign(fuzzKey.Private, []byte(input)))
}

func fuzzHeader() []byte {
	return []byte(`{"alg":"EdDSA","kid":"` + fuzzKey.ID + `","typ":"JWT"}`)
}

func fuzzPayload() []byte {
	return []byte(`{"iss":"https://login.example","sub":"u1","iat":1800000000,"nbf":1800000000,"exp":1800000300,"jti":"j1","sid":"s1"}`)
}

// canonicalJWS reports whether tok is three segments of unpadded base64url
// that decode strictly: the only text of its bytes.
func canonicalJWS(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if strings.ContainsAny(p, "\r\n") {
			return false
		}
		raw, err := b64.Strict().DecodeString(p)
		if err != nil || b64.EncodeToString(raw) != p {
			return false
		}
	}
	return true
}

// FuzzVerify hands Verify arbitrary text; the seeds are tokens signed by
// the fuzz key, so mutations explore near-valid tokens. Properties: no
// panic; the errors are the package's; a token that verifies is canonical
// text (so no two texts pass for one signed token) whose signature checks
// against the fuzz key over exactly its first two segments, and whose
// claims meet every Expected check.
func FuzzVerify(f *testing.F) {
	valid := signCompact(fuzzHeader(), fuzzPayload())
	f.Add(valid)
	f.Add(valid[:len(valid)-1] + "B")              // padding bits of the signature
	f.Add(strings.Replace(valid, ".", ".\n", 1))   // a newline that base64 skips
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.") // alg none
	f.Add(signCompact([]byte(`{"alg":"HS256","kid":"`+fuzzKey.ID+`"}`), fuzzPayload()))
	f.Add(signCompact(fuzzHeader(), []byte(`{"iss":"https://login.example","sub":"u1","sid":"s1"}`))) // no exp
	f.Add(signCompact(fuzzHeader(), []byte(`{"iss":"https://login.example","sub":"u1","sid":"s1","exp":1e300}`)))
	f.Add(signCompact([]byte(`{"alg":"EdDSA","kid":"`+fuzzKey.ID+`","b64":false,"crit":["b64"]}`), fuzzPayload()))
	f.Add("..")
	f.Add("a.b.c.d")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(tok, fuzzKeyFor, fuzzWant, fuzzNow)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrExpired) {
				t.Fatalf("Verify(%q) = %v: not an error of the package", tok, err)
			}
			return
		}
		if !canonicalJWS(tok) {
			t.Fatalf("Verify accepted %q, which is not canonical base64url", tok)
		}
		i := strings.LastIndexByte(tok, '.')
		sig, _ := b64.DecodeString(tok[i+1:])
		if !ed25519.Verify(fuzzKey.Public(), []byte(tok[:i]), sig) {
			t.Fatalf("Verify accepted %q, whose signature is not the key's over its text", tok)
		}
		checkClaims(t, tok, c)
	})
}

// FuzzVerifyClaims signs arbitrary header and payload bytes with the fuzz
// key, so every input has a good signature and the fuzzer explores what
// Verify makes of the content. Properties: what verifies was signed with
// alg EdDSA under the key's kid, with typ absent or JWT, and its claims
// are the payload's own (as a strict JSON reader sees them) and meet the
// issuer, subject, session and time checks at the fixed moment.
func FuzzVerifyClaims(f *testing.F) {
	f.Add(fuzzHeader(), fuzzPayload())
	f.Add([]byte(`{"alg":"EdDSA","kid":"`+fuzzKey.ID+`"}`), []byte(`{"iss":"https://login.example","sub":"u1","sid":"s1","exp":1800000001,"nbf":1800000029}`))
	f.Add([]byte(`{"alg":"EdDSA","kid":"`+fuzzKey.ID+`","typ":"at+jwt"}`), fuzzPayload())
	f.Add([]byte(`{"alg":"EdDSA","alg":"none","kid":"`+fuzzKey.ID+`"}`), fuzzPayload())
	f.Add(fuzzHeader(), []byte(`{"iss":"https://login.example","sub":"u1","SID":"s1","sid":"","exp":1800000300}`))
	f.Add(fuzzHeader(), []byte(`{"iss":"https://login.example","sub":"u1","sid":"s1","exp":"1800000300"}`))
	f.Add(fuzzHeader(), []byte(`{"iss":"https://login.example","sub":"u1","sid":"s1","exp":1799999950}`))
	f.Add(fuzzHeader(), []byte(`{"iss":"https://login.example","sub":"u1","sid":"s1","exp":1800000300,"aud":["a","b"],"amr":["pwd"],"remember_me":true}`))
	f.Add(fuzzHeader(), []byte(`{"iss":"https://login.example","sub":"u1","sid":"s1","exp":1800000300,"sub":""}`))
	f.Add(fuzzHeader(), []byte(`null`))
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		tok := signCompact(header, payload)
		c, err := Verify(tok, fuzzKeyFor, fuzzWant, fuzzNow)
		if err != nil {
			return
		}
		var h map[string]any
		if err := json.Unmarshal(header, &h); err != nil {
			t.Fatalf("Verify accepted a token whose header %q is not a JSON object: %v", header, err)
		}
		if h["alg"] != "EdDSA" || h["kid"] != fuzzKey.ID {
			t.Fatalf("Verify accepted header %q: alg %v, kid %v", header, h["alg"], h["kid"])
		}
		if typ, ok := h["typ"]; ok && typ != "JWT" && typ != "" {
			t.Fatalf("Verify accepted header %q with typ %v", header, typ)
		}
		checkClaims(t, tok, c)
	})
}

// checkClaims holds c, the claims Verify returned for tok, to the token's
// payload as a strict reader sees it (exact key names, last duplicate
// wins) and to the Expected checks at fuzzNow.
func checkClaims(t *testing.T, tok string, c *Claims) {
	t.Helper()
	parts := strings.Split(tok, ".")
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("verified %q, payload does not decode: %v", tok, err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("verified a payload %q that is not a JSON object: %v", payload, err)
	}
	str := func(k string) string { s, _ := m[k].(string); return s }
	num := func(k string) (float64, bool) {
		n, ok := m[k].(json.Number)
		if !ok {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	switch {
	case str("iss") != fuzzIssuer || c.Issuer != fuzzIssuer:
		t.Fatalf("verified %q: iss %q, claims say %q", payload, m["iss"], c.Issuer)
	case str("sub") == "" || c.Subject != str("sub"):
		t.Fatalf("verified %q: sub %q, claims say %q", payload, m["sub"], c.Subject)
	case str("sid") == "" || c.SessionID != str("sid"):
		t.Fatalf("verified %q: sid %q, claims say %q", payload, m["sid"], c.SessionID)
	}
	leeway := fuzzWant.Leeway.Seconds()
	now := float64(fuzzNow.Unix())
	exp, ok := num("exp")
	if !ok || c.Expiry == nil || exp+leeway <= now || math.Abs(float64(c.Expiry.Time().Unix())-math.Trunc(exp)) > 1 {
		t.Fatalf("verified %q at %v: exp %v (claims %v)", payload, now, m["exp"], c.Expiry)
	}
	if nbf, ok := num("nbf"); ok && nbf-leeway > now {
		t.Fatalf("verified %q at %v before its nbf %v", payload, now, nbf)
	}
	if _, ok := m["nbf"]; ok {
		if _, isNum := num("nbf"); !isNum && m["nbf"] != nil {
			t.Fatalf("verified %q with a non-numeric nbf %v", payload, m["nbf"])
		}
	}
}

// FuzzRefreshSessionID hands arbitrary text to RefreshSessionID, the
// parser of every presented refresh token. Properties: what it accepts is
// canonical (the session id and secret it carries encode back to the same
// text) and carries a 32-hex-digit id; the next link of an accepted token
// is accepted too, carries the same id, differs from it, and is derived
// deterministically; an accepted token is zero steps from its own hash.
func FuzzRefreshSessionID(f *testing.F) {
	chain, _ := NewChain(bytes.Repeat([]byte{9}, 32))
	first, _ := chain.First("0123456789abcdef0123456789abcdef", bytes.NewReader(make([]byte, 32)))
	next, _ := chain.Next(first)
	f.Add(first)
	f.Add(next)
	f.Add(first[:len(first)-1] + "B")
	f.Add(first[:20] + "\n" + first[21:])
	f.Add("sdr_")
	f.Add("sdt_" + first[4:])
	f.Add(strings.Repeat("A", refreshTokenLen))
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := RefreshSessionID(tok)
		if err != nil {
			if !errors.Is(err, ErrMalformedRefresh) {
				t.Fatalf("RefreshSessionID(%q) = %v", tok, err)
			}
			if _, err := chain.Next(tok); err == nil {
				t.Fatalf("Next derived from %q, which does not parse", tok)
			}
			return
		}
		raw, err := hex.DecodeString(id)
		if err != nil || len(raw) != sidBytes || hex.EncodeToString(raw) != id {
			t.Fatalf("RefreshSessionID(%q) = %q, not 32 lower-case hex digits", tok, id)
		}
		body, err := base64.RawURLEncoding.DecodeString(tok[len(RefreshPrefix) : len(RefreshPrefix)+refreshBody])
		if err != nil {
			t.Fatal(err)
		}
		again, err := encodeRefresh(id, [32]byte(body[sidBytes:]))
		if err != nil || again != tok {
			t.Fatalf("accepted %q, but its id and secret encode to %q (%v)", tok, again, err)
		}
		n1, err1 := chain.Next(tok)
		n2, err2 := chain.Next(tok)
		if err1 != nil || err2 != nil || n1 != n2 || n1 == tok {
			t.Fatalf("Next(%q) = %q, %q (%v, %v)", tok, n1, n2, err1, err2)
		}
		if nid, err := RefreshSessionID(n1); err != nil || nid != id {
			t.Fatalf("Next(%q) = %q carries %q (%v), want %q", tok, n1, nid, err, id)
		}
		if steps, ok := chain.Steps(tok, sessiond.HashToken(tok), 0); !ok || steps != 0 {
			t.Fatalf("Steps(%q, own hash) = %d, %v", tok, steps, ok)
		}
		if steps, ok := chain.Steps(tok, sessiond.HashToken(n1), 3); !ok || steps != 1 {
			t.Fatalf("Steps(%q, next's hash) = %d, %v", tok, steps, ok)
		}
	})
}

// TestVerifyRefusesNonCanonicalText: the JOSE library skips line breaks
// and ignores set padding bits, and checks the signature over the
// re-encoded segments, so these variants of a good token verified before
// Verify insisted on canonical text (found by FuzzVerify).
func TestVerifyRefusesNonCanonicalText(t *testing.T) {
	valid := signCompact(fuzzHeader(), fuzzPayload())
	if _, err := Verify(valid, fuzzKeyFor, fuzzWant, fuzzNow); err != nil {
		t.Fatalf("the good token: %v", err)
	}
	parts := strings.Split(valid, ".")
	bump := func(seg string) string { // flip an unused low bit of the last character
		return seg[:len(seg)-1] + string(nextWithLowBit(seg[len(seg)-1]))
	}
	for name, tok := range map[string]string{
		"newline in a segment": parts[0] + ".\n" + parts[1] + "." + parts[2],
		"carriage return":      parts[0] + "." + parts[1] + ".\r" + parts[2],
		"padding bits, sig":    parts[0] + "." + parts[1] + "." + bump(parts[2]),
		"padding characters":   parts[0] + "." + parts[1] + "." + parts[2] + "==",
		"standard alphabet":    strings.NewReplacer("-", "+", "_", "/").Replace(valid),
		"four segments":        valid + ".",
		"space":                " " + valid,
	} {
		if tok == valid {
			continue // the replacer found nothing to replace
		}
		if _, err := Verify(tok, fuzzKeyFor, fuzzWant, fuzzNow); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Verify = %v, want ErrInvalid", name, err)
		}
	}
}

// nextWithLowBit returns the base64url character one above c, which
// differs from it in its lowest bit.
func nextWithLowBit(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return alphabet[strings.IndexByte(alphabet, c)^1]
}

// TestVerifyExpiryBoundary: a token whose exp plus the leeway is exactly
// now has expired (RFC 7519: now must be before exp), one second earlier it
// has not. The JOSE library accepted it at the boundary (found by
// FuzzVerifyClaims).
func TestVerifyExpiryBoundary(t *testing.T) {
	at := func(exp int64) error {
		payload := fmt.Sprintf(`{"iss":%q,"sub":"u1","sid":"s1","exp":%d}`, fuzzIssuer, exp)
		_, err := Verify(signCompact(fuzzHeader(), []byte(payload)), fuzzKeyFor, fuzzWant, fuzzNow)
		return err
	}
	edge := fuzzNow.Add(-fuzzWant.Leeway).Unix()
	if err := at(edge); !errors.Is(err, ErrExpired) {
		t.Errorf("exp + leeway = now: Verify = %v, want ErrExpired", err)
	}
	if err := at(edge + 1); err != nil {
		t.Errorf("exp + leeway = now + 1s: Verify = %v, want ok", err)
	}
}
