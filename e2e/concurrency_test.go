package e2e_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrency checks that concurrent requests on one session or one
// account lose nothing and never fail with a server error.
func TestConcurrency(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	const n = 16

	t.Run("session data writes of different keys are all kept", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := s.call(t, "PUT", fmt.Sprintf("/v1/session/data/k%d", i), J{"i": i}, bearer(tok))
				if r.Status != http.StatusNoContent {
					t.Errorf("PUT k%d: %d %s", i, r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		r := s.call(t, "GET", "/v1/session/data", nil, bearer(tok))
		if d := obj(t, r, "data"); len(d) != n {
			t.Errorf("%d keys after %d concurrent writes: %s", len(d), n, r.Body)
		}
	})

	t.Run("profile patches of different keys are all kept", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := s.call(t, "PATCH", "/v1/profile", J{"profile": J{fmt.Sprintf("p%d", i): i}}, bearer(tok))
				if r.Status != http.StatusOK {
					t.Errorf("PATCH p%d: %d %s", i, r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		r := s.call(t, "GET", "/v1/profile", nil, bearer(tok))
		if p := checkUser(t, obj(t, r, "user"))["profile"].(map[string]any); len(p) != n {
			t.Errorf("%d profile keys after %d concurrent patches: %s", len(p), n, r.Body)
		}
	})

	t.Run("logins racing on one anonymous session", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		anon := wantSessionCookie(t, s.call(t, "PUT", "/v1/session/data/cart", J{"n": 1}))
		var wg sync.WaitGroup
		toks := make(chan string, n)
		for range n / 2 {
			wg.Go(func() {
				r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "token"}, cookie(anon))
				if r.Status != http.StatusOK {
					t.Errorf("login: %d %s", r.Status, r.Body)
					return
				}
				toks <- r.JSON["token"].(string)
			})
		}
		wg.Wait()
		close(toks)
		carried := 0
		for tok := range toks {
			alive(t, s, tok)
			if d := obj(t, s.call(t, "GET", "/v1/session/data", nil, bearer(tok)), "data"); len(d) > 0 {
				carried++
			}
		}
		if carried < 1 {
			t.Errorf("no login carried the anonymous data")
		}
		dead(t, s, anon)
	})

	t.Run("revocations racing with use", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		var toks []string
		for range 4 {
			tok, _ := login(t, s, u)
			toks = append(toks, tok)
		}
		var wg sync.WaitGroup
		for _, tok := range toks {
			wg.Go(func() {
				for range 5 {
					r := whoami(t, s, bearer(tok))
					if r.Status != http.StatusOK && r.Status != http.StatusUnauthorized {
						t.Errorf("who-am-I during revocation: %d", r.Status)
					}
				}
			})
		}
		wg.Go(func() {
			r := s.call(t, "POST", "/v1/logout", J{"scope": "all"}, bearer(toks[0]))
			if r.Status != http.StatusNoContent {
				t.Errorf("logout all: %d", r.Status)
			}
		})
		wg.Wait()
		for _, tok := range toks {
			dead(t, s, tok)
		}
	})

	t.Run("password changes racing on one session", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []string
		for i := range 4 {
			wg.Go(func() {
				pw := fmt.Sprintf("racing new passphrase %d", i)
				r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": pw}, bearer(tok))
				switch r.Status {
				case http.StatusOK:
					mu.Lock()
					won = append(won, pw, r.JSON["token"].(string))
					mu.Unlock()
				case http.StatusUnauthorized:
				default:
					t.Errorf("password change: %d %s", r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		if len(won) != 2 {
			t.Fatalf("%d of 4 concurrent password changes with the same password and token succeeded, want 1", len(won)/2)
		}
		dead(t, s, tok)
		alive(t, s, won[1])
		u.Password = won[0]
		login(t, s, u)
	})
}
