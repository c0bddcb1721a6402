package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
)

// NewAccountStore returns a fresh, empty account store for one test and
// arranges its cleanup with t.Cleanup.
type NewAccountStore func(t *testing.T) account.Store

// HashParams are the argon2id parameters of the Services the suite drives:
// the cheapest argon2 allows, so that the suite runs in seconds. They set
// only account.Config.HashParams; everything else keeps its default, and
// production keeps account.DefaultHashParams.
var HashParams = account.HashParams{Memory: 64, Time: 1, Parallelism: 1}

// RunAccounts runs the conformance suite of account.Store against stores
// made by newStore. It checks every Store method's contract directly, then
// drives an account.Service over the store with a fake clock: registration,
// sign-in, lockout, reset, profiles, deletion. Subtests run in parallel,
// each with a store of its own; run it with -race.
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
	// The Store contract, method by method.
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
	// The account rules through a Service.
	{"Service/Register", testServiceRegister},
	{"Service/Authenticate", testServiceAuthenticate},
	{"Service/Enumeration", testServiceEnumeration},
	{"Service/Lockout", testServiceLockout},
	{"Service/LockoutDoublingCapped", testServiceLockoutDoubling},
	{"Service/LockoutConcurrent", testServiceLockoutConcurrent},
	{"Service/LockoutCountsEverywhere", testServiceLockoutEverywhere},
	{"Service/ChangePassword", testServiceChangePassword},
	{"Service/Reset", testServiceReset},
	{"Service/ResetTokenLifecycle", testServiceResetLifecycle},
	{"Service/Profile", testServiceProfile},
	{"Service/Delete", testServiceDelete},
	{"Service/RehashOnLogin", testServiceRehash},
	{"Service/EmailChange", testServiceEmailChange},
}

// Passwords of the suite: none is common, none is an email.
const (
	pw1     = "plum-kettle-47-ravine"
	pw2     = "saffron-orbit-93-lantern"
	wrongPw = "not-the-password-at-all"
)

type accountEnv struct {
	store account.Store
	svc   *account.Service
	clock *Clock
}

func newAccountEnv(t *testing.T, newStore NewAccountStore) *accountEnv {
	t.Helper()
	e := &accountEnv{store: newStore(t), clock: NewClock()}
	e.svc = e.service(t, account.Config{})
	return e
}

