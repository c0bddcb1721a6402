package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

// reauthEnv is a server over in-memory stores with a settable clock.
type reauthEnv struct {
	*auditEnv
	clock *storetest.Clock
}

func newReauthEnv(t *testing.T) *reauthEnv {
	t.Helper()
	clock := storetest.NewClock()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{}, sessiond.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	events := memstore.NewAudit()
	rec := &audit.Recorder{Store: events}
	a, err := account.NewService(memstore.NewAccounts(), account.Config{
		LockoutThreshold: 3,
		HashParams:       account.HashParams{Memory: 64, Time: 1, Parallelism: 1},
	}, account.WithClock(clock.Now), account.WithLockObserver(rec.LockObserver()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServerWith(Config{AdminKey: testAdminKey}, testDeps{Sessions: m, Accounts: a, Audit: events,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &reauthEnv{auditEnv: &auditEnv{t: t, srv: s, pub: s.Public(), admin: s.Admin(), events: events}, clock: clock}
}

func wantCode(t *testing.T, what string, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, w.Code, status, w.Body)
	}
	if code == "" {
		return
	}
	var body struct{ Error struct{ Code string } }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	if body.Error.Code != code {
		t.Fatalf("%s: error %q, want %q; body %s", what, body.Error.Code, code, w.Body)
	}
}

func authz(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func TestReauthentication(t *testing.T) {
	e := newReauthEnv(t)
	const pw = "correct horse battery"
	u, err := e.srv.accounts.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := e.login(u.Email, pw, firefoxLinux)
	other, _ := e.login(u.Email, pw, chromeWindows)
	otherSess, err := e.srv.sessions.Peek(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}

	// Just signed in: authenticated_at is the sign-in, and the session is fresh.
	w := e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, authz(tok)...)
	var who struct {
		Session struct {
			ID              string
			AuthenticatedAt *time.Time `json:"authenticated_at"`
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &who); err != nil || who.Session.AuthenticatedAt == nil ||
		!who.Session.AuthenticatedAt.Equal(e.clock.Now()) {
		t.Fatalf("who-am-I after sign-in: %s", w.Body)
	}

	// Past the window every sensitive action is refused and changes nothing.
	e.clock.Advance(sessiond.DefaultReauthWindow + time.Second)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/sessions/revoke-others", ""},
		{"POST", "/v1/logout", `{"scope":"all"}`},
		{"DELETE", "/v1/sessions/" + otherSess.ID, ""},
		{"DELETE", "/v1/sessions/" + strings.Repeat("0", 32), ""}, // any other id: no hint whether it exists
		{"DELETE", "/v1/profile", `{"password":"` + pw + `"}`},
	} {
		w := e.call(e.pub, c.method, c.path, c.body, firefoxLinux, authz(tok)...)
		wantCode(t, c.method+" "+c.path+" after the window", w, http.StatusForbidden, "reauthentication_required")
		if sc := w.Header().Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s %s refused but set cookies %q", c.method, c.path, sc)
		}
	}
	for _, live := range []string{tok, other} {
		wantCode(t, "a session after refused sign-outs", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, authz(live)...), 200, "")
	}
	if _, err := e.srv.accounts.User(t.Context(), u.ID); err != nil {
		t.Fatalf("the account after a refused deletion: %v", err)
	}
	// Not sensitive: the profile, the session list.
	wantCode(t, "list", e.call(e.pub, "GET", "/v1/sessions", "", firefoxLinux, authz(tok)...), 200, "")

	// A wrong password is refused and counts toward lockout.
	w = e.call(e.pub, "POST", "/v1/session/reauthenticate", `{"password":"wrong"}`, firefoxLinux, authz(tok)...)
	wantCode(t, "reauthenticate with a wrong password", w, http.StatusUnauthorized, "invalid_credentials")
	w = e.call(e.pub, "POST", "/v1/session/reauthenticate", `{}`, firefoxLinux, authz(tok)...)
	wantCode(t, "reauthenticate without a password", w, http.StatusUnauthorized, "invalid_credentials")

	// The right one renews the proof and rotates the token.
	w = e.call(e.pub, "POST", "/v1/session/reauthenticate", `{"password":"`+pw+`"}`, firefoxLinux, authz(tok)...)
	wantCode(t, "reauthenticate", w, 200, "")
	var re struct {
		Token   string
		Session struct {
			ID              string
			AuthenticatedAt *time.Time `json:"authenticated_at"`
		}
		User struct{ ID string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &re); err != nil || re.Token == "" || re.Token == tok ||
		re.Session.ID != who.Session.ID || re.User.ID != u.ID || re.Session.AuthenticatedAt == nil ||
		!re.Session.AuthenticatedAt.Equal(e.clock.Now()) {
		t.Fatalf("reauthenticate answer: %s", w.Body)
	}
	if sc := w.Header().Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("a bearer reauthentication set cookies %q", sc)
	}
	wantCode(t, "the old token", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, authz(tok)...), 401, "unauthenticated")
	tok = re.Token

	// Fresh again: the other device can be signed out.
	wantCode(t, "revoke the other device", e.call(e.pub, "DELETE", "/v1/sessions/"+otherSess.ID, "", firefoxLinux, authz(tok)...), 204, "")
	wantCode(t, "the other device", e.call(e.pub, "GET", "/v1/session", "", chromeWindows, authz(other)...), 401, "")
	got := e.types(u.ID)
	if !slices.Contains(got, audit.Reauthenticated) {
		t.Errorf("audit trail %v lacks %s", got, audit.Reauthenticated)
	}

	// The window runs from the reauthentication.
	e.clock.Advance(sessiond.DefaultReauthWindow - time.Second)
	wantCode(t, "revoke-others inside the window", e.call(e.pub, "POST", "/v1/sessions/revoke-others", "", firefoxLinux, authz(tok)...), 200, "")
	e.clock.Advance(2 * time.Second)
	wantCode(t, "revoke-others after it", e.call(e.pub, "POST", "/v1/sessions/revoke-others", "", firefoxLinux, authz(tok)...), 403, "reauthentication_required")

	// Ending one's own session needs no proof; nor does a plain logout.
	wantCode(t, "logout", e.call(e.pub, "POST", "/v1/logout", "", firefoxLinux, authz(tok)...), 204, "")
}

