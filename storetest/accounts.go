package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/account"
)

// NewAccountStore returns a fresh, empty account store for one test and
// arranges its cleanup with t.Cleanup.
type NewAccountStore func(t *testing.T) account.Store

// HashParams are argon2id parameters for tests that build an
// account.Service: the cheapest argon2 allows, so that tests run in
// seconds. They set only account.Config.HashParams; everything else keeps
// its default, and production keeps account.DefaultHashParams.
var HashParams = account.HashParams{Memory: 64, Time: 1, Parallelism: 1}

// RunAccounts runs the conformance suite of account.Store against stores
// made by newStore: every Store method's contract, directly, with a fake
// clock (what a store keeps and returns, atomicity, concurrency). The
// account rules built on it (registration, sign-in, lockout, reset,
// profiles, deletion) are tested once, in package account, on the memory
// store. Subtests run in parallel, each with a store of its own; run it
// with -race.
//
//	func TestAccounts(t *testing.T) {
//		storetest.RunAccounts(t, func(t *testing.T) account.Store { return newStoreForTest(t) })
//	}
func RunAccounts(t *testing.T, newStore func(t *testing.T) account.Store) {
	t.Helper()
	for _, tc := range accountTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newAccountEnv(t, newStore))
		})
	}
}

var accountTests = []struct {
	name string
	fn   func(*testing.T, *accountEnv)
}{
	{"Store/CreateAndLookup", testStoreCreateAndLookup},
	{"Store/DuplicateEmail", testStoreDuplicateEmail},
	{"Store/ReturnsCopies", testStoreReturnsCopies},
	{"Store/UpdateProfile", testStoreUpdateProfile},
	{"Store/UpdateProfileConcurrent", testStoreUpdateProfileConcurrent},
	{"Store/SetPasswordHash", testStoreSetPasswordHash},
	{"Store/SetPasswordHashRace", testStoreSetPasswordHashRace},
	{"Store/DeleteUser", testStoreDeleteUser},
	{"Store/Lockout", testStoreLockout},
	{"Store/LockoutConcurrent", testStoreLockoutConcurrent},
	{"Store/ResetTokens", testStoreResetTokens},
	{"Store/ResetTokenConcurrent", testStoreResetTokenConcurrent},
	{"Store/EmailChange", testStoreEmailChange},
	{"Store/EmailChangeConcurrent", testStoreEmailChangeConcurrent},
	{"Store/EmailChangeCancel", testStoreEmailChangeCancel},
	{"Store/ResetRequests", testStoreResetRequests},
	{"Store/ResetRequestsConcurrent", testStoreResetRequestsConcurrent},
}

type accountEnv struct {
	store account.Store
	clock *Clock
}

func newAccountEnv(t *testing.T, newStore NewAccountStore) *accountEnv {
	t.Helper()
	return &accountEnv{store: newStore(t), clock: NewClock()}
}

var userSeq atomic.Int64

// newUser returns a user to store directly, with a unique id.
func (e *accountEnv) newUser(email string) *account.User {
	now := e.clock.Now()
	return &account.User{
		ID:                fmt.Sprintf("user-%d", userSeq.Add(1)),
		Email:             email,
		PasswordHash:      "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
		Profile:           []byte(`{"name":"Ada"}`),
		CreatedAt:         now,
		UpdatedAt:         now,
		PasswordChangedAt: now,
	}
}

