package sessiond_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

func rejectingManager(t *testing.T, st sessiond.Store, clock *storetest.Clock, size int) *sessiond.Manager {
	t.Helper()
	m, err := sessiond.NewManager(st, sessiond.Policy{}, sessiond.WithClock(clock.Now),
		sessiond.WithCache(sessiond.CacheConfig{Size: 100, MaxAge: 2 * time.Second}),
		sessiond.WithRejectedCache(size))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// validateN validates tok n times, each refused with want, and returns how
// many store lookups that took.
func validateN(t *testing.T, m *sessiond.Manager, st *countingStore, tok string, n int, want error) int32 {
	t.Helper()
	before := st.lookups.Load()
	for range n {
		if _, err := m.Validate(t.Context(), tok); !errors.Is(err, want) {
			t.Fatalf("Validate = %v, want %v", err, want)
		}
	}
	return st.lookups.Load() - before
}

func TestRejectedCacheRefusesRepeatsFromMemory(t *testing.T) {
	shared := memstore.New()
	st := &countingStore{Store: shared}
	clock := storetest.NewClock()
	m := rejectingManager(t, st, clock, 0)
	other, _ := sessiond.NewManager(shared, sessiond.Policy{}, sessiond.WithClock(clock.Now)) // another node
	ctx := t.Context()

	unknown, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	if n := validateN(t, m, st, unknown, 10, sessiond.ErrNotFound); n != 1 {
		t.Fatalf("unknown token: %d store lookups for 10 validations, want 1", n)
	}

	s, revoked, _ := other.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	if err := other.Revoke(ctx, s.ID, sessiond.ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	if n := validateN(t, m, st, revoked, 10, sessiond.ErrRevoked); n != 1 {
		t.Fatalf("revoked token: %d store lookups for 10 validations, want 1", n)
	}

	_, old, _ := other.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	_, current, err := other.Rotate(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if n := validateN(t, m, st, old, 10, sessiond.ErrNotFound); n != 1 {
		t.Fatalf("rotated-out token: %d store lookups for 10 validations, want 1", n)
	}
	if _, err := m.Validate(ctx, current); err != nil {
		t.Fatalf("the rotation's new token: %v", err)
	}

	_, late, _ := other.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	clock.Advance(sessiond.DefaultAbsoluteTimeout) // past both deadlines
	if n := validateN(t, m, st, late, 10, sessiond.ErrExpired); n != 1 {
		t.Fatalf("token past its absolute deadline: %d store lookups for 10 validations, want 1", n)
	}

	if n := validateN(t, m, st, "sdt_not-a-token", 3, sessiond.ErrMalformedToken); n != 0 {
		t.Fatalf("malformed token: %d store lookups, want 0", n)
	}
}

// A session past its idle deadline in the store's copy may come back when
// a touch made before that deadline lands (another node's batch): its
// refusal is not remembered, so the token works again.
func TestRejectedCacheForgetsNothingAnIdleTouchCanUndo(t *testing.T) {
	shared := memstore.New()
	st := &countingStore{Store: shared}
	clock := storetest.NewClock()
	m := rejectingManager(t, st, clock, 0)
	ctx := t.Context()
	s, tok, _ := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	usedAt := clock.Now().Add(sessiond.DefaultIdleTimeout - time.Second) // a use on another node, not yet written
	clock.Advance(sessiond.DefaultIdleTimeout)
	if _, err := m.Validate(ctx, tok); !errors.Is(err, sessiond.ErrExpired) {
		t.Fatalf("past the stored idle deadline: %v, want ErrExpired", err)
	}
	late := sessiond.Touch{ID: s.ID, LastSeenAt: usedAt, IdleExpiresAt: usedAt.Add(sessiond.DefaultIdleTimeout)}
	if err := shared.Touch(ctx, []sessiond.Touch{late}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(ctx, tok); err != nil {
		t.Fatalf("after the other node's touch landed: %v, want the session", err)
	}
}

// A token chosen by the caller that was refused before it was installed
// (not a random session token: those cannot be presented before they
// exist) works once installed.
func TestRejectedCacheForgetsInstalledTokens(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	clock := storetest.NewClock()
	m := rejectingManager(t, st, clock, 0)
	ctx := t.Context()
	chosen := []string{}
	for range 3 {
		tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
		chosen = append(chosen, tok)
		validateN(t, m, st, tok, 2, sessiond.ErrNotFound)
	}
	s, _, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1",
		NewToken: func(string) (string, error) { return chosen[0], nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(ctx, chosen[0]); err != nil {
		t.Fatalf("Create's chosen token: %v", err)
	}
	s, err = m.Renew(ctx, s, chosen[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(ctx, chosen[1]); err != nil {
		t.Fatalf("Renew's chosen token: %v", err)
	}
	if _, _, err := m.Reauthenticate(ctx, s, chosen[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(ctx, chosen[2]); err != nil {
		t.Fatalf("Reauthenticate's chosen token: %v", err)
	}
}

// The fill race of the refusals: a lookup reads "no such token", a caller
// then installs that very token, and the lookup must not remember its
// refusal afterwards.
func TestRejectedCacheFillRace(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	clock := storetest.NewClock()
	m := rejectingManager(t, st, clock, 0)
	ctx := t.Context()
	tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	hold, read := make(chan struct{}), make(chan struct{})
	st.mu.Lock()
	st.hold, st.read = hold, read
	st.mu.Unlock()
	done := make(chan error)
	go func() {
		_, err := m.Validate(ctx, tok) // reads "no such token", then waits
		done <- err
	}()
	<-read
	if _, _, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1",
		NewToken: func(string) (string, error) { return tok, nil }}); err != nil {
		t.Fatal(err)
	}
	close(hold)
	if err := <-done; !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("the racing validation read before the install: %v", err)
	}
	if _, err := m.Validate(ctx, tok); err != nil {
		t.Fatalf("a refusal read before the install was remembered: %v", err)
	}
}

// A flood of random tokens, each refused once, does not push out the
// refusals that keep coming back during it: at most a third are read
// again, where an LRU of the same size would read every one in each round
// (a round brings twice as many random tokens as repeated ones).
func TestRejectedCacheResistsRandomFlood(t *testing.T) {
	st := &countingStore{Store: memstore.New()}
	clock := storetest.NewClock()
	const size = 1000
	m := rejectingManager(t, st, clock, size)
	hot := make([]string, size/2)
	for i := range hot {
		hot[i], _ = sessiond.NewSecret(nil, sessiond.TokenPrefix)
	}
	const rounds = 20
	var hotReads int32
	for round := range rounds {
		for range size {
			tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
			m.Validate(t.Context(), tok)
		}
		before := st.lookups.Load()
		for _, tok := range hot {
			if _, err := m.Validate(t.Context(), tok); !errors.Is(err, sessiond.ErrNotFound) {
				t.Fatal(err)
			}
		}
		if round >= rounds/2 {
			hotReads += st.lookups.Load() - before
		}
	}
	if max := int32(rounds / 2 * len(hot) / 3); hotReads > max {
		t.Fatalf("in the flood's last %d rounds, repeated tokens read the store %d times of %d, want at most %d",
			rounds/2, hotReads, rounds/2*len(hot), max)
	}
}
