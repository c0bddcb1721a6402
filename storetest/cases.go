package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

const chromeUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36"

func (e *env) create(t *testing.T, p sessiond.CreateParams) (*sessiond.Session, string) {
	t.Helper()
	s, tok, err := e.m.Create(t.Context(), p)
	if err != nil {
		t.Fatalf("Create(%+v): %v", p, err)
	}
	return s, tok
}

func (e *env) valid(t *testing.T, tok string) *sessiond.Session {
	t.Helper()
	s, err := e.m.Validate(t.Context(), tok)
	if err != nil {
		t.Fatalf("Validate: %v, want a valid session", err)
	}
	return s
}

func (e *env) invalid(t *testing.T, tok string, want error) {
	t.Helper()
	s, err := e.m.Validate(t.Context(), tok)
	if !errors.Is(err, want) {
		t.Fatalf("Validate: got (%v, %v), want error %v", s, err, want)
	}
}

func (e *env) byID(t *testing.T, id string) *sessiond.Session {
	t.Helper()
	s, err := e.store.ByID(t.Context(), id)
	if err != nil {
		t.Fatalf("ByID(%s): %v", id, err)
	}
	return s
}

func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func testCreateAndValidate(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", UserAgent: chromeUA, IP: "192.0.2.7"})
	if err := sessiond.ParseToken(tok); err != nil {
		t.Fatalf("Create returned a malformed token %q: %v", tok, err)
	}
	if s.ID == "" || s.ID == tok || bytes.Contains([]byte(tok), []byte(s.ID)) {
		t.Fatalf("session id %q must be set and independent of the token", s.ID)
	}
	if s.TokenHash != sessiond.HashToken(tok) {
		t.Fatal("TokenHash is not the hash of the token")
	}
	got := e.valid(t, tok)
	if got.ID != s.ID || got.UserID != "u1" || got.Anonymous() {
		t.Fatalf("Validate = %+v, want session %s of u1", got, s.ID)
	}
	// A second session for the same user has its own id and token.
	s2, tok2 := e.create(t, sessiond.CreateParams{UserID: "u1"})
	if s2.ID == s.ID || tok2 == tok {
		t.Fatal("two sessions share an id or token")
	}
	if e.valid(t, tok2).ID != s2.ID {
		t.Fatal("second token validates to the wrong session")
	}
}

func testRoundTrip(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "user-ü", RememberMe: true, UserAgent: chromeUA, IP: "2001:db8::1",
		Data: map[string][]byte{"cart": []byte(`["a","b"]`)}})
	for _, got := range []*sessiond.Session{e.byID(t, s.ID), mustByHash(t, e.store, sessiond.HashToken(tok))} {
		if got.ID != s.ID || got.UserID != "user-ü" || !got.RememberMe || got.IP != "2001:db8::1" {
			t.Errorf("stored session = %+v, want %+v", got, s)
		}
		if got.Device != s.Device || got.Device.Browser != "Chrome" || got.Device.OS != "Windows" || got.Device.UserAgent != chromeUA {
			t.Errorf("device = %+v, want %+v", got.Device, s.Device)
		}
		if got.TokenHash != s.TokenHash {
			t.Error("token hash changed in the store")
		}
		sameTime(t, "CreatedAt", got.CreatedAt, s.CreatedAt)
		sameTime(t, "LastSeenAt", got.LastSeenAt, s.LastSeenAt)
		sameTime(t, "IdleExpiresAt", got.IdleExpiresAt, s.IdleExpiresAt)
		sameTime(t, "AbsoluteExpiresAt", got.AbsoluteExpiresAt, s.AbsoluteExpiresAt)
		if got.Revoked() || got.RevokeReason != "" {
			t.Errorf("new session looks revoked: %v %q", got.RevokedAt, got.RevokeReason)
		}
		if got.Data != nil {
			t.Error("lookups must not load data")
		}
	}
	data, err := e.m.Data(t.Context(), s.ID)
	if err != nil || string(data["cart"]) != `["a","b"]` || len(data) != 1 {
		t.Fatalf("Data = %q, %v", data, err)
	}
}

func mustByHash(t *testing.T, st sessiond.Store, h sessiond.TokenHash) *sessiond.Session {
	t.Helper()
	s, err := st.ByTokenHash(t.Context(), h)
	if err != nil {
		t.Fatalf("ByTokenHash: %v", err)
	}
	return s
}

