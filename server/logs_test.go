package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the server's concurrent logging.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsCarryNoSecrets runs every flow that handles a secret (sign-up,
// sign-in right and wrong, the token transports, refresh and its reuse,
// password change and reset, the admin API, errors) with the server
// logging at debug level, and fails if any password, session token,
// access or refresh token, reset token or the admin key shows up in the
// log, whole or as its secret part.
func TestLogsCarryNoSecrets(t *testing.T) {
	var logs syncBuffer
	w := newWorld(t, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	secrets := []string{fuzzPassword, w.token, w.access, w.refresh, fuzzAdminKey}
	call := func(h http.Handler, method, path, body string, hdr ...string) map[string]any {
		t.Helper()
		r := httptest.NewRequest(method, path, strings.NewReader(w.vars.Replace(body)))
		r.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], w.vars.Replace(hdr[i+1]))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var out map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		// Every secret the server hands out is one the log must not show.
		for _, k := range []string{"token", "access_token", "refresh_token"} {
			if v, ok := out[k].(string); ok {
				secrets = append(secrets, v)
			}
		}
		for _, c := range rec.Result().Cookies() {
			if c.Value != "" {
				secrets = append(secrets, c.Value)
			}
		}
		return out
	}
	const newPassword = "a brand new passphrase"
	secrets = append(secrets, newPassword, "wrong password!")
	admin := []string{"Authorization", "Bearer " + fuzzAdminKey}
	call(w.public, "POST", "/v1/register", `{"email":"bob@example.com","password":"`+newPassword+`"}`)
	call(w.public, "POST", "/v1/login", `{"email":"$EMAIL","password":"wrong password!"}`)
	call(w.public, "POST", "/v1/login", `{"email":"nobody@example.com","password":"wrong password!"}`)
	call(w.public, "POST", "/v1/login", `{"email":"$EMAIL","password":"$PASSWORD","transport":"token"}`)
	call(w.public, "POST", "/v1/login", `{"email":"$EMAIL","password":"$PASSWORD","transport":"jwt"}`)
	call(w.public, "GET", "/v1/session", ``, "Authorization", "Bearer $TOKEN")
	call(w.public, "GET", "/v1/session", ``, "Authorization", "Bearer $ACCESS")
	call(w.public, "GET", "/v1/session", ``, "Authorization", "Bearer sdt_not-a-token")
	next, _ := call(w.public, "POST", "/v1/token/refresh", `{"refresh_token":"$REFRESH"}`)["refresh_token"].(string)
	call(w.public, "POST", "/v1/token/refresh", `{"refresh_token":"`+next+`"}`)
	call(w.public, "POST", "/v1/token/refresh", `{"refresh_token":"$REFRESH"}`) // two links behind: reuse, the session ends
	call(w.public, "POST", "/v1/password/reset", `{"email":"$EMAIL"}`)
	reset := call(w.admin, "POST", "/admin/v1/users/$USER/password-reset", ``, admin...)
	if tok, ok := reset["token"].(string); ok {
		secrets = append(secrets, tok)
	}
	call(w.public, "POST", "/v1/password/reset/confirm", `{"token":"$RESET","new_password":"`+newPassword+`"}`)
	call(w.public, "POST", "/v1/login", `{"email":"$EMAIL","password":"`+newPassword+`","transport":"token"}`)
	call(w.admin, "POST", "/admin/v1/sessions/validate", `{"token":"$TOKEN"}`, admin...)
	call(w.admin, "POST", "/admin/v1/sessions", `{"user_id":"$USER"}`, admin...)
	call(w.admin, "GET", "/admin/v1/users/$USER", ``, "Authorization", "Bearer wrong-"+fuzzAdminKey)
	call(w.public, "POST", "/v1/logout", ``, "Authorization", "Bearer $TOKEN")

	log := logs.String()
	for _, want := range []string{"user registered", "refresh token reused", "session created by admin"} {
		if !strings.Contains(log, want) {
			t.Fatalf("the log lacks %q: the flows did not run as meant\n%s", want, log)
		}
	}
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log shows the secret %q", s)
		}
		// The random part alone, for a secret with a prefix and checksum.
		if len(s) >= 24 && strings.Contains(log, s[4:24]) {
			t.Errorf("the log shows part of the secret %q", s)
		}
	}
}
