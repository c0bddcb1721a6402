package sessiond_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
)

// Fuzz targets of the root package: token text and session data, the two
// things a client hands the Manager directly. Seed inputs that are worth
// keeping beyond the f.Add seeds below live in testdata/fuzz/<target>/.
// scripts/fuzz.sh runs every target for a bounded time.

// refCheckSecret is CheckSecret written the slow, obvious way, with the
// standard library's strict base64: the fuzz targets hold the fast,
// allocation-free CheckSecret to it.
func refCheckSecret(text, prefix string) (secret []byte, ok bool) {
	body, found := strings.CutPrefix(text, prefix)
	if !found || len(body) != 43+6 || strings.ContainsAny(body, "\r\n") {
		return nil, false
	}
	enc := base64.RawURLEncoding.Strict()
	raw, err := enc.DecodeString(body[:43])
	if err != nil || len(raw) != 32 {
		return nil, false
	}
	sum, err := enc.DecodeString(body[43:])
	if err != nil || len(sum) != 4 {
		return nil, false
	}
	if binary.BigEndian.Uint32(sum) != crc32.ChecksumIEEE([]byte(text[:len(prefix)+43])) {
		return nil, false
	}
	return raw, true
}

// fuzzManager is one Manager per fuzzing process with one issued session:
// the only token Validate may accept.
var fuzzManager = sync.OnceValues(func() (*sessiond.Manager, string) {
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		panic(err)
	}
	_, tok, err := m.Create(context.Background(), sessiond.CreateParams{UserID: "u1"})
	if err != nil {
		panic(err)
	}
	return m, tok
})

// FuzzParseToken feeds arbitrary text to ParseToken (the check every
// presented token meets before any store lookup) and to Manager.Validate.
// Properties: ParseToken agrees with the strict-base64 reference; what it
// accepts is canonical (decodes and re-encodes to itself); every single
// character change of an accepted token is refused; Validate signs in
// nobody but the holder of the one issued token.
func FuzzParseToken(f *testing.F) {
	tok, _ := sessiond.NewSecret(bytes.NewReader(make([]byte, 32)), sessiond.TokenPrefix)
	f.Add(tok)
	f.Add("")
	f.Add("sdt_")
	f.Add(tok[:len(tok)-1] + "B")                                  // padding bits of the checksum
	f.Add(tok[:4+42] + "B" + tok[4+43:])                           // padding bits of the secret
	f.Add(tok[:10] + "\n" + tok[11:])                              // base64 skips newlines
	f.Add(strings.ToUpper(tok))                                    // wrong prefix case
	f.Add("Bearer " + tok)                                         // a header pasted whole
	f.Add("sdr_" + tok[4:])                                        // another kind of secret
	f.Add("sdt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/////") // std base64 alphabet
	f.Fuzz(func(t *testing.T, text string) {
		err := sessiond.ParseToken(text)
		if err != nil && !errors.Is(err, sessiond.ErrMalformedToken) {
			t.Fatalf("ParseToken(%q) = %v, not ErrMalformedToken", text, err)
		}
		secret, refOK := refCheckSecret(text, sessiond.TokenPrefix)
		if (err == nil) != refOK {
			t.Fatalf("ParseToken(%q) = %v, the strict reference says ok=%v", text, err, refOK)
		}
		if err == nil {
			again, _ := sessiond.NewSecret(bytes.NewReader(secret), sessiond.TokenPrefix)
			if again != text {
				t.Fatalf("accepted %q, but its secret encodes to %q", text, again)
			}
			for i := range len(text) {
				bad := []byte(text)
				bad[i] = nextB64(bad[i])
				if sessiond.ParseToken(string(bad)) == nil {
					t.Fatalf("changed character %d of %q and it still parses: %q", i, text, bad)
				}
			}
		}
		m, issued := fuzzManager()
		s, verr := m.Validate(t.Context(), text)
		switch {
		case verr == nil && text != issued:
			t.Fatalf("Validate(%q) signed in session %s, issued only to %q", text, s.ID, issued)
		case verr != nil && text == issued:
			t.Fatalf("Validate(issued token) = %v", verr)
		case verr != nil && !sessiond.IsRejection(verr):
			t.Fatalf("Validate(%q) = %v: a store failure on a memory store", text, verr)
		}
	})
}

// nextB64 returns another character of the base64url alphabet.
func nextB64(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[(i+1)%len(alphabet)]
}