// service returns a Service over e's store and clock with cfg; a zero
// cfg.HashParams means the suite's HashParams.
func (e *accountEnv) service(t *testing.T, cfg account.Config) *account.Service {
	t.Helper()
	if cfg.HashParams == (account.HashParams{}) {
		cfg.HashParams = HashParams
	}
	svc, err := account.NewService(e.store, cfg, account.WithClock(e.clock.Now))
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	return svc
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

// ---- Service ----

func (e *accountEnv) register(t *testing.T, email, pw string) *account.User {
	t.Helper()
	u, err := e.svc.Register(t.Context(), email, pw, nil)
	if err != nil {
		t.Fatalf("Register(%s): %v", email, err)
	}
	return u
}

func (e *accountEnv) signIn(t *testing.T, svc *account.Service, email, pw string) *account.User {
	t.Helper()
	u, err := svc.Authenticate(t.Context(), email, pw)
	if err != nil {
		t.Fatalf("Authenticate(%s): %v, want success", email, err)
	}
	if u.PasswordHash != "" {
		t.Fatal("Authenticate returned the password hash")
	}
	return u
}

// locked checks that err is a *LockedError until want.
func locked(t *testing.T, what string, err error, want time.Time) {
	t.Helper()
	var le *account.LockedError
	if !errors.As(err, &le) || !errors.Is(err, account.ErrLocked) {
		t.Fatalf("%s: got %v, want a *LockedError", what, err)
	}
	if !le.Until.Equal(want) {
		t.Fatalf("%s: locked until %v, want %v", what, le.Until, want)
	}
}

func (e *accountEnv) fail(t *testing.T, svc *account.Service, email string, n int) {
	t.Helper()
	for i := range n {
		_, err := svc.Authenticate(t.Context(), email, wrongPw)
		wantErr(t, fmt.Sprintf("failed login %d", i+1), err, account.ErrInvalidCredentials)
	}
}

func testServiceRegister(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	now := e.clock.Now()
	u, err := e.svc.Register(ctx, "  Ada@Example.COM ", pw1, nil)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if u.ID == "" || u.Email != "ada@example.com" || string(u.Profile) != "{}" || u.PasswordHash != "" {
		t.Fatalf("Register = %+v; want an id, the normalised email, profile {} and no hash", u)
	}
	if !u.CreatedAt.Equal(now) || !u.UpdatedAt.Equal(now) || !u.PasswordChangedAt.Equal(now) {
		t.Errorf("Register times = %v, %v, %v; want %v", u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt, now)
	}
	stored := e.byID(t, u.ID)
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$"+HashParams.String()+"$") {
		t.Errorf("stored hash %q is not argon2id with the configured parameters", stored.PasswordHash)
	}
	if strings.Contains(stored.PasswordHash, pw1) {
		t.Fatal("the stored hash contains the password")
	}

	_, err = e.svc.Register(ctx, "ADA@example.com", pw2, nil)
	wantErr(t, "Register(same email, other case)", err, account.ErrEmailTaken)
	_, err = e.svc.Register(ctx, "not-an-email", pw1, nil)
	wantErr(t, "Register(bad email)", err, account.ErrInvalidEmail)
	_, err = e.svc.Register(ctx, "bob@example.com", "short", nil)
	wantErr(t, "Register(short password)", err, account.ErrWeakPassword)
	_, err = e.svc.Register(ctx, "bob@example.com", "password123", nil)
	wantErr(t, "Register(common password)", err, account.ErrWeakPassword)
	_, err = e.svc.Register(ctx, "bob.builder@example.com", "Bob.Builder", nil)
	wantErr(t, "Register(password = local part)", err, account.ErrWeakPassword)
	for _, p := range []string{`[1,2]`, `"x"`, `null`, `{"a":`, `{} {}`} {
		_, err = e.svc.Register(ctx, "bob@example.com", pw1, []byte(p))
		wantErr(t, "Register(profile "+p+")", err, account.ErrInvalidProfile)
	}
	if _, err := e.store.UserByEmail(ctx, "bob@example.com"); !errors.Is(err, account.ErrUserNotFound) {
		t.Fatalf("a refused registration stored a user: %v", err)
	}

	v, err := e.svc.Register(ctx, "bob@example.com", pw1, []byte(` {"name": "Bob", "tags": ["a", "b"]} `))
	if err != nil {
		t.Fatalf("Register(with profile): %v", err)
	}
	if p := profileOf(t, v); p["name"] != "Bob" || len(p["tags"].([]any)) != 2 {
		t.Fatalf("profile = %s", v.Profile)
	}
	got, err := e.svc.User(ctx, v.ID)
	if err != nil || got.Email != "bob@example.com" || got.PasswordHash != "" {
		t.Fatalf("User = %+v, %v", got, err)
	}
	got, err = e.svc.UserByEmail(ctx, " BOB@example.com")
	if err != nil || got.ID != v.ID || got.PasswordHash != "" {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	_, err = e.svc.UserByEmail(ctx, "carol@example.com")
	wantErr(t, "UserByEmail(unknown)", err, account.ErrUserNotFound)
}

func testServiceAuthenticate(t *testing.T, e *accountEnv) {
	u := e.register(t, "ada@example.com", pw1)
	for _, email := range []string{"ada@example.com", "ADA@example.com", "  ada@EXAMPLE.com\t"} {
		if got := e.signIn(t, e.svc, email, pw1); got.ID != u.ID {
			t.Fatalf("Authenticate(%q) = user %s, want %s", email, got.ID, u.ID)
		}
	}
	_, err := e.svc.Authenticate(t.Context(), "ada@example.com", wrongPw)
	wantErr(t, "Authenticate(wrong password)", err, account.ErrInvalidCredentials)
	_, err = e.svc.Authenticate(t.Context(), "ada@example.com", strings.ToUpper(pw1))
	wantErr(t, "Authenticate(password in other case)", err, account.ErrInvalidCredentials)
	_, err = e.svc.Authenticate(t.Context(), "ada@example.com", "")
	wantErr(t, "Authenticate(empty password)", err, account.ErrInvalidCredentials)

	if _, err := e.svc.VerifyPassword(t.Context(), u.ID, pw1); err != nil {
		t.Fatalf("VerifyPassword: %v", err)
	}
	_, err = e.svc.VerifyPassword(t.Context(), u.ID, wrongPw)
	wantErr(t, "VerifyPassword(wrong)", err, account.ErrInvalidCredentials)
}

func testServiceEnumeration(t *testing.T, e *accountEnv) {
	e.register(t, "ada@example.com", pw1)
	_, wrong := e.svc.Authenticate(t.Context(), "ada@example.com", wrongPw)
	for _, email := range []string{"nobody@example.com", "not an email", ""} {
		_, err := e.svc.Authenticate(t.Context(), email, wrongPw)
		if !errors.Is(err, account.ErrInvalidCredentials) || err.Error() != wrong.Error() ||
			fmt.Sprintf("%T", err) != fmt.Sprintf("%T", wrong) {
			t.Fatalf("Authenticate(%q) = %v (%T); want the wrong-password error %v (%T)", email, err, err, wrong, wrong)
		}
	}
	// Unknown emails never lock: there is nothing to lock.
	for range 10 {
		_, err := e.svc.Authenticate(t.Context(), "nobody@example.com", wrongPw)
		wantErr(t, "Authenticate(unknown, repeatedly)", err, account.ErrInvalidCredentials)
	}
	// A reset for an unknown email looks like nothing happened.
	tok, u, exp, err := e.svc.RequestReset(t.Context(), "nobody@example.com")
	if tok != "" || u != nil || !exp.IsZero() || err != nil {
		t.Fatalf("RequestReset(unknown) = %q, %v, %v, %v; want zero values", tok, u, exp, err)
	}
}

func testServiceLockout(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.register(t, "ada@example.com", pw1)
	other := e.register(t, "bob@example.com", pw2)

	// The attempt that reaches the threshold still says "invalid".
	e.fail(t, e.svc, u.Email, 5)
	until := e.clock.Now().Add(account.DefaultLockoutDuration)

	// From then on: locked, with the right password too.
	_, err := e.svc.Authenticate(ctx, u.Email, pw1)
	locked(t, "Authenticate(right password, locked)", err, until)
	var le *account.LockedError
	errors.As(err, &le)
	if got := le.RetryAfter(e.clock.Now()); got != time.Minute {
		t.Errorf("RetryAfter = %v, want 1m", got)
	}
	// Failures while locked are not counted and do not extend the lock.
	e.clock.Advance(30 * time.Second)
	for range 10 {
		_, err = e.svc.Authenticate(ctx, u.Email, wrongPw)
		locked(t, "Authenticate(wrong password, locked)", err, until)
	}
	_, err = e.svc.VerifyPassword(ctx, u.ID, pw1)
	locked(t, "VerifyPassword(locked)", err, until)
	// Other accounts are not affected.
	e.signIn(t, e.svc, other.Email, pw2)

	// Still locked a microsecond before the end; free at the end.
	e.clock.Advance(30*time.Second - time.Microsecond)
	_, err = e.svc.Authenticate(ctx, u.Email, pw1)
	locked(t, "Authenticate(a microsecond before the lock ends)", err, until)
	e.clock.Advance(time.Microsecond)
	e.signIn(t, e.svc, u.Email, pw1)

	// The success cleared everything: 4 failures do not lock, and the
	// next lock is a first one again.
	e.fail(t, e.svc, u.Email, 4)
	e.signIn(t, e.svc, u.Email, pw1)
	e.fail(t, e.svc, u.Email, 5)
	_, err = e.svc.Authenticate(ctx, u.Email, pw1)
	locked(t, "Authenticate(after a fresh lock)", err, e.clock.Now().Add(account.DefaultLockoutDuration))

	// A lockout can be switched off.
	off := e.service(t, account.Config{LockoutThreshold: -1})
	e.fail(t, off, other.Email, 20)
	e.signIn(t, off, other.Email, pw2)
}

func testServiceLockoutDoubling(t *testing.T, e *accountEnv) {
	u := e.register(t, "ada@example.com", pw1)
	// Default configuration: 1m, doubling, capped at 1h.
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60}
	for i, m := range want {
		e.fail(t, e.svc, u.Email, account.DefaultLockoutThreshold)
		d := m * time.Minute
		_, err := e.svc.Authenticate(t.Context(), u.Email, pw1)
		locked(t, fmt.Sprintf("lock %d", i+1), err, e.clock.Now().Add(d))
		e.clock.Advance(d)
	}
	// A success resets the doubling.
	e.signIn(t, e.svc, u.Email, pw1)
	e.fail(t, e.svc, u.Email, account.DefaultLockoutThreshold)
	_, err := e.svc.Authenticate(t.Context(), u.Email, pw1)
	locked(t, "lock after a success", err, e.clock.Now().Add(time.Minute))

	// Other settings are honoured.
	svc := e.service(t, account.Config{LockoutThreshold: 2, LockoutDuration: 10 * time.Second, LockoutMaxDuration: 25 * time.Second})
	v := e.register(t, "bob@example.com", pw2)
	for i, d := range []time.Duration{10 * time.Second, 20 * time.Second, 25 * time.Second} {
		e.fail(t, svc, v.Email, 2)
		_, err := svc.Authenticate(t.Context(), v.Email, pw2)
		locked(t, fmt.Sprintf("custom lock %d", i+1), err, e.clock.Now().Add(d))
		e.clock.Advance(d)
	}
}

