package flows_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

// readCounting counts the store's reads of sessions (by token and by id)
// and can fail them.
type readCounting struct {
	sessiond.Store
	reads atomic.Int32
	down  atomic.Bool
}

func (r *readCounting) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	r.reads.Add(1)
	if r.down.Load() {
		return nil, errors.New("store down")
	}
	return r.Store.ByTokenHash(ctx, h)
}

func (r *readCounting) ByID(ctx context.Context, id string) (*sessiond.Session, error) {
	r.reads.Add(1)
	if r.down.Load() {
		return nil, errors.New("store down")
	}
	return r.Store.ByID(ctx, id)
}

type tokenEnv struct {
	*env
	store *readCounting
}

// newTokenEnv is newEnv with client-side sessions and a store that counts
// its reads.
func newTokenEnv(t *testing.T, cfg flows.Config) *tokenEnv {
	t.Helper()
	clock := storetest.NewClock()
	st := &readCounting{Store: memstore.New()}
	m, err := sessiond.NewManager(st, sessiond.Policy{}, sessiond.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	a, err := account.NewService(memstore.NewAccounts(), account.Config{HashParams: storetest.HashParams, LockoutOff: true},
		account.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := accesstoken.NewKeyEncryption(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	ring := accesstoken.NewKeyring(memstore.NewKeys(), enc, clock.Now)
	if err := ring.EnsureKey(t.Context()); err != nil {
		t.Fatal(err)
	}
	chain, err := accesstoken.NewChain(enc.ChainKey())
	if err != nil {
		t.Fatal(err)
	}
	f, err := flows.New(cfg, flows.Deps{Sessions: m, Accounts: a, Logger: slog.New(slog.DiscardHandler),
		ClientSide: &flows.ClientSide{Keys: ring, Chain: chain, Issuer: accesstoken.Issuer{Name: "sessiond"}}})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Register(t.Context(), "ada@example.com", password, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &tokenEnv{env: &env{clock: clock, sessions: m, accounts: a, flows: f, user: u}, store: st}
}

func isTokenLimit(err error) bool {
	var limited *flows.RateLimitedError
	return errors.As(err, &limited) && limited.RejectedTokens && limited.RetryAfter > 0
}

// TestRejectedTokenLimit: rejected tokens are counted per address; past
// the allowance any token from the address is refused before a store
// read, other addresses are untouched, valid tokens, missing tokens and
// store failures are never charged, and the allowance refills on the
// clock.
func TestRejectedTokenLimit(t *testing.T) {
	e := newTokenEnv(t, flows.Config{RejectedTokenRatePerIP: 3})
	ctx := t.Context()
	c := client("192.0.2.7", firefox)
	in, err := e.flows.SignIn(ctx, c, flows.SignInParams{Email: "ada@example.com", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := e.flows.Authenticate(ctx, c, in.Token); err != nil {
			t.Fatalf("a valid token: %v", err)
		}
		if _, err := e.flows.Authenticate(ctx, c, ""); !errors.Is(err, flows.ErrUnauthenticated) {
			t.Fatalf("no token: %v", err)
		}
	}
	e.store.down.Store(true)
	for range 10 {
		if _, err := e.flows.Authenticate(ctx, c, in.Token); err == nil || sessiond.IsRejection(err) || isTokenLimit(err) {
			t.Fatalf("store down: %v, want its failure", err)
		}
	}
	e.store.down.Store(false)

	unknown, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	for _, tok := range []string{unknown, "sdt_garbage", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"} {
		if _, err := e.flows.Authenticate(ctx, c, tok); !sessiond.IsRejection(err) {
			t.Fatalf("a dead token: %v", err)
		}
	}
	reads := e.store.reads.Load()
	for _, tok := range []string{unknown, in.Token} {
		if _, err := e.flows.Authenticate(ctx, c, tok); !isTokenLimit(err) {
			t.Fatalf("past the allowance: %v, want *RateLimitedError (RejectedTokens)", err)
		}
	}
	if err := e.flows.SignOut(ctx, c, unknown, false); !isTokenLimit(err) {
		t.Fatalf("sign-out past the allowance: %v", err)
	}
	if n := e.store.reads.Load() - reads; n != 0 {
		t.Fatalf("refused requests read the store %d times", n)
	}
	if _, err := e.flows.Authenticate(ctx, client("192.0.2.8", firefox), in.Token); err != nil {
		t.Fatalf("another address: %v", err)
	}
	if _, err := e.flows.Authenticate(ctx, client("192.0.2.8", firefox), ""); !errors.Is(err, flows.ErrUnauthenticated) {
		t.Fatalf("no token, another address: %v", err)
	}
	e.clock.Advance(20 * time.Second) // one token back
	if _, err := e.flows.Authenticate(ctx, c, in.Token); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
	if _, err := e.flows.Authenticate(ctx, c, in.Token); err != nil {
		t.Fatalf("a valid token spends nothing: %v", err)
	}
}

// TestRejectedTokenLimitIPv6: one subscriber's /64 shares an allowance.
func TestRejectedTokenLimitIPv6(t *testing.T) {
	e := newTokenEnv(t, flows.Config{RejectedTokenRatePerIP: 2})
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::ffff"} {
		if _, err := e.flows.Authenticate(t.Context(), client(ip, firefox), "sdt_x"); !sessiond.IsRejection(err) {
			t.Fatal(err)
		}
	}
	if _, err := e.flows.Authenticate(t.Context(), client("2001:db8:1:2:aaaa::1", firefox), "sdt_x"); !isTokenLimit(err) {
		t.Fatalf("same /64: %v", err)
	}
	if _, err := e.flows.Authenticate(t.Context(), client("2001:db8:1:3::1", firefox), "sdt_x"); !sessiond.IsRejection(err) {
		t.Fatalf("next /64: %v", err)
	}
}

// TestRejectedRefreshTokenLimit: invalid refresh tokens, at the refresh
// and at the revocation, are charged like rejected session tokens, and
// past the allowance both are refused before a store read; a valid
// refresh is never charged.
func TestRejectedRefreshTokenLimit(t *testing.T) {
	e := newTokenEnv(t, flows.Config{RejectedTokenRatePerIP: 4})
	ctx := t.Context()
	c := client("192.0.2.7", firefox)
	in, err := e.flows.SignIn(ctx, c, flows.SignInParams{Email: "ada@example.com", Password: password,
		Transport: sessiond.TransportJWT})
	if err != nil {
		t.Fatal(err)
	}
	refresh := in.Token
	for range 6 {
		r, err := e.flows.Refresh(ctx, c, refresh)
		if err != nil {
			t.Fatalf("a valid refresh: %v", err)
		}
		refresh = r.RefreshToken
		e.clock.Advance(time.Minute) // out of the grace window
	}
	if _, err := e.flows.Refresh(ctx, c, ""); err == nil || isTokenLimit(err) {
		t.Fatalf("no token: %v", err)
	}
	// Forged: the session's id with another chain's link.
	forged := refresh[:len(refresh)-2] + "AA"
	if _, err := e.flows.Refresh(ctx, c, forged); !errors.Is(err, flows.ErrInvalidRefreshToken) {
		t.Fatalf("a forged refresh token: %v", err)
	}
	if _, err := e.flows.Refresh(ctx, c, "sdr_garbage"); !errors.Is(err, flows.ErrInvalidRefreshToken) {
		t.Fatalf("a malformed refresh token: %v", err)
	}
	if err := e.flows.RevokeRefreshToken(ctx, c, forged); err != nil {
		t.Fatalf("revoking a forged token: %v", err)
	}
	if err := e.flows.RevokeRefreshToken(ctx, c, "sdr_garbage"); err != nil {
		t.Fatalf("revoking a malformed token: %v", err)
	}
	reads := e.store.reads.Load()
	if _, err := e.flows.Refresh(ctx, c, refresh); !isTokenLimit(err) {
		t.Fatalf("refresh past the allowance: %v", err)
	}
	if err := e.flows.RevokeRefreshToken(ctx, c, forged); !isTokenLimit(err) {
		t.Fatalf("revocation past the allowance: %v", err)
	}
	if n := e.store.reads.Load() - reads; n != 0 {
		t.Fatalf("refused requests read the store %d times", n)
	}
	if _, err := e.flows.Refresh(ctx, client("192.0.2.8", firefox), refresh); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

// TestRejectedTokenLimitOff: with the limit off, nothing is refused for
// the number of rejected tokens.
func TestRejectedTokenLimitOff(t *testing.T) {
	e := newTokenEnv(t, flows.Config{RejectedTokenRatePerIP: 1, RejectedTokenRateOff: true})
	for range 5 {
		if _, err := e.flows.Authenticate(t.Context(), client("192.0.2.7", firefox), "sdt_x"); !sessiond.IsRejection(err) {
			t.Fatalf("a dead token: %v", err)
		}
	}
}
