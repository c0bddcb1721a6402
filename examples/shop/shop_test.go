package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/storetest"
)

// The handlers over real HTTP (TLS, so that the client's cookie jar keeps
// and sends the Secure cookies as a browser does) and a real SQLite file.

const testPassword = "correct horse battery staple"

// testShop is a shop served on a test listener, with the manager and the
// accounts behind it for looking at what the requests did.
type testShop struct {
	url      string
	clock    *storetest.Clock // the clock of the per-address limit
	manager  *sessiond.Manager
	accounts *account.Service
	srv      *httptest.Server
}

// startShop serves a new shop, on a fresh SQLite file, over HTTPS.
func startShop(t *testing.T) *testShop {
	t.Helper()
	return serveShop(t, httptest.NewTLSServer)
}

// serveShop serves a new shop with serve (httptest.NewServer or
// NewTLSServer).
func serveShop(t *testing.T, serve func(http.Handler) *httptest.Server) *testShop {
	t.Helper()
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "shop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	manager, err := sessiond.NewManager(store, sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	accounts, err := account.NewService(store, account.Config{
		HashParams: account.HashParams{Memory: 64, Time: 1, Parallelism: 1}, // fast hashes, for tests only
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	sessions := sessionhttp.New(manager, sessionhttp.Cookie{})
	sessions.Logger = log
	s, err := newShop(sessions, accounts, log)
	if err != nil {
		t.Fatal(err)
	}
	clock := storetest.NewClock()
	s.attempts.now = clock.Now
	srv := serve(s.handler())
	t.Cleanup(srv.Close)
	return &testShop{url: srv.URL, clock: clock, manager: manager, accounts: accounts, srv: srv}
}

// visitor is one browser: a cookie jar that does not follow redirects, so
// that tests see the 303s.
type visitor struct {
	t      *testing.T
	shop   *testShop
	client *http.Client
}

