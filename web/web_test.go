package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/sessionhttp"
)

// testEnv is a server with the pages over in-memory stores, behind
// httptest, with a plain-HTTP cookie (a test client's cookie jar keeps
// Secure cookies from http:// URLs).
type testEnv struct {
	url      string
	srv      *server.Server
	accounts *account.Service
	events   *memstore.Audit
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	return newEnvWith(t)
}

// newEnvWith is newEnv with options for the Manager (a clock, say).
func newEnvWith(t *testing.T, opts ...sessiond.Option) *testEnv {
	t.Helper()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	events := memstore.NewAudit()
	acc, err := account.NewService(memstore.NewAccounts(), account.Config{
		LockoutThreshold: 3,
		HashParams:       account.HashParams{Memory: 64, Time: 1, Parallelism: 1},
	}, account.WithLockObserver((&audit.Recorder{Store: events}).LockObserver()))
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := wire(t, m, acc, events, slog.New(slog.DiscardHandler), sessionhttp.Cookie{Name: "session", Insecure: true})
	ts := httptest.NewServer(srv.Public())
	t.Cleanup(ts.Close)
	return &testEnv{url: ts.URL, srv: srv, accounts: acc, events: events}
}

// browser is an HTTP client with cookies that does not follow redirects,
// sending what a same-origin form post from a browser sends.
type browser struct {
	t      *testing.T
	env    *testEnv
	client *http.Client
}

