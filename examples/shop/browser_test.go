package main

import (
	"errors"
	"maps"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/browsertest"
	"github.com/sessiond/sessiond/sessionhttp"
)

// TestBrowserCartSurvivesSignIn drives the shop in headless Chromium (see
// package browsertest for finding it; without it the test skips, or fails
// with SESSIOND_REQUIRE_BACKENDS=1): an anonymous visitor fills a cart,
// creates an account and still has the cart, under a new session cookie,
// while the anonymous cookie's token is dead (fixation defence); signing
// out ends the session and the cart. Then the same through the sign-in
// form of the existing account.
func TestBrowserCartSurvivesSignIn(t *testing.T) {
	// Plain HTTP on 127.0.0.1, which Chromium counts as a secure context:
	// it keeps the __Host- cookies as on an HTTPS site.
	shop := serveShop(t, httptest.NewServer)
	b := browsertest.Start(t, shop.url, browsertest.Options{})
	const email = "ada@example.com"

	// cart returns the cart as the page shows it: product to quantity.
	cart := func() map[string]string {
		t.Helper()
		return browsertest.Run(b, chromedp.Evaluate[map[string]string](`Object.fromEntries(
			Array.from(document.querySelectorAll("#cart li[data-product]"),
				li => [li.dataset.product, li.querySelector(".qty").textContent]))`))
	}
	sessionCookie := func() *network.Cookie {
		t.Helper()
		return b.Cookie(sessionhttp.DefaultCookieName)
	}
	// fill types the email and the password into the form of the page.
	fill := func() {
		t.Helper()
		b.Do(chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), testPassword))
	}
	// checkSignedIn checks that the browser is signed in with the cart
	// want, under a new session whose anonymous predecessor anon is dead.
	checkSignedIn := func(anon string, want map[string]string) string {
		t.Helper()
		if who := b.Text("#who"); who != email {
			t.Errorf("signed in as %q, want %s", who, email)
		}
		if got := cart(); !maps.Equal(got, want) {
			t.Errorf("cart after signing in: %v, want %v", got, want)
		}
		ck := sessionCookie()
		if ck == nil || ck.Value == anon {
			t.Fatalf("session cookie after signing in: %+v, want a new value", ck)
		}
		if !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteLax {
			t.Errorf("session cookie: HttpOnly %v, Secure %v, SameSite %q", ck.HTTPOnly, ck.Secure, ck.SameSite)
		}
		if _, err := shop.manager.Peek(t.Context(), anon); !errors.Is(err, sessiond.ErrRevoked) {
			t.Errorf("the anonymous session's token after signing in: %v, want ErrRevoked", err)
		}
		return ck.Value
	}
	// signOut signs out and checks that the session and the cart are gone.
	signOut := func(signedIn string) {
		t.Helper()
		if got := b.Submit("#sign-out"); got != "/" {
			t.Fatalf("signing out led to %s", got)
		}
		if msg := b.Text("#cart-empty"); msg != "Your cart is empty." {
			t.Errorf("cart after signing out: %q", msg)
		}
		if ck := sessionCookie(); ck != nil {
			t.Errorf("session cookie after signing out: %+v", ck)
		}
		if _, err := shop.manager.Peek(t.Context(), signedIn); !errors.Is(err, sessiond.ErrRevoked) {
			t.Errorf("the signed-in token after signing out: %v, want ErrRevoked", err)
		}
	}
	// enter follows the cart's link to the page path, submits its form
	// with button, checks the signed-in browser (with the cart want) and
	// signs out.
	enter := func(link, path, button string, want map[string]string) {
		t.Helper()
		anon := sessionCookie()
		if anon == nil {
			t.Fatal("no session cookie after adding to the cart")
		}
		if got := b.Submit(link); got != path {
			t.Fatalf("the cart's link %s led to %s", link, got)
		}
		fill()
		if got := b.Submit(button); got != "/" {
			t.Fatalf("%s led to %s (%s)", button, got, b.Text("main"))
		}
		signOut(checkSignedIn(anon.Value, want))
	}

	// Registration.
	b.Open("/")
	if ck := sessionCookie(); ck != nil {
		t.Errorf("a session before anything was added: %+v", ck)
	}
	b.Submit("#product-tea button")
	b.Submit("#product-tea button")
	b.Submit("#product-notebook button")
	if got, total := cart(), b.Text("#cart .total"); !maps.Equal(got, map[string]string{"tea": "× 2", "notebook": "× 1"}) ||
		!strings.Contains(total, "€29.00") {
		t.Fatalf("anonymous cart: %v, total %q", got, total)
	}
	enter(`#cart a[href="/register"]`, "/register", "#register", map[string]string{"tea": "× 2", "notebook": "× 1"})

	// Sign-in to the account just made, with a new anonymous cart.
	b.Submit("#product-pencils button")
	enter(`#cart a[href="/signin"]`, "/signin", "#sign-in", map[string]string{"pencils": "× 1"})
}