func (s *testShop) visitor(t *testing.T) *visitor {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := *s.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &visitor{t: t, shop: s, client: &c}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (v *visitor) do(req *http.Request) answer {
	v.t.Helper()
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func (v *visitor) get(path string) answer {
	v.t.Helper()
	req, err := http.NewRequestWithContext(v.t.Context(), "GET", v.shop.url+path, nil)
	if err != nil {
		v.t.Fatal(err)
	}
	return v.do(req)
}

// post sends form to path; header adds request headers.
func (v *visitor) post(path string, form url.Values, header ...string) answer {
	v.t.Helper()
	return v.postRaw(path, form.Encode(), header...)
}

// postRaw sends body as a form to path.
func (v *visitor) postRaw(path, body string, header ...string) answer {
	v.t.Helper()
	req, err := http.NewRequestWithContext(v.t.Context(), "POST", v.shop.url+path, strings.NewReader(body))
	if err != nil {
		v.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return v.do(req)
}

var tokenRE = regexp.MustCompile(`name="form_token" value="([^"]+)"`)

// token loads the catalogue and returns its form token, as a browser
// posts it.
func (v *visitor) token() string {
	v.t.Helper()
	a := v.get("/")
	m := tokenRE.FindStringSubmatch(a.body)
	if a.status != http.StatusOK || m == nil {
		v.t.Fatalf("GET /: %d, no form token in %q", a.status, a.body)
	}
	return m[1]
}

// cookie returns the value of the jar's cookie name, or "".
func (v *visitor) cookie(name string) string {
	u, _ := url.Parse(v.shop.url)
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// session returns the visitor's session as sessiond has it, or nil when
// the visitor has no valid session.
func (v *visitor) session() *sessiond.Session {
	v.t.Helper()
	tok := v.cookie(sessionhttp.DefaultCookieName)
	if tok == "" {
		return nil
	}
	s, err := v.shop.manager.Peek(v.t.Context(), tok)
	if sessiond.IsRejection(err) {
		return nil
	}
	if err != nil {
		v.t.Fatal(err)
	}
	return s
}

// storedCart returns the session's "cart" data as stored, "" without a
// session or a cart.
func (v *visitor) storedCart() string {
	v.t.Helper()
	s := v.session()
	if s == nil {
		return ""
	}
	data, err := v.shop.manager.Data(v.t.Context(), s.ID)
	if err != nil {
		v.t.Fatal(err)
	}
	return string(data[cartKey])
}

func (v *visitor) add(tok, product string) {
	v.t.Helper()
	if a := v.post("/cart", url.Values{formField: {tok}, "action": {"add"}, "product": {product}}); a.status != http.StatusSeeOther {
		v.t.Fatalf("adding %s: %d %s", product, a.status, a.body)
	}
}

func TestCartOfAnAnonymousVisitor(t *testing.T) {
	shop := startShop(t)
	v := shop.visitor(t)
	tok := v.token()
	if v.session() != nil {
		t.Fatal("looking at the catalogue started a session")
	}
	v.add(tok, "tea")
	v.add(tok, "tea")
	v.add(tok, "notebook")
	s := v.session()
	if s == nil || !s.Anonymous() {
		t.Fatalf("after adding to the cart: session %+v, want an anonymous one", s)
	}
	if got := v.storedCart(); got != `{"notebook":1,"tea":2}` {
		t.Errorf("stored cart %s", got)
	}
	page := v.get("/").body
	for _, want := range []string{`<span class="qty">× 2</span>`, `<span class="qty">× 1</span>`, "3 items, <strong>€29.00</strong>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the catalogue lacks %q", want)
		}
	}

	// The quantity stops at maxQuantity; remove and empty.
	for range maxQuantity + 2 {
		v.add(tok, "mug")
	}
	if got := v.storedCart(); got != `{"mug":9,"notebook":1,"tea":2}` {
		t.Errorf("stored cart after many mugs: %s", got)
	}
	v.post("/cart", url.Values{formField: {tok}, "action": {"remove"}, "product": {"tea"}})
	if got := v.storedCart(); got != `{"mug":9,"notebook":1}` {
		t.Errorf("stored cart after removing the tea: %s", got)
	}
	v.post("/cart", url.Values{formField: {tok}, "action": {"empty"}})
	if got := v.storedCart(); got != "" || v.session() == nil {
		t.Errorf("after emptying: cart %q, session %v; want no cart in a live session", got, v.session())
	}
	if !strings.Contains(v.get("/").body, "Your cart is empty.") {
		t.Error("the emptied cart is not shown empty")
	}
}

// TestCartRefusesBadInput: every bad request gets a clear 4xx and changes
// nothing: neither the cart of a visitor who has one, nor the sessions of
// one who has none.
func TestCartRefusesBadInput(t *testing.T) {
	shop := startShop(t)
	withCart := shop.visitor(t)
	tok := withCart.token()
	withCart.add(tok, "tea")
	fresh := shop.visitor(t)
	freshTok := fresh.token()

	// A body's "TOKEN" is replaced by the visitor's form token.
	cases := []struct {
		name, body string
		header     []string
		status     int
		message    string
	}{
		{"unknown product", "form_token=TOKEN&action=add&product=caviar", nil, http.StatusBadRequest, "no product"},
		{"no product", "form_token=TOKEN&action=add", nil, http.StatusBadRequest, "no product"},
		{"unknown action", "form_token=TOKEN&action=steal&product=tea", nil, http.StatusBadRequest, "not something a cart can do"},
		{"no form token", "action=add&product=tea", nil, http.StatusForbidden, "form has expired"},
		{"wrong form token", "form_token=" + strings.Repeat("A", 43) + "&action=add&product=tea", nil, http.StatusForbidden, "form has expired"},
		{"cross-site post", "form_token=TOKEN&action=add&product=tea", []string{"Sec-Fetch-Site", "cross-site"},
			http.StatusForbidden, "came from another site"},
		{"foreign origin", "form_token=TOKEN&action=add&product=tea", []string{"Origin", "https://evil.example"},
			http.StatusForbidden, "came from another site"},
		{"body too large", "form_token=TOKEN&action=add&product=tea&x=" + strings.Repeat("x", maxFormBytes), nil,
			http.StatusRequestEntityTooLarge, "too large"},
		{"malformed body", "form_token=TOKEN&action=add&product=tea&x=%zz", nil, http.StatusBadRequest, "could not be read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, v := range []struct {
				who  *visitor
				tok  string
				cart string
			}{{withCart, tok, `{"tea":1}`}, {fresh, freshTok, ""}} {
				before := v.who.cookie(sessionhttp.DefaultCookieName)
				a := v.who.postRaw("/cart", strings.ReplaceAll(c.body, "TOKEN", v.tok), c.header...)
				if a.status != c.status || !strings.Contains(a.body, c.message) {
					t.Errorf("%d %q, want %d and %q", a.status, a.body, c.status, c.message)
				}
				if got := v.who.storedCart(); got != v.cart {
					t.Errorf("stored cart %q, want %q unchanged", got, v.cart)
				}
				if after := v.who.cookie(sessionhttp.DefaultCookieName); after != before {
					t.Errorf("session cookie changed from %q to %q", before, after)
				}
			}
		})
	}
}

