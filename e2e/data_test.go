package e2e_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestSessionData covers session data: anonymous sessions, keys and
// limits, and the move of an anonymous session's data at login.
func TestSessionData(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--max-value-bytes", "1024", "--max-data-bytes", "4096"})
	put := func(t *testing.T, key string, value string, opts ...reqOpt) *Resp {
		t.Helper()
		return s.call(t, "PUT", "/v1/session/data/"+key, raw(value), append([]reqOpt{header("Content-Type", "application/json")}, opts...)...)
	}
	getData := func(t *testing.T, opts ...reqOpt) map[string]any {
		t.Helper()
		r := s.call(t, "GET", "/v1/session/data", nil, opts...)
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "data answer", r.JSON, "data")
		return obj(t, r, "data")
	}

	t.Run("anonymous session", func(t *testing.T) {
		t.Parallel()
		if d := getData(t); len(d) != 0 {
			t.Errorf("data without a session %v, want {}", d)
		}
		r := put(t, "cart", `[1, 2, {"sku": "x"}]`)
		wantStatus(t, r, http.StatusNoContent)
		anon := wantSessionCookie(t, r)
		d := getData(t, cookie(anon))
		wantKeys(t, "data", d, "cart")
		if c, _ := d["cart"].([]any); len(c) != 3 {
			t.Errorf("cart %v", d["cart"])
		}
		wantStatus(t, put(t, "step", `"shipping"`, cookie(anon)), http.StatusNoContent)
		wantStatus(t, put(t, "n.v-1_x", `null`, bearer(anon)), http.StatusNoContent)
		wantKeys(t, "data", getData(t, bearer(anon)), "cart", "step", "n.v-1_x")
		// The anonymous session is not a sign-in.
		wantError(t, whoami(t, s, cookie(anon)), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, s.call(t, "GET", "/v1/sessions", nil, cookie(anon)), http.StatusUnauthorized)
		wantStatus(t, s.call(t, "GET", "/v1/profile", nil, cookie(anon)), http.StatusUnauthorized)
		// Admin validate sees it, with no user.
		r = s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": anon})
		wantStatus(t, r, http.StatusOK)
		if r.JSON["active"] != true || r.JSON["user"] != nil {
			t.Errorf("validate of an anonymous session: %s", r.Body)
		}
		sess := checkSession(t, obj(t, r, "session"))
		if sess["anonymous"] != true || sess["user_id"] != nil {
			t.Errorf("anonymous session %v", sess)
		}

		wantStatus(t, s.call(t, "DELETE", "/v1/session/data/step", nil, cookie(anon)), http.StatusNoContent)
		wantStatus(t, s.call(t, "DELETE", "/v1/session/data/never-set", nil, cookie(anon)), http.StatusNoContent)
		wantKeys(t, "data after delete", getData(t, cookie(anon)), "cart", "n.v-1_x")
		// A second anonymous PUT of the session keeps the same session.
		r = put(t, "again", `1`, cookie(anon))
		wantStatus(t, r, http.StatusNoContent)
		wantNoSessionCookie(t, r)
		// Logout ends an anonymous session too.
		r = s.call(t, "POST", "/v1/logout", J{"scope": "all"}, cookie(anon))
		wantStatus(t, r, http.StatusNoContent)
		wantClearedCookie(t, r)
		if d := getData(t, cookie(anon)); len(d) != 0 {
			t.Errorf("data after logout %v, want {}", d)
		}
	})

	t.Run("login carries the anonymous data over", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := put(t, "cart", `["book"]`)
		anon := wantSessionCookie(t, r)
		wantStatus(t, put(t, "coupon", `"TEN"`, cookie(anon)), http.StatusNoContent)
		tok, _ := loginCookie(t, s, u, cookie(anon))
		if tok == anon {
			t.Fatal("login kept the anonymous token")
		}
		d := getData(t, cookie(tok))
		wantKeys(t, "data after login", d, "cart", "coupon")
		if d["coupon"] != "TEN" {
			t.Errorf("coupon %v", d["coupon"])
		}
		// The anonymous token is dead: its data reads as empty and its
		// cookie is cleared.
		r = s.call(t, "GET", "/v1/session/data", nil, cookie(anon))
		wantStatus(t, r, http.StatusOK)
		if d := obj(t, r, "data"); len(d) != 0 {
			t.Errorf("the anonymous token still reads data %v", d)
		}
		wantClearedCookie(t, r)
		dead(t, s, anon)
		r = s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": anon})
		if r.JSON["active"] != false {
			t.Errorf("validate of the replaced anonymous token: %s", r.Body)
		}
		// Writing with the dead token starts a new anonymous session
		// instead of touching the user's.
		r = put(t, "cart", `[]`, cookie(anon))
		wantStatus(t, r, http.StatusNoContent)
		if fresh := wantSessionCookie(t, r); fresh == anon || fresh == tok {
			t.Error("a write with a dead token reused a token")
		}
		wantKeys(t, "user's data", getData(t, cookie(tok)), "cart", "coupon")
	})

	t.Run("token transport login carries the data too", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		anon := wantSessionCookie(t, put(t, "cart", `[1]`))
		tok, _ := login(t, s, u, bearer(anon))
		wantKeys(t, "data after login", getData(t, bearer(tok)), "cart")
		dead(t, s, anon)
	})

	t.Run("a signed-in session has data", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		r := put(t, "theme", `"dark"`, bearer(tok))
		wantStatus(t, r, http.StatusNoContent)
		wantNoSessionCookie(t, r)
		wantKeys(t, "data", getData(t, bearer(tok)), "theme")
		// Another session of the same user has its own data.
		other, _ := login(t, s, u)
		if d := getData(t, bearer(other)); len(d) != 0 {
			t.Errorf("another session sees %v", d)
		}
	})

	t.Run("keys", func(t *testing.T) {
		t.Parallel()
		tok := wantSessionCookie(t, put(t, "ok", `1`))
		badKey := offContract("an invalid key")
		for _, key := range []string{"a%20b", "a%2Fb", "%C3%A9", strings.Repeat("k", 129), "a:b", "a%00", "a+b", "%2E%2E%2Fx"} {
			r := put(t, key, `1`, cookie(tok), badKey)
			wantError(t, r, http.StatusBadRequest, "invalid_key")
			r = s.call(t, "DELETE", "/v1/session/data/"+key, nil, cookie(tok), badKey)
			wantError(t, r, http.StatusBadRequest, "invalid_key")
		}
		// No session is started for a refused write.
		r := put(t, "a%20b", `1`, badKey)
		wantStatus(t, r, http.StatusBadRequest)
		wantNoSessionCookie(t, r)
		long := strings.Repeat("k", 128)
		wantStatus(t, put(t, long, `1`, cookie(tok)), http.StatusNoContent)
		wantKeys(t, "data", getData(t, cookie(tok)), "ok", long)
	})

	t.Run("limits", func(t *testing.T) {
		t.Parallel()
		tok := wantSessionCookie(t, put(t, "a", `1`))
		big := `"` + strings.Repeat("v", 1100) + `"`
		r := put(t, "big", big, cookie(tok))
		wantStatus(t, r, http.StatusRequestEntityTooLarge)
		// Without a session, a too-large value starts none.
		r = put(t, "big", big)
		wantStatus(t, r, http.StatusRequestEntityTooLarge)
		wantNoSessionCookie(t, r)

		chunk := `"` + strings.Repeat("v", 1000) + `"`
		refused := false
		for i := 0; i < 6; i++ {
			r := put(t, "k"+string(rune('0'+i)), chunk, cookie(tok))
			if r.Status == http.StatusRequestEntityTooLarge {
				refused = true
				if i < 3 {
					t.Errorf("total refused after %d values of 1 KB, want at least 3 to fit in 4096 bytes", i)
				}
				break
			}
			wantStatus(t, r, http.StatusNoContent)
		}
		if !refused {
			t.Fatal("6 KB of data was accepted with --max-data-bytes 4096")
		}
		d := getData(t, cookie(tok))
		if _, ok := d["big"]; ok {
			t.Error("a refused value was stored")
		}
		// Deleting makes room again.
		wantStatus(t, s.call(t, "DELETE", "/v1/session/data/k0", nil, cookie(tok)), http.StatusNoContent)
		wantStatus(t, put(t, "k9", chunk, cookie(tok)), http.StatusNoContent)
	})

	t.Run("bodies", func(t *testing.T) {
		t.Parallel()
		tok := wantSessionCookie(t, put(t, "a", `1`))
		for _, body := range []string{``, `{`, `not json`, `{"a":1} {"b":2}`, `[1,]`, "\"\xff\xfe\"", strings.Repeat("[", 20000) + strings.Repeat("]", 20000)} {
			if r := put(t, "x", body, cookie(tok), offContract("a malformed value")); r.Status != http.StatusBadRequest {
				t.Errorf("PUT of %.40q: %d, want 400", body, r.Status)
			}
		}
		r := s.call(t, "PUT", "/v1/session/data/x", raw(`1`), cookie(tok), header("Content-Type", "text/plain"), offContract("not JSON"))
		wantStatus(t, r, http.StatusUnsupportedMediaType)
		r = s.call(t, "PUT", "/v1/session/data/x", raw(`1`), cookie(tok), offContract("no content type"))
		wantStatus(t, r, http.StatusUnsupportedMediaType)
		r = put(t, "x", `"`+strings.Repeat("v", 70<<10)+`"`, cookie(tok))
		wantStatus(t, r, http.StatusRequestEntityTooLarge)
		wantKeys(t, "data after bad bodies", getData(t, cookie(tok)), "a")
		// Every JSON value is fine, and comes back as it went in.
		for _, v := range []string{`0`, `true`, `"s"`, `{"nested":{"deep":[1,2,3]}}`, `-1.5e3`} {
			wantStatus(t, put(t, "x", v, cookie(tok)), http.StatusNoContent)
		}
		if x, _ := getData(t, cookie(tok))["x"].(float64); x != -1500 {
			t.Errorf("x = %v, want -1500", x)
		}
	})
}