func testUnknownAndMalformed(t *testing.T, e *env) {
	_, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	other, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	e.invalid(t, other, sessiond.ErrNotFound)
	for _, bad := range []string{"", "sdt_", tok[:len(tok)-1], tok + "x", "x" + tok[1:], tok[:10] + "!" + tok[11:],
		// a flipped character breaks the checksum
		tok[:20] + string(rune(tok[20]^1)) + tok[21:]} {
		e.invalid(t, bad, sessiond.ErrMalformedToken)
	}
	if _, err := e.store.ByTokenHash(t.Context(), sessiond.HashToken(other)); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("ByTokenHash(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := e.store.ByID(t.Context(), "no-such-id"); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("ByID(unknown) = %v, want ErrNotFound", err)
	}
}

func testAnonymous(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{Data: map[string][]byte{"theme": []byte(`"dark"`)}})
	if !s.Anonymous() {
		t.Fatal("session without user is not anonymous")
	}
	got := e.valid(t, tok)
	if !got.Anonymous() {
		t.Fatal("stored anonymous session has a user")
	}
	if l, err := e.m.List(t.Context(), ""); err != nil || len(l) != 0 {
		t.Fatalf("List(\"\") = %v, %v; anonymous sessions belong to no list", l, err)
	}
}

func testIdleExpiry(t *testing.T, e *env) {
	_, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(20 * time.Minute)
	e.valid(t, tok) // use slides the idle deadline
	e.clock.Advance(20 * time.Minute)
	e.valid(t, tok) // 40m after login, 20m after last use
	e.clock.Advance(30*time.Minute - time.Microsecond)
	e.valid(t, tok)
	e.clock.Advance(30 * time.Minute)
	e.invalid(t, tok, sessiond.ErrExpired)
	// Expired means expired for every operation.
	if _, _, err := e.m.Rotate(t.Context(), tok); !errors.Is(err, sessiond.ErrExpired) {
		t.Fatalf("Rotate(expired) = %v", err)
	}
}

func testSlidingThrottled(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	interval := time.Minute // default: min(30m/10, 1m)
	e.clock.Advance(interval / 2)
	got := e.valid(t, tok)
	stored := e.byID(t, s.ID)
	sameTime(t, "LastSeenAt after a use within the interval", stored.LastSeenAt, s.LastSeenAt)
	sameTime(t, "reported LastSeenAt", got.LastSeenAt, s.LastSeenAt)
	e.clock.Advance(interval / 2)
	now := e.clock.Now()
	got = e.valid(t, tok)
	stored = e.byID(t, s.ID)
	sameTime(t, "LastSeenAt after the interval", stored.LastSeenAt, now)
	sameTime(t, "IdleExpiresAt after the interval", stored.IdleExpiresAt, now.Add(30*time.Minute))
	sameTime(t, "reported IdleExpiresAt", got.IdleExpiresAt, now.Add(30*time.Minute))
	sameTime(t, "AbsoluteExpiresAt never moves", stored.AbsoluteExpiresAt, s.AbsoluteExpiresAt)
}

func testAbsoluteExpiry(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	sameTime(t, "AbsoluteExpiresAt", s.AbsoluteExpiresAt, s.CreatedAt.Add(12*time.Hour))
	for e.clock.Now().Add(10 * time.Minute).Before(s.AbsoluteExpiresAt) {
		e.clock.Advance(10 * time.Minute)
		got := e.valid(t, tok)
		if got.IdleExpiresAt.After(s.AbsoluteExpiresAt) {
			t.Fatalf("idle deadline %v past the absolute one %v", got.IdleExpiresAt, s.AbsoluteExpiresAt)
		}
		if !got.ExpiresAt().Equal(got.IdleExpiresAt) && !got.ExpiresAt().Equal(got.AbsoluteExpiresAt) {
			t.Fatal("ExpiresAt is neither deadline")
		}
	}
	e.clock.Advance(s.AbsoluteExpiresAt.Sub(e.clock.Now()))
	e.invalid(t, tok, sessiond.ErrExpired)
}

