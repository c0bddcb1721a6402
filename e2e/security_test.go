package e2e_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCrossOrigin covers the CSRF defence: cookie-authenticated changes
// from another origin are refused, bearer ones and trusted origins are not,
// and nothing grants credentialed CORS.
func TestCrossOrigin(t *testing.T) {
	t.Parallel()
	const trusted = "https://app.example.com"
	s := startServer(t, []string{"--trusted-origins", trusted})

	// state-changing requests that a signed-in cookie session may make,
	// each harmless to repeat.
	type change struct {
		method, path string
		body         any
		ok           int
	}
	changes := func(t *testing.T, tok string) []change {
		u := newUser(t, s)
		_, ro := login(t, s, u) // a session of someone else: DELETE gives 404, not 401
		return []change{
			{"POST", "/v1/logout", J{"scope": "current"}, http.StatusNoContent},
			{"POST", "/v1/sessions/revoke-others", nil, http.StatusOK},
			{"PATCH", "/v1/profile", J{"profile": J{"x": 1}}, http.StatusOK},
			{"PUT", "/v1/session/data/k", J{"v": 1}, http.StatusNoContent},
			{"DELETE", "/v1/session/data/k", nil, http.StatusNoContent},
			{"DELETE", "/v1/sessions/" + obj(t, ro, "session")["id"].(string), nil, http.StatusNotFound},
			{"POST", "/v1/password/change", J{"current_password": "wrong", "new_password": "whatever new one"}, http.StatusUnauthorized},
			{"DELETE", "/v1/profile", J{"password": "wrong"}, http.StatusUnauthorized},
		}
	}
	foreign := map[string][]reqOpt{
		"Sec-Fetch-Site cross-site":            {header("Sec-Fetch-Site", "cross-site")},
		"Sec-Fetch-Site same-site":             {header("Sec-Fetch-Site", "same-site")},
		"foreign Origin":                       {header("Origin", "https://evil.example")},
		"foreign Origin with Sec-Fetch-Site":   {header("Origin", "https://evil.example"), header("Sec-Fetch-Site", "cross-site")},
		"Origin of another port of this host":  {header("Origin", "http://127.0.0.1:1")},
		"null Origin":                          {header("Origin", "null")},
		"trusted origin's sibling":             {header("Origin", "https://evil.app.example.com"), header("Sec-Fetch-Site", "cross-site")},
		"trusted origin with another scheme":   {header("Origin", "http://app.example.com")},
		"trusted origin as a Referer, no more": {header("Referer", trusted+"/"), header("Sec-Fetch-Site", "cross-site")},
	}

	t.Run("cookie requests from elsewhere are refused", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := loginCookie(t, s, u)
		for _, c := range changes(t, tok) {
			for name, opts := range foreign {
				r := s.call(t, c.method, c.path, c.body, append([]reqOpt{cookie(tok)}, opts...)...)
				if r.Status != http.StatusForbidden || errCode(r) != "cross_origin" {
					t.Errorf("%s %s with a cookie, %s: %d %s, want 403 cross_origin", c.method, c.path, name, r.Status, r.Body)
				}
			}
		}
		// None of them did anything.
		alive(t, s, tok)
		r := s.call(t, "GET", "/v1/profile", nil, cookie(tok), header("Sec-Fetch-Site", "cross-site"))
		wantStatus(t, r, http.StatusOK) // reads are not refused
		if p := checkUser(t, obj(t, r, "user"))["profile"].(map[string]any); len(p) != 0 {
			t.Errorf("a refused PATCH changed the profile: %v", p)
		}
		login(t, s, u) // not locked by refused password checks
	})

	t.Run("the same from our own origin is allowed", func(t *testing.T) {
		t.Parallel()
		own := map[string][]reqOpt{
			"no headers":                  nil,
			"Sec-Fetch-Site same-origin":  {header("Sec-Fetch-Site", "same-origin")},
			"Sec-Fetch-Site none":         {header("Sec-Fetch-Site", "none")},
			"own Origin":                  {header("Origin", s.Pub)},
			"trusted Origin":              {header("Origin", trusted)},
			"trusted Origin, cross-site":  {header("Origin", trusted), header("Sec-Fetch-Site", "cross-site")},
			"trusted Origin, same-site":   {header("Origin", trusted), header("Sec-Fetch-Site", "same-site")},
			"own Origin, same-origin too": {header("Origin", s.Pub), header("Sec-Fetch-Site", "same-origin")},
		}
		for name, opts := range own {
			u := newUser(t, s)
			tok, _ := loginCookie(t, s, u)
			for _, c := range changes(t, tok) {
				if c.path == "/v1/logout" {
					continue // last, below
				}
				r := s.call(t, c.method, c.path, c.body, append([]reqOpt{cookie(tok)}, opts...)...)
				if r.Status != c.ok {
					t.Errorf("%s %s with a cookie, %s: %d %s, want %d", c.method, c.path, name, r.Status, r.Body, c.ok)
				}
			}
			r := s.call(t, "POST", "/v1/logout", nil, append([]reqOpt{cookie(tok)}, opts...)...)
			if r.Status != http.StatusNoContent {
				t.Errorf("logout with a cookie, %s: %d", name, r.Status)
			}
			dead(t, s, tok)
		}
	})

	t.Run("bearer requests are not subject to it", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		for _, c := range changes(t, tok) {
			if c.path == "/v1/logout" {
				continue
			}
			for name, opts := range foreign {
				r := s.call(t, c.method, c.path, c.body, append([]reqOpt{bearer(tok)}, opts...)...)
				if c.ok == http.StatusUnauthorized && errCode(r) == "account_locked" {
					continue // the wrong passwords were checked, and locked the account
				}
				if r.Status != c.ok {
					t.Errorf("%s %s with a bearer token, %s: %d %s, want %d", c.method, c.path, name, r.Status, r.Body, c.ok)
				}
			}
		}
		// The wrong passwords above count toward lockout: sign-in checks
		// are not exempt from it because they came with a bearer token.
		wantError(t, s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password}), http.StatusTooManyRequests, "account_locked")
		r := s.call(t, "POST", "/v1/logout", nil, bearer(tok), header("Sec-Fetch-Site", "cross-site"))
		wantStatus(t, r, http.StatusNoContent)
		dead(t, s, tok)
	})

	t.Run("no CORS grants", func(t *testing.T) {
		t.Parallel()
		preflight := offContract("a CORS preflight: OPTIONS is no documented method")
		u := newUser(t, s)
		tok, _ := loginCookie(t, s, u)
		for _, origin := range []string{"https://evil.example", trusted, "null"} {
			for _, r := range []*Resp{
				s.call(t, "OPTIONS", "/v1/session", nil, header("Origin", origin), header("Access-Control-Request-Method", "GET"),
					header("Access-Control-Request-Headers", "authorization"), preflight),
				s.call(t, "OPTIONS", "/v1/logout", nil, header("Origin", origin), header("Access-Control-Request-Method", "POST"), preflight),
				s.call(t, "GET", "/v1/session", nil, cookie(tok), header("Origin", origin)),
				s.call(t, "GET", "/v1/session/data", nil, cookie(tok), header("Origin", origin)),
				do(t, s.Admin, "OPTIONS", "/admin/v1/sessions/validate", nil, header("Origin", origin), header("Access-Control-Request-Method", "POST"), preflight),
			} {
				for k := range r.Header {
					if strings.HasPrefix(strings.ToLower(k), "access-control-allow-") {
						t.Errorf("%s %s from %s: %s: %q", r.Method, r.Path, origin, k, r.Header.Get(k))
					}
				}
			}
		}
	})
}

