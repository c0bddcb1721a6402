package sessiond_test

import (
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

const (
	uaChromeWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaChromeWindows2 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	uaChromeLinux    = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	uaFirefoxWindows = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)

func TestClientMismatch(t *testing.T) {
	browser := func(ua, transport string) *sessiond.Session {
		return &sessiond.Session{Device: sessiond.ParseDevice(ua), Transport: transport}
	}
	for _, c := range []struct {
		name    string
		s       *sessiond.Session
		ua      string
		suspect bool
	}{
		{"same browser", browser(uaChromeWindows, sessiond.TransportCookie), uaChromeWindows, false},
		{"browser updated", browser(uaChromeWindows, sessiond.TransportCookie), uaChromeWindows2, false},
		{"other OS", browser(uaChromeWindows, sessiond.TransportCookie), uaChromeLinux, true},
		{"other browser", browser(uaChromeWindows, sessiond.TransportCookie), uaFirefoxWindows, true},
		{"no User-Agent", browser(uaChromeWindows, sessiond.TransportCookie), "", true},
		{"jwt_cookie is a browser too", browser(uaChromeWindows, sessiond.TransportJWTCookie), uaFirefoxWindows, true},
		{"bearer token client", browser(uaChromeWindows, sessiond.TransportToken), uaFirefoxWindows, false},
		{"bearer token client without UA", browser(uaChromeWindows, sessiond.TransportToken), "", false},
		{"client-side bearer", browser(uaChromeWindows, sessiond.TransportJWT), "curl/8.5.0", false},
		{"unknown transport (older session)", browser(uaChromeWindows, ""), uaFirefoxWindows, false},
		{"started without a User-Agent", browser("", sessiond.TransportCookie), "", false},
		{"unrecognised UA, same", browser("internal-tool/1.0", sessiond.TransportCookie), "internal-tool/1.0", false},
		{"unrecognised UA, changed", browser("internal-tool/1.0", sessiond.TransportCookie), "internal-tool/1.1", true},
		// Families stored by another parser are not trusted: the stored
		// header is parsed again and compared with the presented one.
		{"stored families from an older parser", &sessiond.Session{Transport: sessiond.TransportCookie,
			Device: sessiond.Device{UserAgent: uaChromeWindows, Browser: "Chromium", OS: "Win"}}, uaChromeWindows2, false},
		{"stored families from an older parser, other browser", &sessiond.Session{Transport: sessiond.TransportCookie,
			Device: sessiond.Device{UserAgent: uaChromeWindows, Browser: "Chromium", OS: "Win"}}, uaFirefoxWindows, true},
	} {
		if got := c.s.ClientMismatch(c.ua); got != c.suspect {
			t.Errorf("%s: ClientMismatch(%q) = %v, want %v (device %+v)", c.name, c.ua, got, c.suspect, c.s.Device)
		}
	}
}

func TestAuthenticatedWithin(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	s := &sessiond.Session{}
	if s.AuthenticatedWithin(now, time.Hour) {
		t.Error("a session without a proof is fresh")
	}
	s.AuthenticatedAt = now.Add(-10 * time.Minute)
	if s.AuthenticatedWithin(now, 10*time.Minute) || !s.AuthenticatedWithin(now, 10*time.Minute+time.Microsecond) {
		t.Error("the window is not [proof, proof+window)")
	}
	s.AuthenticatedAt = now.Add(time.Second) // another node's clock
	if !s.AuthenticatedWithin(now, time.Minute) {
		t.Error("a proof slightly in the future is not fresh")
	}
}
