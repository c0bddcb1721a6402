package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond/notify"
	"github.com/sessiond/sessiond/webhook"
)

// RunQueue is the conformance suite of webhook.Queue, the queue of
// security notifications. Subtests run in parallel, each with a queue of
// its own.
func RunQueue(t *testing.T, newQueue func(t *testing.T) webhook.Queue) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, webhook.Queue)
	}{
		{"EnqueueRoundTrip", testQueueRoundTrip},
		{"ClaimLeaseAndOutcome", func(t *testing.T, q webhook.Queue) {
			testOutboxClaim(t, q, func(n int) { enqueue(t, q, n) }, true)
		}},
		{"ClaimConcurrent", func(t *testing.T, q webhook.Queue) {
			testOutboxClaimConcurrent(t, q, func(n int) { enqueue(t, q, n) })
		}},
		{"NotificationsAtRest", testQueueNotifications},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newQueue(t))
		})
	}
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// enqueue puts n events into q, a millisecond apart.
func enqueue(t *testing.T, q webhook.Queue, n int) {
	t.Helper()
	now := time.Now().Add(-time.Second).UTC().Truncate(time.Millisecond)
	for i := range n {
		e := webhook.Event{ID: newEventID(), Type: notify.TypeAccountLocked, Time: now.Add(time.Duration(i) * time.Millisecond),
			Data: json.RawMessage(`{"n":1}`)}
		if err := q.Enqueue(t.Context(), e); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
}

func testQueueRoundTrip(t *testing.T, q webhook.Queue) {
	ctx := t.Context()
	// The queue is always on: turning it "off" stops nothing.
	if err := q.SetWebhooksEnabled(ctx, false); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 1, 2, 3, 456789000, time.UTC)
	want := webhook.Event{ID: newEventID(), Type: notify.TypePasswordReset, Time: at, Data: json.RawMessage(`{"to":"ada@example.com"}`)}
	if err := q.Enqueue(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := q.Enqueue(ctx, want); err == nil {
		t.Error("the same id was queued twice")
	}
	got := claimAll(t, q)
	if len(got) != 1 {
		t.Fatalf("claimed %d events, want 1", len(got))
	}
	g := got[0]
	var gd, wd any
	_ = json.Unmarshal(g.Data, &gd)
	_ = json.Unmarshal(want.Data, &wd)
	if g.ID != want.ID || g.Type != want.Type || !g.Time.Equal(at) || g.Attempts != 0 || !jsonEqual(gd, wd) {
		t.Fatalf("claimed %+v (%s), want %+v", g, g.Data, want)
	}
	if err := q.WebhookDelivered(ctx, g.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if all, err := q.WebhookDeliveries(ctx, webhook.Filter{}); err != nil || len(all) != 0 {
		t.Fatalf("after delivery the queue holds %d, %v; want nothing", len(all), err)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// testQueueNotifications writes messages through webhook.Notifications,
// sealed and not, and delivers them: the sealed one's token is not in the
// store, and a message comes back whole.
func testQueueNotifications(t *testing.T, q webhook.Queue) {
	ctx := t.Context()
	key := bytes.Repeat([]byte{7}, 32)
	sealed := webhook.Notifications{Queue: q, Key: key}
	plain := webhook.Notifications{Queue: q}
	now := time.Now().UTC().Truncate(time.Second)
	secret := "sdt_a-reset-token-that-must-not-be-stored"
	m1 := notify.NewMessage(notify.TypePasswordReset, now, "ada@example.com", "u1", map[string]any{"token": secret})
	m2 := notify.NewMessage(notify.TypeAccountLocked, now, "bob@example.com", "u2", map[string]any{"ip": "192.0.2.1"})
	if err := sealed.Notify(ctx, m1); err != nil {
		t.Fatal(err)
	}
	if err := plain.Notify(ctx, m2); err != nil {
		t.Fatal(err)
	}
	rows, err := q.WebhookDeliveries(ctx, webhook.Filter{})
	if err != nil || len(rows) != 2 {
		t.Fatalf("WebhookDeliveries = %d, %v", len(rows), err)
	}
	for _, r := range rows {
		if r.ID == m1.ID && (bytes.Contains(r.Data, []byte(secret)) || bytes.Contains(r.Data, []byte("ada@"))) {
			t.Errorf("the sealed message is readable at rest: %s", r.Data)
		}
	}
	got := map[string]notify.Message{}
	rec := notifierFunc(func(_ context.Context, m notify.Message) error { got[m.ID] = m; return nil })
	evs := claimAll(t, q)
	for _, e := range evs {
		if err := sealed.Deliver(rec)(ctx, e); err != nil {
			t.Fatalf("Deliver %s: %v", e.ID, err)
		}
	}
	if g := got[m1.ID]; g.To != m1.To || g.UserID != "u1" || g.Data["token"] != secret || !g.Time.Equal(now) {
		t.Errorf("sealed message came back as %+v", g)
	}
	if g := got[m2.ID]; g.To != m2.To || g.Data["ip"] != "192.0.2.1" {
		t.Errorf("plain message came back as %+v", g)
	}
	// Without the key, or with another, a sealed message does not open.
	for _, n := range []webhook.Notifications{plain, {Queue: q, Key: bytes.Repeat([]byte{8}, 32)}} {
		for _, e := range evs {
			if e.ID == m1.ID {
				if err := n.Deliver(rec)(ctx, e); !errors.Is(err, webhook.ErrSealed) {
					t.Errorf("a sealed message opened without its key: %v", err)
				}
			}
		}
	}
}

type notifierFunc func(context.Context, notify.Message) error

func (f notifierFunc) Notify(ctx context.Context, m notify.Message) error { return f(ctx, m) }
