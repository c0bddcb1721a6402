package e2e_test

import (
	"net/http"
	"testing"
	"time"
)

// Hijack signals against the real binary: a browser session's token
// replayed from another browser family, another OS or without a
// User-Agent is refused and its session ends; bearer-token clients are
// exempt; --hijack-detection=false switches it off; a new client address
// alone is only recorded.

const (
	firefoxLinuxUA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	chromeMacUA    = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	chromeNewerUA  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)

// noUserAgent sends the request without a User-Agent header at all.
func noUserAgent() reqOpt {
	return func(r *http.Request) { r.Header["User-Agent"] = []string{""} }
}

// waitEvents polls the user's events of type typ until there are want of
// them (more is a failure) and returns them.
func waitEvents(t *testing.T, s *Server, userID, typ string, want int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := eventsOf(t, s, userID, typ)
		if len(evs) > want {
			t.Fatalf("%d %s events, want %d: %v", len(evs), typ, want, evs)
		}
		if len(evs) == want {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s events after 10s, want %d", len(evs), typ, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHijackSignals(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)

	t.Run("another browser family", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		c, _ := loginCookie(t, s, u, userAgent(chromeUA))
		sid := str(t, checkSession(t, obj(t, whoami(t, s, cookie(c), userAgent(chromeUA)), "session")), "id")
		// A browser update keeps the session.
		wantStatus(t, whoami(t, s, cookie(c), userAgent(chromeNewerUA)), http.StatusOK)
		// The token replayed from Firefox, as a cookie: refused and ended.
		r := whoami(t, s, cookie(c), userAgent(firefoxLinuxUA))
		wantError(t, r, http.StatusUnauthorized, "unauthenticated")
		wantClearedCookie(t, r)
		wantError(t, whoami(t, s, cookie(c), userAgent(chromeUA)), http.StatusUnauthorized, "unauthenticated")
		evs := waitEvents(t, s, u.ID, "hijack_suspected", 1)
		if evs[0]["session_id"] != sid || evs[0]["browser"] != "Firefox" || evs[0]["os"] != "Linux" {
			t.Errorf("hijack event %v", evs[0])
		}
		if d, _ := evs[0]["data"].(map[string]any); d["session_browser"] != "Chrome" || d["session_os"] != "Windows" {
			t.Errorf("hijack event data %v", evs[0]["data"])
		}
		if n := len(sessionIDs(t, s, u.ID)); n != 0 {
			t.Errorf("%d live sessions after the hijack", n)
		}
	})

	t.Run("as a bearer token from another OS", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		c, _ := loginCookie(t, s, u, userAgent(chromeUA))
		wantError(t, s.call(t, "GET", "/v1/sessions", nil, bearer(c), userAgent(chromeMacUA)), http.StatusUnauthorized, "unauthenticated")
		wantError(t, whoami(t, s, cookie(c), userAgent(chromeUA)), http.StatusUnauthorized, "unauthenticated")
		waitEvents(t, s, u.ID, "hijack_suspected", 1)
	})

	t.Run("without a User-Agent", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		c, _ := loginCookie(t, s, u, userAgent(chromeUA))
		wantError(t, whoami(t, s, cookie(c), noUserAgent()), http.StatusUnauthorized, "unauthenticated")
		wantError(t, whoami(t, s, cookie(c), userAgent(chromeUA)), http.StatusUnauthorized, "unauthenticated")
		evs := waitEvents(t, s, u.ID, "hijack_suspected", 1)
		if d, _ := evs[0]["data"].(map[string]any); d["user_agent_missing"] != true {
			t.Errorf("hijack event data %v", evs[0]["data"])
		}
	})

	t.Run("bearer-token clients are exempt", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u, userAgent(chromeUA))
		for _, o := range []reqOpt{userAgent(firefoxLinuxUA), userAgent("curl/8.5.0"), noUserAgent()} {
			wantStatus(t, whoami(t, s, bearer(tok), o), http.StatusOK)
		}
		alive(t, s, tok)
		if n := len(eventsOf(t, s, u.ID, "hijack_suspected")); n != 0 {
			t.Errorf("%d hijack events for a token client", n)
		}
	})

	t.Run("a made-up token ends nothing", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		c, _ := loginCookie(t, s, u, userAgent(chromeUA))
		wantError(t, whoami(t, s, cookie(c+"x"), userAgent(firefoxLinuxUA)), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, whoami(t, s, cookie(c), userAgent(chromeUA)), http.StatusOK)
	})
}

func TestHijackDetectionOff(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--hijack-detection=false"})
	u := newUser(t, s)
	c, _ := loginCookie(t, s, u, userAgent(chromeUA))
	wantStatus(t, whoami(t, s, cookie(c), userAgent(firefoxLinuxUA)), http.StatusOK)
	wantStatus(t, whoami(t, s, cookie(c), noUserAgent()), http.StatusOK)
	wantStatus(t, whoami(t, s, cookie(c), userAgent(chromeUA)), http.StatusOK)
	if n := len(eventsOf(t, s, u.ID, "hijack_suspected")); n != 0 {
		t.Errorf("%d hijack events with detection off", n)
	}
}

// TestIPChanges: the client address comes from X-Forwarded-For of a
// trusted proxy (loopback here). A session used from a new address keeps
// working; the first use from each new address is an ip_changed event.
func TestIPChanges(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--trusted-proxies", "127.0.0.1/32"})
	u := newUser(t, s)
	from := func(ip string) reqOpt { return header("X-Forwarded-For", ip) }
	c, r := loginCookie(t, s, u, userAgent(chromeUA), from("198.51.100.7"))
	if ip := checkSession(t, obj(t, r, "session"))["ip"]; ip != "198.51.100.7" {
		t.Fatalf("session ip %v", ip)
	}
	for range 3 {
		wantStatus(t, whoami(t, s, cookie(c), userAgent(chromeUA), from("198.51.100.7")), http.StatusOK)
	}
	for range 3 {
		wantStatus(t, whoami(t, s, cookie(c), userAgent(chromeUA), from("203.0.113.50")), http.StatusOK)
	}
	evs := waitEvents(t, s, u.ID, "ip_changed", 1)
	if evs[0]["ip"] != "203.0.113.50" {
		t.Errorf("ip_changed event %v", evs[0])
	}
	if d, _ := evs[0]["data"].(map[string]any); d["session_ip"] != "198.51.100.7" {
		t.Errorf("ip_changed data %v", evs[0]["data"])
	}
	wantStatus(t, whoami(t, s, cookie(c), userAgent(chromeUA), from("2001:db8::9")), http.StatusOK)
	waitEvents(t, s, u.ID, "ip_changed", 2)
	// A restart forgets nothing: the trail says the pair is known.
	s.Restart(t)
	wantStatus(t, whoami(t, s, cookie(c), userAgent(chromeUA), from("203.0.113.50")), http.StatusOK)
	time.Sleep(200 * time.Millisecond)
	waitEvents(t, s, u.ID, "ip_changed", 2)
	if n := len(eventsOf(t, s, u.ID, "hijack_suspected")); n != 0 {
		t.Errorf("an address change was taken for a hijack (%d events)", n)
	}
}
