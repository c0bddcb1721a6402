package e2e_test

import (
	"net/http"
	"testing"
)

// TestNonBearerAuthorizationIsNoExemption (security review, issue 20): a
// request with an Authorization header was exempt from the cross-origin
// check whatever its scheme, and one that was no bearer token fell back to
// the cookies: a cross-site POST with "Authorization: Basic …" and the
// access cookie of a client-side session was obeyed. Now only a bearer
// token exempts a request, and a request with an Authorization header is
// authenticated by that header alone.
func TestNonBearerAuthorizationIsNoExemption(t *testing.T) {
	t.Parallel()
	s, _ := startJWT(t, nil)
	u := newUser(t, s)
	r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "jwt_cookie"})
	wantStatus(t, r, http.StatusOK)
	access, _ := jwtCookies(t, r, 300, false)
	session, _ := loginCookie(t, s, u)
	basic := header("Authorization", "Basic dXNlcjpwYXNz")
	crossSite := header("Sec-Fetch-Site", "cross-site")
	for _, c := range []struct {
		name string
		with reqOpt
	}{
		{"the access cookie", header("Cookie", accessCookie+"="+access)},
		{"the session cookie", cookie(session)},
	} {
		r := s.call(t, "PATCH", "/v1/profile", J{"profile": J{"pwned": true}}, c.with, basic, crossSite)
		wantError(t, r, http.StatusForbidden, "cross_origin")
		r = s.call(t, "POST", "/v1/sessions/revoke-others", nil, c.with, header("Authorization", "Token abc"), crossSite)
		wantError(t, r, http.StatusForbidden, "cross_origin")
		// From our own origin, a non-bearer header signs no one in: the
		// cookies do not stand in for it.
		r = s.call(t, "GET", "/v1/session", nil, c.with, basic)
		wantError(t, r, http.StatusUnauthorized, "unauthenticated")
	}
	r = s.call(t, "GET", "/v1/profile", nil, cookie(session))
	wantStatus(t, r, http.StatusOK)
	if p := checkUser(t, obj(t, r, "user"))["profile"].(map[string]any); len(p) != 0 {
		t.Fatalf("a refused cross-site PATCH changed the profile: %v", p)
	}
	alive(t, s, session)
	// A bearer token is still exempt, and wins over the cookies.
	tok, _ := login(t, s, u)
	wantStatus(t, s.call(t, "PATCH", "/v1/profile", J{"profile": J{"ok": true}}, bearer(tok), crossSite, cookie(session)), http.StatusOK)
}
