package e2e_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRestart checks that sessions live in the database: they survive a
// graceful restart, revoked ones stay revoked, and a revocation that was
// acknowledged survives a crash.
func TestRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	u := newUser(t, s)
	a, ra := loginCookie(t, s, u)
	idA := obj(t, ra, "session")["id"]
	b, _ := login(t, s, u)
	c, rc := login(t, s, u)
	anonR := s.call(t, "PUT", "/v1/session/data/cart", raw(`["kept"]`), header("Content-Type", "application/json"))
	wantStatus(t, anonR, http.StatusNoContent)
	anon := wantSessionCookie(t, anonR)
	wantStatus(t, s.call(t, "PUT", "/v1/session/data/k", raw(`1`), header("Content-Type", "application/json"), cookie(a)), http.StatusNoContent)
	wantStatus(t, s.call(t, "POST", "/v1/logout", nil, bearer(b)), http.StatusNoContent)
	wantStatus(t, s.adm(t, "DELETE", "/admin/v1/sessions/"+obj(t, rc, "session")["id"].(string), nil), http.StatusNoContent)

	s.Restart(t) // checks the exit status 0

	if got := alive(t, s, a)["id"]; got != idA {
		t.Errorf("after a restart the token signs in session %v, want %v", got, idA)
	}
	wantKeys(t, "data after a restart", obj(t, s.call(t, "GET", "/v1/session/data", nil, cookie(a)), "data"), "k")
	wantKeys(t, "anonymous data after a restart", obj(t, s.call(t, "GET", "/v1/session/data", nil, cookie(anon)), "data"), "cart")
	dead(t, s, b)
	dead(t, s, c)
	d, _ := login(t, s, u) // the account survived too

	// A revocation the server acknowledged survives SIGKILL right after.
	wantStatus(t, s.call(t, "POST", "/v1/logout", nil, cookie(a)), http.StatusNoContent)
	s.Kill(t)
	s.start(t)
	dead(t, s, a)
	alive(t, s, d)
	// And so does a password change.
	r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "after the crash"}, bearer(d))
	wantStatus(t, r, http.StatusOK)
	fresh := str(t, r.JSON, "token")
	s.Kill(t)
	s.start(t)
	dead(t, s, d)
	alive(t, s, fresh)
	wantError(t, tryLogin(t, s, u.Email, u.Password), http.StatusUnauthorized, "invalid_credentials")
}

// TestAdminKeyFile checks --admin-key-file as the key's source.
func TestAdminKeyFile(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "admin.key")
	if err := os.WriteFile(keyFile, []byte(adminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, []string{"--admin-key-file", keyFile}, withoutAdminKey())
	wantStatus(t, s.adm(t, "GET", "/admin/v1/users?email=nobody@example.com", nil), http.StatusNotFound)
	wantStatus(t, do(t, s.Admin, "GET", "/admin/v1/users?email=nobody@example.com", nil, bearer("wrong-key-wrong-key-wrong")), http.StatusUnauthorized)
}

