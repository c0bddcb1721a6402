package e2e_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAdmin covers the admin API: its key, its endpoints and the probes.
func TestAdmin(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)

	t.Run("the key", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		path := "/admin/v1/users?email=" + url.QueryEscape(u.Email)
		wantStatus(t, s.adm(t, "GET", path, nil), http.StatusOK) // the key works: the refusals below mean something
		wantStatus(t, s.adm(t, "GET", path, nil, header("Authorization", "bearer "+adminKey)), http.StatusOK)
		for name, opts := range map[string][]reqOpt{
			"no key":           nil,
			"wrong key":        {bearer("e2e-admin-key-0123456789abcdeX")},
			"key prefix":       {bearer(adminKey[:len(adminKey)-1])},
			"key and more":     {bearer(adminKey + "x")},
			"basic scheme":     {header("Authorization", "Basic "+adminKey)},
			"bare key":         {header("Authorization", adminKey)},
			"key as a cookie":  {header("Cookie", cookieName+"="+adminKey)},
			"key in a header":  {header("X-Admin-Key", adminKey)},
			"a session token":  {bearer(func() string { tok, _ := login(t, s, u); return tok }())},
			"empty bearer":     {header("Authorization", "Bearer ")},
			"key in the query": nil,
		} {
			p := path
			if name == "key in the query" {
				p += "&key=" + adminKey + "&token=" + adminKey + "&access_token=" + adminKey
			}
			for _, c := range []struct{ method, path string }{
				{"GET", p},
				{"POST", "/admin/v1/sessions"},
				{"POST", "/admin/v1/sessions/validate"},
				{"DELETE", "/admin/v1/users/" + u.ID + "/sessions"},
				{"POST", "/admin/v1/users/" + u.ID + "/password-reset"},
			} {
				// One body for every route: what is refused is the key.
				r := do(t, s.Admin, c.method, c.path, J{"user_id": u.ID, "token": "x"}, append(opts, offContract("one body for every route"))...)
				if r.Status != http.StatusUnauthorized {
					t.Errorf("%s %s with %s: %d %s, want 401", c.method, c.path, name, r.Status, r.Body)
				}
			}
		}
		// Nothing happened: no reset mail, no session revoked, no session made.
		r := s.adm(t, "GET", "/admin/v1/users/"+u.ID+"/sessions", nil)
		if n := len(r.JSON["sessions"].([]any)); n != 1 {
			t.Errorf("%d sessions, want the 1 the test made", n)
		}
	})

	t.Run("probes need no key", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/healthz", "/readyz"} {
			r := do(t, s.Admin, "GET", p, nil)
			wantStatus(t, r, http.StatusOK)
		}
		r := do(t, s.Admin, "GET", "/metrics", nil)
		wantStatus(t, r, http.StatusOK)
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("metrics Content-Type %q, want the Prometheus text format", ct)
		}
		names := map[string]bool{}
		for _, line := range strings.Split(string(r.Body), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			name, _, _ := strings.Cut(line, " ")
			name, _, _ = strings.Cut(name, "{")
			names[name] = true
			if !strings.HasPrefix(name, "sessiond_") {
				t.Errorf("metric %q is not prefixed sessiond_", name)
			}
		}
		if len(names) < 5 {
			t.Errorf("only %d metrics: %s", len(names), r.Body)
		}
		// The probes and the admin API are not on the public listener.
		wantStatus(t, s.call(t, "GET", "/metrics", nil), http.StatusNotFound)
		wantStatus(t, s.call(t, "GET", "/admin/v1/users?email=a@example.com", nil, bearer(adminKey), offContract("an admin route on the public listener")),
			http.StatusNotFound)
	})

	t.Run("sessions", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.adm(t, "POST", "/admin/v1/sessions", J{"user_id": u.ID, "remember_me": true, "data": J{"cart": []any{1}, "plan": "pro"}},
			userAgent(chromeUA))
		wantStatus(t, r, http.StatusCreated)
		wantKeys(t, "admin session answer", r.JSON, "session", "token")
		sess := checkSession(t, obj(t, r, "session"))
		tok := str(t, r.JSON, "token")
		if sess["user_id"] != u.ID || sess["remember_me"] != true || tok == sess["id"] {
			t.Errorf("admin session %v", sess)
		}
		wantNoSessionCookie(t, r)
		// The token works on the public API, with the data.
		if got := alive(t, s, tok); got["id"] != sess["id"] {
			t.Errorf("public who-am-I %v, want %v", got["id"], sess["id"])
		}
		d := s.call(t, "GET", "/v1/session/data", nil, bearer(tok))
		wantKeys(t, "data", obj(t, d, "data"), "cart", "plan")

		r = s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": tok})
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "validate answer", r.JSON, "active", "session", "user")
		if r.JSON["active"] != true || checkSession(t, obj(t, r, "session"))["id"] != sess["id"] ||
			checkUser(t, obj(t, r, "user"))["id"] != u.ID {
			t.Errorf("validate %s", r.Body)
		}
		for _, bad := range []string{"", "garbage", "sdt_" + strings.Repeat("A", 49), tok + "x"} {
			r := s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": bad})
			wantStatus(t, r, http.StatusOK)
			wantKeys(t, "inactive validate answer", r.JSON, "active")
			if r.JSON["active"] != false {
				t.Errorf("validate of %q: %s", bad, r.Body)
			}
		}

		wantError(t, s.adm(t, "POST", "/admin/v1/sessions", J{"user_id": randHex(16)}), http.StatusNotFound, "user_not_found")
		wantStatus(t, s.adm(t, "POST", "/admin/v1/sessions", J{}, offContract("no user_id")), http.StatusBadRequest)
		wantStatus(t, s.adm(t, "POST", "/admin/v1/sessions", J{"user_id": u.ID, "data": J{"bad key": 1}}), http.StatusBadRequest)

		id := sess["id"].(string)
		wantStatus(t, s.adm(t, "DELETE", "/admin/v1/sessions/"+id, nil), http.StatusNoContent)
		dead(t, s, tok)
		r = s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": tok})
		wantKeys(t, "validate of a revoked session", r.JSON, "active")
		if r.JSON["active"] != false {
			t.Errorf("validate of a revoked token: %s", r.Body)
		}
		wantStatus(t, s.adm(t, "DELETE", "/admin/v1/sessions/"+id, nil), http.StatusNotFound)
		wantStatus(t, s.adm(t, "DELETE", "/admin/v1/sessions/"+randHex(16), nil), http.StatusNotFound)
	})

	t.Run("users", func(t *testing.T) {
		t.Parallel()
		u, v := newUser(t, s), newUser(t, s)
		r := s.adm(t, "GET", "/admin/v1/users?email="+url.QueryEscape(" "+strings.ToUpper(u.Email)+" "), nil)
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "find answer", r.JSON, "user")
		if checkUser(t, obj(t, r, "user"))["id"] != u.ID {
			t.Errorf("found %s, want %s", r.Body, u.ID)
		}
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users?email=nobody-"+randHex(4)+"@example.com", nil), http.StatusNotFound)
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users?email=not-an-email", nil), http.StatusNotFound)
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users", nil, offContract("no email")), http.StatusBadRequest)

		a, _ := login(t, s, u)
		b, _ := loginCookie(t, s, u, userAgent(chromeUA))
		theirs, _ := login(t, s, v)
		r = s.adm(t, "GET", "/admin/v1/users/"+u.ID+"/sessions", nil)
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "admin list answer", r.JSON, "sessions")
		list := r.JSON["sessions"].([]any)
		if len(list) != 2 {
			t.Fatalf("%d sessions, want 2: %s", len(list), r.Body)
		}
		for _, x := range list {
			m := checkSession(t, x.(map[string]any))
			if m["user_id"] != u.ID || m["current"] != false {
				t.Errorf("admin-listed session %v", m)
			}
		}
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users/"+randHex(16)+"/sessions", nil), http.StatusNotFound)

		r = s.adm(t, "DELETE", "/admin/v1/users/"+u.ID+"/sessions", nil)
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "revoke-all answer", r.JSON, "revoked")
		if r.JSON["revoked"] != float64(2) {
			t.Errorf("revoked %v, want 2", r.JSON["revoked"])
		}
		dead(t, s, a)
		dead(t, s, b)
		alive(t, s, theirs)
		r = s.adm(t, "DELETE", "/admin/v1/users/"+u.ID+"/sessions", nil)
		if r.JSON["revoked"] != float64(0) {
			t.Errorf("second revoke-all: %s", r.Body)
		}
		r = s.adm(t, "GET", "/admin/v1/users/"+u.ID+"/sessions", nil)
		if n := len(r.JSON["sessions"].([]any)); n != 0 {
			t.Errorf("%d sessions after revoke-all", n)
		}
		wantStatus(t, s.adm(t, "DELETE", "/admin/v1/users/"+randHex(16)+"/sessions", nil), http.StatusNotFound)
		wantStatus(t, s.adm(t, "POST", "/admin/v1/users/"+randHex(16)+"/password-reset", nil), http.StatusNotFound)
		// A user can still sign in after an admin signed them out.
		login(t, s, u)
	})
}

