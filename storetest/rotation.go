package storetest

import (
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// The record of the last token replacement (Session.RotatedAt,
// Session.PrevTokenHash), written by Rotate and Reauthenticate in the same
// atomic step as the replacement: refresh-token grace and reuse are
// decided from it.

// rotationIs checks every way of reading the session id.
func (e *env) rotationIs(t *testing.T, id string, tok string, prev sessiond.TokenHash, at time.Time) {
	t.Helper()
	list, err := e.store.ListByUser(t.Context(), "u1", e.clock.Now())
	if err != nil || len(list) != 1 {
		t.Fatalf("ListByUser = %d sessions, %v", len(list), err)
	}
	for what, s := range map[string]*sessiond.Session{
		"ByID": e.byID(t, id), "ByTokenHash": mustByHash(t, e.store, sessiond.HashToken(tok)), "ListByUser": list[0],
	} {
		if s.PrevTokenHash != prev {
			t.Errorf("%s: PrevTokenHash = %x, want %x", what, s.PrevTokenHash[:4], prev[:4])
		}
		sameTime(t, what+" RotatedAt", s.RotatedAt, at)
	}
}

func newHash(t *testing.T) (string, sessiond.TokenHash) {
	t.Helper()
	tok, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return tok, sessiond.HashToken(tok)
}

func testRotationRecord(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", Authenticated: true})
	e.rotationIs(t, s.ID, tok, sessiond.TokenHash{}, time.Time{})

	e.clock.Advance(time.Minute)
	at1 := e.clock.Now()
	tok2, h2 := newHash(t)
	if err := e.store.Rotate(t.Context(), s.ID, s.TokenHash, h2, at1); err != nil {
		t.Fatal(err)
	}
	e.rotationIs(t, s.ID, tok2, s.TokenHash, at1)

	// A rotation that fails, and a touch, change neither.
	e.clock.Advance(time.Minute)
	_, h := newHash(t)
	if err := e.store.Rotate(t.Context(), s.ID, s.TokenHash, h, e.clock.Now()); err == nil {
		t.Fatal("Rotate from a replaced token succeeded")
	}
	later := e.clock.Now()
	if err := e.store.Touch(t.Context(), []sessiond.Touch{{ID: s.ID, LastSeenAt: later, IdleExpiresAt: later.Add(10 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	e.rotationIs(t, s.ID, tok2, s.TokenHash, at1)

	// Through the Manager's Renew: its answer and the store agree.
	e.clock.Advance(time.Minute)
	tok3, h3 := newHash(t)
	e.m.Invalidate(nil)
	cur := e.byID(t, s.ID)
	renewed, err := e.m.Renew(t.Context(), cur, tok3)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.PrevTokenHash != h2 || !renewed.RotatedAt.Equal(e.clock.Now()) || renewed.TokenHash != h3 {
		t.Errorf("Renew returned PrevTokenHash %x, RotatedAt %v", renewed.PrevTokenHash[:4], renewed.RotatedAt)
	}
	e.rotationIs(t, s.ID, tok3, h2, e.clock.Now())

	// A reauthentication starts a new chain: no predecessor.
	e.clock.Advance(time.Minute)
	at := e.clock.Now()
	tok4, h4 := newHash(t)
	if err := e.store.Reauthenticate(t.Context(), s.ID, h3, h4, at); err != nil {
		t.Fatal(err)
	}
	e.rotationIs(t, s.ID, tok4, sessiond.TokenHash{}, at)
	e.clock.Advance(time.Minute)
	tok5, h5 := newHash(t)
	if err := e.store.Rotate(t.Context(), s.ID, h4, h5, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.rotationIs(t, s.ID, tok5, h4, e.clock.Now())
}
