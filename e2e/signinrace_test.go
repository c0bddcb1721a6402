package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Force Logout against sign-ins in flight (issue 20, High): while the owner
// changes the password (or confirms a reset), several clients keep signing
// in with the old one. A sign-in that read the old hash before the change
// and created its session after the revocation used to outlive the Force
// Logout. Afterwards, no session got with the old password may be valid,
// on any node.

// raceArgs: real argon2id costs (the defaults), so that a sign-in spends
// tens of milliseconds between reading the hash and creating its session,
// and neither lockout nor the per-address limit stops the old-password
// failures after a change.
var raceArgs = []string{"--argon2-memory", "19456", "--argon2-time", "2",
	"--lockout-threshold", "0", "--login-rate-per-ip", "0"}

func TestForceLogoutRacesSignInSQLite(t *testing.T) {
	t.Parallel()
	testForceLogoutRace(t, []*Server{startServer(t, raceArgs)})
}

func TestForceLogoutRacesSignInPostgres(t *testing.T) {
	t.Parallel()
	testForceLogoutRace(t, startNodes(t, 2, append([]string{"--database", postgresDB(t)}, raceArgs...)))
}

func TestForceLogoutRacesSignInRedis(t *testing.T) {
	t.Parallel()
	testForceLogoutRace(t, startNodes(t, 2, append([]string{"--database", postgresDB(t),
		"--session-store", redisStore(t)}, raceArgs...)))
}

// signInToken signs in at base with the token transport and returns the
// status and, on 200, the token. Safe in goroutines: it never fails t.
func signInToken(base, email, password string) (int, string, error) {
	body, _ := json.Marshal(J{"email": email, "password": password, "transport": "token"})
	req, err := http.NewRequest("POST", base+"/v1/login", strings.NewReader(string(body)))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := quickClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp.StatusCode, "", err
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Token == "" {
		return resp.StatusCode, "", fmt.Errorf("200 without a token: %s", b)
	}
	return resp.StatusCode, v.Token, nil
}

func testForceLogoutRace(t *testing.T, nodes []*Server) {
	const (
		clients = 4
		rounds  = 4 // even: a password change; odd: a reset confirmed
	)
	owner := newUser(t, nodes[0])
	var oldTokens []string
	pw := owner.Password
	for round := range rounds {
		next := fmt.Sprintf("round %d passphrase %s", round, randHex(4))
		var ownerTok, resetTok string
		if round%2 == 0 {
			ownerTok, _ = login(t, nodes[0], user{Email: owner.Email, Password: pw})
		} else {
			requestReset(t, nodes[0], owner.Email)
			toks := waitOutbox(t, nodes[0], owner.Email, round/2+1)
			resetTok = toks[len(toks)-1]
		}

		var (
			mu        sync.Mutex
			got       []string
			successes atomic.Int64
			stop      = make(chan struct{})
			wg        sync.WaitGroup
			errs      = make(chan error, clients)
		)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					status, tok, err := signInToken(nodes[(c+i)%len(nodes)].Pub, owner.Email, pw)
					switch {
					case err != nil:
						errs <- err
						return
					case status == http.StatusOK:
						mu.Lock()
						got = append(got, tok)
						mu.Unlock()
						successes.Add(1)
					case status != http.StatusUnauthorized: // 401: after the change
						errs <- fmt.Errorf("sign-in with the old password: status %d", status)
						return
					}
				}
			}()
		}
		// Change the password while the clients are busy.
		for deadline := time.Now().Add(20 * time.Second); successes.Load() < 2*clients; {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d sign-ins in 20s", round, successes.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
		var r *Resp
		if round%2 == 0 {
			r = nodes[0].call(t, "POST", "/v1/password/change", J{"current_password": pw, "new_password": next}, bearer(ownerTok))
		} else {
			r = nodes[0].call(t, "POST", "/v1/password/reset/confirm", J{"token": resetTok, "new_password": next, "transport": "token"})
		}
		wantStatus(t, r, http.StatusOK)
		close(stop)
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatalf("round %d: %v", round, err)
		default:
		}
		oldTokens = append(oldTokens, got...)
		pw = next
	}

	// Every old-password session is dead on every node. A node's cache may
	// hold a revoked session for up to --cache-max-age (2s); a survivor is
	// alive for good.
	alive := func(tok string) bool {
		for _, n := range nodes {
			if status, _ := quick(t, "GET", n.Pub+"/v1/session", tok); status == http.StatusOK {
				return true
			}
		}
		return false
	}
	survivors := oldTokens
	for deadline := time.Now().Add(4 * time.Second); ; {
		var still []string
		for _, tok := range survivors {
			if alive(tok) {
				still = append(still, tok)
			}
		}
		survivors = still
		if len(survivors) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d sessions signed in with a password about to change, over %d changes and resets on %d node(s); %d survived",
		len(oldTokens), rounds, len(nodes), len(survivors))
	if len(survivors) > 0 {
		t.Errorf("%d of %d sessions signed in with an old password are still valid after the Force Logout", len(survivors), len(oldTokens))
	}
}
