package account_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
)

const pw = "plum-kettle-47-ravine"

func newService(t *testing.T, cfg account.Config, opts ...account.Option) (*account.Service, *memstore.Accounts) {
	t.Helper()
	st := memstore.NewAccounts()
	if cfg.HashParams == (account.HashParams{}) {
		cfg.HashParams = small
	}
	svc, err := account.NewService(st, cfg, opts...)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	return svc, st
}

func TestConfigDefaults(t *testing.T) {
	svc, err := account.NewService(memstore.NewAccounts(), account.Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := account.Config{
		PasswordMinLength:  8,
		PasswordMaxBytes:   256,
		LockoutThreshold:   5,
		LockoutDuration:    time.Minute,
		LockoutMaxDuration: time.Hour,
		ResetTokenTTL:      30 * time.Minute,
		EmailChangeTTL:     time.Hour,
		MaxProfileBytes:    16 << 10,
		HashParams:         account.HashParams{Memory: 19456, Time: 2, Parallelism: 1},
		HashConcurrency:    max(1, runtime.GOMAXPROCS(0)/2),
		HashStormShare:     0.5,
	}
	if got := svc.Config(); got != want {
		t.Fatalf("Config() = %+v,\nwant %+v", got, want)
	}
	if svc.Hasher().Params() != want.HashParams || svc.Hasher().Concurrency() != want.HashConcurrency {
		t.Fatal("the hasher does not follow the config")
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, cfg := range []account.Config{
		{PasswordMinLength: -1},
		{PasswordMaxBytes: -1},
		{PasswordMinLength: 20, PasswordMaxBytes: 10},
		{PasswordMaxBytes: account.MaxPasswordBytes + 1},
		{LockoutDuration: -time.Second},
		{LockoutDuration: time.Millisecond},
		{LockoutDuration: 2 * time.Hour}, // longer than the default cap
		{LockoutMaxDuration: time.Second},
		{ResetTokenTTL: -time.Minute},
		{MaxProfileBytes: 1},
		{HashConcurrency: -1},
		{HashParams: account.HashParams{Memory: 64, Time: 0, Parallelism: 1}},
		{HashParams: account.HashParams{Memory: account.MaxHashMemory * 2, Time: 1, Parallelism: 1}},
	} {
		if _, err := account.NewService(memstore.NewAccounts(), cfg); !errors.Is(err, account.ErrInvalidConfig) {
			t.Errorf("NewService(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := account.NewService(nil, account.Config{}); err == nil {
		t.Error("NewService(nil store) succeeded")
	}
}

// TestSignInWorkIsTheSame: an unknown or malformed email costs one argon2
// run, like a known email with a wrong password.
func TestSignInWorkIsTheSame(t *testing.T) {
	svc, _ := newService(t, account.Config{})
	if _, err := svc.Register(t.Context(), "ada@example.com", pw, nil); err != nil {
		t.Fatal(err)
	}
	calls := counting(svc.Hasher())
	for _, email := range []string{"ada@example.com", "nobody@example.com", "not an email", ""} {
		calls.Store(0)
		_, err := svc.Authenticate(t.Context(), email, "wrong-password-1")
		if !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("Authenticate(%q) = %v", email, err)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("Authenticate(%q) ran argon2 %d times, want 1", email, n)
		}
	}
	// A locked account still costs the hash (the answer differs anyway).
	for range 5 {
		svc.Authenticate(t.Context(), "ada@example.com", "wrong-password-1")
	}
	calls.Store(0)
	if _, err := svc.Authenticate(t.Context(), "ada@example.com", pw); !errors.Is(err, account.ErrLocked) {
		t.Fatalf("Authenticate(locked) = %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("Authenticate(locked) ran argon2 %d times, want 1", n)
	}
}

func TestLockedError(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	e := &account.LockedError{Until: now.Add(1200 * time.Millisecond)}
	var err error = e
	if !errors.Is(err, account.ErrLocked) || errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatal("LockedError is not ErrLocked")
	}
	if !strings.Contains(e.Error(), "2030-01-02T03:04:06Z") {
		t.Errorf("Error() = %q", e.Error())
	}
	for _, tc := range []struct {
		now  time.Time
		want time.Duration
	}{
		{now, 2 * time.Second},
		{now.Add(200 * time.Millisecond), time.Second},
		{now.Add(1100 * time.Millisecond), time.Second},
		{now.Add(time.Hour), time.Second},
		{now.Add(-time.Hour), time.Hour + 2*time.Second},
	} {
		if got := e.RetryAfter(tc.now); got != tc.want {
			t.Errorf("RetryAfter(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestCorruptStoredHash(t *testing.T) {
	svc, st := newService(t, account.Config{})
	u, err := svc.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetPasswordHash(t.Context(), u.ID, "$argon2id$v=19$m=4294967295,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	_, err = svc.Authenticate(t.Context(), "ada@example.com", pw)
	if !errors.Is(err, account.ErrInvalidHash) || errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("Authenticate over a tampered hash = %v, want ErrInvalidHash (a store fault)", err)
	}
}

func TestRandomnessFailure(t *testing.T) {
	svc, _ := newService(t, account.Config{}, account.WithRand(bytes.NewReader(nil)))
	if _, err := svc.Register(t.Context(), "ada@example.com", pw, nil); err == nil {
		t.Fatal("Register without randomness succeeded")
	}
	if _, err := svc.Authenticate(t.Context(), "nobody@example.com", pw); err == nil || errors.Is(err, account.ErrInvalidCredentials) {
		t.Fatalf("Authenticate without randomness for the dummy = %v, want a failure", err)
	}
}

func TestProfileEncoding(t *testing.T) {
	svc, _ := newService(t, account.Config{MaxProfileBytes: 64})
	u, err := svc.Register(t.Context(), "ada@example.com", pw, []byte("{ \"b\" : \"<i>&\" ,\n \"a\": [ 1 ] }"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"a":[1],"b":"<i>&"}`; string(u.Profile) != want {
		t.Fatalf("profile = %s, want %s (compact, sorted, not HTML-escaped)", u.Profile, want)
	}
	_, err = svc.UpdateProfile(t.Context(), u.ID, map[string]json.RawMessage{"c": json.RawMessage(" { } "), "a": json.RawMessage("")})
	if !errors.Is(err, account.ErrInvalidProfile) {
		t.Fatalf("UpdateProfile(empty value) = %v, want ErrInvalidProfile", err)
	}
	u, err = svc.UpdateProfile(t.Context(), u.ID, map[string]json.RawMessage{"c": json.RawMessage(" { } "), "a": json.RawMessage(" null ")})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"b":"<i>&","c":{}}`; string(u.Profile) != want {
		t.Fatalf("profile = %s, want %s", u.Profile, want)
	}
	// A nil value deletes too.
	u, err = svc.UpdateProfile(t.Context(), u.ID, map[string]json.RawMessage{"c": nil})
	if err != nil || string(u.Profile) != `{"b":"<i>&"}` {
		t.Fatalf("UpdateProfile(nil value) = %s, %v", u.Profile, err)
	}
	// The limit is on the compact form.
	_, err = svc.UpdateProfile(t.Context(), u.ID, map[string]json.RawMessage{"d": json.RawMessage(`"` + strings.Repeat("x", 50) + `"`)})
	if !errors.Is(err, account.ErrInvalidProfile) {
		t.Fatalf("UpdateProfile(over 64 bytes) = %v", err)
	}
	for i, p := range []string{"", "  ", "{}"} {
		u, err := svc.Register(t.Context(), "p"+string(rune('a'+i))+"@example.com", pw, []byte(p))
		if err != nil || string(u.Profile) != "{}" {
			t.Fatalf("Register(profile %q) = %v, %v; want {}", p, u, err)
		}
	}
}

// TestContextCancelled: a sign-in that cannot get a hashing slot in time
// fails with the context's error and counts nothing.
func TestContextCancelled(t *testing.T) {
	svc, st := newService(t, account.Config{HashConcurrency: 1})
	u, err := svc.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := svc.Authenticate(ctx, "ada@example.com", "wrong-password-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Authenticate(cancelled) = %v", err)
	}
	l, err := st.UpdateLockout(t.Context(), u.ID, func(l account.Lockout) account.Lockout { return l })
	if err != nil || l.Failures != 0 {
		t.Fatalf("lockout after a cancelled attempt = %+v, %v; want nothing counted", l, err)
	}
}

// TestUpgradeLosesToChange: an upgrade at sign-in loses quietly to
// a password change that happened meanwhile.
func TestUpgradeLosesToChange(t *testing.T) {
	weak, st := newService(t, account.Config{})
	u, err := weak.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	strong, err := account.NewService(st, account.Config{HashParams: account.HashParams{Memory: 128, Time: 1, Parallelism: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// Change the password while the strong service hashes the upgrade.
	var once atomic.Bool
	account.SetHashHook(strong.Hasher(), func(start bool) {
		if !start && once.CompareAndSwap(false, true) {
			if _, err := weak.ChangePassword(context.Background(), u.ID, pw, "saffron-orbit-93-lantern"); err != nil {
				t.Error(err)
			}
		}
	})
	if _, err := strong.Authenticate(t.Context(), "ada@example.com", pw); err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if _, err := weak.Authenticate(t.Context(), "ada@example.com", "saffron-orbit-93-lantern"); err != nil {
		t.Fatalf("the change was overwritten by the upgrade: %v", err)
	}
}
