package e2e_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Security notifications go through a durable queue in the database
// (issue 20: at most 64 deliveries were in flight, more were dropped, and
// a notifier that was down lost every message sent meanwhile). 200
// password resets for 200 accounts, requested at once while the notifier's
// receiver is down, all arrive once it is back, each once.

func TestNotificationsSurviveANotifierOutage(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 0)
	rcv.notifications = true
	s := startServer(t, []string{"--notify-webhook", rcv.URL(), "--notify-retry-min", "100ms", "--notify-retry-max", "1s",
		"--reset-rate-per-ip", "100000"}, withEnv("SESSIOND_NOTIFY_WEBHOOK_SECRET="+webhookSecret))
	const n = 200
	users := make([]user, n)
	for i := range users {
		users[i] = newUser(t, s)
	}

	rcv.stop()
	// 200 requests at once, more than the 64 deliveries that were
	// allowed in flight.
	var wg sync.WaitGroup
	work := make(chan user)
	for range 50 {
		wg.Go(func() {
			for u := range work {
				requestReset(t, s, u.Email)
			}
		})
	}
	for _, u := range users {
		work <- u
	}
	close(work)
	wg.Wait()
	// Failed attempts happen while it is down.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(string(s.adm(t, "GET", "/metrics", nil).Body), `sessiond_notification_deliveries_total{outcome="failed"}`) {
		if time.Now().After(deadline) {
			t.Fatal("no failed delivery counted while the receiver was down")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := len(rcv.received()); got != 0 {
		t.Fatalf("the stopped receiver got %d messages", got)
	}

	rcv.start()
	byUser := map[string]user{}
	for _, u := range users {
		byUser[u.ID] = u
	}
	resets := func(evs []hookEvent) map[string][]hookEvent {
		out := map[string][]hookEvent{}
		for _, e := range evs {
			if e.Type == "password_reset" {
				out[e.UserID] = append(out[e.UserID], e)
			}
		}
		return out
	}
	evs := rcv.waitFor("200 reset messages", 60*time.Second, func(evs []hookEvent) bool { return len(resets(evs)) == n })
	rcv.mu.Lock()
	posts, bad := rcv.posts, rcv.bad
	rcv.mu.Unlock()
	t.Logf("%d POSTs for %d distinct messages", posts, len(evs))
	if bad != 0 {
		t.Errorf("%d deliveries failed the signature or shape check", bad)
	}
	for id, msgs := range resets(evs) {
		u, ok := byUser[id]
		if !ok || len(msgs) != 1 {
			t.Errorf("user %s: %d reset messages (known user: %v), want 1", id, len(msgs), ok)
			continue
		}
		m := msgs[0]
		if tok, _ := m.Data["token"].(string); m.To != u.Email || len(m.ID) != 32 || tok == "" {
			t.Errorf("reset message %+v for %s", m, u.Email)
		}
	}
	// A delivered token works.
	u := users[n-1]
	tok := resets(evs)[u.ID][0].Data["token"].(string)
	r := s.call(t, "POST", "/v1/password/reset/confirm", J{"token": tok, "new_password": "a new password 123"})
	wantStatus(t, r, http.StatusOK)
	time.Sleep(300 * time.Millisecond) // any late duplicate would arrive now
	if got := len(resets(rcv.received())); got != n {
		t.Errorf("%d users with reset messages after the wait, want %d", got, n)
	}
}