func testServiceLockoutConcurrent(t *testing.T, e *accountEnv) {
	u := e.register(t, "ada@example.com", pw1)
	var wg sync.WaitGroup
	for range account.DefaultLockoutThreshold {
		wg.Go(func() {
			_, err := e.svc.Authenticate(t.Context(), u.Email, wrongPw)
			if !errors.Is(err, account.ErrInvalidCredentials) {
				t.Errorf("concurrent failed login: %v", err)
			}
		})
	}
	wg.Wait()
	_, err := e.svc.Authenticate(t.Context(), u.Email, pw1)
	locked(t, "after concurrent failures", err, e.clock.Now().Add(time.Minute))
}

func testServiceLockoutEverywhere(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.register(t, "ada@example.com", pw1)
	for range 2 {
		_, err := e.svc.VerifyPassword(ctx, u.ID, wrongPw)
		wantErr(t, "VerifyPassword(wrong)", err, account.ErrInvalidCredentials)
	}
	for range 2 {
		_, err := e.svc.ChangePassword(ctx, u.ID, wrongPw, pw2)
		wantErr(t, "ChangePassword(wrong current)", err, account.ErrInvalidCredentials)
	}
	wantErr(t, "Delete(wrong)", e.svc.Delete(ctx, u.ID, wrongPw), account.ErrInvalidCredentials)
	until := e.clock.Now().Add(time.Minute)
	_, err := e.svc.Authenticate(ctx, u.Email, pw1)
	locked(t, "Authenticate after 5 failures elsewhere", err, until)
	_, err = e.svc.ChangePassword(ctx, u.ID, pw1, pw2)
	locked(t, "ChangePassword(locked)", err, until)
	locked(t, "Delete(locked)", e.svc.Delete(ctx, u.ID, pw1), until)
	e.byID(t, u.ID) // still there
	e.clock.Advance(time.Minute)
	e.signIn(t, e.svc, u.Email, pw1)
}

