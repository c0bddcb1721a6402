package sessiond_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

// countingStore counts lookups, and can hold one lookup until released.
type countingStore struct {
	sessiond.Store
	lookups atomic.Int32
	mu      sync.Mutex
	hold    chan struct{} // when set, the next ByTokenHash waits on it after reading
	read    chan struct{} // closed when the held lookup has read
	touches atomic.Int32
	batches atomic.Int32
}

func (c *countingStore) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	c.lookups.Add(1)
	s, err := c.Store.ByTokenHash(ctx, h)
	c.mu.Lock()
	hold, read := c.hold, c.read
	c.hold, c.read = nil, nil
	c.mu.Unlock()
	if hold != nil {
		close(read)
		<-hold
	}
	return s, err
}

func (c *countingStore) Touch(ctx context.Context, ts []sessiond.Touch) error {
	c.touches.Add(int32(len(ts)))
	c.batches.Add(1)
	return c.Store.Touch(ctx, ts)
}

func cachedManager(t *testing.T, st sessiond.Store, clock *storetest.Clock) *sessiond.Manager {
	t.Helper()
	m, err := sessiond.NewManager(st, sessiond.Policy{}, sessiond.WithClock(clock.Now),
		sessiond.WithCache(sessiond.CacheConfig{Size: 100, MaxAge: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCacheServesHitsWithoutTheStore(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	clock := storetest.NewClock()
	m := cachedManager(t, st, clock)
	_, tok, _ := m.Create(t.Context(), sessiond.CreateParams{UserID: "u1"})
	for range 10 {
		if _, err := m.Validate(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.lookups.Load(); n != 1 {
		t.Fatalf("%d store lookups for 10 validations, want 1", n)
	}
	clock.Advance(2 * time.Second) // MaxAge: read again
	if _, err := m.Validate(t.Context(), tok); err != nil || st.lookups.Load() != 2 {
		t.Fatalf("after MaxAge: %v, %d lookups; want a fresh read", err, st.lookups.Load())
	}
}

func TestCacheInvalidation(t *testing.T) {
	shared := memstore.New()
	clock := storetest.NewClock()
	a, b := cachedManager(t, shared, clock), cachedManager(t, shared, clock)
	ctx := t.Context()
	s1, tok1, _ := a.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	_, tok2, _ := a.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	for _, m := range []*sessiond.Manager{a, b} {
		for _, tok := range []string{tok1, tok2} {
			if _, err := m.Validate(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A change through a Manager is seen by that Manager at once.
	if err := a.Revoke(ctx, s1.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Validate(ctx, tok1); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("own revocation not seen: %v", err)
	}
	// Another node sees it when told (the feed), or after MaxAge at the latest.
	if _, err := b.Validate(ctx, tok1); err != nil {
		t.Fatalf("b has no reason to know yet; the test is wrong: %v", err)
	}
	b.Invalidate([]string{s1.ID})
	if _, err := b.Validate(ctx, tok1); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("after Invalidate: %v", err)
	}
	if _, err := a.RevokeUser(ctx, "u1", "", sessiond.ReasonLogoutAll); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Validate(ctx, tok2); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("own RevokeUser not seen: %v", err)
	}
	clock.Advance(2 * time.Second)
	if _, err := b.Validate(ctx, tok2); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("past MaxAge b still trusts its copy: %v", err)
	}
	// Rotation: the old token stops at once on the rotating node.
	_, tok3, _ := a.Create(ctx, sessiond.CreateParams{UserID: "u2"})
	a.Validate(ctx, tok3)
	if _, _, err := a.Rotate(ctx, tok3); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Validate(ctx, tok3); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("rotated token still valid from the cache: %v", err)
	}
}

// TestCacheFillRace: a validation that read the session before a
// revocation must not put its stale copy into the cache after it.
func TestCacheFillRace(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	clock := storetest.NewClock()
	m := cachedManager(t, st, clock)
	ctx := t.Context()
	s, tok, _ := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	hold, read := make(chan struct{}), make(chan struct{})
	st.mu.Lock()
	st.hold, st.read = hold, read
	st.mu.Unlock()
	done := make(chan error)
	go func() {
		_, err := m.Validate(ctx, tok) // reads the active session, then waits
		done <- err
	}()
	<-read
	if err := m.Revoke(ctx, s.ID, sessiond.ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatalf("the racing validation itself read an active session: %v", err)
	}
	if _, err := m.Validate(ctx, tok); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("a stale copy was cached after the revocation: %v", err)
	}
}

func TestCacheFailsClosedPastMaxAge(t *testing.T) {
	down := &failingLookups{Store: memstore.New()}
	clock := storetest.NewClock()
	m := cachedManager(t, down, clock)
	_, tok, _ := m.Create(t.Context(), sessiond.CreateParams{UserID: "u1"})
	if _, err := m.Validate(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	down.fail.Store(true)
	if _, err := m.Validate(t.Context(), tok); err != nil {
		t.Fatalf("within MaxAge the cached answer stands: %v", err)
	}
	clock.Advance(2 * time.Second)
	if _, err := m.Validate(t.Context(), tok); err == nil || sessiond.IsRejection(err) {
		t.Fatalf("past MaxAge with the store down: %v, want a store error (503), not a pass", err)
	}
}

type failingLookups struct {
	sessiond.Store
	fail atomic.Bool
}

func (f *failingLookups) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	if f.fail.Load() {
		return nil, errors.New("store down")
	}
	return f.Store.ByTokenHash(ctx, h)
}

func TestRunTouchesBatches(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	clock := storetest.NewClock()
	m := cachedManager(t, st, clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.RunTouches(ctx, time.Hour, nil) }()
	var toks []string
	var ids []string
	for range 50 {
		s, tok, _ := m.Create(t.Context(), sessiond.CreateParams{UserID: "u1"})
		toks, ids = append(toks, tok), append(ids, s.ID)
	}
	time.Sleep(10 * time.Millisecond) // RunTouches is running
	clock.Advance(2 * time.Minute)
	for _, tok := range toks {
		if _, err := m.Validate(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if st.batches.Load() != 0 {
		t.Fatalf("touches written on the request path (%d batches)", st.batches.Load())
	}
	cancel()
	<-done
	if st.touches.Load() != 50 || st.batches.Load() != 1 {
		t.Fatalf("%d touches in %d batches, want 50 in 1", st.touches.Load(), st.batches.Load())
	}
	got, _ := st.ByID(t.Context(), ids[0])
	if !got.LastSeenAt.Equal(clock.Now()) {
		t.Fatalf("stored LastSeenAt %v, want %v", got.LastSeenAt, clock.Now())
	}
}
