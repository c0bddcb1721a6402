package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/notify"
	"github.com/sessiond/sessiond/webhook"
)

// newNotifyEnv is newHijackEnv whose accounts tell the server of locks, as
// cmd/sessiond wires them (lockout threshold 2).
func newNotifyEnv(t *testing.T, n notify.Notifier) *hijackEnv {
	t.Helper()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	events := memstore.NewAudit()
	rec := &audit.Recorder{Store: events}
	var srv *Server
	a, err := account.NewService(memstore.NewAccounts(), account.Config{
		LockoutThreshold: 2,
		HashParams:       account.HashParams{Memory: 64, Time: 1, Parallelism: 1},
	}, account.WithLockObserver(func(ctx context.Context, userID string, until time.Time) {
		rec.LockObserver()(ctx, userID, until)
		srv.flows.AccountLocked(ctx, userID, until)
	}))
	if err != nil {
		t.Fatal(err)
	}
	notes, _ := n.(*memNotifier)
	srv, err = newServerWith(Config{AdminKey: testAdminKey}, testDeps{Sessions: m, Accounts: a, Audit: events, Notifier: n,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return &hijackEnv{auditEnv: &auditEnv{t: t, srv: srv, pub: srv.Public(), admin: srv.Admin(), events: events}, notes: notes, users: a}
}

func TestSecurityNotifications(t *testing.T) {
	notes := &memNotifier{}
	e := newNotifyEnv(t, notes)
	const pw = "correct horse battery"
	u, err := e.users.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	admin := []string{"Authorization", "Bearer " + testAdminKey}

	// New devices: not the first sign-in, not a known device, but a new
	// browser + OS family.
	first, _ := e.login(u.Email, pw, firefoxLinux)
	e.login(u.Email, pw, firefoxLinuxNewer)
	third, _ := e.login(u.Email, pw, chromeWindows)
	m := notes.wait(t, notify.TypeNewDeviceSignIn, 1)[0]
	thirdSess, _ := e.srv.sessions.Peek(t.Context(), third)
	if m.To != u.Email || m.UserID != u.ID || m.Data["session_id"] != thirdSess.ID || m.Data["browser"] != "Chrome" ||
		m.Data["os"] != "Windows" || m.Data["ip"] != "203.0.113.7" || m.Data["signed_in_at"] == "" {
		t.Fatalf("new device notification %+v", m)
	}

	// An administrator ends one session, then all.
	wantCode(t, "admin revoke", e.call(e.admin, "DELETE", "/admin/v1/sessions/"+thirdSess.ID, "", "app", admin...), 204, "")
	m = notes.wait(t, notify.TypeSessionRevokedByAdmin, 1)[0]
	if m.Data["scope"] != "session" || m.Data["session_id"] != thirdSess.ID || m.Data["sessions_ended"] != 1 ||
		m.Data["session_browser"] != "Chrome" || m.Data["session_os"] != "Windows" {
		t.Fatalf("admin revocation notification %+v", m)
	}
	w := e.call(e.admin, "DELETE", "/admin/v1/users/"+u.ID+"/sessions", "", "app", admin...)
	wantCode(t, "admin revoke all", w, 200, "")
	ms := notes.wait(t, notify.TypeSessionRevokedByAdmin, 2)
	if m := withData(ms, "scope", "all"); m.Data["scope"] != "all" || m.Data["sessions_ended"] != 2 {
		t.Fatalf("admin revoke-all notification %+v", m)
	}
	wantCode(t, "the first session", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, authz(first)...), 401, "")

	// A password change with the count of ended sessions.
	tok, _ := e.login(u.Email, pw, firefoxLinux)
	e.login(u.Email, pw, firefoxLinux)
	w = e.call(e.pub, "POST", "/v1/password/change", `{"current_password":"`+pw+`","new_password":"another fine passphrase"}`,
		firefoxLinux, authz(tok)...)
	wantCode(t, "password change", w, 200, "")
	m = notes.wait(t, notify.TypePasswordChanged, 1)[0]
	if m.Data["method"] != "change" || m.Data["sessions_ended"] != 1 || m.Data["browser"] != "Firefox" || m.Data["changed_at"] == "" {
		t.Fatalf("password change notification %+v", m)
	}
	// A reset.
	rt, _, err := e.users.IssueResetToken(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	w = e.call(e.pub, "POST", "/v1/password/reset/confirm", `{"token":"`+rt+`","new_password":"a third fine passphrase","transport":"token"}`, chromeWindows)
	wantCode(t, "reset", w, 200, "")
	m = withData(notes.wait(t, notify.TypePasswordChanged, 2), "method", "reset")
	if m.Data["method"] != "reset" || m.Data["sessions_ended"] != 1 || m.Data["browser"] != "Chrome" {
		t.Fatalf("reset notification %+v", m)
	}

	// Failed sign-ins lock the account (threshold 2).
	for range 2 {
		e.login(u.Email, "wrong password", chromeWindows)
	}
	m = notes.wait(t, notify.TypeAccountLocked, 1)[0]
	until, err := time.Parse(time.RFC3339, m.Data["locked_until"].(string))
	if err != nil || until.Before(time.Now()) || m.Data["ip"] != "203.0.113.7" || m.Data["browser"] != "Chrome" {
		t.Fatalf("lock notification %+v", m)
	}
	// Every message is JSON as the documented schema says: plain values.
	notes.mu.Lock()
	defer notes.mu.Unlock()
	for _, m := range notes.msgs {
		if _, err := json.Marshal(m); err != nil {
			t.Errorf("message %s does not encode: %v", m.Type, err)
		}
	}
}

// withData returns the message whose Data[k] is v (deliveries may arrive
// in any order), or the zero message.
func withData(ms []notify.Message, k string, v any) notify.Message {
	for _, m := range ms {
		if m.Data[k] == v {
			return m
		}
	}
	return notify.Message{}
}

// slowNotifier takes its time and then fails.
type slowNotifier struct{ delay time.Duration }

func (n slowNotifier) Notify(ctx context.Context, _ notify.Message) error {
	select {
	case <-time.After(n.delay):
	case <-ctx.Done():
	}
	return errors.New("the mail relay is down")
}

// TestNotificationsNeverBlock: with sessiond's wiring (the flows write
// into the durable queue, a dispatcher delivers), a notifier that hangs
// and fails slows and fails no request.
func TestNotificationsNeverBlock(t *testing.T) {
	q := &memstore.Queue{}
	queue := webhook.Notifications{Queue: q}
	d := &webhook.Dispatcher{Store: q, Deliver: queue.Deliver(slowNotifier{delay: 3 * time.Second}), Name: "notification",
		Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	queue.Queued = d.Wake
	e := newNotifyEnv(t, queue)
	const pw = "correct horse battery"
	u, err := e.users.Register(t.Context(), "bob@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.login(u.Email, pw, firefoxLinux)
	start := time.Now()
	tok, code := e.login(u.Email, pw, chromeWindows) // a new device: a message
	if code != 200 {
		t.Fatalf("login: %d", code)
	}
	w := e.call(e.pub, "POST", "/v1/password/change", `{"current_password":"`+pw+`","new_password":"another fine passphrase"}`,
		chromeWindows, authz(tok)...)
	wantCode(t, "password change", w, 200, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("two requests that notify took %v with a notifier that hangs for 3s", d)
	}
	if strings.Contains(w.Body.String(), "relay") {
		t.Fatal("a notifier's failure reached the answer")
	}
}