func testRememberMe(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", RememberMe: true})
	sameTime(t, "remember-me IdleExpiresAt", s.IdleExpiresAt, s.CreatedAt.Add(168*time.Hour))
	sameTime(t, "remember-me AbsoluteExpiresAt", s.AbsoluteExpiresAt, s.CreatedAt.Add(720*time.Hour))
	n, tokN := e.create(t, sessiond.CreateParams{UserID: "u1"})
	sameTime(t, "IdleExpiresAt", n.IdleExpiresAt, n.CreatedAt.Add(30*time.Minute))
	e.clock.Advance(13 * time.Hour) // past the normal session's lifetime
	e.invalid(t, tokN, sessiond.ErrExpired)
	e.valid(t, tok)
	e.clock.Advance(167 * time.Hour)
	e.valid(t, tok)
	e.clock.Advance(168 * time.Hour) // unused for a week
	e.invalid(t, tok, sessiond.ErrExpired)
}

func testRotate(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", Data: map[string][]byte{"k": []byte("1")}})
	r, tok2, err := e.m.Rotate(t.Context(), tok)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if r.ID != s.ID || tok2 == tok {
		t.Fatalf("Rotate kept id %v (want %v), token changed %v", r.ID, s.ID, tok2 != tok)
	}
	e.invalid(t, tok, sessiond.ErrNotFound)
	if e.valid(t, tok2).ID != s.ID {
		t.Fatal("rotated token names another session")
	}
	if d, err := e.m.Data(t.Context(), s.ID); err != nil || string(d["k"]) != "1" {
		t.Fatalf("data after rotation = %q, %v", d, err)
	}
	// The old hash is gone from the store, not only refused by the Manager.
	if _, err := e.store.ByTokenHash(t.Context(), sessiond.HashToken(tok)); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("ByTokenHash(old) = %v, want ErrNotFound", err)
	}
	// A stale compare-and-swap fails.
	if err := e.store.Rotate(t.Context(), s.ID, sessiond.HashToken(tok), sessiond.HashToken("x"), e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Rotate from a stale hash = %v, want ErrNotFound", err)
	}
	e.valid(t, tok2)
}

func testRotateConcurrent(t *testing.T, e *env) {
	_, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	const n = 16
	var wg sync.WaitGroup
	var ok atomic.Int32
	tokens := make([]string, n)
	for i := range n {
		wg.Go(func() {
			_, nt, err := e.m.Rotate(context.Background(), tok)
			switch {
			case err == nil:
				ok.Add(1)
				tokens[i] = nt
			case !errors.Is(err, sessiond.ErrNotFound):
				t.Errorf("Rotate: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d concurrent rotations of one token succeeded, want exactly 1", ok.Load())
	}
	for _, nt := range tokens {
		if nt != "" {
			e.valid(t, nt)
		}
	}
	e.invalid(t, tok, sessiond.ErrNotFound)
}

func testRotateDead(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	if err := e.m.Revoke(t.Context(), s.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.m.Rotate(t.Context(), tok); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("Rotate(revoked) = %v, want ErrRevoked", err)
	}
	if err := e.store.Rotate(t.Context(), s.ID, s.TokenHash, sessiond.HashToken("y"), e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("store Rotate(revoked) = %v, want ErrNotFound", err)
	}
	x, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(31 * time.Minute)
	if err := e.store.Rotate(t.Context(), x.ID, x.TokenHash, sessiond.HashToken("z"), e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("store Rotate(expired) = %v, want ErrNotFound", err)
	}
}

func testRevoke(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	_, keep := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(time.Second)
	if err := e.m.Revoke(t.Context(), s.ID, sessiond.ReasonAdmin); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	e.invalid(t, tok, sessiond.ErrRevoked)
	e.valid(t, keep)
	got := e.byID(t, s.ID)
	if got.RevokeReason != sessiond.ReasonAdmin {
		t.Errorf("RevokeReason = %q, want %q", got.RevokeReason, sessiond.ReasonAdmin)
	}
	sameTime(t, "RevokedAt", got.RevokedAt, e.clock.Now())
	if err := e.m.Revoke(t.Context(), s.ID, sessiond.ReasonAdmin); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("second Revoke = %v, want ErrNotFound", err)
	}
	if err := e.m.Revoke(t.Context(), "no-such-id", sessiond.ReasonAdmin); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Revoke(unknown) = %v, want ErrNotFound", err)
	}
	// Logout by token.
	_, tok3 := e.create(t, sessiond.CreateParams{})
	if _, err := e.m.RevokeToken(t.Context(), tok3, sessiond.ReasonLogout); err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	e.invalid(t, tok3, sessiond.ErrRevoked)
	if _, err := e.m.RevokeToken(t.Context(), tok3, sessiond.ReasonLogout); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("RevokeToken twice = %v, want ErrRevoked", err)
	}
}

