package e2e_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// Security notifications against the real binary: each kind arrives in
// the outbox directory, and each message has exactly the shape its JSON
// Schema in docs/schemas/ documents.

// outboxMessages returns every message in the outbox, oldest first.
func outboxMessages(t *testing.T, s *Server) []map[string]any {
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
	sort.Strings(names)
	var out []map[string]any
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(s.Outbox, n))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("outbox file %s: %v", n, err)
		}
		if typ, _ := m["type"].(string); !strings.Contains(n, "-"+typ+"-") {
			t.Errorf("outbox file %s holds a %q message", n, typ)
		}
		out = append(out, m)
	}
	return out
}

// waitMessages waits until the outbox holds want messages of type typ for
// userID and returns them; more than want fails.
func waitMessages(t *testing.T, s *Server, userID, typ string, want int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []map[string]any
		for _, m := range outboxMessages(t, s) {
			if m["type"] == typ && m["user_id"] == userID {
				got = append(got, m)
			}
		}
		if len(got) > want {
			t.Fatalf("%d %s messages for %s, want %d: %v", len(got), typ, userID, want, got)
		}
		if len(got) == want {
			for _, m := range got {
				checkMessage(t, m)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s messages for %s after 10s, want %d", len(got), typ, userID, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// schemas reads docs/schemas/*.json once.
var schemas = sync.OnceValues(func() (map[string]map[string]any, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	files, err := filepath.Glob(filepath.Join(root, "docs", "schemas", "*.json"))
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = m
	}
	return out, nil
})

// checkMessage holds a message to the JSON Schema of its type, for the
// parts of JSON Schema those files use: required, additionalProperties
// false, type string/integer/object, const, enum, pattern and format
// date-time.
func checkMessage(t *testing.T, m map[string]any) {
	t.Helper()
	all, err := schemas()
	if err != nil {
		t.Fatalf("reading docs/schemas: %v", err)
	}
	typ, _ := m["type"].(string)
	sc, ok := all[typ]
	if !ok {
		t.Fatalf("message type %q has no schema in docs/schemas", typ)
	}
	checkObject(t, "message "+typ, m, all["envelope"])
	props := sc["properties"].(map[string]any)
	if c := props["type"].(map[string]any)["const"]; c != typ {
		t.Errorf("schema %s: type const %v", typ, c)
	}
	data, ok := m["data"].(map[string]any)
	if !ok {
		t.Fatalf("message %s: data is not an object", typ)
	}
	checkObject(t, "message "+typ+" data", data, props["data"].(map[string]any))
}

func checkObject(t *testing.T, what string, v map[string]any, sc map[string]any) {
	t.Helper()
	props, _ := sc["properties"].(map[string]any)
	for _, r := range sc["required"].([]any) {
		if _, ok := v[r.(string)]; !ok {
			t.Errorf("%s lacks required %q: %v", what, r, v)
		}
	}
	if sc["additionalProperties"] == false {
		for k := range v {
			if _, ok := props[k]; !ok {
				t.Errorf("%s has %q, which its schema does not document", what, k)
			}
		}
	}
	for k, x := range v {
		p, _ := props[k].(map[string]any)
		if p == nil {
			continue
		}
		switch p["type"] {
		case "string":
			s, ok := x.(string)
			if !ok {
				t.Errorf("%s: %s = %v is not a string", what, k, x)
				continue
			}
			if pat, ok := p["pattern"].(string); ok && !regexp.MustCompile(pat).MatchString(s) {
				t.Errorf("%s: %s = %q does not match %s", what, k, s, pat)
			}
			if p["format"] == "date-time" {
				if _, err := time.Parse(time.RFC3339, s); err != nil {
					t.Errorf("%s: %s = %q is not RFC 3339", what, k, s)
				}
			}
		case "integer":
			if f, ok := x.(float64); !ok || f != float64(int64(f)) {
				t.Errorf("%s: %s = %v is not an integer", what, k, x)
			}
		case "object":
			if _, ok := x.(map[string]any); !ok {
				t.Errorf("%s: %s = %v is not an object", what, k, x)
			}
		}
		if enum, ok := p["enum"].([]any); ok {
			found := false
			for _, e := range enum {
				found = found || e == x
			}
			if !found {
				t.Errorf("%s: %s = %v is not one of %v", what, k, x, enum)
			}
		}
	}
}

func TestSecurityNotifications(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--lockout-threshold", "2", "--public-url", "https://login.example.com"})

	t.Run("new device", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		loginCookie(t, s, u, userAgent(chromeUA)) // the first sign-in: nothing to say
		login(t, s, u, userAgent(chromeNewerUA))  // the same family
		_, r := login(t, s, u, userAgent(firefoxLinuxUA))
		m := waitMessages(t, s, u.ID, "new_device_sign_in", 1)[0]
		d := m["data"].(map[string]any)
		if m["to"] != u.Email || d["browser"] != "Firefox" || d["os"] != "Linux" || d["ip"] != "127.0.0.1" ||
			d["session_id"] != obj(t, r, "session")["id"] {
			t.Errorf("new device message %v", m)
		}
		waitEvents(t, s, u.ID, "new_device", 1)
	})

	t.Run("password changed and reset", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		login(t, s, u)
		login(t, s, u)
		r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "a new " + u.Password}, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		m := waitMessages(t, s, u.ID, "password_changed", 1)[0]
		if d := m["data"].(map[string]any); d["method"] != "change" || d["sessions_ended"] != float64(2) {
			t.Errorf("password change message %v", m)
		}
		u.Password = "a new " + u.Password
		wantStatus(t, s.call(t, "POST", "/v1/password/reset", J{"email": u.Email}), http.StatusAccepted)
		reset := waitMessages(t, s, u.ID, "password_reset", 1)[0]
		rd := reset["data"].(map[string]any)
		if link, _ := rd["link"].(string); !strings.HasPrefix(link, "https://login.example.com/password/reset/confirm#token=sdp_") {
			t.Errorf("reset message %v", reset)
		}
		r = s.call(t, "POST", "/v1/password/reset/confirm", J{"token": rd["token"], "new_password": "yet another " + u.Password, "transport": "token"})
		wantStatus(t, r, http.StatusOK)
		var reseted map[string]any
		for _, m := range waitMessages(t, s, u.ID, "password_changed", 2) {
			if m["data"].(map[string]any)["method"] == "reset" {
				reseted = m
			}
		}
		if reseted == nil || reseted["data"].(map[string]any)["sessions_ended"] != float64(1) {
			t.Errorf("password reset message %v", reseted)
		}
	})

	t.Run("account locked", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		for range 2 {
			wantError(t, s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": "wrong"}, userAgent(chromeMacUA)),
				http.StatusUnauthorized, "invalid_credentials")
		}
		m := waitMessages(t, s, u.ID, "account_locked", 1)[0]
		d := m["data"].(map[string]any)
		if d["browser"] != "Chrome" || d["os"] != "MacOS" {
			t.Errorf("lock message %v", m)
		}
		// Locked attempts after it tell nothing new.
		s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password})
		time.Sleep(200 * time.Millisecond)
		waitMessages(t, s, u.ID, "account_locked", 1)
	})

	t.Run("revoked by an administrator", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u, userAgent(chromeUA))
		id := str(t, alive(t, s, tok), "id")
		login(t, s, u)
		login(t, s, u)
		wantStatus(t, s.adm(t, "DELETE", "/admin/v1/sessions/"+id, nil), http.StatusNoContent)
		m := waitMessages(t, s, u.ID, "session_revoked_by_admin", 1)[0]
		if d := m["data"].(map[string]any); d["scope"] != "session" || d["session_id"] != id || d["session_browser"] != "Chrome" {
			t.Errorf("admin revocation message %v", m)
		}
		wantStatus(t, s.adm(t, "DELETE", "/admin/v1/users/"+u.ID+"/sessions", nil), http.StatusOK)
		var all map[string]any
		for _, m := range waitMessages(t, s, u.ID, "session_revoked_by_admin", 2) {
			if m["data"].(map[string]any)["scope"] == "all" {
				all = m
			}
		}
		if all == nil || all["data"].(map[string]any)["sessions_ended"] != float64(2) {
			t.Errorf("admin revoke-all message %v", all)
		}
	})

	t.Run("hijack suspected", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		c, _ := loginCookie(t, s, u, userAgent(chromeUA))
		wantStatus(t, whoami(t, s, cookie(c), userAgent(firefoxLinuxUA)), http.StatusUnauthorized)
		m := waitMessages(t, s, u.ID, "hijack_suspected", 1)[0]
		d := m["data"].(map[string]any)
		if d["session_browser"] != "Chrome" || d["session_os"] != "Windows" || d["browser"] != "Firefox" || d["os"] != "Linux" {
			t.Errorf("hijack message %v", m)
		}
	})
}
