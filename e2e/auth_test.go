package e2e_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

// TestAuth covers registration, login and its transports, who-am-I, logout
// and the session list on one server.
func TestAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--touch-interval", "100ms"})

	t.Run("register", func(t *testing.T) {
		t.Parallel()
		email := "Reg-" + randHex(4) + "@Example.COM"
		r := s.call(t, "POST", "/v1/register", J{"email": "  " + email + " ", "password": "correct horse battery", "profile": J{"name": "Ann"}})
		wantStatus(t, r, http.StatusCreated)
		u := checkUser(t, obj(t, r, "user"))
		if got := u["email"]; got != strings.ToLower(email) {
			t.Errorf("email %q, want it trimmed and in lower case: %q", got, strings.ToLower(email))
		}
		if p := u["profile"].(map[string]any); p["name"] != "Ann" {
			t.Errorf("profile %v, want the registered one", p)
		}
		for _, variant := range []string{email, strings.ToLower(email), strings.ToUpper(email), "\t" + email + "  "} {
			r := s.call(t, "POST", "/v1/register", J{"email": variant, "password": "another fine password"})
			wantError(t, r, http.StatusConflict, "email_taken")
		}
	})

	t.Run("register refuses weak passwords", func(t *testing.T) {
		t.Parallel()
		email := "weak-" + randHex(4) + "@example.com"
		for _, pw := range []string{"", "short", "1234567", "password123", "PASSWORD123", "qwertyuiop", strings.TrimSuffix(email, "@example.com")} {
			r := s.call(t, "POST", "/v1/register", J{"email": email, "password": pw})
			wantError(t, r, http.StatusBadRequest, "weak_password")
		}
		// None of them created the account.
		r := s.call(t, "POST", "/v1/register", J{"email": email, "password": "a much better one"})
		wantStatus(t, r, http.StatusCreated)
	})

	t.Run("register refuses invalid emails", func(t *testing.T) {
		t.Parallel()
		for _, e := range []string{"", "   ", "plain", "two@@example.com", "a@b", "user@localhost", "Ann <ann@example.com>", "a b@example.com", "ann@example.com,bob@example.com"} {
			r := s.call(t, "POST", "/v1/register", J{"email": e, "password": "correct horse battery"})
			wantError(t, r, http.StatusBadRequest, "invalid_email")
		}
	})

	t.Run("register refuses a profile that is not an object", func(t *testing.T) {
		t.Parallel()
		for _, p := range []any{"str", []any{1}, 3} {
			r := s.call(t, "POST", "/v1/register", J{"email": "p-" + randHex(4) + "@example.com", "password": "correct horse battery", "profile": p},
				offContract("a profile that is no object"))
			wantStatus(t, r, http.StatusBadRequest)
		}
	})

	t.Run("login with the cookie transport", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password})
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "login answer", r.JSON, "session", "user")
		sess := checkSession(t, obj(t, r, "session"))
		usr := checkUser(t, obj(t, r, "user"))
		if usr["id"] != u.ID || sess["user_id"] != u.ID || sess["anonymous"] != false || sess["remember_me"] != false {
			t.Errorf("login answer %s does not describe %s's non-remember-me session", r.Body, u.ID)
		}
		tok := wantSessionCookie(t, r)
		if len(tok) < 43 || tok == sess["id"] || strings.Contains(tok, sess["id"].(string)) {
			t.Errorf("token %q is short or reveals the session id %v", tok, sess["id"])
		}
		// The cookie's token works as a cookie and as a bearer token.
		for _, o := range []reqOpt{cookie(tok), bearer(tok)} {
			r := whoami(t, s, o)
			wantStatus(t, r, http.StatusOK)
			if got := checkSession(t, obj(t, r, "session")); got["id"] != sess["id"] || got["current"] != true {
				t.Errorf("who-am-I %v, want the login's session, current", got)
			}
			if _, has := r.JSON["token"]; has {
				t.Errorf("who-am-I returned a token: %s", r.Body)
			}
		}
	})

	t.Run("login with remember me", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "remember_me": true})
		wantStatus(t, r, http.StatusOK)
		c, line := sessionCookie(t, r)
		want := int((720 * time.Hour).Seconds())
		if c.Value == "" || c.MaxAge < want-5 || c.MaxAge > want {
			t.Errorf("remember-me cookie %q: want Max-Age about %d (the remember-me lifetime)", line, want)
		}
		sess := checkSession(t, obj(t, r, "session"))
		if sess["remember_me"] != true {
			t.Errorf("remember_me %v, want true", sess["remember_me"])
		}
		if life := ts(t, sess, "absolute_expires_at").Sub(ts(t, sess, "created_at")); life != 720*time.Hour {
			t.Errorf("remember-me absolute lifetime %v, want 720h", life)
		}
		if idle := ts(t, sess, "idle_expires_at").Sub(ts(t, sess, "last_seen_at")); idle != 168*time.Hour {
			t.Errorf("remember-me idle timeout %v, want 168h", idle)
		}
		alive(t, s, c.Value)
	})

	t.Run("login with the token transport", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "token", "remember_me": true})
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "login answer", r.JSON, "session", "user", "token")
		if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("token transport set cookies %q", sc)
		}
		tok := str(t, r.JSON, "token")
		sess := checkSession(t, obj(t, r, "session"))
		if life := ts(t, sess, "absolute_expires_at").Sub(ts(t, sess, "created_at")); life != 720*time.Hour {
			t.Errorf("remember-me absolute lifetime %v, want 720h", life)
		}
		// The body's token works as a bearer token and as a cookie.
		alive(t, s, tok)
		wantStatus(t, whoami(t, s, cookie(tok)), http.StatusOK)
		// A bad transport is refused.
		r = s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "carrier-pigeon"}, offContract("an unknown transport"))
		wantStatus(t, r, http.StatusBadRequest)
	})

	t.Run("every login is a new session with a new token", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		t1, r1 := login(t, s, u)
		t2, r2 := login(t, s, u)
		if t1 == t2 || obj(t, r1, "session")["id"] == obj(t, r2, "session")["id"] {
			t.Fatalf("two logins share a token or id")
		}
		alive(t, s, t1)
		alive(t, s, t2)
	})

	t.Run("login replaces the session the request carries", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		old, _ := loginCookie(t, s, u)
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password}, cookie(old))
		wantStatus(t, r, http.StatusOK)
		fresh := wantSessionCookie(t, r)
		if fresh == old {
			t.Fatal("login reused the carried token")
		}
		dead(t, s, old)
		alive(t, s, fresh)
		// The same with a bearer token and the token transport.
		r = s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "token"}, bearer(fresh))
		wantStatus(t, r, http.StatusOK)
		dead(t, s, fresh)
		alive(t, s, str(t, r.JSON, "token"))
	})

	t.Run("wrong credentials", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		for _, body := range []J{
			{"email": u.Email, "password": u.Password + "x"},
			{"email": "nobody-" + randHex(4) + "@example.com", "password": u.Password},
			{"email": u.Email, "password": ""},
		} {
			r := s.call(t, "POST", "/v1/login", body)
			wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
			wantNoSessionCookie(t, r)
		}
		// Emails are trimmed and compared ignoring case at login too.
		r := s.call(t, "POST", "/v1/login", J{"email": " " + strings.ToUpper(u.Email) + " ", "password": u.Password, "transport": "token"})
		wantStatus(t, r, http.StatusOK)
	})

	t.Run("who-am-I refuses", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		cases := map[string][]reqOpt{
			"no credentials":         nil,
			"garbage bearer":         {bearer("garbage")},
			"garbage cookie":         {cookie("garbage")},
			"well-formed unknown":    {bearer("sdt_" + strings.Repeat("A", 49))},
			"basic auth":             {header("Authorization", "Basic "+tok)},
			"empty bearer":           {header("Authorization", "Bearer ")},
			"token in the query":     nil,
			"cookie of another name": {header("Cookie", "session="+tok)},
		}
		for name, opts := range cases {
			path := "/v1/session"
			if name == "token in the query" {
				path += "?token=" + tok + "&access_token=" + tok + "&session=" + tok
			}
			r := s.call(t, "GET", path, nil, opts...)
			if r.Status != http.StatusUnauthorized || errCode(r) != "unauthenticated" {
				t.Errorf("%s: %d %s, want 401 unauthenticated", name, r.Status, r.Body)
			}
		}
		// A stale cookie is cleared.
		wantClearedCookie(t, whoami(t, s, cookie(tok+"x")))
	})

	t.Run("logout", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		ck, _ := loginCookie(t, s, u)
		other, _ := login(t, s, u)
		r := s.call(t, "POST", "/v1/logout", nil, cookie(ck))
		wantStatus(t, r, http.StatusNoContent)
		wantClearedCookie(t, r)
		dead(t, s, ck)
		alive(t, s, other)

		// A bearer logout with an explicit scope.
		r = s.call(t, "POST", "/v1/logout", J{"scope": "current"}, bearer(other))
		wantStatus(t, r, http.StatusNoContent)
		dead(t, s, other)

		// Without a valid session: still 204 and a cleared cookie.
		for name, opts := range map[string][]reqOpt{"none": nil, "dead": {cookie(ck)}, "garbage": {cookie("garbage")}, "garbage bearer": {bearer("x")}} {
			r := s.call(t, "POST", "/v1/logout", nil, opts...)
			if r.Status != http.StatusNoContent {
				t.Errorf("logout with %s session: %d, want 204", name, r.Status)
			}
			wantClearedCookie(t, r)
		}
		r = s.call(t, "POST", "/v1/logout", J{"scope": "everything"}, offContract("an unknown scope"))
		wantStatus(t, r, http.StatusBadRequest)
	})

	t.Run("logout everywhere", func(t *testing.T) {
		t.Parallel()
		u, v := newUser(t, s), newUser(t, s)
		a, _ := loginCookie(t, s, u)
		b, _ := login(t, s, u)
		c, _ := login(t, s, u)
		stranger, _ := login(t, s, v)
		r := s.call(t, "POST", "/v1/logout", J{"scope": "all"}, cookie(a))
		wantStatus(t, r, http.StatusNoContent)
		wantClearedCookie(t, r)
		dead(t, s, a)
		dead(t, s, b)
		dead(t, s, c)
		alive(t, s, stranger)
	})

	t.Run("session list", func(t *testing.T) {
		t.Parallel()
		u, v := newUser(t, s), newUser(t, s)
		s1, _ := login(t, s, u, userAgent(chromeUA))
		s2, _ := login(t, s, u)
		s3, _ := login(t, s, u)
		stranger, _ := login(t, s, v)
		time.Sleep(150 * time.Millisecond) // past the touch interval
		id1 := alive(t, s, s1)["id"]       // s1 is used after s3 was created
		time.Sleep(150 * time.Millisecond)
		r := s.call(t, "GET", "/v1/sessions", nil, bearer(s2))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "list answer", r.JSON, "sessions")
		list, _ := r.JSON["sessions"].([]any)
		if len(list) != 3 {
			t.Fatalf("%d sessions listed, want 3: %s", len(list), r.Body)
		}
		id2 := alive(t, s, s2)["id"]
		id3 := alive(t, s, s3)["id"]
		var ids []any
		for i, x := range list {
			m, ok := x.(map[string]any)
			if !ok {
				t.Fatalf("session %d is not an object", i)
			}
			checkSession(t, m)
			ids = append(ids, m["id"])
			if m["user_id"] != u.ID {
				t.Errorf("listed session of user %v, want only %s's", m["user_id"], u.ID)
			}
			if want := m["id"] == id2; m["current"] != want {
				t.Errorf("session %v current=%v, want %v", m["id"], m["current"], want)
			}
			if m["id"] == id1 {
				d := m["device"].(map[string]any)
				if d["user_agent"] != chromeUA || d["browser"] != "Chrome" || d["os"] != "Windows" {
					t.Errorf("device %v, want Chrome on Windows with the full user agent", d)
				}
				if m["ip"] != "127.0.0.1" {
					t.Errorf("ip %v, want 127.0.0.1", m["ip"])
				}
			}
		}
		// Most recently used first: s2 (this request), s1 (used), then s3.
		if want := []any{id2, id1, id3}; !equalAny(ids, want) {
			t.Errorf("session order %v, want %v (most recently used first)", ids, want)
		}
		last := time.Time{}
		for i := len(list) - 1; i >= 0; i-- {
			seen := ts(t, list[i].(map[string]any), "last_seen_at")
			if seen.Before(last) {
				t.Errorf("last_seen_at not in descending order: %s", r.Body)
			}
			last = seen
		}
		alive(t, s, stranger)
	})

	t.Run("revoke one session", func(t *testing.T) {
		t.Parallel()
		u, v := newUser(t, s), newUser(t, s)
		me, _ := loginCookie(t, s, u)
		other, ro := login(t, s, u)
		theirs, rt := login(t, s, v)
		otherID := obj(t, ro, "session")["id"].(string)
		theirID := obj(t, rt, "session")["id"].(string)

		r := s.call(t, "DELETE", "/v1/sessions/"+theirID, nil, cookie(me))
		wantError(t, r, http.StatusNotFound, "not_found")
		alive(t, s, theirs)
		r = s.call(t, "DELETE", "/v1/sessions/"+randHex(16), nil, cookie(me))
		wantError(t, r, http.StatusNotFound, "not_found")

		r = s.call(t, "DELETE", "/v1/sessions/"+otherID, nil, cookie(me))
		wantStatus(t, r, http.StatusNoContent)
		dead(t, s, other)
		alive(t, s, me)
		// Again: it is gone.
		wantError(t, s.call(t, "DELETE", "/v1/sessions/"+otherID, nil, cookie(me)), http.StatusNotFound, "not_found")

		// Revoking the current session clears its cookie.
		myID := alive(t, s, me)["id"].(string)
		r = s.call(t, "DELETE", "/v1/sessions/"+myID, nil, cookie(me))
		wantStatus(t, r, http.StatusNoContent)
		wantClearedCookie(t, r)
		dead(t, s, me)
		wantError(t, s.call(t, "DELETE", "/v1/sessions/"+theirID, nil), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("revoke others", func(t *testing.T) {
		t.Parallel()
		u, v := newUser(t, s), newUser(t, s)
		me, _ := login(t, s, u)
		o1, _ := loginCookie(t, s, u)
		o2, _ := login(t, s, u)
		stranger, _ := login(t, s, v)
		r := s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(me))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "revoke-others answer", r.JSON, "revoked")
		if r.JSON["revoked"] != float64(2) {
			t.Errorf("revoked %v, want 2", r.JSON["revoked"])
		}
		dead(t, s, o1)
		dead(t, s, o2)
		alive(t, s, me)
		alive(t, s, stranger)
		r = s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(me))
		wantStatus(t, r, http.StatusOK)
		if r.JSON["revoked"] != float64(0) {
			t.Errorf("second revoke-others revoked %v, want 0", r.JSON["revoked"])
		}
		r = s.call(t, "GET", "/v1/sessions", nil, bearer(me))
		wantStatus(t, r, http.StatusOK)
		if list := r.JSON["sessions"].([]any); len(list) != 1 {
			t.Errorf("%d sessions left, want 1", len(list))
		}
	})
}

func equalAny(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
