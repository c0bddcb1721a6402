package e2e_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPolicyFlags covers the policy flags not exercised elsewhere: the
// per-user session cap, the password length and the body limit.
func TestPolicyFlags(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--max-sessions-per-user", "2", "--password-min-length", "12",
		"--max-body-bytes", "2048", "--touch-interval", "100ms"})

	t.Run("max sessions per user", func(t *testing.T) {
		t.Parallel()
		u := newUserPW(t, s, "twelve chars and more")
		a, _ := login(t, s, u)
		b, _ := login(t, s, u)
		time.Sleep(150 * time.Millisecond)
		alive(t, s, a) // b is now the least recently used
		c, _ := login(t, s, u)
		dead(t, s, b)
		alive(t, s, a)
		alive(t, s, c)
		r := s.call(t, "GET", "/v1/sessions", nil, bearer(c))
		if n := len(r.JSON["sessions"].([]any)); n != 2 {
			t.Errorf("%d sessions, want the cap of 2", n)
		}
		// Anonymous sessions belong to nobody and are not capped.
		for i := 0; i < 3; i++ {
			r := s.call(t, "PUT", "/v1/session/data/k", raw(`1`), header("Content-Type", "application/json"))
			wantStatus(t, r, http.StatusNoContent)
		}
	})

	t.Run("password length", func(t *testing.T) {
		t.Parallel()
		email := "len-" + randHex(4) + "@example.com"
		r := s.call(t, "POST", "/v1/register", J{"email": email, "password": "elevenchars"})
		wantError(t, r, http.StatusBadRequest, "weak_password")
		r = s.call(t, "POST", "/v1/register", J{"email": email, "password": "twelve chars"})
		wantStatus(t, r, http.StatusCreated)
		u := user{ID: obj(t, r, "user")["id"].(string), Email: email, Password: "twelve chars"}
		tok, _ := login(t, s, u)
		r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "elevenchars"}, bearer(tok))
		wantError(t, r, http.StatusBadRequest, "weak_password")
		// Characters, not bytes: twelve two-byte letters are enough, eleven are not.
		r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": strings.Repeat("é", 11)}, bearer(tok))
		wantError(t, r, http.StatusBadRequest, "weak_password")
		r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": strings.Repeat("é", 12)}, bearer(tok))
		wantStatus(t, r, http.StatusOK)
	})

	t.Run("body limit", func(t *testing.T) {
		t.Parallel()
		big := J{"email": "a@example.com", "password": strings.Repeat("x", 2100)}
		wantError(t, s.call(t, "POST", "/v1/login", big), http.StatusRequestEntityTooLarge, "body_too_large")
		r := s.call(t, "PUT", "/v1/session/data/k", raw(`"`+strings.Repeat("x", 2100)+`"`), header("Content-Type", "application/json"))
		wantStatus(t, r, http.StatusRequestEntityTooLarge)
		r = s.call(t, "POST", "/v1/login", J{"email": "a@example.com", "password": strings.Repeat("x", 1900)})
		wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
	})

	t.Run("a remember-me cookie keeps its lifetime through a password change", func(t *testing.T) {
		t.Parallel()
		u := newUserPW(t, s, "twelve chars and more")
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "remember_me": true})
		wantStatus(t, r, http.StatusOK)
		c, _ := sessionCookie(t, r)
		r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "another twelve chars"}, cookie(c.Value))
		wantStatus(t, r, http.StatusOK)
		nc, line := sessionCookie(t, r)
		if nc.Value == c.Value || nc.MaxAge < c.MaxAge-5 || nc.MaxAge > c.MaxAge {
			t.Errorf("cookie after the change %q, want a new token with Max-Age about %d", line, c.MaxAge)
		}
	})
}

// TestCookieFlags covers the cookie flags: another name, a Domain,
// SameSite=Strict and no Secure attribute.
func TestCookieFlags(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--cookie-name", "sid", "--cookie-domain", "example.com", "--cookie-samesite", "strict", "--cookie-secure=false"})
	u := newUser(t, s)
	r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password})
	wantStatus(t, r, http.StatusOK)
	if cs, _ := setCookies(t, r, cookieName); len(cs) != 0 {
		t.Errorf("the default cookie name was set too")
	}
	cs, lines := setCookies(t, r, "sid")
	if len(cs) != 1 {
		t.Fatalf("Set-Cookie %q, want one sid cookie", r.Header.Values("Set-Cookie"))
	}
	c := cs[0]
	if c.Domain != "example.com" || c.SameSite != http.SameSiteStrictMode || c.Secure || !c.HttpOnly || c.Path != "/" || c.MaxAge != 0 {
		t.Errorf("cookie %q, want Domain=example.com; SameSite=Strict; HttpOnly; no Secure; no Max-Age", lines[0])
	}
	wantStatus(t, whoami(t, s, header("Cookie", "sid="+c.Value)), http.StatusOK)
	wantStatus(t, whoami(t, s, cookie(c.Value)), http.StatusUnauthorized) // the default name means nothing here
	r = s.call(t, "POST", "/v1/logout", nil, header("Cookie", "sid="+c.Value))
	wantStatus(t, r, http.StatusNoContent)
	cs, lines = setCookies(t, r, "sid")
	if len(cs) != 1 || cs[0].MaxAge >= 0 || cs[0].Domain != "example.com" {
		t.Errorf("logout Set-Cookie %q, want sid cleared for Domain=example.com", lines)
	}
	wantStatus(t, whoami(t, s, header("Cookie", "sid="+c.Value)), http.StatusUnauthorized)
}

// newUserPW registers a fresh account with the password.
func newUserPW(t *testing.T, s *Server, password string) user {
	t.Helper()
	u := user{Email: "u-" + randHex(6) + "@example.com", Password: password}
	r := s.call(t, "POST", "/v1/register", J{"email": u.Email, "password": u.Password})
	wantStatus(t, r, http.StatusCreated)
	u.ID = str(t, checkUser(t, obj(t, r, "user")), "id")
	return u
}
