package web_test

// Browser tests: a real sessiond (SQLite in a temporary directory, a real
// listener on 127.0.0.1) driven through Debian's chromium with chromedp.
// They check what only a browser shows: what happens to the session cookie
// when the browser restarts, its attributes as the browser holds them,
// sessions ended from another device, the
// layout (screenshots in artifacts/screenshots, or $SESSIOND_ARTIFACTS)
// and accessibility (an axe-core scan of every page).
//
// chromium: found on PATH (chromium, chromium-browser, google-chrome) or
// at $SESSIOND_CHROMIUM. axe-core: $SESSIOND_AXE_JS, or axe.min.js under
// ${SESSIOND_AXE_DIR:-~/.cache/sessiond-axe}/node_modules/axe-core as
// scripts/browser.sh installs it. Without them the tests skip, unless
// SESSIOND_REQUIRE_BACKENDS=1 (CI), where they fail.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/internal/browsertest"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/sqlite"
)

// User agents of the two "devices" of the tests, so that the device list
// shows two different ones.
const (
	uaLinuxChrome  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaWindowsEdge  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
	requireEnvName = "SESSIOND_REQUIRE_BACKENDS"
)

func required() bool { return os.Getenv(requireEnvName) == "1" }

// axeSource returns axe-core's script, or "" when it is not installed and
// the scans may be skipped.
var axeOnce = sync.OnceValues(func() (string, error) {
	p := os.Getenv("SESSIOND_AXE_JS")
	if p == "" {
		dir := os.Getenv("SESSIOND_AXE_DIR")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".cache", "sessiond-axe")
		}
		p = filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(p)
	return string(b), err
})

// artifactDir is where screenshots go.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SESSIOND_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "artifacts")
	}
	dir = filepath.Join(dir, "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// liveServer is a sessiond serving its public listener on 127.0.0.1 with
// the stock cookie (__Host-session, Secure: Chromium treats
// http://127.0.0.1 as a secure context).
type liveServer struct {
	url      string
	accounts *account.Service
	sessions *sessiond.Manager
	events   audit.Store
}

func startLiveServer(t *testing.T) *liveServer {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sessiond.db"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessiond.NewManager(st, sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	events := st.Audit()
	log := slog.New(slog.DiscardHandler)
	acc, err := account.NewService(st, account.Config{
		HashParams: account.HashParams{Memory: 64, Time: 1, Parallelism: 1},
	}, account.WithLockObserver((&audit.Recorder{Store: events, Log: log}).LockObserver()))
	if err != nil {
		t.Fatal(err)
	}
	srv, f := wire(t, m, acc, events, log, sessionhttp.Cookie{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Public(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		f.Wait(ctx)
		_ = st.Close()
	})
	return &liveServer{url: "http://" + ln.Addr().String(), accounts: acc, sessions: m, events: events}
}

func (s *liveServer) register(t *testing.T, email string) {
	t.Helper()
	if _, err := s.accounts.Register(t.Context(), email, pw, []byte(`{"name":"Ada Lovelace"}`)); err != nil {
		t.Fatal(err)
	}
}

// chrome is one headless browser on a profile directory, with the steps
// of internal/browsertest and the pages' own.
type chrome struct {
	*browsertest.Browser
	t   *testing.T
	srv *liveServer
}

// startChrome starts a browser on profile (a directory that outlives it,
// for restarts) with the user agent ua.
func startChrome(t *testing.T, srv *liveServer, profile, ua string) *chrome {
	t.Helper()
	b := browsertest.Start(t, srv.url, browsertest.Options{Profile: profile, UserAgent: ua})
	return &chrome{Browser: b, t: t, srv: srv}
}

func (c *chrome) close()                                     { c.Close() }
func (c *chrome) do(steps ...chromedp.Action[chromedp.Void]) { c.t.Helper(); c.Do(steps...) }
func (c *chrome) location() string                           { return c.Location() }
func (c *chrome) open(path string) string                    { c.t.Helper(); return c.Open(path) }
func (c *chrome) submit(sel string) string                   { c.t.Helper(); return c.Submit(sel) }
func (c *chrome) text(sel string) string                     { c.t.Helper(); return c.Text(sel) }

func run[T any](c *chrome, a chromedp.Action[T]) T {
	c.t.Helper()
	return browsertest.Run(c.Browser, a)
}

// signIn signs in through the form of /login (or the page it is on).
func (c *chrome) signIn(email string, remember bool) string {
	c.t.Helper()
	if !strings.HasPrefix(strings.TrimPrefix(c.location(), c.srv.url), "/login") {
		c.open("/login")
	}
	steps := []chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), pw),
	}
	if remember {
		steps = append(steps, chromedp.Click(chromedp.ID("remember_me")))
	}
	c.do(steps...)
	return c.submit("#sign-in")
}

