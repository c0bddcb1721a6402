package sealed_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sessiond/sessiond/sealed"
)

// Fixed keys and moment, so that sealed values in testdata/fuzz stay
// valid seeds from one run to the next.
var (
	fuzzOld  = bytes.Repeat([]byte{1}, 32)
	fuzzNew  = bytes.Repeat([]byte{2}, 32)
	fuzzNow  = time.Unix(1_800_000_000, 0).UTC()
	fuzzName = "__Host-sealed"
)

func fuzzKeys(t testing.TB) *sealed.Keys {
	ks, err := sealed.NewKeys(fuzzNew, fuzzOld)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// FuzzSealedOpen hands Keys.Open arbitrary cookie text, and seals
// arbitrary content. Properties: Open never panics and answers only
// ErrInvalid or ErrExpired; what opens is canonical text (strict base64url
// after the version, so one sealed value has one text), opens under its
// own cookie name only, and is live at now unless the error says expired;
// and a session sealed with any user id and data key comes back equal.
func FuzzSealedOpen(f *testing.F) {
	ks := fuzzKeys(f)
	old, _ := sealed.NewKeys(fuzzOld)
	s := &sealed.Session{UserID: "u1", CreatedAt: fuzzNow, LastSeenAt: fuzzNow,
		IdleExpiresAt: fuzzNow.Add(time.Hour), AbsoluteExpiresAt: fuzzNow.Add(2 * time.Hour),
		Data: map[string]json.RawMessage{"cart": json.RawMessage(`["book"]`)}}
	live, _ := ks.Seal(fuzzName, s)
	byOld, _ := old.Seal(fuzzName, s)
	expired := *s
	expired.IdleExpiresAt = fuzzNow
	dead, _ := ks.Seal(fuzzName, &expired)
	f.Add(live, "u1")
	f.Add(byOld, "")
	f.Add(dead, "user\x00")
	f.Add(live[:len(live)-1]+"B", "ü")
	f.Add(live[:10]+"\n"+live[10:], "\xff")
	f.Add("s1.", "")
	f.Add("s1."+strings.Repeat("A", 100), "u")
	f.Add("s2."+live[3:], "u")
	f.Fuzz(func(t *testing.T, text, user string) {
		got, err := ks.Open(fuzzName, text, fuzzNow)
		switch {
		case err == nil:
			if cerr := got.Check(fuzzNow); cerr != nil {
				t.Fatalf("Open(%q) succeeded with a session that fails Check: %v", text, cerr)
			}
		case errors.Is(err, sealed.ErrExpired):
			if got == nil || got.Check(fuzzNow) == nil {
				t.Fatalf("Open(%q) = ErrExpired with session %+v", text, got)
			}
		case errors.Is(err, sealed.ErrInvalid):
			if got != nil {
				t.Fatalf("Open(%q) = ErrInvalid with a session", text)
			}
		default:
			t.Fatalf("Open(%q) = %v", text, err)
		}
		if got != nil {
			body := strings.TrimPrefix(text, "s1.")
			raw, derr := base64.RawURLEncoding.Strict().DecodeString(body)
			if derr != nil || strings.ContainsAny(body, "\r\n") || base64.RawURLEncoding.EncodeToString(raw) != body {
				t.Fatalf("Open accepted %q, which is not canonical base64url", text)
			}
			if _, err := ks.Open(fuzzName+"x", text, fuzzNow); !errors.Is(err, sealed.ErrInvalid) {
				t.Fatalf("%q opened under another cookie name: %v", text, err)
			}
		}

		// Round trip with arbitrary content.
		in := &sealed.Session{UserID: user, CreatedAt: fuzzNow, LastSeenAt: fuzzNow,
			IdleExpiresAt: fuzzNow.Add(time.Minute), AbsoluteExpiresAt: fuzzNow.Add(time.Hour),
			Data: map[string]json.RawMessage{user: json.RawMessage(`1`)}}
		sealedText, err := ks.Seal(fuzzName, in)
		plain, _ := json.Marshal(in)
		size := len("s1.") + base64.RawURLEncoding.EncodedLen(4+24+len(plain)+16) // key id, nonce, tag
		if errors.Is(err, sealed.ErrTooLarge) != (size > sealed.MaxSealedLen) {
			t.Fatalf("Seal of %d bytes of JSON (%d sealed): %v", len(plain), size, err)
		}
		if err != nil && size > sealed.MaxSealedLen {
			return
		}
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if len(sealedText) > sealed.MaxSealedLen {
			t.Fatalf("Seal returned %d bytes, more than MaxSealedLen", len(sealedText))
		}
		out, err := ks.Open(fuzzName, sealedText, fuzzNow)
		if err != nil {
			t.Fatalf("Open(Seal(user %q)) = %v", user, err)
		}
		if !utf8.ValidString(user) {
			return // JSON carries only UTF-8: invalid bytes come back as U+FFFD
		}
		if out.UserID != user || string(out.Data[user]) != "1" || !out.IdleExpiresAt.Equal(in.IdleExpiresAt) {
			t.Fatalf("sealed %+v, opened %+v", in, out)
		}
	})
}

// TestOpenRefusesNonCanonicalText: base64 decoding skips line breaks and,
// unless strict, ignores set padding bits, so these variants of a good
// cookie opened before Open insisted on canonical text (found by
// FuzzSealedOpen).
func TestOpenRefusesNonCanonicalText(t *testing.T) {
	ks := fuzzKeys(t)
	s := &sealed.Session{UserID: "u1", IdleExpiresAt: fuzzNow.Add(time.Hour), AbsoluteExpiresAt: fuzzNow.Add(time.Hour)}
	for range 8 { // until the last character has unused bits to flip
		text, err := ks.Seal(fuzzName, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Open(fuzzName, text, fuzzNow); err != nil {
			t.Fatalf("the good cookie: %v", err)
		}
		variants := map[string]string{
			"newline":         text[:10] + "\n" + text[10:],
			"carriage return": text[:10] + "\r" + text[10:],
			"padding":         text + "==",
		}
		if len(text[3:])%4 != 0 {
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, text[len(text)-1])
			variants["padding bits"] = text[:len(text)-1] + string(alphabet[last^1])
		}
		for name, v := range variants {
			if _, err := ks.Open(fuzzName, v, fuzzNow); !errors.Is(err, sealed.ErrInvalid) {
				t.Errorf("%s: Open = %v, want ErrInvalid", name, err)
			}
		}
		if len(text[3:])%4 != 0 {
			return
		}
		s.UserID += "x"
	}
}