func testRevokeUser(t *testing.T, e *env) {
	var mine []string
	for range 3 {
		_, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
		mine = append(mine, tok)
	}
	_, theirs := e.create(t, sessiond.CreateParams{UserID: "u2"})
	_, anon := e.create(t, sessiond.CreateParams{})
	dead, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	if err := e.m.Revoke(t.Context(), dead.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	n, err := e.m.RevokeUser(t.Context(), "u1", "", sessiond.ReasonLogoutAll)
	if err != nil || n != 3 {
		t.Fatalf("RevokeUser = %d, %v; want 3 (already revoked ones do not count)", n, err)
	}
	for _, tok := range mine {
		e.invalid(t, tok, sessiond.ErrRevoked)
	}
	e.valid(t, theirs)
	e.valid(t, anon)
	if got := e.byID(t, dead.ID); got.RevokeReason != sessiond.ReasonLogout {
		t.Errorf("an earlier revocation's reason was overwritten: %q", got.RevokeReason)
	}
	if n, err := e.m.RevokeUser(t.Context(), "u1", "", sessiond.ReasonLogoutAll); err != nil || n != 0 {
		t.Fatalf("RevokeUser again = %d, %v; want 0", n, err)
	}
	if n, err := e.m.RevokeUser(t.Context(), "nobody", "", sessiond.ReasonAdmin); err != nil || n != 0 {
		t.Fatalf("RevokeUser(unknown user) = %d, %v; want 0, nil", n, err)
	}
}

func testForceLogout(t *testing.T, e *env) {
	cur, curTok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	var others []string
	for range 4 {
		_, tok := e.create(t, sessiond.CreateParams{UserID: "u1", RememberMe: true})
		others = append(others, tok)
	}
	n, err := e.m.RevokeUser(t.Context(), "u1", cur.ID, sessiond.ReasonForceLogout)
	if err != nil || n != 4 {
		t.Fatalf("RevokeUser(except current) = %d, %v; want 4", n, err)
	}
	for _, tok := range others {
		e.invalid(t, tok, sessiond.ErrRevoked)
	}
	// The current session survives with a rotated token.
	r, newTok, err := e.m.Rotate(t.Context(), curTok)
	if err != nil || r.ID != cur.ID {
		t.Fatalf("Rotate current: %v", err)
	}
	e.invalid(t, curTok, sessiond.ErrNotFound)
	e.valid(t, newTok)
	l, err := e.m.List(t.Context(), "u1")
	if err != nil || len(l) != 1 || l[0].ID != cur.ID {
		t.Fatalf("List after Force Logout = %v, %v; want only the current session", ids(l), err)
	}
}

func ids(l []*sessiond.Session) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = s.ID
	}
	return out
}

