package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/notify"
)

// Lifecycle webhooks against the real binary: events come from the
// database's outbox, signed, at least once; a receiver that is down while
// 100 session events happen gets all of them once it is back; an event
// that can never be delivered is dead-lettered; the admin API lists the
// outbox and the metrics count the deliveries.

const webhookSecret = "e2e-webhook-secret-0123456789abcdef"

// hookEvent is a delivered lifecycle event.
type hookEvent struct {
	ID   string         `json:"id"`
	Type string         `json:"type"`
	Time time.Time      `json:"time"`
	Data map[string]any `json:"data"`
	// To and UserID are a notification's (--notify-webhook).
	To     string `json:"to,omitempty"`
	UserID string `json:"user_id,omitempty"`
}

// receiver is a webhook receiver on a fixed loopback port that can be
// stopped and started again. It checks every delivery's signature and
// de-duplicates by event id.
type receiver struct {
	t      *testing.T
	addr   string
	status int // the answer; 0 means 204
	// notifications: the receiver of --notify-webhook, whose messages
	// carry their id in the body only.
	notifications bool

	mu     sync.Mutex
	srv    *http.Server
	events map[string]hookEvent
	order  []string
	posts  int
	bad    int
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{t: t, addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), status: status, events: map[string]hookEvent{}}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hooks/sessiond" }

func (r *receiver) start() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment after a stop
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("receiver: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

func (r *receiver) stop() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if err := notify.Verify([]byte(webhookSecret), req.Header.Get("Sessiond-Signature"), body, time.Now(), 5*time.Minute); err != nil {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e hookEvent
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || (!r.notifications && e.ID != req.Header.Get("Sessiond-Event-Id")) {
		r.bad++
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	if r.status != 0 {
		w.WriteHeader(r.status)
		return
	}
	if _, dup := r.events[e.ID]; !dup {
		r.events[e.ID] = e
		r.order = append(r.order, e.ID)
	}
	w.WriteHeader(http.StatusNoContent)
}

// received returns the distinct events received so far, in arrival order.
func (r *receiver) received() []hookEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]hookEvent, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.events[id])
	}
	return out
}

// waitFor waits until cond holds for the distinct events received.
func (r *receiver) waitFor(what string, limit time.Duration, cond func([]hookEvent) bool) []hookEvent {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		evs := r.received()
		if cond(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver: %s not seen after %v; %d events: %v", what, limit, len(evs), evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func countEvents(evs []hookEvent, typ, userID, reason string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && e.Data["user_id"] == userID && (reason == "" || e.Data["reason"] == reason) {
			n++
		}
	}
	return n
}

func startWebhooks(t *testing.T, rcv *receiver, args ...string) *Server {
	t.Helper()
	return startServer(t, append([]string{"--webhook-url", rcv.URL(), "--webhook-retry-min", "100ms",
		"--webhook-retry-max", "1s"}, args...), withEnv("SESSIOND_WEBHOOK_SECRET="+webhookSecret))
}

