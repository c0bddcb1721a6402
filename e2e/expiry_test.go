package e2e_test

import (
	"net/http"
	"testing"
	"time"
)

// TestExpiry covers idle and absolute deadlines, of normal and remember-me
// sessions, and what counts as use.
func TestExpiry(t *testing.T) {
	t.Parallel()
	const (
		idle     = 2 * time.Second
		absolute = 5 * time.Second
		rmIdle   = 3 * time.Second
		rmLife   = 7 * time.Second
	)
	s := startServer(t, []string{"--idle-timeout", "2s", "--absolute-timeout", "5s",
		"--remember-me-idle-timeout", "3s", "--remember-me-lifetime", "7s", "--sweep-interval", "1s"})

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		ck, r := loginCookie(t, s, u)
		sess := checkSession(t, obj(t, r, "session"))
		if d := ts(t, sess, "idle_expires_at").Sub(ts(t, sess, "created_at")); d != idle {
			t.Errorf("idle_expires_at is %v after created_at, want %v", d, idle)
		}
		if d := ts(t, sess, "absolute_expires_at").Sub(ts(t, sess, "created_at")); d != absolute {
			t.Errorf("absolute_expires_at is %v after created_at, want %v", d, absolute)
		}
		if !ts(t, sess, "expires_at").Equal(ts(t, sess, "idle_expires_at")) {
			t.Errorf("expires_at %v, want the idle deadline", sess["expires_at"])
		}
		alive(t, s, ck)
		time.Sleep(idle + 300*time.Millisecond)
		r = whoami(t, s, cookie(ck))
		wantError(t, r, http.StatusUnauthorized, "unauthenticated")
		wantClearedCookie(t, r)
		dead(t, s, ck)
		// Dead for every route, not just who-am-I.
		wantStatus(t, s.call(t, "GET", "/v1/sessions", nil, bearer(ck)), http.StatusUnauthorized)
		wantStatus(t, s.call(t, "GET", "/v1/profile", nil, bearer(ck)), http.StatusUnauthorized)
		r = s.call(t, "POST", "/v1/logout", nil, cookie(ck))
		wantStatus(t, r, http.StatusNoContent)
		wantClearedCookie(t, r)
		// And for the admin API.
		r = s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": ck})
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "validate answer", r.JSON, "active")
	})

	t.Run("use slides the idle deadline until the absolute one", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, r := login(t, s, u)
		sess := checkSession(t, obj(t, r, "session"))
		abs := ts(t, sess, "absolute_expires_at")
		created := ts(t, sess, "created_at")
		var lastOK time.Time
		for {
			time.Sleep(400 * time.Millisecond)
			// The server decides somewhere between sent and answered: a
			// death counts as early only if the answer came back before
			// the deadline, and as late only if the question went out
			// after it.
			sent := time.Now()
			r := whoami(t, s, bearer(tok))
			answered := time.Now()
			if r.Status == http.StatusOK {
				lastOK = sent
				got := checkSession(t, obj(t, r, "session"))
				if ia := ts(t, got, "idle_expires_at"); ia.After(abs) {
					t.Errorf("idle deadline %v past the absolute one %v", ia, abs)
				}
				if !ts(t, got, "absolute_expires_at").Equal(abs) {
					t.Errorf("absolute deadline moved: %v, was %v", got["absolute_expires_at"], abs)
				}
				continue
			}
			wantError(t, r, http.StatusUnauthorized, "unauthenticated")
			if answered.Before(abs) {
				t.Fatalf("the session died at %v, %v before its absolute deadline, while in use", answered, abs.Sub(answered))
			}
			break
		}
		if lastOK.Sub(created) < idle+time.Second {
			t.Errorf("last good use %v after login; want use to keep the session alive past the idle timeout", lastOK.Sub(created))
		}
		if time.Now().Sub(abs) > time.Second {
			t.Errorf("the session outlived its absolute deadline by %v", time.Now().Sub(abs))
		}
		dead(t, s, tok)
	})

	t.Run("admin validate is use", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		start := time.Now()
		for time.Since(start) < idle+time.Second {
			time.Sleep(400 * time.Millisecond)
			r := s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": tok})
			wantStatus(t, r, http.StatusOK)
			if r.JSON["active"] != true {
				t.Fatalf("validate %s after %v, want active", r.Body, time.Since(start))
			}
		}
		alive(t, s, tok)
	})

	t.Run("remember me has its own idle timeout", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "remember_me": true})
		wantStatus(t, r, http.StatusOK)
		c, line := sessionCookie(t, r)
		if c.MaxAge < int(rmLife.Seconds())-2 || c.MaxAge > int(rmLife.Seconds()) {
			t.Errorf("remember-me cookie %q: want Max-Age about %v", line, rmLife.Seconds())
		}
		sess := checkSession(t, obj(t, r, "session"))
		if d := ts(t, sess, "idle_expires_at").Sub(ts(t, sess, "created_at")); d != rmIdle {
			t.Errorf("remember-me idle deadline %v after login, want %v", d, rmIdle)
		}
		if d := ts(t, sess, "absolute_expires_at").Sub(ts(t, sess, "created_at")); d != rmLife {
			t.Errorf("remember-me absolute deadline %v after login, want %v", d, rmLife)
		}
		time.Sleep(idle + 400*time.Millisecond) // a normal session would be dead now
		alive(t, s, c.Value)
		time.Sleep(rmIdle + 300*time.Millisecond)
		dead(t, s, c.Value)
	})

	t.Run("remember me ends at its lifetime", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "remember_me": true, "transport": "token"})
		wantStatus(t, r, http.StatusOK)
		tok := str(t, r.JSON, "token")
		abs := ts(t, obj(t, r, "session"), "absolute_expires_at")
		for {
			time.Sleep(500 * time.Millisecond)
			sent := time.Now()
			r := whoami(t, s, bearer(tok))
			answered := time.Now()
			if r.Status == http.StatusOK {
				if sent.After(abs) {
					t.Fatalf("the remember-me session still answered %v after its absolute deadline", sent.Sub(abs))
				}
				continue
			}
			wantStatus(t, r, http.StatusUnauthorized)
			if answered.Before(abs) {
				t.Fatalf("the remember-me session died %v before its absolute deadline, while in use", abs.Sub(answered))
			}
			if sent.Sub(abs) > time.Second {
				t.Errorf("the remember-me session outlived its deadline by %v", sent.Sub(abs))
			}
			break
		}
	})
}