func testServiceChangePassword(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.register(t, "ada@example.com", pw1)
	_, err := e.svc.ChangePassword(ctx, u.ID, pw1, "short")
	wantErr(t, "ChangePassword(weak new)", err, account.ErrWeakPassword)
	_, err = e.svc.ChangePassword(ctx, u.ID, pw1, "ada@example.com")
	wantErr(t, "ChangePassword(new = email)", err, account.ErrWeakPassword)
	e.signIn(t, e.svc, u.Email, pw1)

	e.clock.Advance(time.Minute)
	got, err := e.svc.ChangePassword(ctx, u.ID, pw1, pw2)
	if err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if got.PasswordHash != "" || !got.PasswordChangedAt.Equal(e.clock.Now()) {
		t.Fatalf("ChangePassword = %+v; want no hash and PasswordChangedAt now", got)
	}
	_, err = e.svc.Authenticate(ctx, u.Email, pw1)
	wantErr(t, "Authenticate(old password)", err, account.ErrInvalidCredentials)
	e.signIn(t, e.svc, u.Email, pw2)
	_, err = e.svc.ChangePassword(ctx, "no-such-user", pw1, pw2)
	wantErr(t, "ChangePassword(missing user)", err, account.ErrUserNotFound)
}

func testServiceReset(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.register(t, "ada@example.com", pw1)
	// Lock the account: a reset proves control of the email and unlocks.
	e.fail(t, e.svc, u.Email, account.DefaultLockoutThreshold)

	tok, got, exp, err := e.svc.RequestReset(ctx, " ADA@example.com")
	if err != nil {
		t.Fatalf("RequestReset: %v", err)
	}
	if !sessiond.CheckSecret(tok, account.ResetTokenPrefix) {
		t.Fatalf("reset token %q is not a well-formed %s secret", tok, account.ResetTokenPrefix)
	}
	if got == nil || got.ID != u.ID || got.PasswordHash != "" {
		t.Fatalf("RequestReset user = %+v", got)
	}
	if !exp.Equal(e.clock.Now().Add(account.DefaultResetTokenTTL)) {
		t.Fatalf("RequestReset expiry = %v, want now + %v", exp, account.DefaultResetTokenTTL)
	}
	_, _, _, err = e.svc.RequestReset(ctx, "not an email")
	wantErr(t, "RequestReset(malformed)", err, account.ErrInvalidEmail)

	// A weak password does not use the token up.
	_, err = e.svc.ConfirmReset(ctx, tok, "short")
	wantErr(t, "ConfirmReset(weak)", err, account.ErrWeakPassword)
	_, err = e.svc.ConfirmReset(ctx, tok, "qwerty123")
	wantErr(t, "ConfirmReset(common)", err, account.ErrWeakPassword)

	e.clock.Advance(time.Minute)
	got, err = e.svc.ConfirmReset(ctx, tok, pw2)
	if err != nil {
		t.Fatalf("ConfirmReset: %v", err)
	}
	if got.ID != u.ID || got.PasswordHash != "" || !got.PasswordChangedAt.Equal(e.clock.Now()) {
		t.Fatalf("ConfirmReset = %+v", got)
	}
	// The new password works at once, lock or not; the old one does not.
	e.signIn(t, e.svc, u.Email, pw2)
	_, err = e.svc.Authenticate(ctx, u.Email, pw1)
	wantErr(t, "Authenticate(old password)", err, account.ErrInvalidCredentials)

	// Single use.
	_, err = e.svc.ConfirmReset(ctx, tok, "another-fine-passphrase")
	wantErr(t, "ConfirmReset(used token)", err, account.ErrInvalidResetToken)

	// Malformed tokens are refused (before any lookup).
	session, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	typo := []byte(tok)
	if typo[10] = 'A'; tok[10] == 'A' {
		typo[10] = 'B'
	}
	for _, bad := range []string{"", "sdp_", "sdp_abc", string(typo), session, strings.ToUpper(tok)} {
		_, err = e.svc.ConfirmReset(ctx, bad, pw1)
		wantErr(t, fmt.Sprintf("ConfirmReset(%q)", bad), err, account.ErrInvalidResetToken)
	}
	// Well-formed but unknown.
	unknown, _ := sessiond.NewSecret(nil, account.ResetTokenPrefix)
	_, err = e.svc.ConfirmReset(ctx, unknown, pw1)
	wantErr(t, "ConfirmReset(unknown)", err, account.ErrInvalidResetToken)
}

