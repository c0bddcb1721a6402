package e2e_test

// Tests of the low-severity findings of the security review (issue 20),
// each against the built binary.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// notifySecret is a notifier webhook secret of the least length allowed.
const notifySecret = "e2e-notify-secret-0123456789abcd"

// TestNotifyWebhookRefusesRedirects: the notifier's webhook answering 307
// to another receiver does not make sessiond re-send the message, with its
// reset token, there; the second receiver gets nothing.
func TestNotifyWebhookRefusesRedirects(t *testing.T) {
	t.Parallel()
	var stolen atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
	}))
	defer elsewhere.Close()
	hit := make(chan string, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hit <- string(body)
		http.Redirect(w, r, elsewhere.URL+"/collect", http.StatusTemporaryRedirect)
	}))
	defer receiver.Close()
	s := startServer(t, []string{"--notify-webhook", receiver.URL + "/notify"},
		withEnv("SESSIOND_NOTIFY_WEBHOOK_SECRET="+notifySecret))
	u := newUser(t, s)
	requestReset(t, s, u.Email)
	select {
	case body := <-hit:
		if !strings.Contains(body, `"password_reset"`) {
			t.Fatalf("the receiver got %s, want the reset message", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver got no reset message within 10s")
	}
	// A followed redirect is sent at once, within the same delivery.
	time.Sleep(time.Second)
	if n := stolen.Load(); n != 0 {
		t.Fatalf("the redirect target received %d messages", n)
	}
}

// TestShortWebhookSecretsRefused: an empty or short signing secret of
// either webhook, from its file or its environment variable, stops
// start-up with one line naming the setting; 32 bytes are enough.
func TestShortWebhookSecretsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	short := strings.Repeat("s", 31)
	empty, shortFile, spaces := file("empty", ""), file("short", short+"\n"), file("spaces", " \n\t\n")
	notify := []string{"--notify-webhook", "http://127.0.0.1:1/notify"}
	lifecycle := []string{"--webhook-url", "http://127.0.0.1:1/hook"}
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"empty notifier secret file", append(notify, "--notify-webhook-secret-file", empty), nil, "--notify-webhook-secret-file"},
		{"blank notifier secret file", append(notify, "--notify-webhook-secret-file", spaces), nil, "--notify-webhook-secret-file"},
		{"short notifier secret file", append(notify, "--notify-webhook-secret-file", shortFile), nil, "--notify-webhook-secret-file"},
		{"short notifier secret variable", notify, []string{"SESSIOND_NOTIFY_WEBHOOK_SECRET=" + short}, "SESSIOND_NOTIFY_WEBHOOK_SECRET"},
		{"empty lifecycle secret file", append(lifecycle, "--webhook-secret-file", empty), nil, "--webhook-secret-file"},
		{"short lifecycle secret file", append(lifecycle, "--webhook-secret-file", shortFile), nil, "--webhook-secret-file"},
		{"short lifecycle secret variable", lifecycle, []string{"SESSIOND_WEBHOOK_SECRET=" + short}, "SESSIOND_WEBHOOK_SECRET"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve",
				"--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--admin-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--database", "sqlite://" + filepath.Join(t.TempDir(), "db")}, c.args...)
			_, stderr, code := runCLI(t, t.TempDir(), "", c.env, args...)
			reason := strings.TrimSpace(stderr)
			if code == 0 {
				t.Fatalf("exit status 0, want non-zero; stderr %q", stderr)
			}
			if reason == "" || strings.Contains(reason, "\n") {
				t.Errorf("stderr %q, want one line", stderr)
			}
			if !strings.Contains(reason, c.want) {
				t.Errorf("reason %q does not name %s", reason, c.want)
			}
			if strings.Contains(reason, short) {
				t.Errorf("the reason shows the secret: %q", reason)
			}
		})
	}
	// Secrets of exactly 32 bytes start.
	t.Run("32 bytes", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, append(append([]string{}, lifecycle...), "--notify-webhook", "http://127.0.0.1:1/notify",
			"--notify-webhook-secret-file", file("notify32", notifySecret+"\n")),
			withEnv("SESSIOND_WEBHOOK_SECRET="+strings.Repeat("w", 32)))
		healthy(t, s)
	})
}

// TestDatabaseFilesOwnerOnly: sessiond creates its SQLite file and the
// -wal and -shm beside it owner-only (0600), and tightens a database left
// readable by others, saying so in the log.
func TestDatabaseFilesOwnerOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	newUser(t, s) // a password hash in the file
	wantOwnerOnly := func() {
		t.Helper()
		for _, p := range []string{s.DB, s.DB + "-wal", s.DB + "-shm"} {
			st, err := os.Stat(p)
			if err != nil {
				t.Errorf("%v", err)
				continue
			}
			if m := st.Mode().Perm(); m != 0o600 {
				t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), m)
			}
		}
	}
	wantOwnerOnly()

	s.Stop(t)
	if err := os.Chmod(s.DB, 0o644); err != nil {
		t.Fatal(err)
	}
	s.start(t)
	wantOwnerOnly()
	if logs := s.Logs(); !strings.Contains(logs, "made owner-only") {
		t.Errorf("no warning in the log about the loose database file")
	}
}

