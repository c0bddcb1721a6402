package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/notify"
	"github.com/sessiond/sessiond/webhook"
)

// memOutbox is a webhook.Store in memory, for the dispatcher's tests.
type memOutbox struct {
	mu      sync.Mutex
	enabled bool
	rows    []*webhook.Delivery
}

func (m *memOutbox) add(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range n {
		m.rows = append(m.rows, &webhook.Delivery{Event: webhook.Event{
			ID: "ev" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Type: webhook.SessionCreated,
			Time: time.Now(), Data: json.RawMessage(`{"session_id":"s"}`)}, Status: webhook.StatusPending})
	}
}

func (m *memOutbox) SetWebhooksEnabled(_ context.Context, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.enabled = on
	return nil
}

func (m *memOutbox) ClaimWebhookEvents(_ context.Context, now time.Time, limit int, lease time.Duration) ([]webhook.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []webhook.Event
	for _, r := range m.rows {
		if len(out) < limit && r.Status == webhook.StatusPending && !r.NextAttemptAt.After(now) {
			r.NextAttemptAt = now.Add(lease)
			out = append(out, r.Event)
		}
	}
	return out, nil
}

func (m *memOutbox) find(id string) *webhook.Delivery {
	for _, r := range m.rows {
		if r.ID == id {
			return r
		}
	}
	return nil
}

func (m *memOutbox) WebhookDelivered(_ context.Context, id string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(id)
	r.Status, r.DeliveredAt = webhook.StatusDelivered, at
	r.Attempts++
	return nil
}

func (m *memOutbox) WebhookFailed(_ context.Context, id string, at, next time.Time, dead bool, lastError string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.find(id)
	r.Attempts++
	r.NextAttemptAt, r.LastError = next, lastError
	if dead {
		r.Status, r.DeadAt = webhook.StatusDead, at
	}
	return nil
}

func (m *memOutbox) WebhookDeliveries(context.Context, webhook.Filter) ([]webhook.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []webhook.Delivery
	for _, r := range m.rows {
		out = append(out, *r)
	}
	return out, nil
}

func (m *memOutbox) PruneWebhookEvents(context.Context, time.Time) (int, error) { return 0, nil }

func (m *memOutbox) count(status string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.rows {
		if r.Status == status {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var secret = []byte("webhook-secret-0123456789")

func TestDispatcherDeliversSignedEventsAndRetries(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		var e webhook.Event
		if err := json.Unmarshal(body, &e); err != nil || e.ID != r.Header.Get(webhook.EventIDHeader) || e.Type != webhook.SessionCreated {
			t.Errorf("body %s, %v", body, err)
		}
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		got[e.ID]++
		mu.Unlock()
	}))
	defer srv.Close()
	ob := &memOutbox{}
	ob.add(30)
	d := &webhook.Dispatcher{Store: ob, URL: srv.URL, Secret: secret, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, PollInterval: 10 * time.Millisecond, Batch: 7,
		Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	waitFor(t, "failed attempts", func() bool {
		ds, _ := ob.WebhookDeliveries(ctx, webhook.Filter{})
		for _, x := range ds {
			if x.Attempts < 2 {
				return false
			}
		}
		return true
	})
	ob.mu.Lock()
	if !ob.enabled {
		t.Error("Run did not enable the outbox")
	}
	ob.mu.Unlock()
	fail.Store(false) // the receiver comes back
	waitFor(t, "every event delivered", func() bool { return ob.count(webhook.StatusDelivered) == 30 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 30 {
		t.Fatalf("%d distinct events received, want 30", len(got))
	}
}

func TestDispatcherDeadLetters(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	ob := &memOutbox{}
	ob.add(2)
	d := &webhook.Dispatcher{Store: ob, URL: srv.URL, Secret: secret, MaxAttempts: 3, MinBackoff: time.Millisecond,
		MaxBackoff: 5 * time.Millisecond, PollInterval: 5 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go d.Run(ctx)
	waitFor(t, "dead letters", func() bool { return ob.count(webhook.StatusDead) == 2 })
	time.Sleep(50 * time.Millisecond)
	if n := hits.Load(); n != 6 {
		t.Fatalf("%d attempts, want 3 per event", n)
	}
	ds, _ := ob.WebhookDeliveries(ctx, webhook.Filter{})
	for _, x := range ds {
		if x.Attempts != 3 || x.LastError == "" {
			t.Errorf("dead delivery %+v", x)
		}
	}
}

func TestDispatcherNeedsItsSettings(t *testing.T) {
	if err := (&webhook.Dispatcher{Store: &memOutbox{}, URL: "http://x"}).Run(t.Context()); err == nil {
		t.Fatal("Run without a secret started")
	}
}
