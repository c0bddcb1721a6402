package e2e_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond/accesstoken"
)

// Refresh verification does not walk the chain for forgeries (issue 20,
// Medium): a well-formed refresh token carrying a live session id used to
// cost up to 10,001 HMAC steps; now the current token and its predecessor
// are one hash compare each and a forgery one HMAC. A genuine token two
// links behind still ends the session (theft), and a link of a chain that
// a reauthentication ended is refused without ending it.

func TestRefreshVerificationCost(t *testing.T) {
	t.Parallel()
	// 164 bad refresh tokens from one address: the per-address limit
	// (TestRejectedRefreshTokensPerAddress) would answer 429.
	s, _ := startJWT(t, []string{"--rejected-token-rate-per-ip", "0"})
	u := newUser(t, s)
	p := loginJWT(t, s, u, false)
	sid := p.Session["id"].(string)
	other, err := accesstoken.NewChain(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.First(sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	malformed := forged[:len(forged)-1] + "!"
	body := func(tok string) string {
		b, _ := json.Marshal(J{"refresh_token": tok})
		return string(b)
	}
	median := func(tok string) time.Duration {
		const n = 41
		took := make([]time.Duration, 0, n)
		for range n {
			status, d := quickBody(t, "POST", s.Pub+refreshPath, "", body(tok))
			if status != http.StatusUnauthorized {
				t.Fatalf("refresh with a bad token: status %d", status)
			}
			took = append(took, d)
		}
		slices.Sort(took)
		return took[n/2]
	}
	// Interleaved twice, so that a busy moment of the machine hits both.
	m1, f1 := median(malformed), median(forged)
	m2, f2 := median(malformed), median(forged)
	mal, forg := min(m1, m2), min(f1, f2)
	// Reported, not asserted: speed is held by the benchmarks
	// (accesstoken.BenchmarkRefresh*); a timed assertion fails on a loaded
	// machine (a forged token's store read alone took 58 ms there).
	t.Logf("median refresh answer: malformed %v, forged with a live session id %v (%.1f×)", mal, forg, float64(forg)/float64(mal))
	wantStatus(t, whoami(t, s, bearer(p.Access)), http.StatusOK) // forgeries end nothing
}

func TestRefreshEndedChain(t *testing.T) {
	t.Parallel()
	s, _ := startJWT(t, nil)
	u := newUser(t, s)
	p0 := loginJWT(t, s, u, false)
	p1 := mustRefresh(t, s, p0.Refresh)
	p2 := mustRefresh(t, s, p1.Refresh)
	// A reauthentication starts a new chain for the same session.
	r := s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(p2.Access))
	q0 := wantPair(t, r, http.StatusOK)
	if q0.Refresh == p2.Refresh {
		t.Fatal("reauthentication kept the refresh chain")
	}
	// Every link of the ended chain, the current one at its end included,
	// is refused, and ends nothing.
	for _, old := range []string{p2.Refresh, p1.Refresh, p0.Refresh} {
		wantError(t, refresh(t, s, old), http.StatusUnauthorized, "invalid_refresh_token")
	}
	q1 := mustRefresh(t, s, q0.Refresh)
	wantStatus(t, whoami(t, s, bearer(q1.Access)), http.StatusOK)
	if ev := eventsOf(t, s, u.ID, "refresh_token_reused"); len(ev) != 0 {
		t.Errorf("%d refresh_token_reused events for links of an ended chain", len(ev))
	}
	// In the new chain, a token two links behind is theft.
	q2 := mustRefresh(t, s, q1.Refresh)
	wantError(t, refresh(t, s, q0.Refresh), http.StatusUnauthorized, "refresh_token_reused")
	wantError(t, refresh(t, s, q2.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
}