// TestAdminWithoutKey checks that without a configured key the admin API
// refuses everything, and the probes still answer.
func TestAdminWithoutKey(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil, withoutAdminKey())
	u := newUser(t, s)
	tok, _ := login(t, s, u)
	for _, opts := range [][]reqOpt{nil, {bearer(adminKey)}, {bearer("")}, {header("Authorization", "Bearer")}} {
		for _, c := range []struct{ method, path string }{
			{"GET", "/admin/v1/users?email=" + url.QueryEscape(u.Email)},
			{"GET", "/admin/v1/users/" + u.ID + "/sessions"},
			{"DELETE", "/admin/v1/users/" + u.ID + "/sessions"},
			{"POST", "/admin/v1/users/" + u.ID + "/password-reset"},
			{"POST", "/admin/v1/sessions"},
			{"POST", "/admin/v1/sessions/validate"},
		} {
			// One body for every route: what is refused is the missing key.
			r := do(t, s.Admin, c.method, c.path, J{"user_id": u.ID, "token": tok}, append(opts, offContract("one body for every route"))...)
			if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
				t.Errorf("%s %s without a configured key: %d %s, want 401 or 403", c.method, c.path, r.Status, r.Body)
			}
		}
	}
	alive(t, s, tok) // the revoke-all was refused
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		wantStatus(t, do(t, s.Admin, "GET", p, nil), http.StatusOK)
	}
	if !strings.Contains(s.Logs(), "admin") {
		t.Errorf("no warning about the missing admin key in the log")
	}
}