// TestMalformedInput checks that bad requests get 4xx answers with JSON
// errors, never a 500, and that nothing is read from the URL.
func TestMalformedInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	u := newUser(t, s)
	tok, _ := login(t, s, u)
	ct := header("Content-Type", "application/json")

	t.Run("bodies", func(t *testing.T) {
		t.Parallel()
		malformed := offContract("a malformed body")
		nested := `{"email":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `,"password":"x"}`
		nestedObj := `{"email":"a@example.com","password":"x","remember_me":` + strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat("}", 10000) + `}`
		cases := []struct {
			name   string
			body   string
			status int
		}{
			{"empty", ``, 400},
			{"whitespace", "  \n", 400},
			{"truncated", `{"email":"a@example.com",`, 400},
			{"not JSON", `email=a@example.com&password=x`, 400},
			{"unknown field", `{"email":"a@example.com","password":"x","admin":true}`, 400},
			{"wrong type", `{"email":1,"password":"x"}`, 400},
			{"wrong type bool", `{"email":"a@example.com","password":"x","remember_me":"yes"}`, 400},
			{"wrong type nested", `{"email":{"a":1},"password":"x"}`, 400},
			{"trailing garbage", `{"email":"a@example.com","password":"x"} garbage`, 400},
			{"two objects", `{"email":"a@example.com","password":"x"}{}`, 400},
			{"invalid UTF-8", "{\"email\":\"a\xff@example.com\",\"password\":\"x\"}", 400},
			{"invalid UTF-8 in a password", "{\"email\":\"a@example.com\",\"password\":\"\xc3\x28\"}", 400},
			{"deeply nested arrays", nested, 400},
			{"deeply nested objects", nestedObj, 400},
			{"array", `[]`, 400},
			{"null", `null`, 400},
			{"string", `"x"`, 400},
			{"number", `1e999`, 400},
			{"over 64 KiB", `{"email":"a@example.com","password":"` + strings.Repeat("x", 70<<10) + `"}`, 413},
		}
		for _, path := range []string{"/v1/login", "/v1/register", "/v1/password/reset", "/v1/password/reset/confirm"} {
			for _, c := range cases {
				if path != "/v1/login" && path != "/v1/register" && strings.HasPrefix(c.name, "invalid UTF-8 in") {
					continue
				}
				r := s.call(t, "POST", path, raw(c.body), ct, malformed)
				if path == "/v1/password/reset" && c.name == "wrong type bool" {
					continue // remember_me is not a field there: 400 anyway, checked by the invariants
				}
				if r.Status != c.status && !(c.status == 400 && path != "/v1/login" && r.Status == 400) {
					t.Errorf("POST %s, %s: %d %s, want %d", path, c.name, r.Status, r.Body, c.status)
				}
			}
		}
		for _, c := range cases {
			r := s.call(t, "POST", "/v1/password/change", raw(c.body), ct, bearer(tok), malformed)
			if r.Status != c.status && !(c.status == 400 && r.Status == 400) {
				t.Errorf("POST /v1/password/change, %s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
			}
			r = s.adm(t, "POST", "/admin/v1/sessions", raw(c.body), ct, malformed)
			if r.Status != c.status {
				t.Errorf("POST /admin/v1/sessions, %s: %d %s, want %d", c.name, r.Status, r.Body, c.status)
			}
		}
		// Bad input is not a failed sign-in.
		login(t, s, u)
		alive(t, s, tok)
	})

	t.Run("content types", func(t *testing.T) {
		t.Parallel()
		body := raw(`{"email":"` + u.Email + `","password":"` + u.Password + `","transport":"token"}`)
		for _, c := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "json", ";;;"} {
			badType := offContract("a content type that is not JSON")
			r := s.call(t, "POST", "/v1/login", body, header("Content-Type", c), badType)
			if r.Status != http.StatusUnsupportedMediaType && r.Status != http.StatusBadRequest {
				t.Errorf("login with Content-Type %q: %d, want 415", c, r.Status)
			} else if r.Status != http.StatusUnsupportedMediaType {
				t.Logf("login with Content-Type %q: %d", c, r.Status)
			}
			r = s.call(t, "PATCH", "/v1/profile", raw(`{"profile":{}}`), header("Content-Type", c), bearer(tok), badType)
			if r.Status != http.StatusUnsupportedMediaType && r.Status != http.StatusBadRequest {
				t.Errorf("PATCH profile with Content-Type %q: %d, want 415", c, r.Status)
			}
		}
		wantError(t, s.call(t, "POST", "/v1/login", body, offContract("no content type")), http.StatusUnsupportedMediaType, "unsupported_media_type")
		for _, c := range []string{"application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"} {
			// The server also takes any +json type; the document lists
			// only application/json, which is what clients should send.
			r := s.call(t, "POST", "/v1/login", body, header("Content-Type", c), offContract("a +json content type"))
			wantStatus(t, r, http.StatusOK)
		}
	})

	t.Run("GET and HEAD on state-changing routes", func(t *testing.T) {
		t.Parallel()
		wrongMethod := offContract("a method the route does not take")
		routes := []string{"/v1/register", "/v1/login", "/v1/logout", "/v1/sessions/revoke-others", "/v1/password/change",
			"/v1/password/reset", "/v1/password/reset/confirm", "/v1/session/data/k", "/v1/sessions/" + randHex(16)}
		for _, path := range routes {
			for _, m := range []string{"GET", "HEAD"} {
				r := s.call(t, m, path, nil, bearer(tok), wrongMethod)
				if r.Status != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d, want 405", m, path, r.Status)
					continue
				}
				if r.Header.Get("Allow") == "" {
					t.Errorf("%s %s: 405 without Allow", m, path)
				}
				if m == "GET" && errCode(r) != "method_not_allowed" {
					t.Errorf("GET %s: error %q", path, errCode(r))
				}
			}
		}
		for _, path := range []string{"/admin/v1/sessions", "/admin/v1/sessions/validate", "/admin/v1/users/x/password-reset"} {
			for _, m := range []string{"GET", "HEAD"} {
				r := s.adm(t, m, path, nil, wrongMethod)
				if r.Status != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d, want 405", m, path, r.Status)
				}
			}
		}
		wantError(t, s.call(t, "GET", "/v1/nope", nil, offContract("no such route")), http.StatusNotFound, "not_found")
		wantError(t, s.call(t, "POST", "/admin/v1/sessions", J{}, offContract("an admin route on the public listener")),
			http.StatusNotFound, "not_found") // admin routes are not public
		alive(t, s, tok)
	})

	t.Run("tokens in the URL are ignored", func(t *testing.T) {
		t.Parallel()
		anonR := s.call(t, "PUT", "/v1/session/data/cart", raw(`[1]`), ct)
		wantStatus(t, anonR, http.StatusNoContent)
		anon := wantSessionCookie(t, anonR)
		q := "?token=" + anon + "&access_token=" + anon + "&session=" + anon + "&" + cookieName + "=" + anon
		r := s.call(t, "GET", "/v1/session/data"+q, nil)
		wantStatus(t, r, http.StatusOK)
		if d := obj(t, r, "data"); len(d) != 0 {
			t.Errorf("GET data with the token in the query: %v, want {}", d)
		}
		r = s.call(t, "PUT", "/v1/session/data/cart"+q, raw(`[2]`), ct)
		wantStatus(t, r, http.StatusNoContent)
		wantSessionCookie(t, r) // a new anonymous session, not the one in the query
		r = s.call(t, "GET", "/v1/session/data", nil, cookie(anon))
		if c, _ := obj(t, r, "data")["cart"].([]any); len(c) != 1 || c[0] != float64(1) {
			t.Errorf("the query token's session was changed: %s", r.Body)
		}
		q = "?token=" + tok + "&access_token=" + tok
		wantStatus(t, s.call(t, "GET", "/v1/session"+q, nil), http.StatusUnauthorized)
		wantStatus(t, s.call(t, "GET", "/v1/sessions"+q, nil), http.StatusUnauthorized)
		wantStatus(t, s.call(t, "POST", "/v1/sessions/revoke-others"+q, nil), http.StatusUnauthorized)
		r = s.call(t, "POST", "/v1/logout"+q, nil)
		wantStatus(t, r, http.StatusNoContent)
		alive(t, s, tok) // logout did not read the query
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users?email="+u.Email+"&token="+adminKey, nil, header("Authorization", "")), http.StatusUnauthorized)
	})
}
