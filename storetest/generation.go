package storetest

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// The user's revocation generation (Store.UserGeneration): RevokeByUser
// advances it, and Create refuses a session checked against credentials
// read before the latest revocation.

func (e *env) generation(t *testing.T, userID string) uint64 {
	t.Helper()
	g, err := e.m.UserGeneration(t.Context(), userID)
	if err != nil {
		t.Fatalf("UserGeneration(%s): %v", userID, err)
	}
	return g
}

func testGeneration(t *testing.T, e *env) {
	if g := e.generation(t, "u1"); g != 0 {
		t.Fatalf("generation of a user never revoked = %d, want 0", g)
	}
	// A RevokeByUser advances it by one, also when it ends nothing, and
	// only the user's.
	for want := uint64(1); want <= 2; want++ {
		if _, err := e.m.RevokeUser(t.Context(), "u1", "", sessiond.ReasonForceLogout); err != nil {
			t.Fatal(err)
		}
		if g := e.generation(t, "u1"); g != want {
			t.Fatalf("generation after %d revocations without sessions = %d", want, g)
		}
	}
	if g := e.generation(t, "u2"); g != 0 {
		t.Fatalf("another user's revocation moved u2's generation to %d", g)
	}
	_, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	if n, err := e.m.RevokeUser(t.Context(), "u1", "", sessiond.ReasonForceLogout); err != nil || n != 1 {
		t.Fatalf("RevokeUser = %d, %v", n, err)
	}
	e.invalid(t, tok, sessiond.ErrRevoked)
	if g := e.generation(t, "u1"); g != 3 {
		t.Fatalf("generation after a revocation that ended a session = %d, want 3", g)
	}

	// The current generation: created. One before it: refused.
	cur := uint64(3)
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", Generation: &cur})
	e.valid(t, tok)
	stale := uint64(2)
	for _, g := range []uint64{stale, 4} {
		_, _, err := e.m.Create(t.Context(), sessiond.CreateParams{UserID: "u1", Generation: &g})
		if !errors.Is(err, sessiond.ErrCredentialsChanged) {
			t.Fatalf("Create with generation %d (current 3) = %v, want ErrCredentialsChanged", g, err)
		}
	}
	if l, err := e.m.List(t.Context(), "u1"); err != nil || len(l) != 1 || l[0].ID != s.ID {
		t.Fatalf("after refused creates List = %v, %v; want only %s", ids(l), err, s.ID)
	}
	// Anonymous sessions have no generation to check.
	e.create(t, sessiond.CreateParams{Generation: &stale})

	// A refused Create has no side effect: the session it would replace
	// and the ones the limit would end stay.
	limited, err := sessiond.NewManager(e.store, sessiond.Policy{MaxSessionsPerUser: 1}, sessiond.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	_, anon := e.create(t, sessiond.CreateParams{Data: map[string][]byte{"cart": []byte("1")}})
	_, _, err = limited.Create(t.Context(), sessiond.CreateParams{UserID: "u1", Generation: &stale, Replace: anon})
	if !errors.Is(err, sessiond.ErrCredentialsChanged) {
		t.Fatalf("Create with a stale generation, a Replace and a limit = %v, want ErrCredentialsChanged", err)
	}
	e.m.Invalidate(nil) // the cache of e.m did not see limited's writes
	e.valid(t, anon)
	e.valid(t, tok)
	// And with the current one it does all of it.
	_, ntok, err := limited.Create(t.Context(), sessiond.CreateParams{UserID: "u1", Generation: &cur, Replace: anon})
	if err != nil {
		t.Fatal(err)
	}
	e.m.Invalidate(nil)
	e.invalid(t, anon, sessiond.ErrRevoked)
	e.invalid(t, tok, sessiond.ErrRevoked)
	e.valid(t, ntok)
}

// testGenerationConcurrent races sign-ins against Force Logouts, as the
// sign-in flow runs them: read the generation, (check the password), create
// with it. Whatever the interleaving, a session created with a generation
// read before a revocation must be ended: either the revocation saw it, or
// the Create saw the revocation and refused.
func testGenerationConcurrent(t *testing.T, e *env) {
	const (
		creators    = 4
		revocations = 20
	)
	type created struct {
		gen uint64
		tok string
	}
	var (
		mu   sync.Mutex
		made []created
		wg   sync.WaitGroup
		stop = make(chan struct{})
	)
	refused := 0
	// The creators and the revoker pace each other: a few sign-ins start
	// between two revocations, so that some read the generation before
	// one and create after it, and the test stays short on slow stores.
	var attempts, revoked atomic.Int64
	for range creators {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if attempts.Load() > (revoked.Load()+1)*2*creators {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				g, err := e.m.UserGeneration(t.Context(), "u1")
				if err != nil {
					t.Error(err)
					return
				}
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // the password check
				_, tok, err := e.m.Create(t.Context(), sessiond.CreateParams{UserID: "u1", Generation: &g})
				attempts.Add(1)
				mu.Lock()
				switch {
				case err == nil:
					made = append(made, created{g, tok})
				case errors.Is(err, sessiond.ErrCredentialsChanged):
					refused++
				default:
					t.Error(err)
				}
				mu.Unlock()
				if err != nil && !errors.Is(err, sessiond.ErrCredentialsChanged) {
					return
				}
			}
		}()
	}
	for range revocations {
		for since := attempts.Load(); attempts.Load() < since+creators; {
			time.Sleep(50 * time.Microsecond)
		}
		if _, err := e.m.RevokeUser(t.Context(), "u1", "", sessiond.ReasonForceLogout); err != nil {
			t.Error(err)
			break
		}
		revoked.Add(1)
	}
	close(stop)
	wg.Wait()
	final := e.generation(t, "u1")
	if final != revocations {
		t.Fatalf("generation after %d revocations = %d", revocations, final)
	}
	survivors := 0
	for _, c := range made {
		s, err := e.store.ByTokenHash(t.Context(), sessiond.HashToken(c.tok))
		if err != nil {
			t.Fatal(err)
		}
		live := s.Check(e.clock.Now()) == nil
		if c.gen < final && live {
			survivors++
		}
		if c.gen == final && !live {
			t.Errorf("a session created after the last revocation (generation %d) is not active: %v", c.gen, s.Check(e.clock.Now()))
		}
	}
	if survivors > 0 {
		t.Errorf("%d of %d sessions created with a generation read before a revocation are still active", survivors, len(made))
	}
	t.Logf("%d sessions created, %d refused", len(made), refused)
}
