package sessiond_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
)

func TestTokenFormat(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		tok, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != sessiond.TokenLen || !strings.HasPrefix(tok, "sdt_") {
			t.Fatalf("token %q: want %d characters starting sdt_", tok, sessiond.TokenLen)
		}
		if err := sessiond.ParseToken(tok); err != nil {
			t.Fatalf("ParseToken(%q) = %v", tok, err)
		}
		if seen[tok] {
			t.Fatalf("duplicate token %q", tok)
		}
		seen[tok] = true
		// URL- and cookie-safe alphabet.
		if strings.ContainsFunc(tok, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			t.Fatalf("token %q has characters outside base64url", tok)
		}
	}
}

func TestParseTokenRefusesDamage(t *testing.T) {
	tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	// Every single-character change is caught by the checksum or the format.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range len(tok) {
		for _, c := range []byte(alphabet + "!=+/ ") {
			if c == tok[i] {
				continue
			}
			bad := tok[:i] + string(c) + tok[i+1:]
			if sessiond.ParseToken(bad) == nil {
				t.Fatalf("changed character %d to %q and it still parses: %q", i, c, bad)
			}
		}
	}
	for _, bad := range []string{"", tok[:len(tok)-1], tok + "A", "Bearer " + tok, strings.ToUpper(tok), "sdp_" + tok[4:]} {
		if err := sessiond.ParseToken(bad); !errors.Is(err, sessiond.ErrMalformedToken) {
			t.Errorf("ParseToken(%q) = %v", bad, err)
		}
	}
}

func TestNewSecretUsesTheGivenReader(t *testing.T) {
	a, _ := sessiond.NewSecret(bytes.NewReader(make([]byte, 32)), "x_")
	b, _ := sessiond.NewSecret(bytes.NewReader(make([]byte, 32)), "x_")
	if a != b || !sessiond.CheckSecret(a, "x_") {
		t.Fatalf("deterministic reader gave %q and %q", a, b)
	}
	if _, err := sessiond.NewSecret(bytes.NewReader(make([]byte, 31)), "x_"); err == nil {
		t.Fatal("a short read must fail, not give a weak token")
	}
}

func TestHashToken(t *testing.T) {
	tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	h := sessiond.HashToken(tok)
	if h != sha256.Sum256([]byte(tok)) {
		t.Fatal("HashToken is not SHA-256 of the text")
	}
	if !h.Equal(h) || h.Equal(sessiond.HashToken(tok+"x")) {
		t.Fatal("Equal is wrong")
	}
}

func TestValidKey(t *testing.T) {
	for k, want := range map[string]bool{"a": true, "A.b_c-9": true, strings.Repeat("k", 128): true,
		"": false, strings.Repeat("k", 129): false, "a b": false, "a/b": false, "ä": false, "a\x00": false} {
		if sessiond.ValidKey(k) != want {
			t.Errorf("ValidKey(%q) = %v", k, !want)
		}
	}
}

func TestPolicyValidation(t *testing.T) {
	for _, p := range []sessiond.Policy{
		{IdleTimeout: -1}, {AbsoluteTimeout: 500e6}, {MaxSessionsPerUser: -1},
		{TouchInterval: -1}, {IdleTimeout: 60e9, TouchInterval: 120e9}, {MaxValueBytes: 10, MaxDataBytes: 5},
	} {
		if _, err := sessiond.NewManager(nopStore{}, p); !errors.Is(err, sessiond.ErrInvalidPolicy) {
			t.Errorf("NewManager(%+v) = %v, want ErrInvalidPolicy", p, err)
		}
	}
	m, err := sessiond.NewManager(nopStore{}, sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if p := m.Policy(); p.IdleTimeout != sessiond.DefaultIdleTimeout || p.RememberMeLifetime != sessiond.DefaultRememberMeLifetime {
		t.Fatalf("defaults not applied: %+v", p)
	}
}

func TestParseDevice(t *testing.T) {
	for ua, want := range map[string][2]string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0":                                                                  {"Firefox", "Linux"},
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1": {"Safari", "iOS"},
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15":                   {"Safari", "MacOS"},
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36":                           {"Chrome", "Linux"},
		"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36":                          {"Chrome", "ChromeOS"},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0":           {"Edge", "Windows"},
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36":                   {"Chrome", "Android"},
		"Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko":                                                                    {"IE", "Windows"},
		"Opera/9.80 (Android; Opera Mini/28.0.2254/66.318; U; en) Presto/2.12.423 Version/12.16":                                                  {"Opera", "Android"},
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)":                                                                {"", ""},
		"curl/8.5.0": {"", ""},
		"":           {"", ""},
	} {
		d := sessiond.ParseDevice(ua)
		if d.Browser != want[0] || d.OS != want[1] || d.UserAgent != ua {
			t.Errorf("ParseDevice(%q) = %+v, want %v", ua, d, want)
		}
	}
	if d := sessiond.ParseDevice(strings.Repeat("x", 5000)); len(d.UserAgent) > 512 {
		t.Errorf("user agent kept at %d bytes", len(d.UserAgent))
	}
}

// nopStore is a Store that is never called.
type nopStore struct{ sessiond.Store }