// TestSignInCarriesTheCart: at sign-in (and at registration) the
// anonymous session ends and a new one, with a new token, gets its cart;
// at sign-out the session and the cart end.
func TestSignInCarriesTheCart(t *testing.T) {
	shop := startShop(t)
	for _, how := range []string{"register", "signin"} {
		t.Run(how, func(t *testing.T) {
			email := how + "@example.com"
			if how == "signin" {
				if _, err := shop.accounts.Register(t.Context(), email, testPassword, nil); err != nil {
					t.Fatal(err)
				}
			}
			v := shop.visitor(t)
			tok := v.token()
			v.add(tok, "pencils")
			v.add(tok, "mug")
			anon := v.cookie(sessionhttp.DefaultCookieName)

			a := v.post("/"+how, url.Values{formField: {tok}, "email": {email}, "password": {testPassword}})
			if a.status != http.StatusSeeOther || a.header.Get("Location") != "/" {
				t.Fatalf("%s: %d to %q: %s", how, a.status, a.header.Get("Location"), a.body)
			}
			signedIn := v.cookie(sessionhttp.DefaultCookieName)
			if signedIn == "" || signedIn == anon {
				t.Fatalf("session cookie after %s: %q, want a new one (was %q)", how, signedIn, anon)
			}
			if _, err := shop.manager.Peek(t.Context(), anon); !errors.Is(err, sessiond.ErrRevoked) {
				t.Errorf("the anonymous token after %s: %v, want ErrRevoked", how, err)
			}
			u, err := shop.accounts.UserByEmail(t.Context(), email)
			if err != nil {
				t.Fatal(err)
			}
			if s := v.session(); s == nil || s.UserID != u.ID {
				t.Fatalf("session after %s: %+v, want one of user %s", how, s, u.ID)
			}
			if got := v.storedCart(); got != `{"mug":1,"pencils":1}` {
				t.Errorf("cart after %s: %s", how, got)
			}
			page := v.get("/").body
			if !strings.Contains(page, `<strong id="who">`+email+`</strong>`) || !strings.Contains(page, "2 items, <strong>€20.00</strong>") {
				t.Errorf("the catalogue after %s does not show the user and the cart: %s", how, page)
			}

			// The form cookie was replaced too: a token of the page before
			// the sign-in no longer works.
			if a := v.post("/cart", url.Values{formField: {tok}, "action": {"empty"}}); a.status != http.StatusForbidden {
				t.Errorf("a form token from before the sign-in: %d, want 403", a.status)
			}

			a = v.post("/signout", url.Values{formField: {v.token()}})
			if a.status != http.StatusSeeOther {
				t.Fatalf("sign-out: %d %s", a.status, a.body)
			}
			if c := v.cookie(sessionhttp.DefaultCookieName); c != "" {
				t.Errorf("session cookie after sign-out: %q", c)
			}
			if _, err := shop.manager.Peek(t.Context(), signedIn); !errors.Is(err, sessiond.ErrRevoked) {
				t.Errorf("the signed-in token after sign-out: %v, want ErrRevoked", err)
			}
			if page := v.get("/").body; !strings.Contains(page, "Your cart is empty.") || strings.Contains(page, email) {
				t.Errorf("the catalogue after sign-out still shows the cart or the user")
			}
		})
	}
}