// FuzzCheckSecret covers the secrets of every kind (session, refresh,
// reset tokens) through their shared NewSecret/CheckSecret pair, with
// arbitrary prefixes, text and randomness. Properties: CheckSecret agrees
// with the reference; NewSecret's output always checks, carries the 256
// bits it read unchanged, and is refused under any other prefix.
func FuzzCheckSecret(f *testing.F) {
	f.Add("sdt_", "", make([]byte, 32))
	f.Add("sdr_", "sdr_AAAA", bytes.Repeat([]byte{0xff}, 32))
	f.Add("", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", []byte("0123456789abcdef0123456789abcdef"))
	f.Add("sdp_", "sdp_\x00", []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, prefix, text string, random []byte) {
		_, refOK := refCheckSecret(text, prefix)
		if got := sessiond.CheckSecret(text, prefix); got != refOK {
			t.Fatalf("CheckSecret(%q, %q) = %v, reference %v", text, prefix, got, refOK)
		}
		tok, err := sessiond.NewSecret(bytes.NewReader(random), prefix)
		if len(random) < 32 {
			if err == nil {
				t.Fatalf("NewSecret made %q from %d bytes of randomness", tok, len(random))
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		secret, ok := refCheckSecret(tok, prefix)
		if !ok || !sessiond.CheckSecret(tok, prefix) {
			t.Fatalf("NewSecret's %q does not check under prefix %q", tok, prefix)
		}
		if !bytes.Equal(secret, random[:32]) {
			t.Fatalf("NewSecret's %q carries %x, read %x", tok, secret, random[:32])
		}
		if other := prefix + "x"; sessiond.CheckSecret(tok, other) {
			t.Fatalf("%q checks under prefix %q too", tok, other)
		}
	})
}

var keyPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// Limits small enough for the fuzzer to reach.
const (
	fuzzMaxValue = 64
	fuzzMaxData  = 160
)

// FuzzSessionData writes arbitrary keys and values into a session through
// the Manager: at creation, then two SetData calls and a DeleteData.
// Properties: ValidKey is exactly the documented pattern; every write that
// succeeds keeps the data within the limits and every write that fails
// changes nothing (the data always equals a model kept beside it); the
// errors are the documented ones.
func FuzzSessionData(f *testing.F) {
	f.Add("cart", []byte(`{"items":[1,2]}`), "theme", []byte(`"dark"`), "cart", true)
	f.Add("", []byte(nil), "a/b", []byte("x"), "", false)
	f.Add(strings.Repeat("k", 128), bytes.Repeat([]byte("v"), fuzzMaxValue), strings.Repeat("k", 129), []byte("v"), "k", true)
	f.Add("a", bytes.Repeat([]byte("v"), fuzzMaxValue+1), "b", bytes.Repeat([]byte("w"), fuzzMaxValue), "b", false)
	f.Add("key\x00", []byte("v"), "ké", []byte("v"), "key\n", true)
	f.Fuzz(func(t *testing.T, k1 string, v1 []byte, k2 string, v2 []byte, del string, atCreate bool) {
		if keyPattern.MatchString(k1) != sessiond.ValidKey(k1) {
			t.Fatalf("ValidKey(%q) = %v, pattern says %v", k1, sessiond.ValidKey(k1), !sessiond.ValidKey(k1))
		}
		ctx := t.Context()
		m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{MaxValueBytes: fuzzMaxValue, MaxDataBytes: fuzzMaxData})
		if err != nil {
			t.Fatal(err)
		}
		model := map[string][]byte{}
		// wantErr is the error a write of key=value onto model must give.
		wantErr := func(key string, value []byte) error {
			switch {
			case !sessiond.ValidKey(key):
				return sessiond.ErrInvalidKey
			case len(value) > fuzzMaxValue:
				return sessiond.ErrValueTooLarge
			}
			next := maps.Clone(model)
			next[key] = value
			if sessiond.DataSize(next) > fuzzMaxData {
				return sessiond.ErrDataTooLarge
			}
			return nil
		}
		check := func(id, step string) {
			t.Helper()
			got, err := m.Data(ctx, id)
			if err != nil {
				t.Fatalf("%s: Data: %v", step, err)
			}
			if !maps.EqualFunc(got, model, bytes.Equal) {
				t.Fatalf("%s: data %q, want %q", step, got, model)
			}
			if n := sessiond.DataSize(got); n > fuzzMaxData {
				t.Fatalf("%s: data holds %d bytes, over the limit of %d", step, n, fuzzMaxData)
			}
		}
		var initial map[string][]byte
		if atCreate {
			initial = map[string][]byte{k1: v1}
		}
		s, _, err := m.Create(ctx, sessiond.CreateParams{Data: initial})
		if atCreate {
			if want := wantErr(k1, v1); !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Fatalf("Create with data {%q: %d bytes} = %v, want %v", k1, len(v1), err, want)
			}
			if err != nil {
				return
			}
			model[k1] = v1
		} else {
			if err != nil {
				t.Fatal(err)
			}
			set(t, m, s.ID, k1, v1, wantErr(k1, v1), model)
		}
		check(s.ID, "first write")
		set(t, m, s.ID, k2, v2, wantErr(k2, v2), model)
		check(s.ID, "second write")
		err = m.DeleteData(ctx, s.ID, del)
		if sessiond.ValidKey(del) != (err == nil) || (err != nil && !errors.Is(err, sessiond.ErrInvalidKey)) {
			t.Fatalf("DeleteData(%q) = %v", del, err)
		}
		if err == nil {
			delete(model, del)
		}
		check(s.ID, "delete")
	})
}

func set(t *testing.T, m *sessiond.Manager, id, key string, value []byte, want error, model map[string][]byte) {
	t.Helper()
	err := m.SetData(t.Context(), id, key, value)
	if (want == nil) != (err == nil) || !errors.Is(err, want) {
		t.Fatalf("SetData(%q, %d bytes) = %v, want %v", key, len(value), err, want)
	}
	if err == nil {
		model[key] = bytes.Clone(value)
	}
}
