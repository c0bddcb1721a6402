package e2e_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAnonymousSessionsAreLimited (security review, issue 20): anyone can
// make an anonymous session by writing session data without a cookie, so
// new anonymous sessions are limited per client address
// (--anonymous-rate-per-ip, 429 rate_limited with Retry-After) and their
// data gets a smaller quota (--max-anonymous-data-bytes) than a signed-in
// user's. A visitor who has a session keeps writing to it; another address
// is not affected; a signed-in user keeps the full quota.
func TestAnonymousSessionsAreLimited(t *testing.T) {
	t.Parallel()
	const limit = 10
	s := startServer(t, []string{"--anonymous-rate-per-ip", strconv.Itoa(limit), "--max-anonymous-data-bytes", "4096"})
	value := strings.Repeat("x", 1000) // sent as a JSON string
	var made, limited int
	var first string
	start := time.Now()
	for range 50 {
		r := s.call(t, "PUT", "/v1/session/data/cart", value)
		switch r.Status {
		case http.StatusNoContent:
			made++
			if first == "" {
				first = wantSessionCookie(t, r)
			}
		case http.StatusTooManyRequests:
			wantError(t, r, http.StatusTooManyRequests, "rate_limited")
			if r.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			limited++
		default:
			t.Fatalf("PUT without a session: %d %s", r.Status, r.Body)
		}
	}
	// The bucket: limit at once, and limit a minute refilling meanwhile.
	allowed := limit + int(float64(limit)*time.Since(start).Seconds()/60) + 1
	if made < limit || made > allowed || limited != 50-made {
		t.Fatalf("50 anonymous PUTs from one address: %d sessions made, %d refused; want %d to %d made", made, limited, limit, allowed)
	}
	// The visitor's own session takes more writes, up to its quota.
	for i := range 3 {
		wantStatus(t, s.call(t, "PUT", "/v1/session/data/k"+strconv.Itoa(i), value, cookie(first)), http.StatusNoContent)
	}
	wantError(t, s.call(t, "PUT", "/v1/session/data/k9", value, cookie(first)), http.StatusRequestEntityTooLarge, "data_too_large")
	// Another address is not limited.
	req, _ := http.NewRequest("PUT", s.Pub+"/v1/session/data/cart", strings.NewReader(`"x"`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := clientFrom("127.0.0.2").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("an anonymous session from another address: %d", resp.StatusCode)
	}
	// A signed-in user has the full quota (64 KiB by default).
	u := newUser(t, s)
	tok, _ := login(t, s, u)
	for i := range 8 {
		wantStatus(t, s.call(t, "PUT", "/v1/session/data/k"+strconv.Itoa(i), value, bearer(tok)), http.StatusNoContent)
	}
	t.Logf("anonymous sessions from one address with --anonymous-rate-per-ip %d: %d of 50 made, %d refused 429", limit, made, limited)
}
