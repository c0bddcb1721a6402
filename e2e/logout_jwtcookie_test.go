package e2e_test

import (
	"net/http"
	"testing"
)

// TestJWTCookieLogoutAfterAccessExpiry (security review, issue 20): the
// refresh cookie of a jwt_cookie session was scoped to /v1/token/ only, so
// once the access cookie had expired a browser's POST /v1/logout carried
// nothing that named the session, and the session lived on. A second
// refresh cookie of the same name is now scoped to /v1/logout: the
// sign-out ends the session with the access cookie gone, and clears both.
func TestJWTCookieLogoutAfterAccessExpiry(t *testing.T) {
	t.Parallel()
	s, _ := startJWT(t, nil)
	u := newUser(t, s)
	r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "jwt_cookie"})
	wantStatus(t, r, http.StatusOK)
	_, refresh := jwtCookies(t, r, 300, false)
	// What a browser sends to POST /v1/logout once the access cookie has
	// expired: the refresh cookie scoped to that path, nothing else.
	r = s.call(t, "POST", "/v1/logout", nil, header("Cookie", refreshCookie+"="+refresh))
	wantStatus(t, r, http.StatusNoContent)
	cleared := map[string]int{}
	for _, c := range r.Header.Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(c); err == nil && ck.MaxAge < 0 {
			cleared[ck.Name+" "+ck.Path]++
		}
	}
	if cleared[accessCookie+" /"] != 1 || cleared[refreshCookie+" /v1/token/"] != 1 || cleared[refreshCookie+" /v1/logout"] != 1 {
		t.Errorf("logout Set-Cookie %q: want the access cookie and both refresh cookies cleared", r.Header.Values("Set-Cookie"))
	}
	// The session is over: its refresh token no longer renews it.
	wantError(t, s.call(t, "POST", refreshPath, nil, header("Cookie", refreshCookie+"="+refresh)), http.StatusUnauthorized, "invalid_refresh_token")
	// A made-up refresh cookie at logout ends nothing and is no error.
	wantStatus(t, s.call(t, "POST", "/v1/logout", nil, header("Cookie", refreshCookie+"=sdr_nonsense")), http.StatusNoContent)
}
