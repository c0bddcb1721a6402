package account_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
)

// TestLockObserver: the observer hears of each lock once, when the check
// that reaches the threshold starts it, and not of the refused attempts
// during the lock.
func TestLockObserver(t *testing.T) {
	var (
		mu    sync.Mutex
		calls []time.Time
		users []string
	)
	svc, err := account.NewService(memstore.NewAccounts(), account.Config{
		LockoutThreshold: 3,
		HashParams:       account.HashParams{Memory: 64, Time: 1, Parallelism: 1},
	}, account.WithLockObserver(func(_ context.Context, id string, until time.Time) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, until)
		users = append(users, id)
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	u, err := svc.Register(ctx, "ada@example.com", "correct horse battery", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := svc.Authenticate(ctx, u.Email, "wrong password!"); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("attempt %d: %v, want ErrInvalidCredentials", i+1, err)
		}
	}
	var locked *account.LockedError
	if _, err := svc.Authenticate(ctx, u.Email, "correct horse battery"); !errors.As(err, &locked) {
		t.Fatalf("after the threshold: %v, want a LockedError", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || users[0] != u.ID || !calls[0].Equal(locked.Until) {
		t.Fatalf("observer calls %v for %v, want one for %s until %v", calls, users, u.ID, locked.Until)
	}
}