// sessionCookie returns the session cookie as the browser holds it.
func (c *chrome) sessionCookie() *network.Cookie {
	c.t.Helper()
	return c.Cookie(sessionhttp.DefaultCookieName)
}

// shot saves a full-page screenshot as name.png.
func (c *chrome) shot(name string) {
	c.t.Helper()
	b := run(c, chromedp.FullScreenshot(100))
	p := filepath.Join(artifactDir(c.t), name+".png")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// scan runs axe-core on the page and fails the test for every serious or
// critical violation. Without axe-core it skips the scan (fails in CI).
func (c *chrome) scan(name string) {
	c.t.Helper()
	src, err := axeOnce()
	if err != nil {
		if required() {
			c.t.Fatalf("axe-core is not installed (scripts/browser.sh installs it): %v", err)
		}
		c.t.Logf("axe-core not installed, no accessibility scan of %s: %v", name, err)
		return
	}
	vs := c.axeViolations(src)
	c.t.Logf("axe on %s: %d violations", name, len(vs))
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			c.t.Errorf("axe on %s: %s (%s): %s at %v", name, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			c.t.Logf("axe on %s (%s, not failing): %s: %s at %v", name, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

// axeViolations injects axe-core (src) into the page and returns what it
// finds.
func (c *chrome) axeViolations(src string) []axeViolation {
	c.t.Helper()
	c.do(chromedp.Evaluate[chromedp.Void](src))
	raw := run(c, chromedp.Evaluate[[]byte](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
			nodes: v.nodes.slice(0, 5).map(n => n.target.join(" "))})))`,
		chromedp.EvalAwaitPromise))
	var vs []axeViolation
	if err := json.Unmarshal(raw, &vs); err != nil {
		c.t.Fatalf("axe result: %v: %s", err, raw)
	}
	return vs
}

// TestBrowserRememberMe: a session without Remember Me dies with the
// browser; one with it survives a restart on the same profile. The cookie
// as the browser holds it: __Host-, HttpOnly, Secure, SameSite=Lax, an
// expiry only with Remember Me.
func TestBrowserRememberMe(t *testing.T) {
	srv := startLiveServer(t)
	srv.register(t, "ada@example.com")
	for _, remember := range []bool{false, true} {
		t.Run(fmt.Sprintf("remember=%v", remember), func(t *testing.T) {
			profile := t.TempDir()
			b := startChrome(t, srv, profile, uaLinuxChrome)
			if got := b.signIn("ada@example.com", remember); got != "/account" {
				t.Fatalf("sign-in landed on %s", got)
			}
			ck := b.sessionCookie()
			if ck == nil {
				t.Fatal("no session cookie in the browser")
			}
			if !strings.HasPrefix(ck.Name, "__Host-") || !ck.HTTPOnly || !ck.Secure ||
				ck.SameSite != network.CookieSameSiteLax || ck.Path != "/" {
				t.Errorf("cookie %s: HttpOnly %v, Secure %v, SameSite %q, Path %q, want __Host-, HttpOnly, Secure, Lax, /",
					ck.Name, ck.HTTPOnly, ck.Secure, ck.SameSite, ck.Path)
			}
			if remember {
				exp := time.Unix(int64(ck.Expires), 0)
				if ck.Session || time.Until(exp) < 29*24*time.Hour || time.Until(exp) > 31*24*time.Hour {
					t.Errorf("remember-me cookie: session %v, expires %v; want a persistent cookie for about 30 days", ck.Session, exp)
				}
			} else if !ck.Session || ck.Expires > 0 {
				t.Errorf("cookie without Remember Me: session %v, expires %v; want a session cookie", ck.Session, ck.Expires)
			}
			if dc := run(b, chromedp.Evaluate[string]("document.cookie")); strings.Contains(dc, sessionhttp.DefaultCookieName) {
				t.Errorf("document.cookie shows the session cookie: %q", dc)
			}
			b.close()

			again := startChrome(t, srv, profile, uaLinuxChrome)
			got := again.open("/account")
			if remember && got != "/account" {
				t.Errorf("after a restart with Remember Me: landed on %s, want still signed in", got)
			}
			if !remember && got != "/login?next=/account" {
				t.Errorf("after a restart without Remember Me: landed on %s, want the sign-in page", got)
			}
		})
	}
}

// TestBrowserDevices: two browsers as one user; the first signs out the
// second from the device list, then a password change in the first signs
// out a third.
func TestBrowserDevices(t *testing.T) {
	srv := startLiveServer(t)
	srv.register(t, "ada@example.com")
	one := startChrome(t, srv, t.TempDir(), uaLinuxChrome)
	two := startChrome(t, srv, t.TempDir(), uaWindowsEdge)
	one.signIn("ada@example.com", false)
	two.signIn("ada@example.com", true)

	if got := one.open("/account/sessions"); got != "/account/sessions" {
		t.Fatalf("sessions page: landed on %s", got)
	}
	if n := run(one, chromedp.Evaluate[int](`document.querySelectorAll("li.session").length`)); n != 2 {
		t.Fatalf("%d sessions listed, want 2", n)
	}
	current := one.text("li.session.current")
	other := one.text("li.session:not(.current)")
	if !strings.Contains(current, "This device") || !strings.Contains(current, "Chrome on Linux") ||
		!strings.Contains(current, "ends when the browser closes") || !strings.Contains(current, "127.0.0.1") {
		t.Errorf("this device's entry: %q", current)
	}
	if strings.Contains(other, "This device") || !strings.Contains(other, "Windows") || !strings.Contains(other, "Yes, until") ||
		!strings.Contains(other, "just now") {
		t.Errorf("the other device's entry: %q", other)
	}
	one.shot("sessions")
	one.scan("sessions")

	if got := one.submit("li.session:not(.current) button.revoke"); got != "/account/sessions" {
		t.Fatalf("after signing out the other: on %s", got)
	}
	if msg := one.text(".flash"); !strings.Contains(msg, "That session was signed out") {
		t.Errorf("flash: %q", msg)
	}
	if got := two.open("/account/sessions"); got != "/login?next=/account/sessions" {
		t.Fatalf("the signed-out browser's next load landed on %s, want the sign-in page", got)
	}

	// The second signs in again; a password change in the first signs it
	// out, and the first stays signed in.
	two.signIn("ada@example.com", false)
	one.open("/account")
	if note := one.text("#force-logout-note"); !strings.Contains(note, "1 other session") {
		t.Errorf("the note before the change: %q", note)
	}
	one.do(chromedp.SendKeys(chromedp.ID("current_password"), pw),
		chromedp.SendKeys(chromedp.ID("new_password"), "a new and better passphrase"))
	if got := one.submit("#change-password"); got != "/account" {
		t.Fatalf("after the password change: on %s", got)
	}
	if msg := one.text(".flash"); !strings.Contains(msg, "1 other session was signed out") {
		t.Errorf("flash after the change: %q", msg)
	}
	if got := two.open("/account"); got != "/login?next=/account" {
		t.Errorf("the other browser after the change: on %s, want the sign-in page", got)
	}
	if got := one.open("/account"); got != "/account" {
		t.Errorf("the changing browser after the change: on %s, want still signed in", got)
	}
	one.shot("account")
	one.scan("account")
	one.open("/account/activity")
	for _, want := range []string{"Signed in from a new device", "Password changed; 1 other session signed out", "Signed out a session"} {
		if !strings.Contains(one.text("main"), want) {
			t.Errorf("activity lacks %q", want)
		}
	}
	one.shot("activity")
	one.scan("activity")
}

// TestBrowserPages takes a screenshot of every page, wide and narrow, and
// scans each with axe-core; it also checks the reset link's fragment token.
func TestBrowserPages(t *testing.T) {
	srv := startLiveServer(t)
	srv.register(t, "ada@example.com")
	b := startChrome(t, srv, t.TempDir(), uaLinuxChrome)
	for _, p := range []struct{ name, path string }{
		{"login", "/login"},
		{"register", "/register"},
		{"reset", "/password/reset"},
		{"reset-confirm", "/password/reset/confirm"},
	} {
		b.open(p.path)
		b.shot(p.name)
		b.scan(p.name)
	}
	// An error state: a wrong password.
	b.open("/login")
	b.do(chromedp.SendKeys(chromedp.ID("email"), "ada@example.com"), chromedp.SendKeys(chromedp.ID("password"), "not the password"))
	b.submit("#sign-in")
	if msg := b.text(".error"); !strings.Contains(msg, "email address or password is wrong") {
		t.Errorf("error message: %q", msg)
	}
	b.shot("login-error")
	b.scan("login-error")

	// The reset link: the token in the fragment is moved into the form
	// and out of the address bar.
	u, err := srv.accounts.UserByEmail(t.Context(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := srv.accounts.IssueResetToken(t.Context(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	b.open("/password/reset/confirm#token=" + tok)
	b.do(chromedp.WaitNotVisible(chromedp.ID("token")))
	if got := run(b, chromedp.Value(chromedp.ID("token"))); got != tok {
		t.Fatalf("token field = %q, want the fragment's token", got)
	}
	if loc := b.location(); strings.Contains(loc, "#") {
		t.Errorf("the token stayed in the address bar: %s", loc)
	}
	b.do(chromedp.SendKeys(chromedp.ID("new_password"), "a fresh new passphrase"))
	if got := b.submit("form button.primary"); got != "/account" {
		t.Fatalf("after the reset: on %s", got)
	}

	// Narrow screens.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	for _, p := range []struct{ name, path string }{
		{"mobile-account", "/account"},
		{"mobile-sessions", "/account/sessions"},
	} {
		b.open(p.path)
		b.shot(p.name)
		if w := run(b, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); w > 390 {
			t.Errorf("%s scrolls sideways on a 390px screen: %dpx wide", p.path, w)
		}
	}
	b.open("/account")
	if got := b.submit("#sign-out"); got != "/login" {
		t.Fatalf("sign-out landed on %s", got)
	}
	b.shot("mobile-login")
	b.scan("mobile-login")

	// The scan can fail: an unlabelled field and an image without a text
	// alternative are critical violations.
	if src, err := axeOnce(); err == nil {
		b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("main").insertAdjacentHTML("beforeend",
			'<input type="text" name="x"><img src="/static/none.png">')`))
		found := map[string]bool{}
		for _, v := range b.axeViolations(src) {
			found[v.ID+"/"+v.Impact] = true
		}
		if !found["label/critical"] || !found["image-alt/critical"] {
			t.Errorf("axe missed planted violations; found %v", found)
		}
	}
}
