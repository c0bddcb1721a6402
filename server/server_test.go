package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

// TestWhoAmIShortcutAnswersAsTheMux holds the who-am-I shortcut in Public
// to the routed path: the same request spelled so that the shortcut does
// not take it (an escaped letter) gets the same answer and headers, and
// what the shortcut must not take is still refused as before.
func TestWhoAmIShortcutAnswersAsTheMux(t *testing.T) {
	h, uid, tok := signedIn(t, "")
	get := func(method, target, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	short, routed := get("GET", "/v1/session", tok), get("GET", "/v1/%73ession", tok)
	if short.Code != http.StatusOK || routed.Code != http.StatusOK {
		t.Fatalf("status %d and %d, want 200: %s %s", short.Code, routed.Code, short.Body, routed.Body)
	}
	// The two answers differ only in last_seen_at if a touch fell between them.
	var a1, a2 struct{ Session, User map[string]any }
	_ = json.Unmarshal(short.Body.Bytes(), &a1)
	_ = json.Unmarshal(routed.Body.Bytes(), &a2)
	if a1.Session["id"] != a2.Session["id"] || a1.User["id"] != a2.User["id"] || a1.User["id"] != uid {
		t.Errorf("answers differ:\n%s\n%s", short.Body, routed.Body)
	}
	for k := range routed.Header() {
		if short.Header().Get(k) != routed.Header().Get(k) {
			t.Errorf("header %s: %q through the shortcut, %q routed", k, short.Header().Get(k), routed.Header().Get(k))
		}
	}
	if len(short.Header()) != len(routed.Header()) {
		t.Errorf("headers: %v through the shortcut, %v routed", short.Header(), routed.Header())
	}
	for _, c := range []struct {
		method, target, token string
		status                int
	}{
		{"GET", "/v1/session", "", http.StatusUnauthorized},
		{"GET", "/v1/session", "sdt_not-a-token", http.StatusUnauthorized},
		{"GET", "/v1//session", tok, http.StatusNotFound},
		{"GET", "/v1/session/", tok, http.StatusNotFound},
		{"PUT", "/v1/session", tok, http.StatusMethodNotAllowed},
		{"HEAD", "/v1/session", tok, http.StatusOK},
	} {
		if w := get(c.method, c.target, c.token); w.Code != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.target, w.Code, c.status, w.Body)
		}
	}
}

// signedIn is the public handler of a server over in-memory stores with
// both caches on, and one user signed in from the browser ua at 192.0.2.1.
func signedIn(tb testing.TB, ua string) (h http.Handler, userID, token string) {
	tb.Helper()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{}, sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour}))
	if err != nil {
		tb.Fatal(err)
	}
	a, err := account.NewService(memstore.NewAccounts(), account.Config{HashParams: storetest.HashParams}, account.WithUserCache(1000, time.Hour))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := newServerWith(Config{}, testDeps{Sessions: m, Accounts: a})
	if err != nil {
		tb.Fatal(err)
	}
	u, err := a.Register(tb.Context(), "ada@example.com", "analytical engine", nil)
	if err != nil {
		tb.Fatal(err)
	}
	_, token, err = m.Create(tb.Context(), sessiond.CreateParams{UserID: u.ID, UserAgent: ua, IP: "192.0.2.1"})
	if err != nil {
		tb.Fatal(err)
	}
	return s.Public(), u.ID, token
}