func testServiceResetLifecycle(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.register(t, "ada@example.com", pw1)
	request := func() string {
		t.Helper()
		tok, _, _, err := e.svc.RequestReset(ctx, u.Email)
		if err != nil || tok == "" {
			t.Fatalf("RequestReset = %q, %v", tok, err)
		}
		return tok
	}

	// Expiry.
	tok := request()
	e.clock.Advance(account.DefaultResetTokenTTL)
	_, err := e.svc.ConfirmReset(ctx, tok, pw2)
	wantErr(t, "ConfirmReset(expired)", err, account.ErrInvalidResetToken)

	// A new token invalidates the older one.
	old := request()
	tok = request()
	if old == tok {
		t.Fatal("two reset tokens are equal")
	}
	_, err = e.svc.ConfirmReset(ctx, old, pw2)
	wantErr(t, "ConfirmReset(replaced token)", err, account.ErrInvalidResetToken)
	if _, err := e.svc.ConfirmReset(ctx, tok, pw2); err != nil {
		t.Fatalf("ConfirmReset(newest token): %v", err)
	}

	// A password change invalidates outstanding tokens.
	tok = request()
	if _, err := e.svc.ChangePassword(ctx, u.ID, pw2, pw1); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ConfirmReset(ctx, tok, pw2)
	wantErr(t, "ConfirmReset(after a password change)", err, account.ErrInvalidResetToken)

	// Tokens issued for the admin API work the same way.
	_, _, err = e.svc.IssueResetToken(ctx, "no-such-user")
	wantErr(t, "IssueResetToken(missing)", err, account.ErrUserNotFound)
	tok, exp, err := e.svc.IssueResetToken(ctx, u.ID)
	if err != nil || !exp.Equal(e.clock.Now().Add(account.DefaultResetTokenTTL)) {
		t.Fatalf("IssueResetToken = %v, %v", exp, err)
	}
	if _, err := e.svc.ConfirmReset(ctx, tok, pw2); err != nil {
		t.Fatalf("ConfirmReset(issued token): %v", err)
	}
	e.signIn(t, e.svc, u.Email, pw2)

	// Concurrent confirmations of one token: exactly one wins.
	tok = request()
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := e.svc.ConfirmReset(ctx, tok, fmt.Sprintf("racing-passphrase-%d", i))
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, account.ErrInvalidResetToken):
				t.Errorf("concurrent ConfirmReset: %v", err)
			}
		})
	}
	wg.Wait()
	if w := wins.Load(); w != 1 {
		t.Fatalf("%d concurrent ConfirmReset of one token won, want 1", w)
	}
}

