package web_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/sessiond/sessiond/audit"
)

// TestPagesEndAHijackedSession: the session cookie of a browser, replayed
// by another browser family, signs nobody in on the pages either, and the
// session ends for its owner too.
func TestPagesEndAHijackedSession(t *testing.T) {
	e := newEnv(t)
	u := e.register(t, "ada@example.com", pw)
	b := e.browser(t) // Go's User-Agent: unrecognised, so the whole header must match
	if res, _ := b.post("/login", "/login", url.Values{"email": {u.Email}, "password": {pw}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	base, _ := url.Parse(e.url)
	var stolen *http.Cookie
	for _, c := range b.client.Jar.Cookies(base) {
		if c.Name == "session" {
			stolen = c
		}
	}
	if stolen == nil {
		t.Fatal("no session cookie")
	}
	req, _ := http.NewRequest("GET", e.url+"/account", nil)
	req.AddCookie(stolen)
	req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login?next=/account" {
		t.Fatalf("the stolen cookie from another browser: %d to %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := b.get("/account"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the owner after the hijack: %d, want a redirect to sign in", res.StatusCode)
	}
	evs, _ := e.events.List(t.Context(), u.ID, audit.Filter{Types: []string{audit.HijackSuspected}})
	if len(evs) != 1 {
		t.Fatalf("%d hijack events, want 1", len(evs))
	}
}