// TestAccountFormsRefuseBadInput: a refused sign-in or registration says
// why, with its own status, and leaves the visitor's session and cart as
// they were.
func TestAccountFormsRefuseBadInput(t *testing.T) {
	shop := startShop(t)
	if _, err := shop.accounts.Register(t.Context(), "ada@example.com", testPassword, nil); err != nil {
		t.Fatal(err)
	}
	v := shop.visitor(t)
	tok := v.token()
	v.add(tok, "tea")
	anon := v.cookie(sessionhttp.DefaultCookieName)

	cases := []struct {
		name, path      string
		email, password string
		noToken         bool
		status          int
		message         string
	}{
		{"sign-in without a token", "/signin", "ada@example.com", testPassword, true, http.StatusForbidden, "form has expired"},
		{"registration without a token", "/register", "new@example.com", testPassword, true, http.StatusForbidden, "form has expired"},
		{"wrong password", "/signin", "ada@example.com", "not the password", false, http.StatusUnauthorized, "email address or the password is wrong"},
		{"unknown email", "/signin", "bob@example.com", testPassword, false, http.StatusUnauthorized, "email address or the password is wrong"},
		{"weak password", "/register", "new@example.com", "short", false, http.StatusBadRequest, "at least 8 characters"},
		{"common password", "/register", "new@example.com", "password123", false, http.StatusBadRequest, "too common"},
		{"bad email", "/register", "not an email", testPassword, false, http.StatusBadRequest, "does not look like an email"},
		{"taken email", "/register", "ADA@example.com", testPassword, false, http.StatusConflict, "sign in instead"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := url.Values{"email": {c.email}, "password": {c.password}}
			if !c.noToken {
				form.Set(formField, tok)
			}
			a := v.post(c.path, form)
			if a.status != c.status || !strings.Contains(a.body, c.message) {
				t.Errorf("%d %q, want %d and %q", a.status, a.body, c.status, c.message)
			}
			if strings.Contains(a.body, c.password) {
				t.Error("the answer repeats the password")
			}
			if s := v.session(); s == nil || !s.Anonymous() || v.cookie(sessionhttp.DefaultCookieName) != anon {
				t.Errorf("session after a refused %s: %+v, want the anonymous one unchanged", c.path, s)
			}
			if got := v.storedCart(); got != `{"tea":1}` {
				t.Errorf("cart %q, want it unchanged", got)
			}
		})
	}
	if _, err := shop.accounts.UserByEmail(t.Context(), "new@example.com"); !errors.Is(err, account.ErrUserNotFound) {
		t.Errorf("a refused registration made an account: %v", err)
	}

	// Lockout: after the default 5 failures (1 above) the account is
	// locked, and even the right password gets 429 with Retry-After.
	shop.clock.Advance(time.Hour) // a full burst of attempts for this address
	for range account.DefaultLockoutThreshold - 1 {
		v.post("/signin", url.Values{formField: {tok}, "email": {"ada@example.com"}, "password": {"wrong again"}})
	}
	a := v.post("/signin", url.Values{formField: {tok}, "email": {"ada@example.com"}, "password": {testPassword}})
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "60" || !strings.Contains(a.body, "locked for 60 seconds") {
		t.Errorf("sign-in to a locked account: %d, Retry-After %q, %q", a.status, a.header.Get("Retry-After"), a.body)
	}
	if s := v.session(); s == nil || !s.Anonymous() {
		t.Errorf("a locked account signed in: %+v", s)
	}
}

