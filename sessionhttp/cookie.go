// Package sessionhttp connects sessiond sessions to net/http: the session
// cookie, reading a token from a request, and a middleware that loads the
// request's session into its context, so a Go program can use sessiond as a
// library the way it would use scs or gorilla/sessions.
package sessionhttp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// DefaultCookieName is the session cookie's default name. The __Host-
// prefix makes browsers insist on Secure, Path=/ and no Domain, so no
// sibling subdomain can set or shadow it.
const DefaultCookieName = "__Host-session"

// Cookie describes the session cookie. The zero value is the safe default:
// __Host-session; Path=/; Secure; HttpOnly; SameSite=Lax; no Domain.
type Cookie struct {
	// Name of the cookie. Default DefaultCookieName.
	Name string
	// Domain, empty (the default) for a host-only cookie. Not allowed with
	// a __Host- name.
	Domain string
	// Path, default "/". A __Host- name requires "/".
	Path string
	// Insecure drops the Secure attribute, for plain-HTTP development on
	// hosts other than localhost. Not allowed with a __Host- or __Secure-
	// name. Default false.
	Insecure bool
	// SameSite, default http.SameSiteLaxMode.
	SameSite http.SameSite
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Cookie) WithDefaults() Cookie {
	if c.Name == "" {
		c.Name = DefaultCookieName
	}
	if c.Path == "" {
		c.Path = "/"
	}
	if c.SameSite == 0 || c.SameSite == http.SameSiteDefaultMode {
		c.SameSite = http.SameSiteLaxMode
	}
	return c
}

// Validate reports a configuration that browsers would refuse or that
// weakens the cookie for no reason.
func (c Cookie) Validate() error {
	c = c.WithDefaults()
	switch {
	case !validCookieName(c.Name):
		return fmt.Errorf("cookie name %q is not a valid cookie token", c.Name)
	case strings.HasPrefix(c.Name, "__Host-") && c.Domain != "":
		return fmt.Errorf("cookie %q: a __Host- cookie cannot have a Domain (%q)", c.Name, c.Domain)
	case strings.HasPrefix(c.Name, "__Host-") && c.Path != "/":
		return fmt.Errorf("cookie %q: a __Host- cookie needs Path=/", c.Name)
	case (strings.HasPrefix(c.Name, "__Host-") || strings.HasPrefix(c.Name, "__Secure-")) && c.Insecure:
		return fmt.Errorf("cookie %q: a __Host- or __Secure- cookie must be Secure", c.Name)
	case c.SameSite == http.SameSiteNoneMode && c.Insecure:
		return errors.New("cookie: SameSite=None needs Secure")
	}
	return nil
}

func validCookieName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// Set writes the cookie for token. A remember-me session's cookie lives
// until the session's absolute deadline (Max-Age); any other session's
// cookie has no Max-Age or Expires and dies with the browser.
func (c Cookie) Set(w http.ResponseWriter, token string, s *sessiond.Session, now time.Time) {
	c = c.WithDefaults()
	ck := c.base()
	ck.Value = token
	if s.RememberMe {
		ck.MaxAge = max(1, int(s.AbsoluteExpiresAt.Sub(now)/time.Second))
	}
	replaceCookie(w, ck)
}

// Clear writes a cookie that makes the browser drop the session cookie.
func (c Cookie) Clear(w http.ResponseWriter) {
	ck := c.WithDefaults().base()
	ck.MaxAge = -1 // net/http writes Max-Age=0
	replaceCookie(w, ck)
}

// replaceCookie sets ck, dropping a Set-Cookie for the same cookie that
// the response already carries (a handler that first clears a stale
// session cookie and then starts a new session): RFC 6265 asks for at most
// one Set-Cookie per cookie in a response, and the last one is the truth.
func replaceCookie(w http.ResponseWriter, ck *http.Cookie) {
	h := w.Header()
	if lines := h.Values("Set-Cookie"); len(lines) > 0 {
		kept := make([]string, 0, len(lines))
		for _, line := range lines {
			if old, err := http.ParseSetCookie(line); err == nil &&
				old.Name == ck.Name && old.Path == ck.Path && strings.EqualFold(old.Domain, ck.Domain) {
				continue
			}
			kept = append(kept, line)
		}
		h.Del("Set-Cookie")
		for _, line := range kept {
			h.Add("Set-Cookie", line)
		}
	}
	http.SetCookie(w, ck)
}

func (c Cookie) base() *http.Cookie {
	return &http.Cookie{Name: c.Name, Path: c.Path, Domain: c.Domain, Secure: !c.Insecure, HttpOnly: true, SameSite: c.SameSite}
}

// Token returns the session token a request carries: the session cookie,
// or with bearer true an "Authorization: Bearer" header. A URL query is
// never read. It returns "" when there is none. When both are present the
// Authorization header wins, since a client that sends one means it.
func (c Cookie) Token(r *http.Request, bearer bool) (token string, fromCookie bool) {
	if bearer {
		if h := r.Header.Get("Authorization"); h != "" {
			if t, ok := BearerToken(h); ok {
				return t, false
			}
			return "", false
		}
	}
	ck, err := r.Cookie(c.WithDefaults().Name)
	if err != nil {
		return "", false
	}
	return ck.Value, true
}

// BearerToken returns the token of an "Authorization: Bearer <token>"
// header value. The scheme is case-insensitive (RFC 9110).
func BearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) <= len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	return t, t != ""
}
