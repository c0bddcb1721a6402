package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/notify"
	"github.com/sessiond/sessiond/webhook"
)

// flakyNotifier fails each message's first failures deliveries (every
// one when failures < 0) and records the messages it took.
type flakyNotifier struct {
	failures int
	mu       sync.Mutex
	tries    map[string]int
	got      map[string][]notify.Message
}

func newFlaky(failures int) *flakyNotifier {
	return &flakyNotifier{failures: failures, tries: map[string]int{}, got: map[string][]notify.Message{}}
}

func (f *flakyNotifier) Notify(_ context.Context, m notify.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries[m.ID]++
	if f.failures < 0 || f.tries[m.ID] <= f.failures {
		return errors.New("notifier down")
	}
	f.got[m.ID] = append(f.got[m.ID], m)
	return nil
}

func (f *flakyNotifier) delivered() (distinct, total int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ms := range f.got {
		total += len(ms)
	}
	return len(f.got), total
}

// runDispatcher runs a notification dispatcher over q until the test ends.
func runDispatcher(t *testing.T, d *webhook.Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run = %v", err)
		}
	})
}

func notificationDispatcher(q webhook.Queue, deliver func(context.Context, webhook.Event) error) *webhook.Dispatcher {
	return &webhook.Dispatcher{Store: q, Deliver: deliver, Name: "notification", MinBackoff: 2 * time.Millisecond,
		MaxBackoff: 10 * time.Millisecond, PollInterval: 5 * time.Millisecond, MaxAttempts: 5,
		Log: slog.New(slog.DiscardHandler)}
}

// More messages than the 64 deliveries the flows once allowed in flight,
// each failing twice: all arrive, sealed at rest, and leave the queue.
func TestNotificationsQueuedRetriedAndDelivered(t *testing.T) {
	q := &memstore.Queue{}
	n := webhook.Notifications{Queue: q, Key: bytes.Repeat([]byte{3}, 32)}
	to := newFlaky(2)
	d := notificationDispatcher(q, n.Deliver(to))
	n.Queued = d.Wake
	// secretMarker stands for a reset token: long enough that sealed
	// (random-looking base64) data never holds it by chance, as "tok" did
	// about one run in eight.
	const secretMarker = "sdp_the-reset-token-must-never-be-readable"
	const count = 150
	sent := map[string]notify.Message{}
	for i := range count {
		m := notify.NewMessage(notify.TypePasswordReset, time.Now(), "ada@example.com", "u", map[string]any{"token": secretMarker, "i": float64(i)})
		sent[m.ID] = m
		if err := n.Notify(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	rows, _ := q.WebhookDeliveries(t.Context(), webhook.Filter{Limit: 1000})
	for _, r := range rows {
		if bytes.Contains(r.Data, []byte(secretMarker)) {
			t.Fatalf("a queued message is readable: %s", r.Data)
		}
	}
	runDispatcher(t, d)
	waitFor(t, "every message delivered", func() bool { distinct, _ := to.delivered(); return distinct == count })
	waitFor(t, "an empty queue", func() bool {
		rows, _ := q.WebhookDeliveries(t.Context(), webhook.Filter{})
		return len(rows) == 0
	})
	to.mu.Lock()
	for id, ms := range to.got {
		if len(ms) != 1 || ms[0].Data["i"] != sent[id].Data["i"] || ms[0].To != "ada@example.com" || to.tries[id] != 3 {
			t.Errorf("message %s: delivered %d times after %d tries: %+v", id, len(ms), to.tries[id], ms)
		}
	}
	to.mu.Unlock()
}

// Two dispatchers over one queue (two nodes): each message once.
func TestNotificationsTwoDispatchersDeliverOnce(t *testing.T) {
	q := &memstore.Queue{}
	n := webhook.Notifications{Queue: q}
	to := newFlaky(0)
	for range 2 {
		runDispatcher(t, notificationDispatcher(q, n.Deliver(to)))
	}
	for range 100 {
		if err := n.Notify(t.Context(), notify.NewMessage(notify.TypeAccountLocked, time.Now(), "a@example.com", "u", nil)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every message delivered", func() bool { distinct, _ := to.delivered(); return distinct == 100 })
	time.Sleep(50 * time.Millisecond)
	if distinct, total := to.delivered(); total != distinct {
		t.Fatalf("%d deliveries of %d messages", total, distinct)
	}
}

// A message that never goes through is dead-lettered after MaxAttempts
// and keeps no data; the metrics count it.
func TestNotificationsDeadLetter(t *testing.T) {
	q := &memstore.Queue{}
	n := webhook.Notifications{Queue: q}
	to := newFlaky(-1)
	d := notificationDispatcher(q, n.Deliver(to))
	runDispatcher(t, d)
	m := notify.NewMessage(notify.TypeEmailChangeConfirm, time.Now(), "new@example.com", "u", map[string]any{"token": "secret"})
	if err := n.Notify(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a dead letter", func() bool {
		rows, _ := q.WebhookDeliveries(t.Context(), webhook.Filter{Status: webhook.StatusDead})
		return len(rows) == 1
	})
	rows, _ := q.WebhookDeliveries(t.Context(), webhook.Filter{})
	if len(rows) != 1 || rows[0].Attempts != 5 || string(rows[0].Data) != "{}" || rows[0].Type != m.Type || rows[0].LastError != "notifier down" {
		t.Fatalf("dead letter %+v", rows)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.Collectors()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "sessiond_notification_deliveries_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["dead"] != 1 || got["failed"] != 4 || got["delivered"] != 0 {
		t.Errorf("deliveries by outcome %v, want 1 dead and 4 failed", got)
	}
}

// Wake delivers a message at once, without waiting for the next poll.
func TestNotificationsWake(t *testing.T) {
	q := &memstore.Queue{}
	n := webhook.Notifications{Queue: q}
	to := newFlaky(0)
	d := notificationDispatcher(q, n.Deliver(to))
	d.PollInterval = time.Hour
	n.Queued = d.Wake
	runDispatcher(t, d)
	time.Sleep(20 * time.Millisecond) // past the first, empty, read
	if err := n.Notify(t.Context(), notify.NewMessage(notify.TypeAccountLocked, time.Now(), "a@example.com", "u", nil)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message", func() bool { distinct, _ := to.delivered(); return distinct == 1 })
}