// TestStartupValidation checks that invalid configuration stops sessiond
// at start-up with a one-line reason and a non-zero status.
func TestStartupValidation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "admin.key")
	if err := os.WriteFile(keyFile, []byte(adminKey), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want string // in the reason, case-insensitive
	}{
		{"cookie domain with a __Host- name", []string{"--cookie-domain", "example.com"}, nil, "domain"},
		{"insecure __Host- cookie", []string{"--cookie-secure=false"}, nil, "secure"},
		{"bad duration", []string{"--idle-timeout", "5x"}, nil, "idle-timeout"},
		{"bad duration from the environment", nil, []string{"SESSIOND_IDLE_TIMEOUT=5x"}, "SESSIOND_IDLE_TIMEOUT"},
		{"duration under a second", []string{"--idle-timeout", "500ms"}, nil, "--idle-timeout"},
		{"lock under a second", []string{"--lockout-duration", "999ms"}, nil, "--lockout-duration"},
		{"reset TTL under a second", []string{"--reset-token-ttl", "10ms"}, nil, "--reset-token-ttl"},
		{"zero duration", []string{"--absolute-timeout", "0s"}, nil, "absolute"},
		{"negative duration", []string{"--lockout-duration", "-1m"}, nil, "lockout-duration"},
		{"admin key twice", []string{"--admin-key-file", keyFile}, []string{"SESSIOND_ADMIN_KEY=" + adminKey}, "admin"},
		{"short admin key", nil, []string{"SESSIOND_ADMIN_KEY=short"}, "admin key"},
		{"missing admin key file", []string{"--admin-key-file", filepath.Join(dir, "nope")}, nil, "admin-key-file"},
		{"bad SameSite", []string{"--cookie-samesite", "sometimes"}, nil, "samesite"},
		{"bad trusted proxy", []string{"--trusted-proxies", "10.0.0.0/33"}, nil, "trusted-proxies"},
		{"bad trusted origin", []string{"--trusted-origins", "app.example.com"}, nil, "trusted-origins"},
		{"bad database", []string{"--database", "mysql://x"}, nil, "database"},
		{"unknown flag", []string{"--idle-timout", "1m"}, nil, "idle-timout"},
		{"stray argument", []string{"now"}, nil, "now"},
		{"same listeners", []string{"--admin-listen", "LISTEN"}, nil, "listen"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log-level"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			args := []string{"serve", "--listen", listen, "--admin-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--database", "sqlite://" + filepath.Join(t.TempDir(), "db")}
			for _, a := range c.args {
				args = append(args, strings.ReplaceAll(a, "LISTEN", listen))
			}
			stdout, stderr, code := runCLI(t, t.TempDir(), "", c.env, args...)
			if code == 0 {
				t.Fatalf("exit status 0, want non-zero; stderr %q", stderr)
			}
			reason := strings.TrimSpace(stderr)
			t.Logf("status %d: %s", code, reason)
			if reason == "" || strings.Contains(reason, "\n") {
				t.Errorf("stderr has %d lines, want one: %.300q", strings.Count(reason, "\n")+1, stderr)
			}
			if !strings.Contains(strings.ToLower(reason), strings.ToLower(c.want)) {
				t.Errorf("reason %q does not mention %q", reason, c.want)
			}
			if strings.Contains(reason, adminKey) {
				t.Errorf("the reason shows the admin key: %q", reason)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

// TestCLI covers the operator subcommands, run against the database of a
// running server.
func TestCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	db := []string{"--database", "sqlite://" + s.DB}
	cli := func(t *testing.T, stdin string, env []string, args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, s.Dir, stdin, env, append(args, db...)...)
	}

	t.Run("migrate", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		fresh := "sqlite://" + filepath.Join(dir, "fresh.db")
		for i := 0; i < 2; i++ { // and again: nothing left to do is fine
			out, errOut, code := runCLI(t, dir, "", nil, "migrate", "--database", fresh)
			if code != 0 || !strings.Contains(out, "migrations applied") {
				t.Fatalf("migrate: %d %q %q", code, out, errOut)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "fresh.db")); err != nil {
			t.Errorf("migrate made no database: %v", err)
		}
	})

	t.Run("users and sessions", func(t *testing.T) {
		t.Parallel()
		email := "cli-" + randHex(4) + "@example.com"
		password := "typed on stdin only"
		out, errOut, code := cli(t, password+"\n", nil, "user", "create", "--email", " "+strings.ToUpper(email))
		m := regexp.MustCompile(`created user ([0-9a-f]{32}) <([^>]+)>`).FindStringSubmatch(out)
		if code != 0 || m == nil || m[2] != email {
			t.Fatalf("user create: %d %q %q", code, out, errOut)
		}
		u := user{ID: m[1], Email: email, Password: password}
		if strings.Contains(out+errOut, password) {
			t.Error("user create echoed the password")
		}
		// Refusals: a taken email, a weak or missing password.
		for _, c := range []struct{ stdin, email string }{{password + "\n", email}, {"password123\n", "x-" + email}, {"", "y-" + email}} {
			if _, errOut, code := cli(t, c.stdin, nil, "user", "create", "--email", c.email); code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("user create %s with %q: status %d, stderr %q; want a one-line refusal", c.email, c.stdin, code, errOut)
			}
		}

		a, ra := login(t, s, u, userAgent(chromeUA))
		b, rb := login(t, s, u)
		idA, idB := obj(t, ra, "session")["id"].(string), obj(t, rb, "session")["id"].(string)
		for _, by := range [][]string{{"--email", email}, {"--user", u.ID}} {
			out, errOut, code := cli(t, "", nil, append([]string{"sessions", "list"}, by...)...)
			if code != 0 || !strings.Contains(out, idA) || !strings.Contains(out, idB) || !strings.Contains(out, "2 active sessions") {
				t.Errorf("sessions list %v: %d %q %q", by, code, out, errOut)
			}
			if strings.Contains(out, a) || strings.Contains(out, b) {
				t.Errorf("sessions list shows a token")
			}
		}
		out, errOut, code = cli(t, "", nil, "sessions", "revoke", "--id", idA)
		if code != 0 || !strings.Contains(out, idA) {
			t.Fatalf("sessions revoke --id: %d %q %q", code, out, errOut)
		}
		deadSoon(t, s, a, time.Second)
		alive(t, s, b)
		if _, _, code := cli(t, "", nil, "sessions", "revoke", "--id", idA); code == 0 {
			t.Error("revoking a revoked session succeeded")
		}
		c, _ := login(t, s, u)
		out, errOut, code = cli(t, "", nil, "sessions", "revoke", "--user", u.ID)
		if code != 0 || !strings.Contains(out, "revoked 2 sessions") {
			t.Fatalf("sessions revoke --user: %d %q %q", code, out, errOut)
		}
		deadSoon(t, s, b, time.Second)
		deadSoon(t, s, c, time.Second)
		out, _, _ = cli(t, "", nil, "sessions", "list", "--user", u.ID)
		if !strings.Contains(out, "0 active sessions") {
			t.Errorf("sessions list after revoke: %q", out)
		}
		for _, args := range [][]string{{"sessions", "list"}, {"sessions", "revoke"}, {"sessions", "revoke", "--id", idA, "--user", u.ID},
			{"sessions", "list", "--email", "nobody-" + randHex(3) + "@example.com"}, {"sessions", "frobnicate"}, {"user", "delete"}} {
			if _, _, code := cli(t, "", nil, args...); code == 0 {
				t.Errorf("sessiond %v: status 0, want a refusal", args)
			}
		}
		login(t, s, u)
	})

	t.Run("config", func(t *testing.T) {
		t.Parallel()
		out, errOut, code := runCLI(t, t.TempDir(), "", []string{"SESSIOND_ADMIN_KEY=" + adminKey, "SESSIOND_ABSOLUTE_TIMEOUT=3h"},
			"config", "--idle-timeout", "2s", "--lockout-duration", "1s")
		if code != 0 {
			t.Fatalf("config: %d %q", code, errOut)
		}
		for _, want := range []string{"idle-timeout=2s", "absolute-timeout=3h0m0s", "lockout-duration=1s", "cookie-name=__Host-session", "admin-key: set (redacted)"} {
			if !strings.Contains(out, want+"\n") {
				t.Errorf("config output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, adminKey) || strings.Contains(out, adminKey[:12]) {
			t.Errorf("config shows the admin key:\n%s", out)
		}
		keyFile := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(keyFile, []byte(adminKey), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _, code = runCLI(t, t.TempDir(), "", nil, "config", "--admin-key-file", keyFile)
		if code != 0 || strings.Contains(out, adminKey) || !strings.Contains(out, "admin-key: set (redacted)") {
			t.Errorf("config with a key file: %d\n%s", code, out)
		}
		out, _, _ = runCLI(t, t.TempDir(), "", nil, "config")
		if !strings.Contains(out, "admin-key: unset") {
			t.Errorf("config without a key:\n%s", out)
		}
		_, errOut, code = runCLI(t, t.TempDir(), "", nil, "config", "--cookie-domain", "example.com")
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("config with an invalid setting: %d %q", code, errOut)
		}
	})
}