func testList(t *testing.T, e *env) {
	a, tokA := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(2 * time.Minute)
	b, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(2 * time.Minute)
	c, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(2 * time.Minute)
	e.valid(t, tokA) // a is now the most recently used
	e.create(t, sessiond.CreateParams{UserID: "u2"})
	e.create(t, sessiond.CreateParams{})
	r, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	if err := e.m.Revoke(t.Context(), r.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	l, err := e.m.List(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{a.ID, c.ID, b.ID}
	if fmt.Sprint(ids(l)) != fmt.Sprint(want) {
		t.Fatalf("List = %v, want %v (most recently used first, no revoked, no other users)", ids(l), want)
	}
	// Expired sessions leave the list even before a sweep.
	e.clock.Advance(29 * time.Minute)
	l, err = e.m.List(t.Context(), "u1")
	if err != nil || fmt.Sprint(ids(l)) != fmt.Sprint([]string{a.ID}) {
		t.Fatalf("List after b and c idled out = %v, %v; want [%s]", ids(l), err, a.ID)
	}
	// The store filters by itself too.
	raw, err := e.store.ListByUser(t.Context(), "u1", e.clock.Now())
	if err != nil || len(raw) != 1 || raw[0].ID != a.ID {
		t.Fatalf("store ListByUser = %v, %v", ids(raw), err)
	}
	if l, err := e.m.List(t.Context(), "nobody"); err != nil || len(l) != 0 {
		t.Fatalf("List(unknown) = %v, %v", l, err)
	}
}

func testMaxSessions(t *testing.T, e *env) {
	a, tokA := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(2 * time.Minute)
	b, tokB := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.clock.Advance(2 * time.Minute)
	e.valid(t, tokA) // b is now the least recently used
	other, tokO := e.create(t, sessiond.CreateParams{UserID: "u2"})
	_, tokAnon := e.create(t, sessiond.CreateParams{})
	e.clock.Advance(2 * time.Minute)
	c, tokC := e.create(t, sessiond.CreateParams{UserID: "u1"})
	e.invalid(t, tokB, sessiond.ErrRevoked)
	if got := e.byID(t, b.ID); got.RevokeReason != sessiond.ReasonLimit {
		t.Errorf("evicted session's reason = %q, want %q", got.RevokeReason, sessiond.ReasonLimit)
	}
	e.valid(t, tokA)
	e.valid(t, tokC)
	e.valid(t, tokO)
	e.valid(t, tokAnon)
	l, _ := e.m.List(t.Context(), "u1")
	if len(l) != 2 {
		t.Fatalf("user has %d sessions, limit 2", len(l))
	}
	_ = a
	_ = c
	_ = other
	// Many anonymous sessions are not limited.
	for range 3 {
		e.create(t, sessiond.CreateParams{})
	}
	e.valid(t, tokAnon)
}

func testUpgradeAnonymous(t *testing.T, e *env) {
	anon, anonTok := e.create(t, sessiond.CreateParams{Data: map[string][]byte{"cart": []byte(`[1,2]`)}})
	if err := e.m.SetData(t.Context(), anon.ID, "theme", []byte(`"dark"`)); err != nil {
		t.Fatal(err)
	}
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1", Replace: anonTok})
	if s.ID == anon.ID || tok == anonTok || s.Anonymous() {
		t.Fatal("login must create a new authenticated session with a new id and token")
	}
	e.invalid(t, anonTok, sessiond.ErrRevoked)
	if got := e.byID(t, anon.ID); got.RevokeReason != sessiond.ReasonReplaced {
		t.Errorf("anonymous session's reason = %q, want %q", got.RevokeReason, sessiond.ReasonReplaced)
	}
	d, err := e.m.Data(t.Context(), s.ID)
	if err != nil || string(d["cart"]) != "[1,2]" || string(d["theme"]) != `"dark"` || len(d) != 2 {
		t.Fatalf("data after login = %q, %v; want the anonymous session's", d, err)
	}
	// A dead or malformed token to replace is no obstacle to the login.
	if _, _, err := e.m.Create(t.Context(), sessiond.CreateParams{UserID: "u1", Replace: anonTok}); err != nil {
		t.Fatalf("Create replacing a revoked session: %v", err)
	}
	if _, _, err := e.m.Create(t.Context(), sessiond.CreateParams{UserID: "u1", Replace: "garbage"}); err != nil {
		t.Fatalf("Create replacing garbage: %v", err)
	}
}

func testReplaceAuthenticated(t *testing.T, e *env) {
	old, oldTok := e.create(t, sessiond.CreateParams{UserID: "u1", Data: map[string][]byte{"private": []byte("1")}})
	s, _ := e.create(t, sessiond.CreateParams{UserID: "u2", Replace: oldTok})
	e.invalid(t, oldTok, sessiond.ErrRevoked)
	d, err := e.m.Data(t.Context(), s.ID)
	if err != nil || len(d) != 0 {
		t.Fatalf("an authenticated session's data moved to the next login: %q, %v", d, err)
	}
	if d, err := e.store.Data(t.Context(), old.ID, e.clock.Now()); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Data of the replaced session = %q, %v; want ErrNotFound", d, err)
	}
}

func testData(t *testing.T, e *env) {
	s, _ := e.create(t, sessiond.CreateParams{})
	ctx := t.Context()
	d, err := e.m.Data(ctx, s.ID)
	if err != nil || d == nil || len(d) != 0 {
		t.Fatalf("Data of a new session = %v (nil %v), %v; want an empty map", d, d == nil, err)
	}
	for k, v := range map[string]string{"a": "1", "b.c_d-E9": `{"x":[1,2]}`, "empty": ""} {
		if err := e.m.SetData(ctx, s.ID, k, []byte(v)); err != nil {
			t.Fatalf("SetData(%q): %v", k, err)
		}
	}
	if err := e.m.SetData(ctx, s.ID, "a", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := e.m.DeleteData(ctx, s.ID, "b.c_d-E9"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.DeleteData(ctx, s.ID, "missing"); err != nil {
		t.Fatalf("DeleteData(missing key) = %v, want nil", err)
	}
	d, err = e.m.Data(ctx, s.ID)
	if err != nil || len(d) != 2 || string(d["a"]) != "2" || d["empty"] == nil && len(d["empty"]) != 0 {
		t.Fatalf("Data = %q, %v", d, err)
	}
	if _, ok := d["empty"]; !ok {
		t.Fatal("an empty value was lost")
	}
	for _, bad := range []string{"", "a b", "ü", "a/b", string(make([]byte, 129))} {
		if err := e.m.SetData(ctx, s.ID, bad, []byte("1")); !errors.Is(err, sessiond.ErrInvalidKey) {
			t.Errorf("SetData(%q) = %v, want ErrInvalidKey", bad, err)
		}
	}
	long := bytes.Repeat([]byte("k"), sessiond.MaxKeyLen)
	if err := e.m.SetData(ctx, s.ID, string(long), []byte("1")); err != nil {
		t.Errorf("SetData(128-char key) = %v", err)
	}
	// Returned maps are copies.
	d["a"][0] = 'X'
	d["new"] = []byte("1")
	d2, _ := e.m.Data(ctx, s.ID)
	if string(d2["a"]) != "2" || d2["new"] != nil {
		t.Fatal("changing a returned map changed the store")
	}
}

func testDataLimits(t *testing.T, e *env) {
	ctx := t.Context()
	s, _ := e.create(t, sessiond.CreateParams{})
	if err := e.m.SetData(ctx, s.ID, "big", bytes.Repeat([]byte("x"), 101)); !errors.Is(err, sessiond.ErrValueTooLarge) {
		t.Fatalf("101-byte value: %v, want ErrValueTooLarge", err)
	}
	if err := e.m.SetData(ctx, s.ID, "a", bytes.Repeat([]byte("x"), 99)); err != nil { // 100 bytes with the key
		t.Fatal(err)
	}
	if err := e.m.SetData(ctx, s.ID, "b", bytes.Repeat([]byte("x"), 99)); err != nil { // 200: at the limit
		t.Fatal(err)
	}
	if err := e.m.SetData(ctx, s.ID, "c", nil); !errors.Is(err, sessiond.ErrDataTooLarge) { // 201
		t.Fatalf("over the total: %v, want ErrDataTooLarge", err)
	}
	// Replacing a value counts the new size, not both.
	if err := e.m.SetData(ctx, s.ID, "a", bytes.Repeat([]byte("y"), 99)); err != nil {
		t.Fatalf("same-size replacement at the limit: %v", err)
	}
	if err := e.m.SetData(ctx, s.ID, "a", bytes.Repeat([]byte("y"), 100)); !errors.Is(err, sessiond.ErrDataTooLarge) {
		t.Fatalf("growing replacement over the total: %v", err)
	}
	d, _ := e.m.Data(ctx, s.ID)
	if len(d) != 2 || len(d["a"]) != 99 || d["a"][0] != 'y' {
		t.Fatalf("a refused write changed the data: %d keys, a=%q", len(d), d["a"])
	}
	if err := e.m.DeleteData(ctx, s.ID, "b"); err != nil {
		t.Fatal(err)
	}
	if err := e.m.SetData(ctx, s.ID, "c", bytes.Repeat([]byte("z"), 99)); err != nil {
		t.Fatalf("write after freeing space: %v", err)
	}
	// Initial data is held to the same limits.
	if _, _, err := e.m.Create(ctx, sessiond.CreateParams{Data: map[string][]byte{"bad key": nil}}); !errors.Is(err, sessiond.ErrInvalidKey) {
		t.Fatalf("Create with a bad key: %v", err)
	}
	if _, _, err := e.m.Create(ctx, sessiond.CreateParams{Data: map[string][]byte{
		"a": bytes.Repeat([]byte("x"), 100), "b": bytes.Repeat([]byte("x"), 100)}}); !errors.Is(err, sessiond.ErrDataTooLarge) {
		t.Fatalf("Create with too much data: %v", err)
	}
}

func testDataConcurrent(t *testing.T, e *env) {
	s, _ := e.create(t, sessiond.CreateParams{})
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := e.m.SetData(context.Background(), s.ID, fmt.Sprintf("k%d", i), []byte(fmt.Sprint(i))); err != nil {
				t.Errorf("SetData: %v", err)
			}
		})
	}
	wg.Wait()
	d, err := e.m.Data(t.Context(), s.ID)
	if err != nil || len(d) != n {
		t.Fatalf("after %d concurrent writes to different keys: %d keys, %v", n, len(d), err)
	}
	for i := range n {
		if string(d[fmt.Sprintf("k%d", i)]) != fmt.Sprint(i) {
			t.Fatalf("key k%d = %q", i, d[fmt.Sprintf("k%d", i)])
		}
	}
}

