package server

import (
	"crypto/sha256"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/memstore"
)

const testAdminKey = "test-admin-key-0123456789"

type auditEnv struct {
	t      *testing.T
	srv    *Server
	pub    http.Handler
	admin  http.Handler
	events *memstore.Audit
}

func newAuditEnv(t *testing.T) *auditEnv {
	t.Helper()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	events := memstore.NewAudit()
	rec := &audit.Recorder{Store: events}
	a, err := account.NewService(memstore.NewAccounts(), account.Config{
		LockoutThreshold: 2,
		HashParams:       account.HashParams{Memory: 64, Time: 1, Parallelism: 1},
	}, account.WithLockObserver(rec.LockObserver()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServerWith(Config{AdminKey: testAdminKey}, testDeps{Sessions: m, Accounts: a, Audit: events,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &auditEnv{t: t, srv: s, pub: s.Public(), admin: s.Admin(), events: events}
}

// call sends a JSON request to h from the client ua at 203.0.113.7.
func (e *auditEnv) call(h http.Handler, method, path, body, ua string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.RemoteAddr = "203.0.113.7:1234"
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("User-Agent", ua)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const (
	firefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	chromeWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

func (e *auditEnv) login(email, password, ua string) (token string, code int) {
	e.t.Helper()
	w := e.call(e.pub, "POST", "/v1/login", `{"email":"`+email+`","password":"`+password+`","transport":"token"}`, ua)
	var body struct{ Token string }
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return body.Token, w.Code
}

func (e *auditEnv) types(userID string) []string {
	e.t.Helper()
	evs, err := e.events.List(e.t.Context(), userID, audit.Filter{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- { // oldest first, to read like a story
		out = append(out, evs[i].Type)
	}
	return out
}

func TestAuditTrail(t *testing.T) {
	e := newAuditEnv(t)
	u, err := e.srv.accounts.Register(t.Context(), "ada@example.com", "correct horse battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	const pw = "correct horse battery"
	first, code := e.login(u.Email, pw, firefoxLinux)
	if code != 200 {
		t.Fatalf("login: %d", code)
	}
	second, _ := e.login(u.Email, pw, firefoxLinux) // a known device
	third, _ := e.login(u.Email, pw, chromeWindows) // a new one
	// Revoke the second from the first's session list.
	sess, err := e.srv.sessions.Validate(t.Context(), second)
	if err != nil {
		t.Fatal(err)
	}
	if w := e.call(e.pub, "DELETE", "/v1/sessions/"+sess.ID, "", firefoxLinux, "Authorization", "Bearer "+first); w.Code != 204 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	w := e.call(e.pub, "POST", "/v1/password/change", `{"current_password":"`+pw+`","new_password":"another fine passphrase"}`,
		firefoxLinux, "Authorization", "Bearer "+first)
	var changed struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &changed); err != nil || w.Code != 200 {
		t.Fatalf("password change: %d %s", w.Code, w.Body)
	}
	first = changed.Token
	_ = third // ended by the password change
	if w := e.call(e.pub, "POST", "/v1/logout", `{"scope":"all"}`, firefoxLinux, "Authorization", "Bearer "+first); w.Code != 204 {
		t.Fatalf("logout: %d", w.Code)
	}
	// Two wrong passwords lock the account; the third attempt is refused.
	e.login(u.Email, "wrong password 1", firefoxLinux)
	e.login(u.Email, "wrong password 2", firefoxLinux)
	if _, code := e.login(u.Email, "another fine passphrase", firefoxLinux); code != http.StatusTooManyRequests {
		t.Fatalf("login while locked: %d", code)
	}

	want := []string{audit.SignedIn, audit.SignedIn, audit.SignedIn, audit.NewDevice, audit.SessionRevoked,
		audit.PasswordChanged, audit.SignedOutEverywhere, audit.LockedOut}
	if got := e.types(u.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	evs, _ := e.events.List(t.Context(), u.ID, audit.Filter{Types: []string{audit.PasswordChanged, audit.NewDevice, audit.LockedOut}})
	for _, ev := range evs {
		switch ev.Type {
		case audit.PasswordChanged:
			if ev.Data["sessions_ended"] != float64(1) {
				t.Errorf("password_changed data %v, want sessions_ended 1", ev.Data)
			}
		case audit.NewDevice:
			if ev.Browser != "Chrome" || ev.OS != "Windows" || ev.IP != "203.0.113.7" {
				t.Errorf("new_device from %s/%s/%s, want Chrome/Windows/203.0.113.7", ev.Browser, ev.OS, ev.IP)
			}
		case audit.LockedOut:
			if ev.Data["locked_until"] == nil || ev.IP != "203.0.113.7" {
				t.Errorf("locked_out %+v, want locked_until and the client", ev)
			}
		}
	}

	// Admin revocations, and the admin API's view of the trail.
	tok, _, _ := e.srv.accounts.IssueResetToken(t.Context(), u.ID)
	if w := e.call(e.pub, "POST", "/v1/password/reset/confirm", `{"token":"`+tok+`","new_password":"a third passphrase ok","transport":"token"}`, firefoxLinux); w.Code != 200 {
		t.Fatalf("reset confirm: %d %s", w.Code, w.Body)
	}
	auth := []string{"Authorization", "Bearer " + testAdminKey}
	if w := e.call(e.admin, "DELETE", "/admin/v1/users/"+u.ID+"/sessions", "", "", auth...); w.Code != 200 {
		t.Fatalf("admin revoke: %d", w.Code)
	}
	w = e.call(e.admin, "GET", "/admin/v1/users/"+u.ID+"/events?type=password_reset,sessions_revoked_by_admin&limit=5", "", "", auth...)
	var body struct {
		Events []eventView `json:"events"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 {
		t.Fatalf("events: %d %s", w.Code, w.Body)
	}
	if len(body.Events) != 2 || body.Events[0].Type != audit.SessionsRevokedByAdmin || body.Events[1].Type != audit.PasswordReset ||
		body.Events[0].Data["sessions_ended"] != float64(1) {
		t.Fatalf("admin events = %+v", body.Events)
	}
	for _, q := range []string{"type=nope", "since=yesterday", "limit=0", "limit=1001"} {
		if w := e.call(e.admin, "GET", "/admin/v1/users/"+u.ID+"/events?"+q, "", "", auth...); w.Code != 400 {
			t.Errorf("events?%s: %d, want 400", q, w.Code)
		}
	}
	if w := e.call(e.admin, "GET", "/admin/v1/users/nobody/events", "", "", auth...); w.Code != 200 || !strings.Contains(w.Body.String(), `"events":[]`) {
		t.Errorf("events of an unknown user: %d %s, want 200 and none", w.Code, w.Body)
	}
}

func TestEventsWithoutAudit(t *testing.T) {
	s := newTestServer(t)
	s.cfg.AdminKey = testAdminKey
	s.adminKeySum = sha256Sum(testAdminKey)
	r := httptest.NewRequest("GET", "/admin/v1/users/x/events", nil)
	r.Header.Set("Authorization", "Bearer "+testAdminKey)
	w := httptest.NewRecorder()
	s.Admin().ServeHTTP(w, r)
	if w.Code != 404 || !strings.Contains(w.Body.String(), "audit_disabled") {
		t.Fatalf("events without a trail: %d %s", w.Code, w.Body)
	}
}

func sha256Sum(s string) [32]byte { return sha256.Sum256([]byte(s)) }
