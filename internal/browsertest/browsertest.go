// Package browsertest drives a headless Chromium for the browser tests,
// through chromedp: it finds the browser, starts it on a profile
// directory, and offers the few steps the tests take (open a page, click
// a submit button and wait for the next page, read text or a cookie).
//
// Chromium is found at $SESSIOND_CHROMIUM or on PATH (chromium,
// chromium-browser, google-chrome, google-chrome-stable); scripts/browser.sh
// installs Debian's. Without it a test skips, unless
// SESSIOND_REQUIRE_BACKENDS=1 (CI), where it fails.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// RequireEnv names the variable that, set to 1, turns a missing browser
// from a skip into a failure.
const RequireEnv = "SESSIOND_REQUIRE_BACKENDS"

// StepTimeout bounds each step of a test in the browser.
const StepTimeout = 30 * time.Second

// Required reports whether the browser tests must run (CI).
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// ChromiumPath returns the browser to run, or skips t (fails it when
// Required).
func ChromiumPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SESSIOND_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if Required() {
		t.Fatal("no chromium found (scripts/browser.sh installs it) and " + RequireEnv + "=1")
	}
	t.Skip("no chromium found; scripts/browser.sh installs it")
	return ""
}

// Options of Start.
type Options struct {
	// Profile is the browser's user data directory; one that outlives
	// the browser lets a test restart it with its persistent cookies.
	// Default: a new t.TempDir().
	Profile string
	// UserAgent replaces the browser's own. Default: Chromium's.
	UserAgent string
}

// Browser is one headless Chromium, pointed at the site at Base.
type Browser struct {
	// Base is the site's URL without a trailing slash, such as
	// "http://127.0.0.1:41234". Paths of Open and Location are relative
	// to it.
	Base string

	t      testing.TB
	ctx    context.Context
	cancel context.CancelFunc
	closed bool
}

// Start starts a browser for the site at base; t's cleanup closes it.
// Chromium treats http://127.0.0.1 as a secure context, so a test server
// there can set __Host- and Secure cookies.
func Start(t testing.TB, base string, o Options) *Browser {
	t.Helper()
	exe := ChromiumPath(t)
	if o.Profile == "" {
		o.Profile = t.TempDir()
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(o.Profile),
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.WindowSize(1200, 900),
	)
	if o.UserAgent != "" {
		opts = append(opts, chromedp.UserAgent(o.UserAgent))
	}
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, _ := chromedp.NewContext(alloc)
	b := &Browser{Base: strings.TrimSuffix(base, "/"), t: t, ctx: ctx, cancel: cancel}
	// The first action starts the browser and ties its life to the
	// context it gets: ctx itself, not one with a deadline.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", exe, err)
	}
	t.Cleanup(b.Close)
	return b
}

// Close shuts the browser down gracefully, so that its profile keeps the
// persistent cookies for a next start. Closing twice does nothing.
func (b *Browser) Close() {
	if b.closed {
		return
	}
	b.closed = true
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Cancel(ctx); err != nil {
		b.t.Logf("closing the browser: %v", err)
	}
	b.cancel()
}

// Do runs steps, each test step within StepTimeout, and fails the test on
// an error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.Location())
	}
}

// Run runs a and returns its result, failing the test on an error.
func Run[T any](b *Browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.Location())
	}
	return v
}

// Location returns where the browser is, as a path with its query ("" if
// it cannot tell).
func (b *Browser) Location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return strings.TrimPrefix(loc, b.Base)
}

// Open loads path and returns where the browser ended up after redirects.
func (b *Browser) Open(path string) string {
	b.t.Helper()
	b.Do(chromedp.Navigate(b.Base + path))
	return b.Location()
}

// Submit clicks the submit button sel, waits for the page it leads to
// and returns where that is.
func (b *Browser) Submit(sel string) string {
	b.t.Helper()
	Run(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel))))
	return b.Location()
}

// Text returns the text of the element sel.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	return Run(b, chromedp.Text(chromedp.CSS(sel)))
}

// Cookie returns the site's cookie name as the browser holds it, nil
// when it has none.
func (b *Browser) Cookie(name string) *network.Cookie {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, StepTimeout)
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.Base + "/"}})
	if err != nil {
		b.t.Fatalf("Network.getCookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}
