package e2e_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// outboxTokens returns the reset tokens the dev notifier wrote for email,
// oldest first.
func outboxTokens(t *testing.T, s *Server, email string) []string {
	t.Helper()
	entries, err := os.ReadDir(s.Outbox)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // the names start with the message time
	var toks []string
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(s.Outbox, n))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Type string `json:"type"`
			To   string `json:"to"`
			Data struct {
				Token     string `json:"token"`
				ExpiresAt string `json:"expires_at"`
			} `json:"data"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("outbox file %s: %v", n, err)
		}
		if m.To == email && m.Type == "password_reset" {
			if m.Data.Token == "" {
				t.Fatalf("outbox file %s has no data.token: %s", n, b)
			}
			toks = append(toks, m.Data.Token)
		}
	}
	return toks
}

// waitOutbox waits until the outbox holds n reset tokens for email and
// returns them, oldest first.
func waitOutbox(t *testing.T, s *Server, email string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		toks := outboxTokens(t, s, email)
		if len(toks) >= n {
			return toks
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reset messages for %s in the outbox after 10s, want %d", len(toks), email, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requestReset asks for a reset for email and checks the 202.
func requestReset(t *testing.T, s *Server, email string) *Resp {
	t.Helper()
	r := s.call(t, "POST", "/v1/password/reset", J{"email": email})
	wantStatus(t, r, http.StatusAccepted)
	return r
}

// TestAccount covers the profile, account deletion, password change and
// password reset.
func TestAccount(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--reset-token-ttl", "3s"})

	t.Run("profile", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		r := s.call(t, "GET", "/v1/profile", nil, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "profile answer", r.JSON, "user")
		usr := checkUser(t, obj(t, r, "user"))
		if usr["id"] != u.ID || usr["email"] != u.Email || len(usr["profile"].(map[string]any)) != 0 {
			t.Errorf("profile %v, want %s with an empty profile", usr, u.ID)
		}

		patch := func(body any, opts ...reqOpt) *Resp {
			return s.call(t, "PATCH", "/v1/profile", body, append(opts, bearer(tok))...)
		}
		r = patch(J{"profile": J{"name": "Ann", "lang": "en", "prefs": J{"dark": true}}})
		wantStatus(t, r, http.StatusOK)
		r = patch(J{"profile": J{"lang": nil, "tz": "UTC"}})
		wantStatus(t, r, http.StatusOK)
		p := checkUser(t, obj(t, r, "user"))["profile"].(map[string]any)
		wantKeys(t, "merged profile", p, "name", "prefs", "tz")
		if p["name"] != "Ann" || p["tz"] != "UTC" || p["prefs"].(map[string]any)["dark"] != true {
			t.Errorf("merged profile %v", p)
		}
		// The merge is stored.
		r = s.call(t, "GET", "/v1/profile", nil, bearer(tok))
		wantKeys(t, "stored profile", checkUser(t, obj(t, r, "user"))["profile"].(map[string]any), "name", "prefs", "tz")

		for _, bad := range []any{J{"profile": "str"}, J{"profile": []any{1}}, J{"profile": nil}, J{"profile": 3}, J{}, []any{}, "x"} {
			r := patch(bad, offContract("not a profile object"))
			wantStatus(t, r, http.StatusBadRequest)
		}
		r = patch(J{"profile": J{"big": strings.Repeat("x", 20<<10)}})
		wantStatus(t, r, http.StatusBadRequest)
		for _, m := range []string{"GET", "PATCH", "DELETE"} {
			// One body for every method: what is refused is the missing token.
			wantError(t, s.call(t, m, "/v1/profile", J{"profile": J{}}, offContract("the PATCH body on every method")), http.StatusUnauthorized, "unauthenticated")
		}
		r = s.call(t, "GET", "/v1/profile", nil, bearer(tok))
		wantKeys(t, "profile after bad patches", checkUser(t, obj(t, r, "user"))["profile"].(map[string]any), "name", "prefs", "tz")
	})

	t.Run("delete account", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		ck, _ := loginCookie(t, s, u)
		other, _ := login(t, s, u)
		r := s.call(t, "DELETE", "/v1/profile", J{"password": u.Password + "x"}, cookie(ck))
		wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
		alive(t, s, ck)
		alive(t, s, other)
		wantStatus(t, s.call(t, "DELETE", "/v1/profile", nil, cookie(ck), offContract("no body")), http.StatusBadRequest)

		r = s.call(t, "DELETE", "/v1/profile", J{"password": u.Password}, cookie(ck))
		wantStatus(t, r, http.StatusNoContent)
		wantClearedCookie(t, r)
		dead(t, s, ck)
		dead(t, s, other)
		r = s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password})
		wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users?email="+u.Email, nil), http.StatusNotFound)
	})

	t.Run("password change from a cookie session", func(t *testing.T) {
		t.Parallel()
		u, v := newUser(t, s), newUser(t, s)
		cur, rl := loginCookie(t, s, u)
		id := obj(t, rl, "session")["id"]
		o1, _ := login(t, s, u)
		o2, _ := loginCookie(t, s, u)
		stranger, _ := login(t, s, v)
		newPW := "a brand new passphrase"
		r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": newPW}, cookie(cur))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "change answer", r.JSON, "revoked")
		if r.JSON["revoked"] != float64(2) {
			t.Errorf("revoked %v, want 2", r.JSON["revoked"])
		}
		fresh := wantSessionCookie(t, r)
		if fresh == cur {
			t.Fatal("the password change kept the old token")
		}
		dead(t, s, cur)
		if got := alive(t, s, fresh)["id"]; got != id {
			t.Errorf("session id after the change %v, want the same %v", got, id)
		}
		dead(t, s, o1)
		dead(t, s, o2)
		alive(t, s, stranger)
		wantError(t, s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password}), http.StatusUnauthorized, "invalid_credentials")
		u.Password = newPW
		login(t, s, u)
	})

	t.Run("password change from a bearer session", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		cur, rl := login(t, s, u)
		id := obj(t, rl, "session")["id"]
		other, _ := loginCookie(t, s, u)
		r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "another new passphrase"}, bearer(cur))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "change answer", r.JSON, "revoked", "token")
		wantNoSessionCookie(t, r)
		fresh := str(t, r.JSON, "token")
		if fresh == cur {
			t.Fatal("the password change kept the old token")
		}
		dead(t, s, cur)
		dead(t, s, other)
		if got := alive(t, s, fresh)["id"]; got != id {
			t.Errorf("session id after the change %v, want the same %v", got, id)
		}
	})

	t.Run("password change refusals", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		cur, _ := login(t, s, u)
		other, _ := login(t, s, u)
		r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "password123"}, bearer(cur))
		wantError(t, r, http.StatusBadRequest, "weak_password")
		r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "short"}, bearer(cur))
		wantError(t, r, http.StatusBadRequest, "weak_password")
		wantError(t, s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "fine new passphrase"}),
			http.StatusUnauthorized, "unauthenticated")
		// Nothing changed.
		alive(t, s, cur)
		alive(t, s, other)
		login(t, s, u)

		// Wrong current passwords: 401, and they count toward lockout.
		for i := 1; i <= 5; i++ {
			r := s.call(t, "POST", "/v1/password/change", J{"current_password": "wrong password " + randHex(2), "new_password": "fine new passphrase"}, bearer(cur))
			wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
		alive(t, s, other)
		r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "fine new passphrase"}, bearer(cur))
		wantError(t, r, http.StatusTooManyRequests, "account_locked")
		r = s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password})
		wantError(t, r, http.StatusTooManyRequests, "account_locked")
		wantNoSessionCookie(t, r)
	})

	t.Run("reset answers alike for known and unknown emails", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		unknown := "nobody-" + randHex(4) + "@example.com"
		ru := requestReset(t, s, unknown)
		rk := requestReset(t, s, strings.ToUpper(u.Email))
		if string(rk.Body) != string(ru.Body) {
			t.Errorf("bodies differ: known %q, unknown %q", rk.Body, ru.Body)
		}
		if hk, hu := headerNames(rk.Header), headerNames(ru.Header); hk != hu {
			t.Errorf("headers differ: known %s, unknown %s", hk, hu)
		}
		toks := waitOutbox(t, s, u.Email, 1)
		if len(toks) != 1 {
			t.Fatalf("%d tokens for one request", len(toks))
		}
		time.Sleep(200 * time.Millisecond)
		if n := len(outboxTokens(t, s, unknown)); n != 0 {
			t.Errorf("%d messages for an unknown email", n)
		}
	})

	t.Run("reset confirm", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		a, _ := loginCookie(t, s, u)
		b, _ := login(t, s, u)
		requestReset(t, s, u.Email)
		tok := waitOutbox(t, s, u.Email, 1)[0]
		newPW := "reset to this passphrase"
		r := s.call(t, "POST", "/v1/password/reset/confirm", J{"token": tok, "new_password": newPW})
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "confirm answer", r.JSON, "session", "user")
		sess := checkSession(t, obj(t, r, "session"))
		if checkUser(t, obj(t, r, "user"))["id"] != u.ID || sess["user_id"] != u.ID {
			t.Errorf("confirm signed in %v, want %s", sess["user_id"], u.ID)
		}
		fresh := wantSessionCookie(t, r)
		dead(t, s, a)
		dead(t, s, b)
		if alive(t, s, fresh)["id"] != sess["id"] {
			t.Error("the confirm's cookie is not its session")
		}
		wantError(t, s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password}), http.StatusUnauthorized, "invalid_credentials")
		u.Password = newPW
		login(t, s, u)

		// Single use.
		r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": tok, "new_password": "yet another passphrase"})
		wantError(t, r, http.StatusBadRequest, "invalid_token")
		wantNoSessionCookie(t, r)
		login(t, s, u)
	})

	t.Run("reset confirm with the token transport", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.adm(t, "POST", "/admin/v1/users/"+u.ID+"/password-reset", nil)
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "admin reset answer", r.JSON, "token", "expires_at")
		if d := time.Until(ts(t, r.JSON, "expires_at")); d > 3*time.Second || d < 0 {
			t.Errorf("reset token expires in %v, want within the 3s TTL", d)
		}
		r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": str(t, r.JSON, "token"), "new_password": "reset to this passphrase",
			"transport": "token", "remember_me": true})
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "confirm answer", r.JSON, "session", "user", "token")
		wantNoSessionCookie(t, r)
		if checkSession(t, obj(t, r, "session"))["remember_me"] != true {
			t.Errorf("remember_me not honoured: %s", r.Body)
		}
		alive(t, s, str(t, r.JSON, "token"))
	})

	t.Run("a newer reset token replaces the older", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		requestReset(t, s, u.Email)
		first := waitOutbox(t, s, u.Email, 1)[0]
		requestReset(t, s, u.Email)
		toks := waitOutbox(t, s, u.Email, 2)
		if toks[0] != first || toks[1] == first {
			t.Fatalf("outbox tokens %q", toks)
		}
		r := s.call(t, "POST", "/v1/password/reset/confirm", J{"token": first, "new_password": "reset to this passphrase"})
		wantError(t, r, http.StatusBadRequest, "invalid_token")
		r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": toks[1], "new_password": "reset to this passphrase"})
		wantStatus(t, r, http.StatusOK)

		// An admin-issued token also replaces the mailed one.
		requestReset(t, s, u.Email)
		mailed := waitOutbox(t, s, u.Email, 3)[2]
		wantStatus(t, s.adm(t, "POST", "/admin/v1/users/"+u.ID+"/password-reset", nil), http.StatusOK)
		r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": mailed, "new_password": "reset to this passphrase"})
		wantError(t, r, http.StatusBadRequest, "invalid_token")
	})

	t.Run("a weak new password does not burn the token", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.adm(t, "POST", "/admin/v1/users/"+u.ID+"/password-reset", nil)
		tok := str(t, r.JSON, "token")
		for _, pw := range []string{"short", "password123"} {
			r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": tok, "new_password": pw})
			wantError(t, r, http.StatusBadRequest, "weak_password")
		}
		r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": tok, "new_password": "reset to this passphrase"})
		wantStatus(t, r, http.StatusOK)
	})

	t.Run("an expired reset token is refused", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		issued := time.Now()
		r := s.adm(t, "POST", "/admin/v1/users/"+u.ID+"/password-reset", nil)
		tok := str(t, r.JSON, "token")
		// expires_at has whole seconds; sleep past the TTL itself.
		time.Sleep(time.Until(issued.Add(3*time.Second + 300*time.Millisecond)))
		r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": tok, "new_password": "reset to this passphrase"})
		wantError(t, r, http.StatusBadRequest, "invalid_token")
		login(t, s, u) // the old password still works
	})

	t.Run("bad reset tokens", func(t *testing.T) {
		t.Parallel()
		for _, tok := range []string{"", "garbage", "sdp_" + strings.Repeat("A", 49), "sdt_" + strings.Repeat("A", 49)} {
			r := s.call(t, "POST", "/v1/password/reset/confirm", J{"token": tok, "new_password": "reset to this passphrase"})
			wantError(t, r, http.StatusBadRequest, "invalid_token")
		}
	})
}

// headerNames lists the header names of h but Date, for comparing answers.
func headerNames(h http.Header) string {
	var ks []string
	for k := range h {
		if k != "Date" {
			ks = append(ks, k+"="+strings.Join(h.Values(k), ","))
		}
	}
	sort.Strings(ks)
	return strings.Join(ks, "; ")
}
