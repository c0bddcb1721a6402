package e2e_test

import (
	"net/http"
	"testing"
	"time"
)

// Fresh authentication ("sudo mode") against the real binary: with a
// reauthentication window of 4s, sensitive actions made after it are
// refused with 403 reauthentication_required and change nothing, and
// succeed after POST /v1/session/reauthenticate.

const reauthWindow = 4 * time.Second

// stale waits until a proof made now is past the window.
func stale() { time.Sleep(reauthWindow + 200*time.Millisecond) }

func wantReauth(t *testing.T, r *Resp) {
	t.Helper()
	wantError(t, r, http.StatusForbidden, "reauthentication_required")
	if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("%s %s: refused but sets cookies %q", r.Method, r.Path, sc)
	}
}

// authenticatedAt is the session's authenticated_at, zero for null.
func authenticatedAt(t *testing.T, s map[string]any) time.Time {
	t.Helper()
	if s["authenticated_at"] == nil {
		return time.Time{}
	}
	return ts(t, s, "authenticated_at")
}

func TestReauthentication(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--reauth-window", reauthWindow.String(), "--lockout-threshold", "3"})

	t.Run("bearer", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		before := time.Now().Add(-time.Second)
		tok, r := login(t, s, u)
		at := authenticatedAt(t, checkSession(t, obj(t, r, "session")))
		if at.Before(before) || at.After(time.Now().Add(time.Second)) {
			t.Fatalf("login's authenticated_at %v, want about now", at)
		}
		if got := authenticatedAt(t, alive(t, s, tok)); !got.Equal(at) {
			t.Fatalf("who-am-I authenticated_at %v, want the login's %v", got, at)
		}
		other, _ := login(t, s, u, userAgent(chromeUA))
		third, _ := login(t, s, u)
		otherID := str(t, alive(t, s, other), "id")

		// Fresh: another device can be signed out at once.
		wantStatus(t, s.call(t, "DELETE", "/v1/sessions/"+str(t, alive(t, s, third), "id"), nil, bearer(tok)), http.StatusNoContent)
		dead(t, s, third)

		stale()
		wantReauth(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(tok)))
		wantReauth(t, s.call(t, "POST", "/v1/logout", J{"scope": "all"}, bearer(tok)))
		wantReauth(t, s.call(t, "DELETE", "/v1/sessions/"+otherID, nil, bearer(tok)))
		wantReauth(t, s.call(t, "DELETE", "/v1/sessions/"+randHex(16), nil, bearer(tok)))
		wantReauth(t, s.call(t, "DELETE", "/v1/profile", J{"password": u.Password}, bearer(tok)))
		alive(t, s, tok)
		alive(t, s, other)
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users/"+u.ID, nil), http.StatusOK)
		// Not sensitive: reading, the profile, signing out this device.
		wantStatus(t, s.call(t, "GET", "/v1/sessions", nil, bearer(tok)), http.StatusOK)
		wantStatus(t, s.call(t, "PATCH", "/v1/profile", J{"profile": J{"name": "Ann"}}, bearer(tok)), http.StatusOK)

		// A wrong password: 401, and nothing renewed.
		wantError(t, s.call(t, "POST", "/v1/session/reauthenticate", J{"password": "not " + u.Password}, bearer(tok)),
			http.StatusUnauthorized, "invalid_credentials")
		wantReauth(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(tok)))

		// The right one: a new token, the old one dead, a new proof.
		r = s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "reauthenticate answer", r.JSON, "session", "user", "token")
		checkUser(t, obj(t, r, "user"))
		sess := checkSession(t, obj(t, r, "session"))
		newTok := str(t, r.JSON, "token")
		if newTok == tok || sess["current"] != true || str(t, sess, "id") != str(t, alive(t, s, newTok), "id") {
			t.Fatalf("reauthenticate answer %s", r.Body)
		}
		if a := authenticatedAt(t, sess); !a.After(at) {
			t.Fatalf("authenticated_at %v after reauthentication, want later than %v", a, at)
		}
		wantNoSessionCookie(t, r)
		dead(t, s, tok)
		tok = newTok

		// Now every sensitive action goes through.
		wantStatus(t, s.call(t, "DELETE", "/v1/sessions/"+otherID, nil, bearer(tok)), http.StatusNoContent)
		dead(t, s, other)
		fourth, _ := login(t, s, u)
		r = s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		if r.JSON["revoked"] != float64(1) {
			t.Errorf("revoke-others revoked %v, want 1", r.JSON["revoked"])
		}
		dead(t, s, fourth)
		if evs := eventsOf(t, s, u.ID, "reauthenticated"); len(evs) != 1 {
			t.Errorf("%d reauthenticated events, want 1", len(evs))
		}
		wantStatus(t, s.call(t, "POST", "/v1/logout", J{"scope": "all"}, bearer(tok)), http.StatusNoContent)
		dead(t, s, tok)
	})

	t.Run("cookie", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		c, _ := loginCookie(t, s, u)
		stale()
		wantReauth(t, s.call(t, "POST", "/v1/logout", J{"scope": "all"}, cookie(c)))
		alive(t, s, c)
		r := s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, cookie(c))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "cookie reauthenticate answer", r.JSON, "session", "user")
		next := wantSessionCookie(t, r)
		if next == c {
			t.Fatal("reauthentication kept the cookie's token")
		}
		dead(t, s, c)
		r = s.call(t, "DELETE", "/v1/profile", J{"password": u.Password}, cookie(next))
		wantStatus(t, r, http.StatusNoContent)
		wantClearedCookie(t, r)
		wantStatus(t, s.adm(t, "GET", "/admin/v1/users/"+u.ID, nil), http.StatusNotFound)
	})

	t.Run("admin session", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.adm(t, "POST", "/admin/v1/sessions", J{"user_id": u.ID})
		wantStatus(t, r, http.StatusCreated)
		tok := str(t, r.JSON, "token")
		if a := checkSession(t, obj(t, r, "session"))["authenticated_at"]; a != nil {
			t.Fatalf("an administrator's session has authenticated_at %v, want null", a)
		}
		// No proof at all: sensitive actions are refused from the start.
		wantReauth(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(tok)))
		r = s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		wantStatus(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(str(t, r.JSON, "token"))), http.StatusOK)
	})

	t.Run("lockout", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		for range 3 {
			wantError(t, s.call(t, "POST", "/v1/session/reauthenticate", J{"password": "wrong"}, bearer(tok)),
				http.StatusUnauthorized, "invalid_credentials")
		}
		wantError(t, s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(tok)),
			http.StatusTooManyRequests, "account_locked")
		wantError(t, s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password}),
			http.StatusTooManyRequests, "account_locked")
		if evs := eventsOf(t, s, u.ID, "locked_out"); len(evs) != 1 {
			t.Errorf("%d locked_out events, want 1", len(evs))
		}
	})

	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		wantError(t, s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}), http.StatusUnauthorized, "unauthenticated")
		wantError(t, s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password, "extra": 1}, bearer(tok), offContract("an unknown field")),
			http.StatusBadRequest, "unknown_field")
		wantStatus(t, s.call(t, "GET", "/v1/session/reauthenticate", nil, bearer(tok), offContract("a method the route does not take")), http.StatusMethodNotAllowed)
		alive(t, s, tok)
	})
}

// TestReauthenticationClientSide: a client-side session reauthenticates
// with its access token and gets a new access and refresh token; the old
// refresh chain ends.
func TestReauthenticationClientSide(t *testing.T) {
	t.Parallel()
	s, _ := startJWT(t, []string{"--reauth-window", reauthWindow.String()})
	u := newUser(t, s)
	p := loginJWT(t, s, u, false)
	stale()
	wantReauth(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(p.Access)))
	r := s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(p.Access))
	q := wantPair(t, r, http.StatusOK)
	if q.Session == nil || q.Refresh == p.Refresh || authenticatedAt(t, q.Session).IsZero() {
		t.Fatalf("client-side reauthentication answer %s", r.Body)
	}
	wantStatus(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(q.Access)), http.StatusOK)
	wantError(t, refresh(t, s, p.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
	mustRefresh(t, s, q.Refresh)
}
