package account_test

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
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

// The account rules, through a Service over the memory store with a fake
// clock: registration, sign-in, lockout, password changes, resets, profiles,
// deletion, rehashing and email changes. What a Store keeps and returns is
// the conformance suite's (storetest.RunAccounts), which every backend runs.

// TestService runs each rule in a parallel subtest with a store of its own.
func TestService(t *testing.T) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *accountEnv)
	}{
		{"Register", testServiceRegister},
		{"Authenticate", testServiceAuthenticate},
		{"Enumeration", testServiceEnumeration},
		{"Lockout", testServiceLockout},
		{"LockoutDoublingCapped", testServiceLockoutDoubling},
		{"LockoutConcurrent", testServiceLockoutConcurrent},
		{"LockoutCountsEverywhere", testServiceLockoutEverywhere},
		{"ChangePassword", testServiceChangePassword},
		{"Reset", testServiceReset},
		{"ResetTokenLifecycle", testServiceResetLifecycle},
		{"Profile", testServiceProfile},
		{"Delete", testServiceDelete},
		{"RehashOnLogin", testServiceRehash},
		{"EmailChange", testServiceEmailChange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newAccountEnv(t))
		})
	}
}

// Passwords of these tests: none is common, none is an email.
const (
	pw1     = pw
	pw2     = "saffron-orbit-93-lantern"
	wrongPw = "not-the-password-at-all"
)

// accountEnv is a Service over a memory store of its own and a fake clock.
type accountEnv struct {
	store account.Store
	svc   *account.Service
	clock *storetest.Clock
}

func newAccountEnv(t *testing.T) *accountEnv {
	t.Helper()
	e := &accountEnv{store: memstore.NewAccounts(), clock: storetest.NewClock()}
	e.svc = e.service(t, account.Config{})
	return e
}

// service returns a Service over e's store and clock with cfg; a zero
// cfg.HashParams means the cheap test parameters (small).
func (e *accountEnv) service(t *testing.T, cfg account.Config) *account.Service {
	t.Helper()
	if cfg.HashParams == (account.HashParams{}) {
		cfg.HashParams = small
	}
	svc, err := account.NewService(e.store, cfg, account.WithClock(e.clock.Now))
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	return svc
}

// byID returns the user as the store keeps it, password hash included.
func (e *accountEnv) byID(t *testing.T, id string) *account.User {
	t.Helper()
	u, err := e.store.UserByID(t.Context(), id)
	wantErr(t, "UserByID("+id+")", err, nil)
	return u
}

// wantErr stops the test unless errors.Is(err, want); a nil want asks for
// success.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

// profileOf decodes u's profile, which must be a JSON object.
func profileOf(t *testing.T, u *account.User) (obj map[string]any) {
	t.Helper()
	if err := json.Unmarshal(u.Profile, &obj); err != nil || obj == nil {
		t.Fatalf("profile %q is not a JSON object: %v", u.Profile, err)
	}
	return obj
}

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
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$"+small.String()+"$") {
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
	stronger := small
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

func testServiceEmailChange(t *testing.T, e *accountEnv) {
	ctx := t.Context()
	u := e.register(t, "ada@example.com", pw1)
	e.register(t, "bob@example.com", pw2)

	for _, c := range []struct {
		email string
		want  error
	}{
		{"not an email", account.ErrInvalidEmail},
		{"  ADA@Example.com ", account.ErrEmailUnchanged},
		{"Bob@example.com", account.ErrEmailTaken},
	} {
		_, err := e.svc.RequestEmailChange(ctx, u.ID, c.email)
		wantErr(t, "RequestEmailChange("+c.email+")", err, c.want)
	}
	_, err := e.svc.RequestEmailChange(ctx, "no-such-user", "x@example.com")
	wantErr(t, "RequestEmailChange(missing user)", err, account.ErrUserNotFound)

	req, err := e.svc.RequestEmailChange(ctx, u.ID, " Ada@New.Example ")
	if err != nil || !strings.HasPrefix(req.Token, account.EmailChangeTokenPrefix) || req.User.Email != "ada@example.com" ||
		!strings.HasPrefix(req.CancelToken, account.EmailChangeCancelPrefix) || req.CancelToken == req.Token ||
		req.User.PasswordHash != "" || req.NewEmail != "ada@new.example" || !req.ExpiresAt.Equal(e.clock.Now().Add(account.DefaultEmailChangeTTL)) {
		t.Fatalf("RequestEmailChange = %+v, %v", req, err)
	}
	tok := req.Token
	// A second request voids the first.
	req2, err := e.svc.RequestEmailChange(ctx, u.ID, "ada@newer.example")
	if err != nil {
		t.Fatal(err)
	}
	tok2 := req2.Token
	_, _, err = e.svc.ConfirmEmailChange(ctx, tok)
	wantErr(t, "ConfirmEmailChange(superseded)", err, account.ErrInvalidEmailChangeToken)
	for _, bad := range []string{"", "sde_short", tok2 + "x", "sdp_" + tok2[4:]} {
		_, _, err = e.svc.ConfirmEmailChange(ctx, bad)
		wantErr(t, "ConfirmEmailChange(malformed)", err, account.ErrInvalidEmailChangeToken)
	}
	v, old, err := e.svc.ConfirmEmailChange(ctx, tok2)
	if err != nil || v.Email != "ada@newer.example" || old != "ada@example.com" || v.PasswordHash != "" {
		t.Fatalf("ConfirmEmailChange = %+v, %q, %v", v, old, err)
	}
	// The new address signs in; the old one is unknown.
	e.signIn(t, e.svc, "ada@newer.example", pw1)
	_, err = e.svc.Authenticate(ctx, "ada@example.com", pw1)
	wantErr(t, "Authenticate(old address)", err, account.ErrInvalidCredentials)
	if got, _ := e.svc.User(ctx, u.ID); got.Email != "ada@newer.example" {
		t.Fatalf("User after the change: %q", got.Email)
	}

	// Expiry.
	req3, err := e.svc.RequestEmailChange(ctx, u.ID, "ada@third.example")
	if err != nil {
		t.Fatal(err)
	}
	tok3 := req3.Token
	e.clock.Advance(account.DefaultEmailChangeTTL)
	_, _, err = e.svc.ConfirmEmailChange(ctx, tok3)
	wantErr(t, "ConfirmEmailChange(expired)", err, account.ErrInvalidEmailChangeToken)
}