func testServiceProfile(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u, err := e.svc.Register(ctx, "ada@example.com", pw1, []byte(`{"name":"Ada","lang":"en"}`))
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	got, err := e.svc.UpdateProfile(ctx, u.ID, map[string]json.RawMessage{
		"lang":  json.RawMessage(`null`),
		"theme": json.RawMessage(` "dark" `),
		"prefs": json.RawMessage(`{"a": [1, 2]}`),
	})
	if err != nil {
		t.Fatalf("UpdateProfile: %v", err)
	}
	p := profileOf(t, got)
	if _, ok := p["lang"]; ok || p["name"] != "Ada" || p["theme"] != "dark" || p["prefs"] == nil || len(p) != 3 {
		t.Fatalf("profile after merge = %s", got.Profile)
	}
	if got.PasswordHash != "" || !got.UpdatedAt.Equal(e.clock.Now()) {
		t.Fatalf("UpdateProfile = %+v; want no hash and UpdatedAt now", got)
	}
	if s := e.byID(t, u.ID); !bytes.Equal(s.Profile, got.Profile) {
		t.Fatalf("stored profile %s, returned %s", s.Profile, got.Profile)
	}

	// Refusals change nothing.
	_, err = e.svc.UpdateProfile(ctx, u.ID, map[string]json.RawMessage{"x": json.RawMessage(`{bad`)})
	wantErr(t, "UpdateProfile(not JSON)", err, account.ErrInvalidProfile)
	big := json.RawMessage(`"` + strings.Repeat("x", account.DefaultMaxProfileBytes) + `"`)
	_, err = e.svc.UpdateProfile(ctx, u.ID, map[string]json.RawMessage{"big": big})
	wantErr(t, "UpdateProfile(too large)", err, account.ErrInvalidProfile)
	if s := e.byID(t, u.ID); !bytes.Equal(s.Profile, got.Profile) {
		t.Fatalf("a refused update changed the profile to %s", s.Profile)
	}
	_, err = e.svc.Register(ctx, "bob@example.com", pw1, []byte(`{"big":`+string(big)+`}`))
	wantErr(t, "Register(profile too large)", err, account.ErrInvalidProfile)
	_, err = e.svc.UpdateProfile(ctx, "no-such-user", map[string]json.RawMessage{"a": json.RawMessage(`1`)})
	wantErr(t, "UpdateProfile(missing)", err, account.ErrUserNotFound)

	// Concurrent merges of different keys all land.
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := e.svc.UpdateProfile(ctx, u.ID, map[string]json.RawMessage{fmt.Sprintf("k%02d", i): json.RawMessage(fmt.Sprint(i))})
			if err != nil {
				t.Errorf("concurrent UpdateProfile: %v", err)
			}
		})
	}
	wg.Wait()
	p = profileOf(t, e.byID(t, u.ID))
	if len(p) != 3+n {
		t.Fatalf("profile has %d keys after %d concurrent merges, want %d: %v", len(p), n, 3+n, p)
	}
}