// TestAdminPprof checks that Go's profiler is served only when asked for,
// only on the admin listener and only with the admin key.
func TestAdminPprof(t *testing.T) {
	t.Parallel()
	off := startServer(t, nil)
	wantStatus(t, off.adm(t, "GET", "/debug/pprof/", nil), http.StatusNotFound)

	s := startServer(t, []string{"--admin-pprof"})
	wantStatus(t, do(t, s.Admin, "GET", "/debug/pprof/", nil), http.StatusUnauthorized)
	wantStatus(t, do(t, s.Admin, "GET", "/debug/pprof/heap", nil, bearer("not-the-key")), http.StatusUnauthorized)
	wantStatus(t, do(t, s.Pub, "GET", "/debug/pprof/", nil, bearer(adminKey)), http.StatusNotFound)
	// Raw requests: the harness's helpers refuse bodies that look like
	// stack traces, which is what a goroutine profile is.
	get := func(path string) (int, string) {
		req, _ := http.NewRequest("GET", s.Admin+path, nil)
		req.Header.Set("Authorization", "Bearer "+adminKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200s", code, body)
	}
	if code, body := get("/debug/pprof/profile?seconds=1"); code != http.StatusOK || len(body) == 0 {
		t.Errorf("CPU profile: %d, %d bytes", code, len(body))
	}
}
