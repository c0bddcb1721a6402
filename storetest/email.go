package storetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/account"
)

// Changes of email: Store.CreateEmailChange and ApplyEmailChange. The
// Service's RequestEmailChange and ConfirmEmailChange over them are tested
// in package account.

func changeHash(n byte) [32]byte {
	var h [32]byte
	h[0], h[31] = n, 0x5a
	return h
}

// cancelHash is the cancellation hash the tests pair with confirmation
// hash h.
func cancelHash(h [32]byte) [32]byte {
	h[1] = 0xc0
	return h
}

// testStoreEmailChangeCancel: a pending change is voided by its
// cancellation hash (once, not after it expired) and by the user's id, and
// cannot be applied afterwards; a new change replaces the old one's
// cancellation hash too.
func testStoreEmailChangeCancel(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	now := e.clock.Now()
	if err := e.store.CreateEmailChange(ctx, u.ID, "thief@example.net", changeHash(1), cancelHash(changeHash(1)), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.store.CancelEmailChange(ctx, changeHash(1), now) // the confirmation hash cancels nothing
	wantErr(t, "CancelEmailChange(confirmation hash)", err, account.ErrInvalidEmailChangeToken)
	userID, to, err := e.store.CancelEmailChange(ctx, cancelHash(changeHash(1)), now)
	if err != nil || userID != u.ID || to != "thief@example.net" {
		t.Fatalf("CancelEmailChange = %q, %q, %v", userID, to, err)
	}
	_, _, err = e.store.ApplyEmailChange(ctx, changeHash(1), now)
	wantErr(t, "ApplyEmailChange after the cancellation", err, account.ErrInvalidEmailChangeToken)
	_, _, err = e.store.CancelEmailChange(ctx, cancelHash(changeHash(1)), now)
	wantErr(t, "CancelEmailChange twice", err, account.ErrInvalidEmailChangeToken)

	// By the user: every pending change goes, and only the user's.
	v := e.create(t, "bob@example.com")
	for i, id := range []string{u.ID, v.ID} {
		h := changeHash(byte(2 + i))
		if err := e.store.CreateEmailChange(ctx, id, "new"+string(rune('a'+i))+"@example.com", h, cancelHash(h), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if had, err := e.store.CancelEmailChanges(ctx, u.ID); err != nil || !had {
		t.Fatalf("CancelEmailChanges = %v, %v", had, err)
	}
	if had, err := e.store.CancelEmailChanges(ctx, u.ID); err != nil || had {
		t.Fatalf("CancelEmailChanges again = %v, %v", had, err)
	}
	_, _, err = e.store.ApplyEmailChange(ctx, changeHash(2), now)
	wantErr(t, "ApplyEmailChange of a voided change", err, account.ErrInvalidEmailChangeToken)
	_, _, err = e.store.CancelEmailChange(ctx, cancelHash(changeHash(2)), now)
	wantErr(t, "CancelEmailChange of a voided change", err, account.ErrInvalidEmailChangeToken)
	if had, err := e.store.CancelEmailChanges(ctx, "no-such-user"); err != nil || had {
		t.Fatalf("CancelEmailChanges(missing user) = %v, %v", had, err)
	}
	if _, _, err := e.store.ApplyEmailChange(ctx, changeHash(3), now); err != nil {
		t.Fatalf("another user's change was voided: %v", err)
	}

	// Expired: refused, and gone.
	h := changeHash(9)
	if err := e.store.CreateEmailChange(ctx, u.ID, "late@example.com", h, cancelHash(h), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.store.CancelEmailChange(ctx, cancelHash(h), now.Add(time.Minute))
	wantErr(t, "CancelEmailChange(expired)", err, account.ErrInvalidEmailChangeToken)
	if had, _ := e.store.CancelEmailChanges(ctx, u.ID); had {
		t.Fatal("an expired change was cancelled but stayed")
	}
}

func testStoreEmailChange(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.create(t, "ada@example.com")
	v := e.create(t, "bob@example.com")
	now := e.clock.Now()
	create := func(userID, email string, h [32]byte, exp time.Time) {
		t.Helper()
		if err := e.store.CreateEmailChange(ctx, userID, email, h, cancelHash(h), exp); err != nil {
			t.Fatalf("CreateEmailChange: %v", err)
		}
	}
	apply := func(h [32]byte, at time.Time) (*account.User, string, error) {
		return e.store.ApplyEmailChange(ctx, h, at)
	}

	// Applied once: the email changes, the old one is free, reset tokens go.
	if err := e.store.CreateResetToken(ctx, u.ID, resetHash(1), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	create(u.ID, "ada@new.example", changeHash(1), now.Add(time.Hour))
	if got := e.byID(t, u.ID); got.Email != "ada@example.com" {
		t.Fatalf("a pending change changed the email to %q", got.Email)
	}
	later := now.Add(time.Minute)
	got, old, err := apply(changeHash(1), later)
	if err != nil || old != "ada@example.com" || got.ID != u.ID || got.Email != "ada@new.example" || !got.UpdatedAt.Equal(later) {
		t.Fatalf("ApplyEmailChange = %+v, %q, %v", got, old, err)
	}
	want := *u
	want.Email, want.UpdatedAt = "ada@new.example", later
	sameUser(t, "UserByID after the change", e.byID(t, u.ID), &want)
	if x, err := e.store.UserByEmail(ctx, "ada@new.example"); err != nil || x.ID != u.ID {
		t.Fatalf("UserByEmail(new) = %v, %v", x, err)
	}
	_, err = e.store.UserByEmail(ctx, "ada@example.com")
	wantErr(t, "UserByEmail(old)", err, account.ErrUserNotFound)
	_, err = e.store.ConsumeResetToken(ctx, resetHash(1), later)
	wantErr(t, "a reset token sent to the old address", err, account.ErrInvalidResetToken)
	_, _, err = apply(changeHash(1), later)
	wantErr(t, "ApplyEmailChange(used)", err, account.ErrInvalidEmailChangeToken)
	_, _, err = apply(changeHash(99), later)
	wantErr(t, "ApplyEmailChange(unknown)", err, account.ErrInvalidEmailChangeToken)
	// The old address is free for someone else.
	e.create(t, "ada@example.com")

	// Valid while it expires after now; an expired one is gone for good.
	exp := now.Add(time.Minute)
	create(u.ID, "ada2@example.com", changeHash(2), exp)
	_, _, err = apply(changeHash(2), exp)
	wantErr(t, "ApplyEmailChange(at expiry)", err, account.ErrInvalidEmailChangeToken)
	_, _, err = apply(changeHash(2), exp.Add(-time.Second))
	wantErr(t, "ApplyEmailChange(after an expired attempt)", err, account.ErrInvalidEmailChangeToken)
	create(u.ID, "ada2@example.com", changeHash(3), exp)
	if got, _, err := apply(changeHash(3), exp.Add(-time.Microsecond)); err != nil || got.Email != "ada2@example.com" {
		t.Fatalf("ApplyEmailChange a microsecond before expiry = %v, %v", got, err)
	}

	// A new change replaces the user's older one, not another user's.
	create(u.ID, "one@example.com", changeHash(4), now.Add(time.Hour))
	create(v.ID, "bob@new.example", changeHash(5), now.Add(time.Hour))
	create(u.ID, "two@example.com", changeHash(6), now.Add(time.Hour))
	_, _, err = apply(changeHash(4), now)
	wantErr(t, "ApplyEmailChange(replaced)", err, account.ErrInvalidEmailChangeToken)
	if got, _, err := apply(changeHash(5), now); err != nil || got.ID != v.ID || got.Email != "bob@new.example" {
		t.Fatalf("ApplyEmailChange(other user's) = %v, %v", got, err)
	}

	// Taken meanwhile: ErrEmailTaken, nothing changes, the change stays.
	e.create(t, "two@example.com")
	_, _, err = apply(changeHash(6), now)
	wantErr(t, "ApplyEmailChange(taken)", err, account.ErrEmailTaken)
	if got := e.byID(t, u.ID); got.Email != "ada2@example.com" {
		t.Fatalf("a refused change set the email to %q", got.Email)
	}
	_, _, err = apply(changeHash(6), now)
	wantErr(t, "ApplyEmailChange(still taken)", err, account.ErrEmailTaken)

	// Deleting the user deletes its pending changes.
	create(v.ID, "bob3@example.com", changeHash(7), now.Add(time.Hour))
	if err := e.store.DeleteUser(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = apply(changeHash(7), now)
	wantErr(t, "ApplyEmailChange(deleted user)", err, account.ErrInvalidEmailChangeToken)
	err = e.store.CreateEmailChange(ctx, "no-such-user", "x@example.com", changeHash(8), cancelHash(changeHash(8)), now.Add(time.Hour))
	wantErr(t, "CreateEmailChange(missing user)", err, account.ErrUserNotFound)
}

func testStoreEmailChangeConcurrent(t *testing.T, e *accountEnv) {
	u := e.create(t, "ada@example.com")
	v := e.create(t, "bob@example.com")
	now := e.clock.Now()
	// One token applied many times at once: one winner.
	if err := e.store.CreateEmailChange(t.Context(), u.ID, "ada@new.example", changeHash(1), cancelHash(changeHash(1)), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wins atomic.Int32
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			got, _, err := e.store.ApplyEmailChange(t.Context(), changeHash(1), now)
			switch {
			case err == nil && got.Email == "ada@new.example":
				wins.Add(1)
			case errors.Is(err, account.ErrInvalidEmailChangeToken):
			default:
				t.Errorf("ApplyEmailChange = %v, %v", got, err)
			}
		})
	}
	wg.Wait()
	if w := wins.Load(); w != 1 {
		t.Fatalf("%d of %d concurrent applications of one change won, want exactly 1", w, n)
	}
	// Two users' changes to one address at once: one gets it.
	if err := e.store.CreateEmailChange(t.Context(), u.ID, "both@example.com", changeHash(2), cancelHash(changeHash(2)), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateEmailChange(t.Context(), v.ID, "both@example.com", changeHash(3), cancelHash(changeHash(3)), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var taken atomic.Int32
	wins.Store(0)
	for _, h := range [][32]byte{changeHash(2), changeHash(3)} {
		wg.Go(func() {
			_, _, err := e.store.ApplyEmailChange(t.Context(), h, now)
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, account.ErrEmailTaken):
				taken.Add(1)
			default:
				t.Errorf("ApplyEmailChange: %v", err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || taken.Load() != 1 {
		t.Fatalf("two changes to one address: %d applied, %d taken; want 1 and 1", wins.Load(), taken.Load())
	}
}