func testServiceDelete(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.register(t, "ada@example.com", pw1)
	wantErr(t, "Delete(wrong password)", e.svc.Delete(ctx, u.ID, wrongPw), account.ErrInvalidCredentials)
	e.byID(t, u.ID)
	if err := e.svc.Delete(ctx, u.ID, pw1); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := e.svc.User(ctx, u.ID)
	wantErr(t, "User(deleted)", err, account.ErrUserNotFound)
	_, err = e.svc.Authenticate(ctx, u.Email, pw1)
	wantErr(t, "Authenticate(deleted)", err, account.ErrInvalidCredentials)
	wantErr(t, "Delete(again)", e.svc.Delete(ctx, u.ID, pw1), account.ErrUserNotFound)

	// The email can be registered again, as a new user.
	v := e.register(t, u.Email, pw2)
	if v.ID == u.ID {
		t.Fatal("re-registration reused the deleted user's id")
	}
	if err := e.svc.DeleteByAdmin(ctx, v.ID); err != nil {
		t.Fatalf("DeleteByAdmin: %v", err)
	}
	wantErr(t, "DeleteByAdmin(again)", e.svc.DeleteByAdmin(ctx, v.ID), account.ErrUserNotFound)
	_, err = e.svc.UserByEmail(ctx, u.Email)
	wantErr(t, "UserByEmail(deleted by admin)", err, account.ErrUserNotFound)
}

func testServiceRehash(t *testing.T, e *accountEnv) {
	u := e.register(t, "ada@example.com", pw1)
	old := e.byID(t, u.ID).PasswordHash
	stronger := HashParams
	stronger.Memory *= 2
	stronger.Time++
	svc := e.service(t, account.Config{HashParams: stronger})

	// A wrong password upgrades nothing.
	_, err := svc.Authenticate(t.Context(), u.Email, wrongPw)
	wantErr(t, "Authenticate(wrong)", err, account.ErrInvalidCredentials)
	if h := e.byID(t, u.ID).PasswordHash; h != old {
		t.Fatal("a failed sign-in changed the hash")
	}

	e.signIn(t, svc, u.Email, pw1)
	h := e.byID(t, u.ID).PasswordHash
	if !strings.HasPrefix(h, "$argon2id$v=19$"+stronger.String()+"$") {
		t.Fatalf("hash after sign-in with stronger parameters = %q, want them", h)
	}
	// The password still works, under both configurations, and is not
	// upgraded again (nor downgraded).
	e.signIn(t, svc, u.Email, pw1)
	e.signIn(t, e.svc, u.Email, pw1)
	if got := e.byID(t, u.ID).PasswordHash; got != h {
		t.Fatal("hash changed again without a reason")
	}
}