// TestPagesHeaders: every page forbids scripts and caching; the stylesheet
// is served from the binary.
func TestPagesHeaders(t *testing.T) {
	shop := startShop(t)
	v := shop.visitor(t)
	for _, path := range []string{"/", "/signin", "/register"} {
		a := v.get(path)
		if a.status != http.StatusOK || a.header.Get("Content-Security-Policy") != contentSecurityPolicy ||
			a.header.Get("Cache-Control") != "no-store" || a.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d, headers %v", path, a.status, a.header)
		}
		if strings.Contains(a.body, "<script") || strings.Contains(a.body, "style=") {
			t.Errorf("GET %s has a script or an inline style", path)
		}
	}
	a := v.get("/static/shop.css")
	if a.status != http.StatusOK || !strings.HasPrefix(a.header.Get("Content-Type"), "text/css") || !bytes.Contains([]byte(a.body), []byte(".products")) {
		t.Errorf("GET /static/shop.css: %d %s", a.status, a.header.Get("Content-Type"))
	}
	if a := v.get("/nothing-here"); a.status != http.StatusNotFound {
		t.Errorf("GET /nothing-here: %d", a.status)
	}
	// A form cookie is __Host-: Secure, Path=/, no Domain; HttpOnly and
	// SameSite=Strict.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", shop.url+"/", nil)
	resp, err := shop.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var set *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == formCookie {
			set = c
		}
	}
	if set == nil || !set.Secure || !set.HttpOnly || set.SameSite != http.SameSiteStrictMode || set.Path != "/" || set.Domain != "" || len(set.Value) < 32 {
		t.Errorf("form cookie %+v", set)
	}
}

// TestAttemptsLimitedPerAddress: sign-ins and registrations from one
// address get a burst of attemptBurst, then one every attemptEvery; the
// refused ones are 429 with Retry-After and never reach the accounts.
func TestAttemptsLimitedPerAddress(t *testing.T) {
	shop := startShop(t)
	v := shop.visitor(t)
	tok := v.token()
	signIn := func() answer {
		return v.post("/signin", url.Values{formField: {tok}, "email": {"nobody@example.com"}, "password": {testPassword}})
	}
	for i := range attemptBurst {
		if a := signIn(); a.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d, want 401", i+1, a.status)
		}
	}
	a := signIn()
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") != "6" || !strings.Contains(a.body, "Too many attempts") {
		t.Errorf("attempt %d: %d, Retry-After %q, %q", attemptBurst+1, a.status, a.header.Get("Retry-After"), a.body)
	}
	a = v.post("/register", url.Values{formField: {tok}, "email": {"new@example.com"}, "password": {testPassword}})
	if a.status != http.StatusTooManyRequests {
		t.Errorf("registration past the limit: %d", a.status)
	}
	if _, err := shop.accounts.UserByEmail(t.Context(), "new@example.com"); !errors.Is(err, account.ErrUserNotFound) {
		t.Errorf("a registration past the limit made an account: %v", err)
	}
	shop.clock.Advance(attemptEvery)
	if a := signIn(); a.status != http.StatusUnauthorized {
		t.Errorf("after %v: %d, want 401", attemptEvery, a.status)
	}
	if a := signIn(); a.status != http.StatusTooManyRequests {
		t.Errorf("the second attempt after %v: %d, want 429", attemptEvery, a.status)
	}
}

// TestAddrLimiter: addresses are limited apart, and the limiter forgets
// addresses rather than grow past maxTrackedAddrs.
func TestAddrLimiter(t *testing.T) {
	clock := storetest.NewClock()
	l := newAddrLimiter(clock.Now)
	for range attemptBurst {
		l.allow("192.0.2.1")
	}
	if ok, wait := l.allow("192.0.2.1"); ok || wait != attemptEvery {
		t.Errorf("past the burst: %v, %v", ok, wait)
	}
	if ok, _ := l.allow("192.0.2.2"); !ok {
		t.Error("another address was limited")
	}
	for i := len(l.addrs); i < maxTrackedAddrs; i++ {
		l.allow(fmt.Sprint("addr", i))
	}
	clock.Advance(attemptEvery) // 192.0.2.2 and the others are back to a full burst; 192.0.2.1 is not
	l.allow("one more")
	if len(l.addrs) != 2 || l.addrs["192.0.2.1"] == nil {
		t.Errorf("after the bound: %d addresses tracked, want 192.0.2.1 and the new one", len(l.addrs))
	}
	for i := len(l.addrs); i < maxTrackedAddrs; i++ {
		l.allow(fmt.Sprint("addr", i))
	}
	l.allow("yet another")
	if len(l.addrs) != 1 {
		t.Errorf("with every address busy: %d tracked after the bound, want only the new one", len(l.addrs))
	}
}
