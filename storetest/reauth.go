package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// The proof of the password (Session.AuthenticatedAt) and
// Store.Reauthenticate.

func testAuthenticatedAtRoundTrip(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", Authenticated: true, UserAgent: chromeUA})
	if !s.AuthenticatedAt.Equal(s.CreatedAt) {
		t.Fatalf("Create(Authenticated) AuthenticatedAt = %v, want the creation time %v", s.AuthenticatedAt, s.CreatedAt)
	}
	for _, got := range []*sessiond.Session{e.byID(t, s.ID), mustByHash(t, e.store, sessiond.HashToken(tok)), e.valid(t, tok)} {
		sameTime(t, "AuthenticatedAt", got.AuthenticatedAt, s.AuthenticatedAt)
	}
	list, err := e.m.List(t.Context(), "u1")
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	sameTime(t, "listed AuthenticatedAt", list[0].AuthenticatedAt, s.AuthenticatedAt)

	// No proof: an administrator's session, an anonymous one (even when
	// asked), kept as the zero time.
	admin, atok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	anon, ntok := e.create(t, sessiond.CreateParams{Authenticated: true})
	for _, c := range []struct {
		id, tok string
	}{{admin.ID, atok}, {anon.ID, ntok}} {
		for _, got := range []*sessiond.Session{e.byID(t, c.id), mustByHash(t, e.store, sessiond.HashToken(c.tok))} {
			if !got.AuthenticatedAt.IsZero() {
				t.Errorf("session %s without a proof has AuthenticatedAt %v", c.id, got.AuthenticatedAt)
			}
		}
	}

	// Other writes keep it: a touch, a rotation.
	e.clock.Advance(2 * time.Minute)
	later := e.clock.Now()
	if err := e.store.Touch(t.Context(), []sessiond.Touch{{ID: s.ID, LastSeenAt: later, IdleExpiresAt: later.Add(30 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	_, tok2, err := e.m.Rotate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	sameTime(t, "AuthenticatedAt after touch and rotation", e.valid(t, tok2).AuthenticatedAt, s.AuthenticatedAt)
	sameTime(t, "stored AuthenticatedAt after touch and rotation", e.byID(t, s.ID).AuthenticatedAt, s.AuthenticatedAt)
}

func testReauthenticate(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", Authenticated: true, Data: map[string][]byte{"k": []byte("1")}})
	if !e.m.Fresh(s) {
		t.Fatal("a session just signed in to is not fresh")
	}
	e.clock.Advance(e.m.Policy().ReauthWindow)
	s = e.valid(t, tok)
	if e.m.Fresh(s) {
		t.Fatalf("a proof %v old is fresh with a window of %v", e.m.Policy().ReauthWindow, e.m.Policy().ReauthWindow)
	}

	// Through the store: rotation and proof in one step.
	at := e.clock.Now()
	newTok, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Reauthenticate(t.Context(), s.ID, s.TokenHash, sessiond.HashToken(newTok), at); err != nil {
		t.Fatalf("Reauthenticate: %v", err)
	}
	e.m.Invalidate([]string{s.ID}) // the Manager's cache did not see this write
	got := e.byID(t, s.ID)
	sameTime(t, "AuthenticatedAt", got.AuthenticatedAt, at)
	if got.TokenHash != sessiond.HashToken(newTok) {
		t.Fatal("Reauthenticate did not replace the token hash")
	}
	if _, err := e.store.ByTokenHash(t.Context(), s.TokenHash); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("ByTokenHash(old) after Reauthenticate = %v, want ErrNotFound", err)
	}
	e.invalid(t, tok, sessiond.ErrNotFound)
	v := e.valid(t, newTok)
	if v.ID != s.ID || !e.m.Fresh(v) {
		t.Fatalf("after Reauthenticate: session %s fresh %v", v.ID, e.m.Fresh(v))
	}
	sameTime(t, "validated AuthenticatedAt", v.AuthenticatedAt, at)
	if d, err := e.m.Data(t.Context(), s.ID); err != nil || string(d["k"]) != "1" {
		t.Fatalf("data after Reauthenticate = %q, %v", d, err)
	}
	// A stale compare-and-swap changes nothing, the proof included.
	e.clock.Advance(time.Minute)
	if err := e.store.Reauthenticate(t.Context(), s.ID, s.TokenHash, sessiond.HashToken("x"), e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Reauthenticate from a stale hash = %v, want ErrNotFound", err)
	}
	sameTime(t, "AuthenticatedAt after a failed Reauthenticate", e.byID(t, s.ID).AuthenticatedAt, at)
	if err := e.store.Reauthenticate(t.Context(), "no-such-session", v.TokenHash, sessiond.HashToken("x"), e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Reauthenticate(unknown id) = %v, want ErrNotFound", err)
	}

	// Through the Manager, which makes the token.
	r, tok3, err := e.m.Reauthenticate(t.Context(), v, "")
	if err != nil {
		t.Fatalf("Manager.Reauthenticate: %v", err)
	}
	if tok3 == "" || tok3 == newTok || r.ID != s.ID || !r.AuthenticatedAt.Equal(e.clock.Now()) {
		t.Fatalf("Manager.Reauthenticate = %+v, token changed %v", r, tok3 != newTok)
	}
	e.invalid(t, newTok, sessiond.ErrNotFound)
	sameTime(t, "AuthenticatedAt", e.valid(t, tok3).AuthenticatedAt, e.clock.Now())

	// An anonymous session has no password to prove.
	anon, _ := e.create(t, sessiond.CreateParams{})
	if _, _, err := e.m.Reauthenticate(t.Context(), anon, ""); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Reauthenticate(anonymous) = %v, want ErrNotFound", err)
	}
}

func testReauthenticateDead(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", Authenticated: true})
	if err := e.m.Revoke(t.Context(), s.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if err := e.store.Reauthenticate(t.Context(), s.ID, s.TokenHash, sessiond.HashToken("y"), e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("store Reauthenticate(revoked) = %v, want ErrNotFound", err)
	}
	e.invalid(t, tok, sessiond.ErrRevoked)
	x, xtok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(31 * time.Minute)
	if err := e.store.Reauthenticate(t.Context(), x.ID, x.TokenHash, sessiond.HashToken("z"), e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("store Reauthenticate(expired) = %v, want ErrNotFound", err)
	}
	if _, _, err := e.m.Reauthenticate(t.Context(), x, ""); !errors.Is(err, sessiond.ErrExpired) {
		t.Fatalf("Manager.Reauthenticate(expired) = %v, want ErrExpired", err)
	}
	if !e.byID(t, x.ID).AuthenticatedAt.IsZero() {
		t.Fatal("a refused Reauthenticate recorded a proof")
	}
	e.invalid(t, xtok, sessiond.ErrExpired)
}

func testReauthenticateConcurrent(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	const n = 16
	var wg sync.WaitGroup
	var ok atomic.Int32
	tokens := make([]string, n)
	for i := range n {
		wg.Go(func() {
			_, nt, err := e.m.Reauthenticate(context.Background(), s, "")
			switch {
			case err == nil:
				ok.Add(1)
				tokens[i] = nt
			case !errors.Is(err, sessiond.ErrNotFound):
				t.Errorf("Reauthenticate: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d concurrent reauthentications from one token succeeded, want exactly 1", ok.Load())
	}
	for _, nt := range tokens {
		if nt != "" && !e.m.Fresh(e.valid(t, nt)) {
			t.Error("the winning reauthentication left the session without a fresh proof")
		}
	}
	e.invalid(t, tok, sessiond.ErrNotFound)
}

// testTransportRoundTrip: the transport a session was handed out through
// is kept, and decides whether it is bound to its browser.
func testTransportRoundTrip(t *testing.T, e *env) {
	for _, tr := range []string{sessiond.TransportCookie, sessiond.TransportToken, sessiond.TransportJWT, sessiond.TransportJWTCookie, ""} {
		s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", UserAgent: chromeUA, Transport: tr})
		for _, got := range []*sessiond.Session{e.byID(t, s.ID), mustByHash(t, e.store, sessiond.HashToken(tok)), e.valid(t, tok)} {
			if got.Transport != tr {
				t.Errorf("Transport = %q, want %q", got.Transport, tr)
			}
			if want := tr == sessiond.TransportCookie || tr == sessiond.TransportJWTCookie; got.BrowserBound() != want {
				t.Errorf("transport %q: BrowserBound() = %v, want %v", tr, got.BrowserBound(), want)
			}
		}
	}
	list, err := e.m.List(t.Context(), "u1")
	if err != nil || len(list) != 5 {
		t.Fatalf("List = %d sessions, %v", len(list), err)
	}
	seen := map[string]bool{}
	for _, s := range list {
		seen[s.Transport] = true
	}
	if len(seen) != 5 {
		t.Errorf("listed transports %v, want all five", seen)
	}
}