func TestReauthenticationCookieAndLockout(t *testing.T) {
	e := newReauthEnv(t)
	const pw = "correct horse battery"
	u, err := e.srv.accounts.Register(t.Context(), "bob@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := e.call(e.pub, "POST", "/v1/login", `{"email":"bob@example.com","password":"`+pw+`"}`, firefoxLinux)
	wantCode(t, "cookie login", w, 200, "")
	var cookie *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == e.srv.cfg.Cookie.Name {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no session cookie")
	}
	send := func(method, path, body string) *httptest.ResponseRecorder {
		return e.call(e.pub, method, path, body, firefoxLinux, "Cookie", cookie.Name+"="+cookie.Value, "Sec-Fetch-Site", "same-origin")
	}
	e.clock.Advance(15 * time.Minute) // past the window, inside the idle timeout
	wantCode(t, "logout all, stale", send("POST", "/v1/logout", `{"scope":"all"}`), 403, "reauthentication_required")
	w = send("POST", "/v1/session/reauthenticate", `{"password":"`+pw+`"}`)
	wantCode(t, "cookie reauthentication", w, 200, "")
	if strings.Contains(w.Body.String(), `"token"`) {
		t.Errorf("a cookie reauthentication returned a token in the body: %s", w.Body)
	}
	var next *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == cookie.Name {
			next = c
		}
	}
	if next == nil || next.Value == "" || next.Value == cookie.Value {
		t.Fatalf("cookie reauthentication set %v, want a new session cookie", next)
	}
	wantCode(t, "the old cookie", send("GET", "/v1/session", ""), 401, "")
	cookie = next
	wantCode(t, "logout all, fresh", send("POST", "/v1/logout", `{"scope":"all"}`), 204, "")

	// Lockout: failed reauthentications lock the account like failed
	// sign-ins (threshold 3 here).
	tok, _ := e.login(u.Email, pw, firefoxLinux)
	for i := range 3 {
		w := e.call(e.pub, "POST", "/v1/session/reauthenticate", `{"password":"nope"}`, firefoxLinux, authz(tok)...)
		wantCode(t, "wrong password "+string(rune('1'+i)), w, 401, "invalid_credentials")
	}
	w = e.call(e.pub, "POST", "/v1/session/reauthenticate", `{"password":"`+pw+`"}`, firefoxLinux, authz(tok)...)
	wantCode(t, "the right password on a locked account", w, http.StatusTooManyRequests, "account_locked")
	if !slices.Contains(e.types(u.ID), audit.LockedOut) {
		t.Errorf("no lockout event: %v", e.types(u.ID))
	}
	// Anonymous sessions have no password to prove.
	w = e.call(e.pub, "PUT", "/v1/session/data/cart", `[1]`, firefoxLinux)
	var anon string
	for _, c := range w.Result().Cookies() {
		if c.Name == cookie.Name {
			anon = c.Value
		}
	}
	w = e.call(e.pub, "POST", "/v1/session/reauthenticate", `{"password":"x"}`, firefoxLinux, authz(anon)...)
	wantCode(t, "anonymous reauthentication", w, 401, "unauthenticated")
}