// fullwidth returns s with its ASCII letters and digits and "@" and "."
// in their fullwidth forms (U+FF01 to U+FF5E).
func fullwidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f && r != '-' {
			r += 0xff01 - '!'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestEmailLookAlikes: beside ada@example.com, its fullwidth form is the
// same address (409 email_taken; signing in with it signs ada in) and a
// form with a Cyrillic "а" is refused (400 invalid_email): neither makes
// a second account.
func TestEmailLookAlikes(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	local := "ada-" + randHex(4)
	email := local + "@example.com"
	const pw = "analytical engine"
	r := s.call(t, "POST", "/v1/register", J{"email": email, "password": pw})
	wantStatus(t, r, http.StatusCreated)
	id := str(t, obj(t, r, "user"), "id")

	wide := fullwidth(local) + "@example.com"
	for _, e := range []string{wide, fullwidth(email), local + "@ｅxample.com"} {
		wantError(t, s.call(t, "POST", "/v1/register", J{"email": e, "password": pw}), http.StatusConflict, "email_taken")
	}
	for _, e := range []string{local + "@exаmple.com", strings.Replace(local, "a", "а", 1) + "@example.com"} {
		wantError(t, s.call(t, "POST", "/v1/register", J{"email": e, "password": pw}), http.StatusBadRequest, "invalid_email")
	}
	r = s.call(t, "POST", "/v1/login", J{"email": wide, "password": pw, "transport": "token"})
	wantStatus(t, r, http.StatusOK)
	if got := str(t, obj(t, r, "user"), "id"); got != id {
		t.Errorf("signing in with the fullwidth form gave user %s, want %s", got, id)
	}
	r = s.adm(t, "GET", "/admin/v1/users?email="+url.QueryEscape(wide), nil)
	wantStatus(t, r, http.StatusOK)
	if got := str(t, obj(t, r, "user"), "id"); got != id {
		t.Errorf("finding the fullwidth form gave user %s, want %s", got, id)
	}
}

// TestKeyActivationDelayTooShort: an activation delay shorter than the key
// reload interval plus the JWKS max-age stops serve at start-up and makes
// keys rotate refuse, adding no key; one that long is accepted.
func TestKeyActivationDelayTooShort(t *testing.T) {
	t.Parallel()
	s, kek := startJWT(t, nil)
	db := "sqlite://" + s.DB
	t.Run("serve", func(t *testing.T) {
		t.Parallel()
		for _, args := range [][]string{
			{"--key-activation-delay", "30s"}, // the defaults: 10s + 60s
			{"--key-activation-delay", "5s", "--key-reload-interval", "3s", "--jwks-max-age", "3s"},
		} {
			args = append([]string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--admin-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--database", "sqlite://" + filepath.Join(t.TempDir(), "db")}, args...)
			_, stderr, code := runCLI(t, t.TempDir(), "", []string{kekEnv(newKEK())}, args...)
			wantKeyDelayRefused(t, args, code, stderr)
		}
	})
	t.Run("keys rotate", func(t *testing.T) {
		t.Parallel()
		args := []string{"keys", "rotate", "--database", db, "--key-activation-delay", "5s"}
		_, stderr, code := runCLI(t, s.Dir, "", []string{kekEnv(kek)}, args...)
		wantKeyDelayRefused(t, args, code, stderr)
		out, stderr, code := runCLI(t, s.Dir, "", []string{kekEnv(kek)}, "keys", "list", "--database", db)
		if code != 0 {
			t.Fatalf("keys list: status %d: %s", code, stderr)
		}
		if n := strings.Count(out, "\n") - 1; n != 1 {
			t.Errorf("keys list after a refused rotation shows %d keys, want 1:\n%s", n, out)
		}
		// As long as reload plus max-age is enough.
		out, stderr, code = runCLI(t, s.Dir, "", []string{kekEnv(kek)}, "keys", "rotate", "--database", db,
			"--key-activation-delay", "4s", "--key-reload-interval", "2s", "--jwks-max-age", "2s")
		if code != 0 || !strings.Contains(out, "added signing key") {
			t.Errorf("keys rotate with a delay of reload plus max-age: status %d: %s %s", code, out, stderr)
		}
	})
}

// wantKeyDelayRefused checks that a command failed with one line naming
// the activation delay and what it must cover.
func wantKeyDelayRefused(t *testing.T, args []string, code int, stderr string) {
	t.Helper()
	reason := strings.TrimSpace(stderr)
	if code == 0 {
		t.Errorf("%v: exit status 0, want non-zero", args)
		return
	}
	if strings.Contains(reason, "\n") {
		t.Errorf("%v: stderr %q, want one line", args, stderr)
	}
	for _, want := range []string{"--key-activation-delay", "--key-reload-interval", "--jwks-max-age"} {
		if !strings.Contains(reason, want) {
			t.Errorf("%v: reason %q does not name %s", args, reason, want)
		}
	}
}
