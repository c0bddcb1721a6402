package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/notify"
)

// memNotifier keeps the messages it is given.
type memNotifier struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (n *memNotifier) Notify(_ context.Context, m notify.Message) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.msgs = append(n.msgs, m)
	return nil
}

// wait returns the messages of type typ once there are want of them, or
// fails after a few seconds.
func (n *memNotifier) wait(t *testing.T, typ string, want int) []notify.Message {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n.mu.Lock()
		var got []notify.Message
		for _, m := range n.msgs {
			if m.Type == typ {
				got = append(got, m)
			}
		}
		n.mu.Unlock()
		if len(got) >= want {
			if len(got) > want {
				t.Fatalf("%d %s notifications, want %d", len(got), typ, want)
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s notifications after 5s, want %d", len(got), typ, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type hijackEnv struct {
	*auditEnv
	notes *memNotifier
	users *account.Service
}

func newHijackEnv(t *testing.T, fc flows.Config) *hijackEnv {
	t.Helper()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	events := memstore.NewAudit()
	a, err := account.NewService(memstore.NewAccounts(), account.Config{
		HashParams: account.HashParams{Memory: 64, Time: 1, Parallelism: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	notes := &memNotifier{}
	s, err := newServerWith(Config{AdminKey: testAdminKey}, testDeps{Flows: fc, Sessions: m, Accounts: a, Audit: events, Notifier: notes,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &hijackEnv{auditEnv: &auditEnv{t: t, srv: s, pub: s.Public(), admin: s.Admin(), events: events}, notes: notes, users: a}
}

// cookieLogin signs in with the cookie transport from ua and returns the
// cookie's token.
func (e *hijackEnv) cookieLogin(email, pw, ua string) string {
	e.t.Helper()
	w := e.call(e.pub, "POST", "/v1/login", `{"email":"`+email+`","password":"`+pw+`"}`, ua)
	wantCode(e.t, "cookie login", w, 200, "")
	for _, c := range w.Result().Cookies() {
		if c.Name == e.srv.cfg.Cookie.Name && c.Value != "" {
			return c.Value
		}
	}
	e.t.Fatal("no session cookie")
	return ""
}

func (e *hijackEnv) withCookie(tok string) []string {
	return []string{"Cookie", e.srv.cfg.Cookie.Name + "=" + tok}
}

func (e *hijackEnv) eventsOf(userID, typ string) []audit.Event {
	e.t.Helper()
	evs, err := e.events.List(e.t.Context(), userID, audit.Filter{Types: []string{typ}})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

const firefoxLinuxNewer = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"

func TestHijackSignals(t *testing.T) {
	e := newHijackEnv(t, flows.Config{})
	const pw = "correct horse battery"
	u, err := e.users.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The same browser, also after an update: fine.
	c := e.cookieLogin(u.Email, pw, firefoxLinux)
	wantCode(t, "same browser", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, e.withCookie(c)...), 200, "")
	wantCode(t, "updated browser", e.call(e.pub, "GET", "/v1/session", "", firefoxLinuxNewer, e.withCookie(c)...), 200, "")

	// A made-up token with another browser ends nothing.
	wantCode(t, "a forged token", e.call(e.pub, "GET", "/v1/session", "", chromeWindows, authz("sds_forged")...), 401, "unauthenticated")

	// The cookie's token from another browser family, even as a bearer
	// token: refused, and the session ends for good.
	w := e.call(e.pub, "GET", "/v1/session", "", chromeWindows, authz(c)...)
	wantCode(t, "another browser", w, 401, "unauthenticated")
	wantCode(t, "the owner afterwards", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, e.withCookie(c)...), 401, "unauthenticated")
	list, err := e.srv.sessions.Store().ListByUser(t.Context(), u.ID, time.Now())
	if err != nil || len(list) != 0 {
		t.Fatalf("live sessions after the hijack: %d, %v", len(list), err)
	}
	evs := e.eventsOf(u.ID, audit.HijackSuspected)
	if len(evs) != 1 || evs[0].Browser != "Chrome" || evs[0].OS != "Windows" ||
		evs[0].Data["session_browser"] != "Firefox" || evs[0].Data["session_os"] != "Linux" {
		t.Fatalf("hijack events %+v", evs)
	}
	sess, err := e.srv.sessions.Store().ByID(t.Context(), evs[0].SessionID)
	if err != nil || sess.RevokeReason != sessiond.ReasonHijack {
		t.Fatalf("the hijacked session: %+v, %v", sess, err)
	}
	msg := e.notes.wait(t, notify.TypeHijackSuspected, 1)[0]
	if msg.To != u.Email || msg.UserID != u.ID || msg.Data["session_id"] != sess.ID ||
		msg.Data["browser"] != "Chrome" || msg.Data["session_browser"] != "Firefox" || msg.Data["ip"] != "203.0.113.7" {
		t.Fatalf("hijack notification %+v", msg)
	}

	// Another OS, and no User-Agent at all: the same.
	for _, ua := range []string{"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", ""} {
		c := e.cookieLogin(u.Email, pw, firefoxLinux)
		wantCode(t, "from "+ua, e.call(e.pub, "GET", "/v1/sessions", "", ua, e.withCookie(c)...), 401, "unauthenticated")
		wantCode(t, "the owner afterwards", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, e.withCookie(c)...), 401, "")
	}
	e.notes.wait(t, notify.TypeHijackSuspected, 3)

	// Bearer-token clients are exempt.
	tok, _ := e.login(u.Email, pw, firefoxLinux)
	for _, ua := range []string{chromeWindows, "", "curl/8.5.0"} {
		wantCode(t, "token client from "+ua, e.call(e.pub, "GET", "/v1/session", "", ua, authz(tok)...), 200, "")
	}
	r := e.call(e.admin, "POST", "/admin/v1/sessions", `{"user_id":"`+u.ID+`"}`, "app-backend/1.0", "Authorization", "Bearer "+testAdminKey)
	var made struct{ Token string }
	_ = json.Unmarshal(r.Body.Bytes(), &made)
	wantCode(t, "an administrator's session from a browser", e.call(e.pub, "GET", "/v1/session", "", chromeWindows, authz(made.Token)...), 200, "")
	if n := len(e.eventsOf(u.ID, audit.HijackSuspected)); n != 3 {
		t.Errorf("%d hijack events, want 3", n)
	}
}

func TestHijackDetectionOff(t *testing.T) {
	e := newHijackEnv(t, flows.Config{DisableHijackDetection: true})
	const pw = "correct horse battery"
	u, err := e.users.Register(t.Context(), "bob@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := e.cookieLogin(u.Email, pw, firefoxLinux)
	wantCode(t, "another browser, detection off", e.call(e.pub, "GET", "/v1/session", "", chromeWindows, e.withCookie(c)...), 200, "")
	wantCode(t, "the owner", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, e.withCookie(c)...), 200, "")
	if n := len(e.eventsOf(u.ID, audit.HijackSuspected)); n != 0 {
		t.Errorf("%d hijack events with detection off", n)
	}
}

func TestIPChanges(t *testing.T) {
	e := newHijackEnv(t, flows.Config{})
	const pw = "correct horse battery"
	u, err := e.users.Register(t.Context(), "cy@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := e.cookieLogin(u.Email, pw, firefoxLinux) // from 203.0.113.7
	from := func(addr string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/v1/session", nil)
		r.RemoteAddr = addr + ":4321"
		r.Header.Set("User-Agent", firefoxLinux)
		r.Header.Set("Cookie", e.srv.cfg.Cookie.Name+"="+c)
		w := httptest.NewRecorder()
		e.pub.ServeHTTP(w, r)
		return w
	}
	waitEvents := func(want int) []audit.Event {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			evs := e.eventsOf(u.ID, audit.IPChanged)
			if len(evs) >= want || time.Now().After(deadline) {
				if len(evs) != want {
					t.Fatalf("%d ip_changed events, want %d: %+v", len(evs), want, evs)
				}
				return evs
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for range 3 {
		wantCode(t, "the same address", from("203.0.113.7"), 200, "")
	}
	time.Sleep(50 * time.Millisecond)
	waitEvents(0)
	for range 3 { // a new address: never fatal, recorded once
		wantCode(t, "a new address", from("198.51.100.20"), 200, "")
	}
	evs := waitEvents(1)
	if evs[0].IP != "198.51.100.20" || evs[0].Data["session_ip"] != "203.0.113.7" || evs[0].SessionID == "" {
		t.Fatalf("ip_changed event %+v", evs[0])
	}
	wantCode(t, "a third address", from("2001:db8::5"), 200, "")
	waitEvents(2)
	// Another node (or a restart) does not record the known pair again:
	// the trail is checked.
	other, err := newServerWith(Config{}, testDeps{Sessions: e.srv.sessions, Accounts: e.users, Audit: e.events,
		Notifier: e.notes, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	e.pub = other.Public()
	wantCode(t, "the new address again, fresh memory", from("198.51.100.20"), 200, "")
	time.Sleep(50 * time.Millisecond)
	waitEvents(2)
	if strings.Contains(strings.Join(e.types(u.ID), ","), audit.HijackSuspected) {
		t.Fatal("an address change was taken for a hijack")
	}
}