func testDataDead(t *testing.T, e *env) {
	ctx := t.Context()
	s, _ := e.create(t, sessiond.CreateParams{Data: map[string][]byte{"a": []byte("1")}})
	if err := e.m.Revoke(ctx, s.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Data(ctx, s.ID); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Data(revoked) = %v", err)
	}
	if err := e.m.SetData(ctx, s.ID, "a", []byte("2")); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("SetData(revoked) = %v", err)
	}
	if err := e.m.DeleteData(ctx, s.ID, "a"); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("DeleteData(revoked) = %v", err)
	}
	x, _ := e.create(t, sessiond.CreateParams{})
	e.clock.Advance(31 * time.Minute)
	if err := e.m.SetData(ctx, x.ID, "a", []byte("2")); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("SetData(expired) = %v", err)
	}
	if err := e.m.SetData(ctx, "no-such-id", "a", []byte("2")); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("SetData(unknown) = %v", err)
	}
}

func testTouch(t *testing.T, e *env) {
	ctx := t.Context()
	s, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	r, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	if err := e.m.Revoke(ctx, r.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	later := s.CreatedAt.Add(5 * time.Minute)
	err := e.store.Touch(ctx, []sessiond.Touch{
		{ID: s.ID, LastSeenAt: later, IdleExpiresAt: later.Add(30 * time.Minute)},
		{ID: r.ID, LastSeenAt: later, IdleExpiresAt: later.Add(30 * time.Minute)},
		{ID: "no-such-id", LastSeenAt: later, IdleExpiresAt: later},
	})
	if err != nil {
		t.Fatalf("Touch: %v", err)
	}
	got := e.byID(t, s.ID)
	sameTime(t, "LastSeenAt", got.LastSeenAt, later)
	sameTime(t, "IdleExpiresAt", got.IdleExpiresAt, later.Add(30*time.Minute))
	if got := e.byID(t, r.ID); !got.LastSeenAt.Equal(r.LastSeenAt) {
		t.Error("Touch changed a revoked session")
	}
	// Times never move backwards (a late, out-of-order batch).
	if err := e.store.Touch(ctx, []sessiond.Touch{{ID: s.ID, LastSeenAt: s.CreatedAt, IdleExpiresAt: s.IdleExpiresAt}}); err != nil {
		t.Fatal(err)
	}
	got = e.byID(t, s.ID)
	sameTime(t, "LastSeenAt after an older touch", got.LastSeenAt, later)
	sameTime(t, "IdleExpiresAt after an older touch", got.IdleExpiresAt, later.Add(30*time.Minute))
	if err := e.store.Touch(ctx, nil); err != nil {
		t.Fatalf("Touch(nil) = %v", err)
	}
	// A touch that arrives after the session idled out does not revive it.
	x, xTok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	late := x.IdleExpiresAt.Add(time.Second)
	if err := e.store.Touch(ctx, []sessiond.Touch{{ID: x.ID, LastSeenAt: late, IdleExpiresAt: late.Add(30 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	sameTime(t, "IdleExpiresAt after a late touch", e.byID(t, x.ID).IdleExpiresAt, x.IdleExpiresAt)
	e.clock.Advance(late.Sub(e.clock.Now()))
	e.invalid(t, xTok, sessiond.ErrExpired)
}

func testDeleteExpired(t *testing.T, e *env) {
	ctx := t.Context()
	var dead []string
	for range 5 {
		s, _ := e.create(t, sessiond.CreateParams{UserID: "u1", Data: map[string][]byte{"a": []byte("1")}})
		dead = append(dead, s.ID)
	}
	r, _ := e.create(t, sessiond.CreateParams{})
	if err := e.m.Revoke(ctx, r.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	dead = append(dead, r.ID)
	e.clock.Advance(20 * time.Minute)
	live, liveTok := e.create(t, sessiond.CreateParams{UserID: "u1", RememberMe: true})
	e.clock.Advance(11 * time.Minute)
	// Revoked but not yet expired stays until its deadline.
	rl, _ := e.create(t, sessiond.CreateParams{UserID: "u1"})
	if err := e.m.Revoke(ctx, rl.ID, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	n, err := e.store.DeleteExpired(ctx, e.clock.Now(), 2)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpired(limit 2) = %d, %v; want 2", n, err)
	}
	total, err := e.m.Sweep(ctx)
	if err != nil || total != len(dead)-2 {
		t.Fatalf("Sweep = %d, %v; want %d", total, err, len(dead)-2)
	}
	for _, id := range dead {
		if _, err := e.store.ByID(ctx, id); !errors.Is(err, sessiond.ErrNotFound) {
			t.Errorf("expired session %s still there after the sweep: %v", id, err)
		}
	}
	if got := e.valid(t, liveTok); got.ID != live.ID {
		t.Fatal("live session lost in the sweep")
	}
	e.byID(t, rl.ID)
	if n, err := e.m.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v", n, err)
	}
}

func testReturnsCopies(t *testing.T, e *env) {
	s, tok := e.create(t, sessiond.CreateParams{UserID: "u1"})
	got := e.byID(t, s.ID)
	got.UserID = "mallory"
	got.RevokedAt = time.Now()
	got.TokenHash[0] ^= 0xff
	if v := e.valid(t, tok); v.UserID != "u1" {
		t.Fatal("changing a returned session changed the store")
	}
	// Changing what was passed to Create after the call changes nothing.
	data := map[string][]byte{"a": []byte("1")}
	s2, _ := e.create(t, sessiond.CreateParams{Data: data})
	data["a"][0] = '9'
	data["b"] = []byte("2")
	if d, _ := e.m.Data(t.Context(), s2.ID); string(d["a"]) != "1" || len(d) != 1 {
		t.Fatalf("store shares the caller's data map: %q", d)
	}
}

// testConcurrentMix runs every kind of call at once on one user's sessions;
// under -race it finds unsynchronised state, and the end state must be
// consistent: every session either revoked or valid.
func testConcurrentMix(t *testing.T, e *env) {
	ctx := context.Background()
	const workers = 8
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range 10 {
				s, tok, err := e.m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				_ = e.m.SetData(ctx, s.ID, fmt.Sprintf("w%d", w), []byte{byte(i)})
				if _, err := e.m.Validate(ctx, tok); err != nil && !errors.Is(err, sessiond.ErrRevoked) {
					t.Errorf("Validate: %v", err)
				}
				if _, nt, err := e.m.Rotate(ctx, tok); err == nil {
					tok = nt
				}
				switch i % 4 {
				case 0:
					_, _ = e.m.RevokeUser(ctx, "u1", s.ID, sessiond.ReasonForceLogout)
				case 1:
					_, _ = e.m.List(ctx, "u1")
				case 2:
					_ = e.m.Revoke(ctx, s.ID, sessiond.ReasonLogout)
				}
			}
		})
	}
	wg.Wait()
	l, err := e.m.List(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range l {
		if s.Revoked() {
			t.Fatalf("List returned revoked session %s", s.ID)
		}
	}
	if n, err := e.m.RevokeUser(ctx, "u1", "", sessiond.ReasonLogoutAll); err != nil || n != len(l) {
		t.Fatalf("RevokeUser = %d, %v; List had %d", n, err, len(l))
	}
}