func (e *accountEnv) create(t *testing.T, email string) *account.User {
	t.Helper()
	u := e.newUser(email)
	if err := e.store.CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

func (e *accountEnv) byID(t *testing.T, id string) *account.User {
	t.Helper()
	u, err := e.store.UserByID(t.Context(), id)
	if err != nil {
		t.Fatalf("UserByID(%s): %v", id, err)
	}
	return u
}

func sameUser(t *testing.T, what string, got, want *account.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.PasswordHash != want.PasswordHash ||
		!bytes.Equal(got.Profile, want.Profile) || !got.CreatedAt.Equal(want.CreatedAt) ||
		!got.UpdatedAt.Equal(want.UpdatedAt) || !got.PasswordChangedAt.Equal(want.PasswordChangedAt) {
		t.Errorf("%s = %+v,\nwant %+v", what, got, want)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func resetHash(n byte) [32]byte {
	var h [32]byte
	h[0], h[31] = n, 0xa5
	return h
}

// mergeKey returns an update function for Store.UpdateProfile that sets
// one key of a JSON object.
func mergeKey(key string, value any) func([]byte) ([]byte, error) {
	return func(cur []byte) ([]byte, error) {
		obj := map[string]any{}
		if err := json.Unmarshal(cur, &obj); err != nil {
			return nil, err
		}
		obj[key] = value
		return json.Marshal(obj)
	}
}

func profileOf(t *testing.T, u *account.User) map[string]any {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(u.Profile, &obj); err != nil || obj == nil {
		t.Fatalf("profile %q is not a JSON object: %v", u.Profile, err)
	}
	return obj
}

// ---- Store ----

func testStoreCreateAndLookup(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	sameUser(t, "UserByID", e.byID(t, u.ID), u)
	got, err := e.store.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	sameUser(t, "UserByEmail", got, u)

	_, err = e.store.UserByID(ctx, "no-such-user")
	wantErr(t, "UserByID(missing)", err, account.ErrUserNotFound)
	_, err = e.store.UserByEmail(ctx, "nobody@example.com")
	wantErr(t, "UserByEmail(missing)", err, account.ErrUserNotFound)

	v := e.create(t, "bob@example.com")
	if got := e.byID(t, v.ID); got.Email != "bob@example.com" {
		t.Fatalf("second user = %+v", got)
	}
	sameUser(t, "first user after a second one", e.byID(t, u.ID), u)
}

func testStoreDuplicateEmail(t *testing.T, e *accountEnv) {
	u := e.create(t, "ada@example.com")
	dup := e.newUser("ada@example.com")
	dup.PasswordHash = "other"
	wantErr(t, "CreateUser(same email)", e.store.CreateUser(t.Context(), dup), account.ErrEmailTaken)
	sameUser(t, "first user", e.byID(t, u.ID), u)
	_, err := e.store.UserByID(t.Context(), dup.ID)
	wantErr(t, "UserByID(refused duplicate)", err, account.ErrUserNotFound)
}

func testStoreReturnsCopies(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.newUser("ada@example.com")
	want := *u
	want.Profile = bytes.Clone(u.Profile)
	if err := e.store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	// The caller's values are the caller's.
	u.Profile[2] = 'X'
	u.PasswordHash = "changed"
	got := e.byID(t, want.ID)
	sameUser(t, "after changing the created value", got, &want)
	got.Profile[2] = 'Y'
	got.Email = "changed@example.com"
	sameUser(t, "after changing a returned value", e.byID(t, want.ID), &want)

	got, err := e.store.UserByEmail(ctx, want.Email)
	if err != nil {
		t.Fatal(err)
	}
	got.Profile[2] = 'Z'
	sameUser(t, "after changing a value returned by email", e.byID(t, want.ID), &want)

	upd, err := e.store.UpdateProfile(ctx, want.ID, want.UpdatedAt, func(p []byte) ([]byte, error) { return p, nil })
	if err != nil {
		t.Fatal(err)
	}
	upd.Profile[2] = 'W'
	sameUser(t, "after changing a value returned by UpdateProfile", e.byID(t, want.ID), &want)
}

func testStoreUpdateProfile(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	e.clock.Advance(time.Minute)
	now := e.clock.Now()
	var seen []byte
	got, err := e.store.UpdateProfile(ctx, u.ID, now, func(p []byte) ([]byte, error) {
		seen = bytes.Clone(p)
		return []byte(`{"name":"Ada","lang":"en"}`), nil
	})
	if err != nil {
		t.Fatalf("UpdateProfile: %v", err)
	}
	if string(seen) != string(u.Profile) {
		t.Errorf("update saw %q, want the stored profile %q", seen, u.Profile)
	}
	want := *u
	want.Profile = []byte(`{"name":"Ada","lang":"en"}`)
	want.UpdatedAt = now
	sameUser(t, "UpdateProfile result", got, &want)
	sameUser(t, "UserByID after UpdateProfile", e.byID(t, u.ID), &want)

	// An error from update writes nothing and comes back as is.
	errStop := errors.New("stop")
	e.clock.Advance(time.Minute)
	_, err = e.store.UpdateProfile(ctx, u.ID, e.clock.Now(), func([]byte) ([]byte, error) { return []byte(`{}`), errStop })
	wantErr(t, "UpdateProfile(failing update)", err, errStop)
	sameUser(t, "after a failed update", e.byID(t, u.ID), &want)

	_, err = e.store.UpdateProfile(ctx, "no-such-user", now, func(p []byte) ([]byte, error) { return p, nil })
	wantErr(t, "UpdateProfile(missing)", err, account.ErrUserNotFound)
}

func testStoreUpdateProfileConcurrent(t *testing.T, e *accountEnv) {
	u := e.create(t, "ada@example.com")
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := e.store.UpdateProfile(t.Context(), u.ID, e.clock.Now(), mergeKey(fmt.Sprintf("k%02d", i), i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent UpdateProfile: %v", err)
		}
	}
	obj := profileOf(t, e.byID(t, u.ID))
	for i := range n {
		if v, ok := obj[fmt.Sprintf("k%02d", i)]; !ok || v != float64(i) {
			t.Errorf("key k%02d = %v, %v after concurrent merges: a lost update", i, v, ok)
		}
	}
	if obj["name"] != "Ada" {
		t.Errorf("original key lost: %v", obj)
	}
}

func testStoreSetPasswordHash(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	e.clock.Advance(time.Minute)
	now := e.clock.Now()

	ok, err := e.store.SetPasswordHash(ctx, u.ID, "h1", "", now)
	if err != nil || !ok {
		t.Fatalf("SetPasswordHash(unconditional) = %v, %v; want true, nil", ok, err)
	}
	want := *u
	want.PasswordHash, want.PasswordChangedAt, want.UpdatedAt = "h1", now, now
	sameUser(t, "after SetPasswordHash", e.byID(t, u.ID), &want)

	// A reset token survives a conditional change that did not happen.
	if err := e.store.CreateResetToken(ctx, u.ID, resetHash(1), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	ok, err = e.store.SetPasswordHash(ctx, u.ID, "h2", "not-h1", e.clock.Now())
	if err != nil || ok {
		t.Fatalf("SetPasswordHash(ifHash stale) = %v, %v; want false, nil", ok, err)
	}
	sameUser(t, "after a refused SetPasswordHash", e.byID(t, u.ID), &want)
	if id, err := e.store.ConsumeResetToken(ctx, resetHash(1), now); err != nil || id != u.ID {
		t.Fatalf("reset token after a refused SetPasswordHash: %q, %v; want it usable", id, err)
	}

	now = e.clock.Now()
	ok, err = e.store.SetPasswordHash(ctx, u.ID, "h2", "h1", now)
	if err != nil || !ok {
		t.Fatalf("SetPasswordHash(ifHash current) = %v, %v; want true, nil", ok, err)
	}
	want.PasswordHash, want.PasswordChangedAt, want.UpdatedAt = "h2", now, now
	sameUser(t, "after a conditional SetPasswordHash", e.byID(t, u.ID), &want)

	_, err = e.store.SetPasswordHash(ctx, "no-such-user", "h", "", now)
	wantErr(t, "SetPasswordHash(missing)", err, account.ErrUserNotFound)
}

func testStoreSetPasswordHashRace(t *testing.T, e *accountEnv) {
	u := e.create(t, "ada@example.com")
	const n = 16
	var wins atomic.Int32
	var winner atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			h := fmt.Sprintf("new-%d", i)
			ok, err := e.store.SetPasswordHash(t.Context(), u.ID, h, u.PasswordHash, e.clock.Now())
			if err != nil {
				t.Errorf("SetPasswordHash: %v", err)
			}
			if ok {
				wins.Add(1)
				winner.Store(h)
			}
		})
	}
	wg.Wait()
	if w := wins.Load(); w != 1 {
		t.Fatalf("%d of %d concurrent SetPasswordHash with the same ifHash won, want exactly 1", w, n)
	}
	if got := e.byID(t, u.ID).PasswordHash; got != winner.Load() {
		t.Fatalf("stored hash %q, want the winner's %q", got, winner.Load())
	}
}

func testStoreDeleteUser(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	other := e.create(t, "bob@example.com")
	now := e.clock.Now()
	if _, err := e.store.UpdateLockout(ctx, u.ID, func(l account.Lockout) account.Lockout {
		return account.Lockout{Failures: 3, Locks: 1, LockedUntil: now.Add(time.Hour)}
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateResetToken(ctx, u.ID, resetHash(1), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateResetToken(ctx, other.ID, resetHash(2), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}

	if err := e.store.DeleteUser(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUser: %v", err)
	}
	_, err := e.store.UserByID(ctx, u.ID)
	wantErr(t, "UserByID(deleted)", err, account.ErrUserNotFound)
	_, err = e.store.UserByEmail(ctx, u.Email)
	wantErr(t, "UserByEmail(deleted)", err, account.ErrUserNotFound)
	_, err = e.store.ConsumeResetToken(ctx, resetHash(1), now)
	wantErr(t, "ConsumeResetToken(deleted user's)", err, account.ErrInvalidResetToken)
	_, err = e.store.UpdateLockout(ctx, u.ID, func(l account.Lockout) account.Lockout { return l })
	wantErr(t, "UpdateLockout(deleted)", err, account.ErrUserNotFound)
	wantErr(t, "DeleteUser(again)", e.store.DeleteUser(ctx, u.ID), account.ErrUserNotFound)

	// The other user is untouched.
	sameUser(t, "other user", e.byID(t, other.ID), other)
	if id, err := e.store.ConsumeResetToken(ctx, resetHash(2), now); err != nil || id != other.ID {
		t.Fatalf("other user's reset token: %q, %v", id, err)
	}

	// The email is free, and a user re-created under the same id starts
	// with a clean lockout state.
	again := e.newUser(u.Email)
	again.ID = u.ID
	if err := e.store.CreateUser(ctx, again); err != nil {
		t.Fatalf("CreateUser(deleted user's email and id): %v", err)
	}
	var seen account.Lockout
	if _, err := e.store.UpdateLockout(ctx, u.ID, func(l account.Lockout) account.Lockout { seen = l; return l }); err != nil {
		t.Fatal(err)
	}
	if seen.Failures != 0 || seen.Locks != 0 || !seen.LockedUntil.IsZero() {
		t.Fatalf("re-created user has lockout state %+v, want zero", seen)
	}
}

func sameLockout(t *testing.T, what string, got, want account.Lockout) {
	t.Helper()
	if got.Failures != want.Failures || got.Locks != want.Locks || !got.LockedUntil.Equal(want.LockedUntil) {
		t.Fatalf("%s = %+v, want %+v", what, got, want)
	}
}

func testStoreLockout(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	var seen account.Lockout
	peek := func(l account.Lockout) account.Lockout { seen = l; return l }

	got, err := e.store.UpdateLockout(ctx, u.ID, peek)
	if err != nil {
		t.Fatalf("UpdateLockout: %v", err)
	}
	sameLockout(t, "fresh state", seen, account.Lockout{})
	sameLockout(t, "fresh state returned", got, account.Lockout{})

	set := account.Lockout{Failures: 2, Locks: 3, LockedUntil: e.clock.Now().Add(90 * time.Second)}
	got, err = e.store.UpdateLockout(ctx, u.ID, func(account.Lockout) account.Lockout { return set })
	if err != nil {
		t.Fatal(err)
	}
	sameLockout(t, "UpdateLockout result", got, set)
	if _, err := e.store.UpdateLockout(ctx, u.ID, peek); err != nil {
		t.Fatal(err)
	}
	sameLockout(t, "stored state", seen, set)

	if _, err := e.store.UpdateLockout(ctx, u.ID, func(account.Lockout) account.Lockout { return account.Lockout{} }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateLockout(ctx, u.ID, peek); err != nil {
		t.Fatal(err)
	}
	sameLockout(t, "cleared state", seen, account.Lockout{})

	// Lockout state is per user.
	v := e.create(t, "bob@example.com")
	if _, err := e.store.UpdateLockout(ctx, u.ID, func(account.Lockout) account.Lockout { return set }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateLockout(ctx, v.ID, peek); err != nil {
		t.Fatal(err)
	}
	sameLockout(t, "other user's state", seen, account.Lockout{})

	_, err = e.store.UpdateLockout(ctx, "no-such-user", peek)
	wantErr(t, "UpdateLockout(missing)", err, account.ErrUserNotFound)
}

func testStoreLockoutConcurrent(t *testing.T, e *accountEnv) {
	u := e.create(t, "ada@example.com")
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := e.store.UpdateLockout(t.Context(), u.ID, func(l account.Lockout) account.Lockout {
				l.Failures++
				return l
			}); err != nil {
				t.Errorf("UpdateLockout: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := e.store.UpdateLockout(t.Context(), u.ID, func(l account.Lockout) account.Lockout { return l })
	if err != nil {
		t.Fatal(err)
	}
	if got.Failures != n {
		t.Fatalf("Failures = %d after %d concurrent increments, want %d", got.Failures, n, n)
	}
}

func testStoreResetTokens(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	v := e.create(t, "bob@example.com")
	now := e.clock.Now()
	consume := func(h [32]byte, at time.Time) (string, error) { return e.store.ConsumeResetToken(ctx, h, at) }
	createTok := func(userID string, h [32]byte, exp time.Time) {
		t.Helper()
		if err := e.store.CreateResetToken(ctx, userID, h, exp); err != nil {
			t.Fatalf("CreateResetToken: %v", err)
		}
	}

	// Single use.
	createTok(u.ID, resetHash(1), now.Add(30*time.Minute))
	if id, err := consume(resetHash(1), now); err != nil || id != u.ID {
		t.Fatalf("ConsumeResetToken = %q, %v; want %q", id, err, u.ID)
	}
	_, err := consume(resetHash(1), now)
	wantErr(t, "ConsumeResetToken(used)", err, account.ErrInvalidResetToken)
	_, err = consume(resetHash(99), now)
	wantErr(t, "ConsumeResetToken(unknown)", err, account.ErrInvalidResetToken)

	// Valid while it expires after now.
	exp := now.Add(time.Minute)
	createTok(u.ID, resetHash(2), exp)
	if id, err := consume(resetHash(2), exp.Add(-time.Microsecond)); err != nil || id != u.ID {
		t.Fatalf("ConsumeResetToken a microsecond before expiry = %q, %v", id, err)
	}
	createTok(u.ID, resetHash(3), exp)
	_, err = consume(resetHash(3), exp)
	wantErr(t, "ConsumeResetToken(at expiry)", err, account.ErrInvalidResetToken)
	createTok(u.ID, resetHash(4), exp)
	_, err = consume(resetHash(4), exp.Add(time.Hour))
	wantErr(t, "ConsumeResetToken(expired)", err, account.ErrInvalidResetToken)

	// A new token invalidates the user's older ones, not other users'.
	createTok(u.ID, resetHash(5), now.Add(time.Hour))
	createTok(v.ID, resetHash(6), now.Add(time.Hour))
	createTok(u.ID, resetHash(7), now.Add(time.Hour))
	_, err = consume(resetHash(5), now)
	wantErr(t, "ConsumeResetToken(replaced)", err, account.ErrInvalidResetToken)
	if id, err := consume(resetHash(7), now); err != nil || id != u.ID {
		t.Fatalf("ConsumeResetToken(newest) = %q, %v", id, err)
	}
	if id, err := consume(resetHash(6), now); err != nil || id != v.ID {
		t.Fatalf("ConsumeResetToken(other user's) = %q, %v", id, err)
	}

	// A password change deletes the user's tokens.
	createTok(u.ID, resetHash(8), now.Add(time.Hour))
	if _, err := e.store.SetPasswordHash(ctx, u.ID, "new", "", now); err != nil {
		t.Fatal(err)
	}
	_, err = consume(resetHash(8), now)
	wantErr(t, "ConsumeResetToken(after password change)", err, account.ErrInvalidResetToken)

	err = e.store.CreateResetToken(ctx, "no-such-user", resetHash(9), now.Add(time.Hour))
	wantErr(t, "CreateResetToken(missing user)", err, account.ErrUserNotFound)
}

func testStoreResetTokenConcurrent(t *testing.T, e *accountEnv) {
	u := e.create(t, "ada@example.com")
	now := e.clock.Now()
	if err := e.store.CreateResetToken(t.Context(), u.ID, resetHash(1), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			id, err := e.store.ConsumeResetToken(t.Context(), resetHash(1), now)
			switch {
			case err == nil && id == u.ID:
				wins.Add(1)
			case errors.Is(err, account.ErrInvalidResetToken):
			default:
				t.Errorf("ConsumeResetToken = %q, %v", id, err)
			}
		})
	}
	wg.Wait()
	if w := wins.Load(); w != 1 {
		t.Fatalf("%d of %d concurrent consumes of one token won, want exactly 1", w, n)
	}
}
