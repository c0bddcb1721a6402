package e2e_test

import (
	"net/http"
	"sort"
	"strconv"
	"testing"
	"time"
)

// tryLogin attempts a cookie login and returns the answer.
func tryLogin(t *testing.T, s *Server, email, password string, opts ...reqOpt) *Resp {
	t.Helper()
	return s.call(t, "POST", "/v1/login", J{"email": email, "password": password}, opts...)
}

func retryAfter(t *testing.T, r *Resp) int {
	t.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil {
		t.Fatalf("%s %s: Retry-After %q: %v", r.Method, r.Path, r.Header.Get("Retry-After"), err)
	}
	return n
}

// TestLockout covers account lockout: the threshold, the lock refusing the
// right password, its end, and the doubling of a second lock.
func TestLockout(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--lockout-duration", "1s"})
	u := newUser(t, s)
	fail5 := func() {
		t.Helper()
		for i := 1; i <= 5; i++ {
			r := tryLogin(t, s, u.Email, "wrong password "+strconv.Itoa(i))
			wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
	}
	locked := func(password string) *Resp {
		t.Helper()
		r := tryLogin(t, s, u.Email, password)
		wantError(t, r, http.StatusTooManyRequests, "account_locked")
		wantNoSessionCookie(t, r)
		return r
	}

	before, _ := login(t, s, u)
	fail5()
	start := time.Now()
	right := locked(u.Password)
	wrong := locked("wrong again")
	if string(right.Body) != string(wrong.Body) {
		t.Errorf("locked answers differ for the right and a wrong password: %s / %s", right.Body, wrong.Body)
	}
	if n := retryAfter(t, right); n != 1 {
		t.Errorf("first lock Retry-After %d, want 1 (--lockout-duration 1s)", n)
	}
	// A session the user already has is not affected by the lock.
	alive(t, s, before)
	time.Sleep(time.Until(start.Add(1100 * time.Millisecond)))

	// The lock ended; the failures of a locked account were not counted, so
	// five more wrong passwords lock it again, for twice as long.
	fail5()
	r := locked(u.Password)
	if n := retryAfter(t, r); n != 2 {
		t.Errorf("second lock Retry-After %d, want 2 (doubled)", n)
	}
	second := time.Now()
	time.Sleep(1100 * time.Millisecond)
	locked(u.Password) // still locked after the first lock's length
	time.Sleep(time.Until(second.Add(2100 * time.Millisecond)))
	r = tryLogin(t, s, u.Email, u.Password)
	wantStatus(t, r, http.StatusOK)
	wantSessionCookie(t, r)

	// A success clears the history: the next lock is 1s again.
	fail5()
	if n := retryAfter(t, locked(u.Password)); n != 1 {
		t.Errorf("lock after a success: Retry-After %d, want 1", n)
	}
}

// TestLoginRateLimit covers the per-IP limit on failed logins across
// accounts, and X-Forwarded-For from trusted and untrusted peers.
func TestLoginRateLimit(t *testing.T) {
	t.Parallel()

	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		// Loopback is not in the trusted range: X-Forwarded-For is ignored.
		s := startServer(t, []string{"--login-rate-per-ip", "3", "--trusted-proxies", "10.0.0.0/8"})
		a, b := newUser(t, s), newUser(t, s)
		r := tryLogin(t, s, a.Email, a.Password, header("X-Forwarded-For", "198.51.100.23"))
		wantStatus(t, r, http.StatusOK)
		if ip := obj(t, r, "session")["ip"]; ip != "127.0.0.1" {
			t.Errorf("session ip %v from an untrusted peer, want 127.0.0.1", ip)
		}
		wantError(t, tryLogin(t, s, a.Email, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
		wantError(t, tryLogin(t, s, b.Email, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
		wantError(t, tryLogin(t, s, "nobody@example.com", "wrong password", header("X-Forwarded-For", "203.0.113.1")),
			http.StatusUnauthorized, "invalid_credentials")
		for _, xff := range []string{"", "203.0.113.2", "10.1.1.1"} {
			r := tryLogin(t, s, b.Email, b.Password, header("X-Forwarded-For", xff))
			wantError(t, r, http.StatusTooManyRequests, "rate_limited")
			wantNoSessionCookie(t, r)
			if n := retryAfter(t, r); n < 10 || n > 20 {
				t.Errorf("Retry-After %d, want about 20 (3 a minute)", n)
			}
		}
	})

	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, []string{"--login-rate-per-ip", "3", "--trusted-proxies", "127.0.0.1/32"})
		a := newUser(t, s)
		r := tryLogin(t, s, a.Email, a.Password, header("X-Forwarded-For", "198.51.100.23"))
		wantStatus(t, r, http.StatusOK)
		if ip := obj(t, r, "session")["ip"]; ip != "198.51.100.23" {
			t.Errorf("session ip %v behind a trusted proxy, want 198.51.100.23", ip)
		}
		r = tryLogin(t, s, a.Email, a.Password, header("X-Forwarded-For", "198.51.100.9, 127.0.0.1"))
		wantStatus(t, r, http.StatusOK)
		if ip := obj(t, r, "session")["ip"]; ip != "198.51.100.9" {
			t.Errorf("session ip %v through two proxies, want 198.51.100.9", ip)
		}
		attacker := header("X-Forwarded-For", "203.0.113.7")
		for i := 0; i < 3; i++ {
			wantError(t, tryLogin(t, s, "nobody"+strconv.Itoa(i)+"@example.com", "wrong password", attacker),
				http.StatusUnauthorized, "invalid_credentials")
		}
		wantError(t, tryLogin(t, s, a.Email, a.Password, attacker), http.StatusTooManyRequests, "rate_limited")
		// Other clients behind the same proxy, and the proxy itself, are not limited.
		wantStatus(t, tryLogin(t, s, a.Email, a.Password, header("X-Forwarded-For", "203.0.113.8")), http.StatusOK)
		wantStatus(t, tryLogin(t, s, a.Email, a.Password), http.StatusOK)
		// A spoofed left-most entry does not escape the limit: the proxy
		// appends the real client.
		wantError(t, tryLogin(t, s, a.Email, a.Password, header("X-Forwarded-For", "192.0.2.1, 203.0.113.7")),
			http.StatusTooManyRequests, "rate_limited")
	})

	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, []string{"--login-rate-per-ip", "0", "--lockout-threshold", "0"})
		a := newUser(t, s)
		for i := 0; i < 8; i++ {
			wantError(t, tryLogin(t, s, a.Email, "wrong password"), http.StatusUnauthorized, "invalid_credentials")
		}
		wantStatus(t, tryLogin(t, s, a.Email, a.Password), http.StatusOK)
	})
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
