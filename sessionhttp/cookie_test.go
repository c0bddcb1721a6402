package sessionhttp_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessionhttp"
)

// TestSessionCookieAttributes pins the attributes of the default session
// cookie (OWASP ASVS 3.4.1 to 3.4.5): Secure, HttpOnly, SameSite=Lax, the
// __Host- prefix with Path=/ and no Domain; no Max-Age or Expires unless
// Remember Me; the clearing cookie carries the same attributes.
func TestSessionCookieAttributes(t *testing.T) {
	now := time.Now()
	check := func(t *testing.T, line string, wantMaxAge string) {
		t.Helper()
		parts := strings.Split(line, "; ")
		attrs := map[string]string{}
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			attrs[strings.ToLower(k)] = v
		}
		name, _, _ := strings.Cut(parts[0], "=")
		if name != "__Host-session" {
			t.Errorf("cookie %q: name %q, want __Host-session", line, name)
		}
		for attr, want := range map[string]string{"path": "/", "samesite": "Lax", "secure": "", "httponly": ""} {
			if got, ok := attrs[attr]; !ok || got != want {
				t.Errorf("cookie %q: %s=%q (present %v), want %q", line, attr, got, ok, want)
			}
		}
		if _, ok := attrs["domain"]; ok {
			t.Errorf("cookie %q has a Domain", line)
		}
		if _, ok := attrs["expires"]; ok && wantMaxAge == "" {
			t.Errorf("cookie %q has Expires", line)
		}
		if got, ok := attrs["max-age"]; wantMaxAge == "" && ok || wantMaxAge != "" && (!ok || !strings.HasPrefix(got, wantMaxAge)) {
			t.Errorf("cookie %q: Max-Age %q, want %q", line, got, wantMaxAge)
		}
	}
	var c sessionhttp.Cookie
	tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)

	w := httptest.NewRecorder()
	c.Set(w, tok, &sessiond.Session{AbsoluteExpiresAt: now.Add(12 * time.Hour)}, now)
	check(t, w.Header().Get("Set-Cookie"), "")

	w = httptest.NewRecorder()
	c.Set(w, tok, &sessiond.Session{RememberMe: true, AbsoluteExpiresAt: now.Add(720 * time.Hour)}, now)
	check(t, w.Header().Get("Set-Cookie"), "2592000")

	w = httptest.NewRecorder()
	c.Clear(w)
	check(t, w.Header().Get("Set-Cookie"), "0")

	// What would weaken it is refused: a Domain, another Path or no
	// Secure under the __Host- name.
	for _, weak := range []sessionhttp.Cookie{{Domain: "example.com"}, {Path: "/app"}, {Insecure: true}} {
		if weak.Validate() == nil {
			t.Errorf("Validate(%+v) accepted a weaker __Host- cookie", weak)
		}
	}
	// The token is never read from the URL (ASVS 3.1.1).
	r := httptest.NewRequest("GET", "/?__Host-session="+tok+"&token="+tok+"&access_token="+tok, nil)
	if got, _ := c.Token(r, true); got != "" {
		t.Errorf("Token read %q from the URL", got)
	}
}
