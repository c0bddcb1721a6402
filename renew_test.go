package sessiond_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
)

// rotateWatch records, at each Rotate, the session's last-seen time as
// the store holds it then.
type rotateWatch struct {
	sessiond.Store
	seen []time.Time
}

func (w *rotateWatch) Rotate(ctx context.Context, id string, old, new sessiond.TokenHash, now time.Time) error {
	if s, err := w.Store.ByID(ctx, id); err == nil {
		w.seen = append(w.seen, s.LastSeenAt)
	}
	return w.Store.Rotate(ctx, id, old, new, now)
}

// TestRenewRecordsUseBeforeTheNewToken: a refresh that reads the session
// while another refresh of the same token renews it must never see the new
// token with the old last-seen time, or the grace window of client-side
// sessions misses the race and revokes the session as stolen.
func TestRenewRecordsUseBeforeTheNewToken(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &rotateWatch{Store: memstore.New()}
	m, err := sessiond.NewManager(st, sessiond.Policy{}, sessiond.WithClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	s, err := m.Peek(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	next, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := m.Renew(ctx, s, next)
	if err != nil {
		t.Fatal(err)
	}
	if !renewed.LastSeenAt.Equal(clock) {
		t.Fatalf("renewed LastSeenAt %v, want %v", renewed.LastSeenAt, clock)
	}
	if len(st.seen) != 1 || !st.seen[0].Equal(clock) {
		t.Fatalf("last seen when the new token was stored: %v, want %v (the use first)", st.seen, clock)
	}
	if _, err := m.Renew(ctx, s, next); err == nil {
		t.Fatal("a second renewal from the same token succeeded")
	}
}
