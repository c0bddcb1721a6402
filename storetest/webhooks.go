package storetest

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/webhook"
)

// WebhookBackend is a store that keeps sessions and accounts and writes
// the lifecycle events of their changes into its webhook outbox: the SQL
// stores.
type WebhookBackend interface {
	sessiond.Store
	account.Store
	Webhooks() webhook.Store
}

// RunWebhookOutbox is the conformance suite of webhook.Store over a
// backend that writes the events itself, in the transaction of each
// change. Subtests run in parallel, each with a backend of its own.
func RunWebhookOutbox(t *testing.T, newStore func(t *testing.T) WebhookBackend) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, WebhookBackend)
	}{
		{"Events", testWebhookEvents},
		{"Disabled", testWebhookDisabled},
		{"ClaimLeaseAndOutcome", func(t *testing.T, st WebhookBackend) {
			testOutboxClaim(t, st.Webhooks(), func(n int) { makeEvents(t, st, n) }, false)
		}},
		{"ClaimConcurrent", func(t *testing.T, st WebhookBackend) {
			testOutboxClaimConcurrent(t, st.Webhooks(), func(n int) { makeEvents(t, st, n) })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

// claimAll returns every event due far in the future, leased for a long
// time (so each comes once).
func claimAll(t *testing.T, st webhook.Store) []webhook.Event {
	t.Helper()
	evs, err := st.ClaimWebhookEvents(t.Context(), time.Now().Add(24*time.Hour), 1000, time.Hour)
	if err != nil {
		t.Fatalf("ClaimWebhookEvents: %v", err)
	}
	return evs
}

func eventData(t *testing.T, e webhook.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("event %s data %s: %v", e.Type, e.Data, err)
	}
	return m
}

func testWebhookEvents(t *testing.T, st WebhookBackend) {
	ctx := t.Context()
	if err := st.Webhooks().SetWebhooksEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	clock := NewClock()
	m, err := sessiond.NewManager(st, sessiond.Policy{}, sessiond.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	u := &account.User{ID: "wh-user-1", Email: "ada@example.com", PasswordHash: "x", Profile: []byte("{}"), CreatedAt: now, UpdatedAt: now}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	s, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: u.ID, UserAgent: chromeUA, IP: "192.0.2.1",
		Transport: sessiond.TransportCookie, RememberMe: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(ctx, sessiond.CreateParams{}); err != nil { // anonymous: no event
		t.Fatal(err)
	}
	if _, _, err := m.Rotate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	s, _ = m.Get(ctx, s.ID, "")
	if _, _, err := m.Reauthenticate(ctx, s, ""); err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(ctx, s.ID, sessiond.ReasonHijack); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, _, err := m.Create(ctx, sessiond.CreateParams{UserID: u.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := m.RevokeUser(ctx, u.ID, "", sessiond.ReasonLogoutAll); err != nil || n != 2 {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	// One that runs out its time, then is swept; a revoked one swept
	// tells nothing more.
	x, _, err := m.Create(ctx, sessiond.CreateParams{UserID: u.ID})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(13 * time.Hour)
	if _, err := m.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}

	evs := claimAll(t, st.Webhooks())
	var got []string
	for _, e := range evs {
		d := eventData(t, e)
		desc := e.Type
		if r, ok := d["reason"]; ok {
			desc += ":" + r.(string)
		}
		got = append(got, desc)
		if len(e.ID) != 32 || e.Time.IsZero() || e.Attempts != 0 {
			t.Errorf("event %+v", e)
		}
		if e.Type != webhook.UserCreated && e.Type != webhook.UserDeleted && d["user_id"] != u.ID {
			t.Errorf("event %s of user %v", e.Type, d["user_id"])
		}
	}
	want := []string{"user.created", "session.created", "session.rotated", "session.rotated", "session.revoked:hijack_suspected",
		"session.created", "session.created", "session.revoked:logout_all", "session.revoked:logout_all",
		"session.created", "session.revoked:expired", "user.deleted"}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
	created := eventData(t, evs[1])
	if created["session_id"] != s.ID || created["remember_me"] != true || created["transport"] != "cookie" ||
		created["ip"] != "192.0.2.1" || created["browser"] != "Chrome" || created["os"] != "Windows" {
		t.Errorf("session.created data %v", created)
	}
	if d := eventData(t, evs[10]); d["session_id"] != x.ID {
		t.Errorf("expired event of %v, want %s", d["session_id"], x.ID)
	}
	if d := eventData(t, evs[0]); d["user_id"] != u.ID || d["email"] != u.Email {
		t.Errorf("user.created data %v", d)
	}
	// Ids are unique.
	ids := map[string]bool{}
	for _, e := range evs {
		if ids[e.ID] {
			t.Errorf("event id %s twice", e.ID)
		}
		ids[e.ID] = true
	}
}

func testWebhookDisabled(t *testing.T, st WebhookBackend) {
	ctx := t.Context()
	m, err := sessiond.NewManager(st, sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	create := func() {
		t.Helper()
		s, _, err := m.Create(ctx, sessiond.CreateParams{UserID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Revoke(ctx, s.ID, sessiond.ReasonLogout); err != nil {
			t.Fatal(err)
		}
	}
	create() // off by default
	if evs := claimAll(t, st.Webhooks()); len(evs) != 0 {
		t.Fatalf("%d events while the outbox was never enabled", len(evs))
	}
	if err := st.Webhooks().SetWebhooksEnabled(ctx, true); err != nil {
		t.Fatal(err)
	}
	create()
	if err := st.Webhooks().SetWebhooksEnabled(ctx, false); err != nil {
		t.Fatal(err)
	}
	create()
	if evs := claimAll(t, st.Webhooks()); len(evs) != 2 {
		t.Fatalf("%d events, want the 2 of the enabled period", len(evs))
	}
}

// makeEvents enables the outbox and makes n session.created events.
func makeEvents(t *testing.T, st WebhookBackend, n int) {
	t.Helper()
	if err := st.Webhooks().SetWebhooksEnabled(t.Context(), true); err != nil {
		t.Fatal(err)
	}
	m, err := sessiond.NewManager(st, sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, _, err := m.Create(t.Context(), sessiond.CreateParams{UserID: "u"}); err != nil {
			t.Fatal(err)
		}
	}
}

// testOutboxClaim checks claims, leases and outcomes over an outbox that
// fill(n) puts n events into. queue: st is a webhook.Queue, which deletes
// delivered events and drops the data of dead ones.
func testOutboxClaim(t *testing.T, st webhook.Store, fill func(n int), queue bool) {
	ctx := t.Context()
	fill(3)
	now := time.Now().Add(time.Minute) // past the database's clock
	first, err := st.ClaimWebhookEvents(ctx, now, 2, time.Minute)
	if err != nil || len(first) != 2 {
		t.Fatalf("claim 2 = %d, %v", len(first), err)
	}
	rest, err := st.ClaimWebhookEvents(ctx, now, 10, time.Minute)
	if err != nil || len(rest) != 1 || rest[0].ID == first[0].ID || rest[0].ID == first[1].ID {
		t.Fatalf("a second claim = %v, %v; want the third event only", rest, err)
	}
	if evs, _ := st.ClaimWebhookEvents(ctx, now.Add(30*time.Second), 10, time.Minute); len(evs) != 0 {
		t.Fatalf("%d events claimed inside the lease", len(evs))
	}
	// Outcomes: delivered, failed (due again later), dead.
	at := now.Add(time.Second)
	if err := st.WebhookDelivered(ctx, first[0].ID, at); err != nil {
		t.Fatal(err)
	}
	if err := st.WebhookFailed(ctx, first[1].ID, at, at.Add(10*time.Second), false, "receiver answered 500"); err != nil {
		t.Fatal(err)
	}
	if err := st.WebhookFailed(ctx, rest[0].ID, at, at.Add(10*time.Second), true, "gave up"); err != nil {
		t.Fatal(err)
	}
	if evs, _ := st.ClaimWebhookEvents(ctx, at.Add(5*time.Second), 10, time.Minute); len(evs) != 0 {
		t.Fatalf("%d events claimed before the retry time", len(evs))
	}
	again, err := st.ClaimWebhookEvents(ctx, at.Add(10*time.Second), 10, time.Minute)
	if err != nil || len(again) != 1 || again[0].ID != first[1].ID || again[0].Attempts != 1 {
		t.Fatalf("retry claim = %+v, %v; want the failed event with 1 attempt", again, err)
	}
	// A lease that runs out makes the event due again.
	late, err := st.ClaimWebhookEvents(ctx, at.Add(10*time.Second+2*time.Minute), 10, time.Minute)
	if err != nil || len(late) != 1 || late[0].ID != first[1].ID {
		t.Fatalf("claim after the lease = %+v, %v", late, err)
	}

	kept := 3
	if queue {
		kept = 2 // the delivered one is gone
	}
	all, err := st.WebhookDeliveries(ctx, webhook.Filter{})
	if err != nil || len(all) != kept {
		t.Fatalf("WebhookDeliveries = %d, %v; want %d", len(all), err, kept)
	}
	status := map[string]webhook.Delivery{}
	for _, d := range all {
		status[d.ID] = d
	}
	if d, ok := status[first[0].ID]; queue == ok || !queue && (d.Status != webhook.StatusDelivered || d.Attempts != 1 || d.DeliveredAt.IsZero()) {
		t.Errorf("delivered event %+v (kept: %v)", d, ok)
	}
	if d := status[first[1].ID]; d.Status != webhook.StatusPending || d.Attempts != 1 || d.LastError != "receiver answered 500" {
		t.Errorf("failed event %+v", d)
	}
	if d := status[rest[0].ID]; d.Status != webhook.StatusDead || d.DeadAt.IsZero() || d.LastError != "gave up" {
		t.Errorf("dead event %+v", d)
	}
	if d := status[rest[0].ID]; queue && (string(d.Data) != "{}" || d.Type != rest[0].Type) {
		t.Errorf("dead queued event kept its data %s (type %q)", d.Data, d.Type)
	}
	if all[0].ID != rest[0].ID {
		t.Errorf("deliveries are not newest first: %v", all)
	}
	for _, c := range []struct {
		status string
		want   int
	}{{webhook.StatusPending, 1}, {webhook.StatusDelivered, kept - 2}, {webhook.StatusDead, 1}} {
		got, err := st.WebhookDeliveries(ctx, webhook.Filter{Status: c.status})
		if err != nil || len(got) != c.want {
			t.Errorf("WebhookDeliveries(%s) = %d, %v", c.status, len(got), err)
		}
	}
	if got, _ := st.WebhookDeliveries(ctx, webhook.Filter{Limit: 2}); len(got) != 2 {
		t.Errorf("WebhookDeliveries(limit 2) = %d", len(got))
	}
	// Pruning removes old delivered and dead events, never pending ones.
	n, err := st.PruneWebhookEvents(ctx, at.Add(time.Second))
	if err != nil || n != kept-1 {
		t.Fatalf("PruneWebhookEvents = %d, %v; want %d", n, err, kept-1)
	}
	if left, _ := st.WebhookDeliveries(ctx, webhook.Filter{}); len(left) != 1 || left[0].ID != first[1].ID {
		t.Fatalf("after pruning: %+v", left)
	}
}

// testOutboxClaimConcurrent checks that concurrent claims over 40 events
// return each once.
func testOutboxClaimConcurrent(t *testing.T, st webhook.Store, fill func(n int)) {
	fill(40)
	now := time.Now().Add(time.Minute)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				evs, err := st.ClaimWebhookEvents(context.Background(), now, 3, time.Hour)
				if err != nil {
					t.Errorf("ClaimWebhookEvents: %v", err)
					return
				}
				if len(evs) == 0 {
					return
				}
				mu.Lock()
				for _, e := range evs {
					seen[e.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("%d distinct events claimed, want 40", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s claimed %d times by concurrent dispatchers", id, n)
		}
	}
}
