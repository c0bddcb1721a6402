package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/storetest"
)

// newClockEnv is newEnv with a settable clock for the sessions.
func newClockEnv(t *testing.T) (*testEnv, *storetest.Clock) {
	t.Helper()
	clock := storetest.NewClock()
	return newEnvWith(t, sessiond.WithClock(clock.Now)), clock
}

var otherIDRE = regexp.MustCompile(`<li class="session" data-session-id="([0-9a-f]+)"`)

// TestPagesAskForThePassword: past the reauthentication window the devices
// page asks for the password on the forms that sign out other devices,
// refuses them without it, and performs them with it.
func TestPagesAskForThePassword(t *testing.T) {
	e, clock := newClockEnv(t)
	e.register(t, "ada@example.com", pw)
	b, other, third := e.browser(t), e.browser(t), e.browser(t)
	for _, x := range []*browser{b, other, third} {
		if res, _ := x.post("/login", "/login", url.Values{"email": {"ada@example.com"}, "password": {pw}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", res.StatusCode)
		}
	}
	_, body := b.get("/account/sessions")
	if strings.Contains(body, `name="password"`) {
		t.Fatal("the devices page asks for the password right after sign-in")
	}

	clock.Advance(11 * time.Minute)
	_, body = b.get("/account/sessions")
	if !strings.Contains(body, `id="reauth-others"`) || !strings.Contains(body, `id="reauth-note"`) {
		t.Fatalf("the devices page does not ask for the password after the window:\n%s", body)
	}
	ids := otherIDRE.FindAllStringSubmatch(body, -1)
	if len(ids) != 2 {
		t.Fatalf("%d other devices listed, want 2", len(ids))
	}
	// Without the password: refused, nothing signed out.
	res, body := b.post("/account/sessions", "/account/sessions/revoke", url.Values{"id": {ids[0][1]}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "confirm your password") {
		t.Fatalf("revoke without the password: %d\n%s", res.StatusCode, body)
	}
	res, body = b.post("/account/sessions", "/account/sessions/revoke-others", url.Values{"password": {"wrong password"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "nothing was signed out") {
		t.Fatalf("revoke-others with a wrong password: %d\n%s", res.StatusCode, body)
	}
	for _, x := range []*browser{other, third} {
		if res, _ := x.get("/account"); res.StatusCode != 200 {
			t.Fatalf("another device after refused sign-outs: %d", res.StatusCode)
		}
	}
	// With it: the proof is renewed (a new cookie) and the device ends.
	res, _ = b.post("/account/sessions", "/account/sessions/revoke", url.Values{"id": {ids[0][1]}, "password": {pw}})
	if res.StatusCode != http.StatusSeeOther || !hasCookie(res, "session") {
		t.Fatalf("revoke with the password: %d, cookies %v", res.StatusCode, res.Cookies())
	}
	_, body = b.get("/account/sessions")
	if strings.Contains(body, `name="password"`) || len(otherIDRE.FindAllStringSubmatch(body, -1)) != 1 {
		t.Fatalf("after reauthenticating: still asks, or the device is still listed:\n%s", body)
	}
	res, _ = b.post("/account/sessions", "/account/sessions/revoke-others", url.Values{})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke-others while fresh: %d", res.StatusCode)
	}
	for _, x := range []*browser{other, third} {
		if res, _ := x.get("/account"); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("a signed-out device still sees its account: %d", res.StatusCode)
		}
	}
	// Deleting the account after the window: its password field is the
	// confirmation.
	clock.Advance(11 * time.Minute)
	res, body = b.post("/account", "/account/delete", url.Values{"password": {"wrong password"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "was not deleted") {
		t.Fatalf("stale delete with a wrong password: %d", res.StatusCode)
	}
	res, _ = b.post("/account", "/account/delete", url.Values{"password": {pw}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("stale delete with the password: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.accounts.UserByEmail(t.Context(), "ada@example.com"); err == nil {
		t.Fatal("the account is still there")
	}
}

var linkTokenRE = regexp.MustCompile(`sde_[A-Za-z0-9_-]+`)

// TestPagesChangeEmail: the account page's change of email asks for the
// password past the window, and the confirmation page applies it.
func TestPagesChangeEmail(t *testing.T) {
	e, clock := newClockEnv(t)
	u := e.register(t, "ada@example.com", pw)
	b, other := e.browser(t), e.browser(t)
	for _, x := range []*browser{b, other} {
		x.post("/login", "/login", url.Values{"email": {u.Email}, "password": {pw}})
	}
	_, body := b.get("/account")
	if !strings.Contains(body, `id="change-email"`) || strings.Contains(body, `id="email_password"`) {
		t.Fatalf("the account page right after sign-in:\n%s", body)
	}
	clock.Advance(11 * time.Minute)
	_, body = b.get("/account")
	if !strings.Contains(body, `id="email_password"`) {
		t.Fatal("the email form does not ask for the password after the window")
	}
	res, body := b.post("/account", "/account/email", url.Values{"new_email": {"ada@new.example"}})
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "confirm your password") || !strings.Contains(body, `value="ada@new.example"`) {
		t.Fatalf("a stale change without the password: %d\n%s", res.StatusCode, body)
	}
	res, body = b.post("/account", "/account/email", url.Values{"new_email": {"ada@example.com"}, "password": {pw}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "current email address") {
		t.Fatalf("a change to the same address: %d\n%s", res.StatusCode, body)
	}
	res, _ = b.post("/account", "/account/email", url.Values{"new_email": {"ada@new.example"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the change (fresh after the failed attempt's confirmation): %d", res.StatusCode)
	}
	_, body = b.get("/account")
	if !strings.Contains(body, "A confirmation link is on its way") {
		t.Fatalf("after the request:\n%s", body)
	}
	// The token, as the notifier would deliver it: issue our own through
	// the service (the test server's notifier discards messages).
	req, err := e.accounts.RequestEmailChange(t.Context(), u.ID, "ada@new.example")
	if err != nil || !linkTokenRE.MatchString(req.Token) {
		t.Fatalf("RequestEmailChange: %+v, %v", req, err)
	}
	tok := req.Token
	_, body = b.get("/email/change/confirm?token=" + tok)
	if !strings.Contains(body, `type="hidden" name="token" value="`+tok+`"`) {
		t.Fatalf("the confirmation page:\n%s", body)
	}
	res, body = b.post("/email/change/confirm", "/email/change/confirm", url.Values{"token": {"sde_wrong"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid, used or expired") {
		t.Fatalf("a wrong code: %d", res.StatusCode)
	}
	res, _ = b.post("/email/change/confirm?token="+tok, "/email/change/confirm", url.Values{"token": {tok}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("confirm: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	_, body = b.get("/account")
	if !strings.Contains(body, "<strong>ada@new.example</strong>") || !strings.Contains(body, "Your email address was changed") {
		t.Fatalf("the account page after the change:\n%s", body)
	}
	if res, _ := other.get("/account"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("another session after the change: %d, want a redirect to sign in", res.StatusCode)
	}
}