func (e *testEnv) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, env: e, client: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	res, err := b.client.Get(b.env.url + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// post submits a form of the page at from, with its CSRF token unless
// values has one.
func (b *browser) post(from, path string, values url.Values) (*http.Response, string) {
	b.t.Helper()
	if values.Get("csrf") == "" {
		_, page := b.get(from)
		m := csrfRE.FindStringSubmatch(page)
		if m == nil {
			b.t.Fatalf("no CSRF token on %s", from)
		}
		values.Set("csrf", m[1])
	}
	req, _ := http.NewRequest("POST", b.env.url+path, strings.NewReader(values.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (e *testEnv) register(t *testing.T, email, password string) *account.User {
	t.Helper()
	u, err := e.accounts.Register(t.Context(), email, password, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

const pw = "correct horse battery"

func TestPagesHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	for _, path := range []string{"/", "/login", "/register", "/password/reset", "/password/reset/confirm"} {
		res, body := b.get(path)
		if res.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, res.StatusCode)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("GET %s: Cache-Control %q", path, cc)
		}
		csp := res.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "form-action 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
			t.Errorf("GET %s: inline script or style", path)
		}
	}
	for _, path := range []string{"/account", "/account/sessions", "/account/activity"} {
		res, _ := b.get(path)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next="+path {
			t.Errorf("GET %s signed out: %d to %q, want 303 to the sign-in page", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	res, _ := b.get("/static/style.css")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	// The API's JSON 404 still answers unknown paths.
	res, body := b.get("/nope")
	if res.StatusCode != 404 || !strings.Contains(body, `"not_found"`) {
		t.Errorf("GET /nope: %d %s", res.StatusCode, body)
	}
}

func TestSignInAndCSRF(t *testing.T) {
	e := newEnv(t)
	u := e.register(t, "ada@example.com", pw)
	b := e.browser(t)

	// A post without the token, or with a wrong one, changes nothing.
	for _, tok := range []string{"", "forged"} {
		req, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader(url.Values{"email": {u.Email}, "password": {pw}, "csrf": {tok}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		res, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") || hasCookie(res, "session") {
			t.Fatalf("login with csrf %q: %d to %s, cookie %v", tok, res.StatusCode, res.Header.Get("Location"), res.Cookies())
		}
	}
	// A cross-site post is refused by the server's cross-origin check.
	req, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader("email=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login post: %d, want 403", res.StatusCode)
	}

	res, body := b.post("/login", "/login", url.Values{"email": {u.Email}, "password": {"wrong password"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "email address or password is wrong") || !strings.Contains(body, `value="ada@example.com"`) {
		t.Fatalf("wrong password: %d\n%s", res.StatusCode, body)
	}
	res, _ = b.post("/login", "/login", url.Values{"email": {u.Email}, "password": {pw}, "next": {"/account/sessions"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account/sessions" {
		t.Fatalf("login: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, body = b.get("/account/sessions")
	if res.StatusCode != 200 || !strings.Contains(body, "This device") {
		t.Fatalf("sessions page: %d\n%s", res.StatusCode, body)
	}
	// An open redirect is not possible.
	b2 := e.browser(t)
	res, _ = b2.post("/login", "/login?next=https://evil.example/", url.Values{"email": {u.Email}, "password": {pw}, "next": {"//evil.example"}})
	if loc := res.Header.Get("Location"); loc != "/account" {
		t.Fatalf("login with a foreign next went to %q", loc)
	}
}

func TestLockoutMessage(t *testing.T) {
	e := newEnv(t)
	u := e.register(t, "ada@example.com", pw)
	b := e.browser(t)
	for range 3 {
		b.post("/login", "/login", url.Values{"email": {u.Email}, "password": {"wrong password"}})
	}
	res, body := b.post("/login", "/login", url.Values{"email": {u.Email}, "password": {pw}})
	if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "locked") || !strings.Contains(body, "Try again in") {
		t.Fatalf("locked account: %d\n%s", res.StatusCode, body)
	}
	evs, _ := e.events.List(t.Context(), u.ID, audit.Filter{Types: []string{audit.LockedOut}})
	if len(evs) != 1 {
		t.Fatalf("locked_out events: %v", evs)
	}
}

func TestAccountFlows(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	res, body := b.post("/register", "/register", url.Values{"email": {"ada@example.com"}, "password": {"short"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, `aria-invalid="true"`) {
		t.Fatalf("weak password: %d\n%s", res.StatusCode, body)
	}
	res, _ = b.post("/register", "/register", url.Values{"email": {"ada@example.com"}, "password": {pw}, "name": {"Ada"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("register: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	_, body = b.get("/account")
	if !strings.Contains(body, "Welcome!") || !strings.Contains(body, `value="Ada"`) || !strings.Contains(body, "no other session will be signed out") {
		t.Fatalf("account page after registration:\n%s", body)
	}
	// A second device, then the password change signs it out.
	other := e.browser(t)
	other.post("/login", "/login", url.Values{"email": {"ada@example.com"}, "password": {pw}})
	_, body = b.get("/account")
	if !strings.Contains(body, "signs out your <strong>1 other session</strong>") {
		t.Fatalf("account page with two sessions:\n%s", body)
	}
	res, _ = b.post("/account", "/account/password", url.Values{"current_password": {pw}, "new_password": {"another fine passphrase"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("password change: %d", res.StatusCode)
	}
	_, body = b.get("/account")
	if !strings.Contains(body, "Your password was changed. 1 other session was signed out.") {
		t.Fatalf("after the change:\n%s", body)
	}
	if res, _ := other.get("/account"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the other device after the change: %d, want a redirect to sign in", res.StatusCode)
	}
	_, body = b.get("/account/activity")
	for _, want := range []string{"Password changed; 1 other session signed out", "Signed in"} {
		if !strings.Contains(body, want) {
			t.Errorf("activity lacks %q", want)
		}
	}
	// Delete, with the wrong password first.
	res, body = b.post("/account", "/account/delete", url.Values{"password": {"wrong"}})
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "was not deleted") {
		t.Fatalf("delete with a wrong password: %d", res.StatusCode)
	}
	res, _ = b.post("/account", "/account/delete", url.Values{"password": {"another fine passphrase"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("delete: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.accounts.UserByEmail(t.Context(), "ada@example.com"); err == nil {
		t.Fatal("the account is still there")
	}
}

func TestResetConfirmWithQueryToken(t *testing.T) {
	e := newEnv(t)
	u := e.register(t, "ada@example.com", pw)
	tok, _, err := e.accounts.IssueResetToken(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := e.browser(t)
	_, body := b.get("/password/reset/confirm?token=" + tok)
	if !strings.Contains(body, `type="hidden" name="token" value="`+tok+`"`) {
		t.Fatalf("the token is not in a hidden field:\n%s", body)
	}
	res, _ := b.post("/password/reset/confirm?token="+tok, "/password/reset/confirm", url.Values{"token": {tok}, "new_password": {"a brand new passphrase"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/account" {
		t.Fatalf("reset confirm: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	res, body = b.post("/password/reset/confirm", "/password/reset/confirm", url.Values{"token": {tok}, "new_password": {"a brand new passphrase"}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid, used or expired") {
		t.Fatalf("reused token: %d", res.StatusCode)
	}
}

func hasCookie(res *http.Response, name string) bool {
	for _, c := range res.Cookies() {
		if c.Name == name && c.MaxAge >= 0 {
			return true
		}
	}
	return false
}