func TestWebhooksSurviveAReceiverOutage(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	s := startWebhooks(t, rcv)
	u := newUser(t, s)
	rcv.waitFor("user.created", 10*time.Second, func(evs []hookEvent) bool { return countEvents(evs, "user.created", u.ID, "") == 1 })

	rcv.stop()
	// 100 session events while the receiver is down: 50 sign-ins, 50
	// sign-outs.
	for range 50 {
		tok, _ := login(t, s, u)
		wantStatus(t, s.call(t, "POST", "/v1/logout", nil, bearer(tok)), http.StatusNoContent)
	}
	// They wait in the outbox, some tried and failed already.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.adm(t, "GET", "/admin/v1/webhooks/deliveries?status=pending&limit=1000", nil)
		wantStatus(t, r, http.StatusOK)
		pending := r.JSON["deliveries"].([]any)
		tried := 0
		for _, d := range pending {
			if d.(map[string]any)["attempts"].(float64) >= 1 {
				tried++
			}
		}
		if len(pending) == 100 && tried > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pending deliveries (%d tried) while the receiver is down, want 100", len(pending), tried)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(rcv.received()); n != 1 {
		t.Fatalf("the stopped receiver got %d events", n)
	}

	rcv.start()
	evs := rcv.waitFor("all 100 session events", 30*time.Second, func(evs []hookEvent) bool {
		return countEvents(evs, "session.created", u.ID, "") == 50 && countEvents(evs, "session.revoked", u.ID, "logout") == 50
	})
	if len(evs) != 101 {
		t.Errorf("%d distinct events, want 101 (the user and 100 session events)", len(evs))
	}
	rcv.mu.Lock()
	posts, bad := rcv.posts, rcv.bad
	rcv.mu.Unlock()
	if bad != 0 {
		t.Errorf("%d deliveries failed the signature or shape check", bad)
	}
	t.Logf("%d POSTs for %d distinct events (at least once)", posts, len(evs))
	for _, e := range evs {
		if len(e.ID) != 32 || e.Time.IsZero() {
			t.Errorf("event %+v", e)
		}
		if e.Type == "session.created" && (e.Data["session_id"] == "" || e.Data["transport"] != "token") {
			t.Errorf("session.created data %v", e.Data)
		}
	}
	// Every one is marked delivered.
	deadline = time.Now().Add(10 * time.Second)
	for {
		r := s.adm(t, "GET", "/admin/v1/webhooks/deliveries?status=pending", nil)
		if len(r.JSON["deliveries"].([]any)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still pending: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := s.adm(t, "GET", "/admin/v1/webhooks/deliveries?status=delivered&limit=1000", nil)
	if n := len(r.JSON["deliveries"].([]any)); n != 101 {
		t.Errorf("%d delivered in the outbox, want 101", n)
	}
	m := s.adm(t, "GET", "/metrics", nil)
	if !strings.Contains(string(m.Body), `sessiond_webhook_deliveries_total{outcome="delivered"}`) ||
		!strings.Contains(string(m.Body), `sessiond_webhook_deliveries_total{outcome="failed"}`) {
		t.Errorf("webhook metrics missing")
	}
}

func TestWebhookEvents(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	s := startWebhooks(t, rcv, "--idle-timeout", "2s", "--sweep-interval", "500ms", "--reauth-window", "1h")
	u := newUser(t, s)

	// Rotation (a reauthentication), and revocations with their reasons.
	tok, _ := login(t, s, u)
	r := s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(tok))
	wantStatus(t, r, http.StatusOK)
	tok = str(t, r.JSON, "token")
	other, _ := login(t, s, u)
	wantStatus(t, s.adm(t, "DELETE", "/admin/v1/sessions/"+str(t, alive(t, s, other), "id"), nil), http.StatusNoContent)
	c, _ := loginCookie(t, s, u, userAgent(chromeUA))
	wantStatus(t, whoami(t, s, cookie(c), userAgent(firefoxLinuxUA)), http.StatusUnauthorized)
	login(t, s, u)
	r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": "n3w " + u.Password}, bearer(tok))
	wantStatus(t, r, http.StatusOK)
	u.Password = "n3w " + u.Password
	// One left alone runs out its time and is swept.
	expiring, _ := login(t, s, u)
	expiringID := str(t, alive(t, s, expiring), "id")
	expired := func(evs []hookEvent) bool {
		for _, e := range evs {
			if e.Type == "session.revoked" && e.Data["reason"] == "expired" && e.Data["session_id"] == expiringID {
				return true
			}
		}
		return false
	}
	// Wait for this session's own expiry: the bearer session above, idle
	// since the password change, may expire a sweep earlier.
	evs := rcv.waitFor("every reason", 20*time.Second, func(evs []hookEvent) bool {
		return countEvents(evs, "session.rotated", u.ID, "") >= 2 && countEvents(evs, "session.revoked", u.ID, "admin") == 1 &&
			countEvents(evs, "session.revoked", u.ID, "hijack_suspected") == 1 &&
			countEvents(evs, "session.revoked", u.ID, "force_logout") == 1 &&
			expired(evs)
	})
	if !expired(evs) {
		t.Errorf("no expired event for session %s", expiringID)
	}
	// The account's deletion.
	wantStatus(t, s.adm(t, "DELETE", "/admin/v1/users/"+u.ID, nil), http.StatusNoContent)
	rcv.waitFor("user.deleted", 10*time.Second, func(evs []hookEvent) bool { return countEvents(evs, "user.deleted", u.ID, "") == 1 })
	// Anonymous sessions tell nothing.
	before := len(rcv.received())
	wantStatus(t, s.call(t, "PUT", "/v1/session/data/cart", J{"n": 1}), http.StatusNoContent)
	time.Sleep(500 * time.Millisecond)
	if after := len(rcv.received()); after != before {
		t.Errorf("an anonymous session made %d events", after-before)
	}
}

func TestWebhookDeadLetter(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, http.StatusInternalServerError)
	s := startWebhooks(t, rcv, "--webhook-max-attempts", "3")
	u := newUser(t, s)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := s.adm(t, "GET", "/admin/v1/webhooks/deliveries?status=dead", nil)
		wantStatus(t, r, http.StatusOK)
		if list := r.JSON["deliveries"].([]any); len(list) == 1 {
			d := list[0].(map[string]any)
			if d["type"] != "user.created" || d["attempts"] != float64(3) || d["dead_at"] == nil ||
				!strings.Contains(fmt.Sprint(d["last_error"]), "500") || d["data"].(map[string]any)["user_id"] != u.ID {
				t.Errorf("dead delivery %v", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead-lettered event after 20s: %s", r.Body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rcv.mu.Lock()
	posts := rcv.posts
	rcv.mu.Unlock()
	if posts != 3 {
		t.Errorf("%d POSTs for one event with --webhook-max-attempts 3", posts)
	}
	wantError(t, s.adm(t, "GET", "/admin/v1/webhooks/deliveries?status=lost", nil, offContract("an unknown status")), http.StatusBadRequest, "invalid_field")
}

func TestWebhooksOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	wantError(t, s.adm(t, "GET", "/admin/v1/webhooks/deliveries", nil), http.StatusNotFound, "webhooks_disabled")
	// A webhook URL without a secret does not start.
	_, errOut, code := runCLI(t, t.TempDir(), "", nil, "serve", "--webhook-url", "http://127.0.0.1:1/x",
		"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:1", "--database", "sqlite://"+t.TempDir()+"/x.db")
	if code == 0 || !strings.Contains(errOut, "signing secret") {
		t.Errorf("serve with --webhook-url and no secret: exit %d, %s", code, errOut)
	}
}
