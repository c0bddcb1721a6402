package flows_test

import (
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

const (
	password = "correct horse battery"
	firefox  = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
	chrome   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

type env struct {
	clock    *storetest.Clock
	sessions *sessiond.Manager
	accounts *account.Service
	flows    *flows.Flows
	user     *account.User
}

// newEnv is the flows over in-memory stores with a clock that moves only
// when told, and one user.
func newEnv(t *testing.T, cfg flows.Config) *env {
	t.Helper()
	clock := storetest.NewClock()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{}, sessiond.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	a, err := account.NewService(memstore.NewAccounts(), account.Config{HashParams: storetest.HashParams, LockoutOff: true},
		account.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	f, err := flows.New(cfg, flows.Deps{Sessions: m, Accounts: a, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Register(t.Context(), "ada@example.com", password, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{clock: clock, sessions: m, accounts: a, flows: f, user: u}
}

func client(ip, ua string) flows.Client {
	return flows.Client{Addr: netip.MustParseAddr(ip), UserAgent: ua}
}

// TestLoginRateUsesTheClock: the per-address limit counts failures on the
// injected clock, so it is tested without sleeping: refused after the
// burst, allowed again a minute later, and other addresses untouched.
func TestLoginRateUsesTheClock(t *testing.T) {
	e := newEnv(t, flows.Config{LoginRatePerIP: 3})
	c := client("192.0.2.7", firefox)
	for range 3 {
		if _, err := e.flows.SignIn(t.Context(), c, flows.SignInParams{Email: "ada@example.com", Password: "wrong"}); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	_, err := e.flows.SignIn(t.Context(), c, flows.SignInParams{Email: "ada@example.com", Password: password})
	var limited *flows.RateLimitedError
	if !errors.As(err, &limited) || limited.RetryAfter <= 0 || limited.RetryAfter > 20*time.Second {
		t.Fatalf("fourth attempt: %v, want a rate limit of at most 20s", err)
	}
	if _, err := e.flows.SignIn(t.Context(), client("192.0.2.8", firefox), flows.SignInParams{Email: "ada@example.com", Password: password}); err != nil {
		t.Fatalf("another address: %v", err)
	}
	e.clock.Advance(time.Minute)
	if _, err := e.flows.SignIn(t.Context(), c, flows.SignInParams{Email: "ada@example.com", Password: password}); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

// TestLoginRateOff: with the limit off, failures are never refused for
// their number.
func TestLoginRateOff(t *testing.T) {
	e := newEnv(t, flows.Config{LoginRatePerIP: 1, LoginRateOff: true})
	c := client("2001:db8::1", firefox)
	for range 5 {
		if _, err := e.flows.SignIn(t.Context(), c, flows.SignInParams{Email: "ada@example.com", Password: "wrong"}); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("wrong password: %v", err)
		}
	}
}

// TestSignInReplacesTheAnonymousSession: the visitor's anonymous session
// ends at the sign-in (fixation defence) and its data moves to the new
// one, which has a new token.
func TestSignInReplacesTheAnonymousSession(t *testing.T) {
	e := newEnv(t, flows.Config{})
	c := client("192.0.2.7", firefox)
	put, err := e.flows.PutData(t.Context(), c, nil, "cart", []byte(`{"tea":2}`))
	if err != nil || put.Token == "" || !put.Session.Anonymous() {
		t.Fatalf("anonymous session: %+v %v", put, err)
	}
	in, err := e.flows.SignIn(t.Context(), c, flows.SignInParams{Email: "ADA@example.com", Password: password,
		Transport: sessiond.TransportCookie, Replace: put.Token})
	if err != nil {
		t.Fatal(err)
	}
	if in.Token == put.Token || in.Session.ID == put.Session.ID || in.User.ID != e.user.ID {
		t.Fatalf("the sign-in kept the anonymous session: %+v", in)
	}
	if _, err := e.sessions.Validate(t.Context(), put.Token); !sessiond.IsRejection(err) {
		t.Fatalf("the anonymous token still works: %v", err)
	}
	data, err := e.sessions.Data(t.Context(), in.Session.ID)
	if err != nil || string(data["cart"]) != `{"tea":2}` {
		t.Fatalf("data after the sign-in: %q %v", data, err)
	}
}

// TestChangePasswordForceLogout: every other session ends; the caller's
// survives with a new token and counts as fresh.
func TestChangePasswordForceLogout(t *testing.T) {
	e := newEnv(t, flows.Config{})
	c := client("192.0.2.7", firefox)
	var others []string
	for range 3 {
		in, err := e.flows.SignIn(t.Context(), client("198.51.100.1", chrome), flows.SignInParams{Email: "ada@example.com", Password: password, Transport: sessiond.TransportToken})
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, in.Token)
	}
	in, err := e.flows.SignIn(t.Context(), c, flows.SignInParams{Email: "ada@example.com", Password: password, Transport: sessiond.TransportCookie})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(20 * time.Minute) // past the reauthentication window, within the idle timeout
	caller, err := e.flows.Authenticate(t.Context(), c, in.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.flows.RevokeOthers(t.Context(), c, caller.Session); !errors.Is(err, flows.ErrReauthenticationRequired) {
		t.Fatalf("revoke others without a fresh proof: %v", err)
	}
	rot, err := e.flows.ChangePassword(t.Context(), c, caller, password, "a brand new passphrase")
	if err != nil {
		t.Fatal(err)
	}
	if rot.Revoked != 3 || rot.Token == in.Token || rot.Session.ID != in.Session.ID || !e.flows.Fresh(rot.Session) {
		t.Fatalf("after the change: revoked %d, same token %v, fresh %v", rot.Revoked, rot.Token == in.Token, e.flows.Fresh(rot.Session))
	}
	for _, tok := range append(others, in.Token) {
		if _, err := e.flows.Authenticate(t.Context(), c, tok); !sessiond.IsRejection(err) {
			t.Fatalf("an old token still works: %v", err)
		}
	}
	if _, err := e.flows.Authenticate(t.Context(), c, rot.Token); err != nil {
		t.Fatalf("the rotated token: %v", err)
	}
}

// TestHijackRule: a browser session presented by another browser family
// ends; a bearer-token session does not.
func TestHijackRule(t *testing.T) {
	e := newEnv(t, flows.Config{})
	browser, err := e.flows.SignIn(t.Context(), client("192.0.2.7", firefox), flows.SignInParams{Email: "ada@example.com", Password: password, Transport: sessiond.TransportCookie})
	if err != nil {
		t.Fatal(err)
	}
	app, err := e.flows.SignIn(t.Context(), client("192.0.2.7", firefox), flows.SignInParams{Email: "ada@example.com", Password: password, Transport: sessiond.TransportToken})
	if err != nil {
		t.Fatal(err)
	}
	thief := client("203.0.113.9", chrome)
	if _, err := e.flows.Authenticate(t.Context(), thief, app.Token); err != nil {
		t.Fatalf("a bearer token from another client: %v", err)
	}
	if _, err := e.flows.Authenticate(t.Context(), thief, browser.Token); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("a browser token from another browser: %v, want revoked", err)
	}
	if _, err := e.flows.Authenticate(t.Context(), client("192.0.2.7", firefox), browser.Token); !sessiond.IsRejection(err) {
		t.Fatalf("the hijacked session still works for its owner: %v", err)
	}
	if _, err := e.flows.CheckTransport("carrier-pigeon"); !errors.Is(err, flows.ErrInvalidTransport) {
		t.Fatalf("unknown transport: %v", err)
	}
	if _, err := e.flows.CheckTransport(sessiond.TransportJWT); !errors.Is(err, flows.ErrClientSideOff) {
		t.Fatalf("jwt without client-side sessions: %v", err)
	}
}
