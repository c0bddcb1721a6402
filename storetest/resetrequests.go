package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/account"
)

// testStoreResetRequests: TakeResetRequest counts per user and client key
// over a sliding window, refuses what does not fit without counting it,
// and forgets a deleted user's requests.
func testStoreResetRequests(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	v := e.create(t, "bob@example.com")
	l := account.ResetLimit{Window: time.Hour, PerKey: 2, Total: 3}
	take := func(userID, from string, at time.Time) bool {
		t.Helper()
		ok, err := e.store.TakeResetRequest(ctx, userID, from, at, l)
		if err != nil {
			t.Fatalf("TakeResetRequest(%s, %s): %v", userID, from, err)
		}
		return ok
	}
	t0 := e.clock.Now()

	// Two from one key, then that key is refused; another key gets the
	// third, and then the total refuses every key.
	for i, want := range []bool{true, true, false, false} {
		if got := take(u.ID, "203.0.113.7", t0.Add(time.Duration(i)*time.Minute)); got != want {
			t.Fatalf("request %d from one key = %v, want %v", i+1, got, want)
		}
	}
	if !take(u.ID, "198.51.100.23", t0.Add(5*time.Minute)) {
		t.Fatal("another key's first request refused")
	}
	if take(u.ID, "192.0.2.1", t0.Add(6*time.Minute)) {
		t.Fatal("a request over the total counted")
	}
	// Another user has allowances of its own.
	if !take(v.ID, "203.0.113.7", t0.Add(6*time.Minute)) {
		t.Fatal("another user's request refused")
	}

	// The window slides: the first request (at t0) falls out of it an hour
	// later, not a microsecond before; refused requests were not counted.
	if take(u.ID, "192.0.2.1", t0.Add(time.Hour-time.Microsecond)) {
		t.Fatal("a request within the hour of the first three counted")
	}
	if !take(u.ID, "192.0.2.1", t0.Add(time.Hour)) {
		t.Fatal("a request an hour after the first refused")
	}
	if take(u.ID, "203.0.113.7", t0.Add(time.Hour+30*time.Second)) {
		t.Fatal("the key's request at t0+1m still counts within the hour, want refused")
	}
	if !take(u.ID, "203.0.113.7", t0.Add(time.Hour+time.Minute)) {
		t.Fatal("the key's request once its first left the window refused")
	}

	// A limit of zero refuses.
	if ok, err := e.store.TakeResetRequest(ctx, v.ID, "x", t0, account.ResetLimit{Window: time.Hour}); err != nil || ok {
		t.Fatalf("TakeResetRequest with zero limits = %v, %v; want false", ok, err)
	}

	_, err := e.store.TakeResetRequest(ctx, "no-such-user", "x", t0, l)
	wantErr(t, "TakeResetRequest(missing user)", err, account.ErrUserNotFound)

	// A deleted user's requests go with it.
	if err := e.store.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.store.TakeResetRequest(ctx, u.ID, "x", t0, l)
	wantErr(t, "TakeResetRequest(deleted user)", err, account.ErrUserNotFound)
	again := e.newUser(u.Email)
	again.ID = u.ID
	if err := e.store.CreateUser(ctx, again); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if !take(u.ID, "203.0.113.7", t0.Add(time.Hour+2*time.Minute)) {
			t.Fatalf("re-created user's request %d refused", i+1)
		}
	}
}

// testStoreResetRequestsConcurrent: concurrent requests for one user count
// exactly up to the limits, per key and in total.
func testStoreResetRequestsConcurrent(t *testing.T, e *accountEnv) {
	u := e.create(t, "ada@example.com")
	now := e.clock.Now()
	l := account.ResetLimit{Window: time.Hour, PerKey: 3, Total: 7}
	const keys, perKey = 4, 6
	var (
		wg    sync.WaitGroup
		total atomic.Int32
		byKey [keys]atomic.Int32
	)
	for k := range keys {
		for range perKey {
			wg.Go(func() {
				ok, err := e.store.TakeResetRequest(t.Context(), u.ID, fmt.Sprintf("key-%d", k), now, l)
				if err != nil {
					t.Errorf("TakeResetRequest: %v", err)
				}
				if ok {
					total.Add(1)
					byKey[k].Add(1)
				}
			})
		}
	}
	wg.Wait()
	if n := total.Load(); n != int32(l.Total) {
		t.Errorf("%d of %d concurrent requests counted, want the total of %d", n, keys*perKey, l.Total)
	}
	for k := range keys {
		if n := byKey[k].Load(); n > int32(l.PerKey) {
			t.Errorf("key %d: %d requests counted, want at most %d", k, n, l.PerKey)
		}
	}
}
