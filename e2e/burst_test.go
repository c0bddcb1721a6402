package e2e_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestConcurrentGuessesMeetTheLimit (security review, issue 20): the
// per-address limit of failed sign-ins is charged before the password is
// hashed, so a burst of concurrent wrong guesses from one address cannot
// all pass it while the first ones are still being hashed. Of 150
// concurrent wrong sign-ins with --login-rate-per-ip 20, at most the
// bucket (20, plus what refills during the burst) are answered 401; the
// rest are 429 (with Retry-After). A success gives its charge back.
func TestConcurrentGuessesMeetTheLimit(t *testing.T) {
	t.Parallel()
	const limit, burst = 20, 150
	s := startServer(t, []string{"--login-rate-per-ip", strconv.Itoa(limit), "--lockout-threshold", "0"})
	u := newUser(t, s)
	// A success gives its charge back: limit sign-ins with the right
	// password leave the whole budget.
	for range limit {
		login(t, s, u)
	}
	var (
		mu      sync.Mutex
		codes   = map[int]int{}
		noRetry int // 429s without Retry-After
		wg      sync.WaitGroup
	)
	start := time.Now()
	for i := range burst {
		wg.Go(func() {
			r := tryLogin(t, s, u.Email, "wrong-"+strconv.Itoa(i))
			mu.Lock()
			codes[r.Status]++
			if r.Status == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
				noRetry++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	allowed := limit + int(float64(limit)*took.Seconds()/60) + 1
	if codes[http.StatusUnauthorized] > allowed || codes[http.StatusTooManyRequests] < burst-allowed ||
		codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != burst {
		t.Fatalf("%d concurrent wrong sign-ins in %v: answers %v, want at most %d 401 and the rest 429", burst, took, codes, allowed)
	}
	if noRetry > 0 {
		t.Errorf("%d answers 429 without Retry-After", noRetry)
	}
	t.Logf("%d concurrent wrong sign-ins from one address in %v: %d answered 401, %d answered 429 (limit %d/min)",
		burst, took.Round(time.Millisecond), codes[http.StatusUnauthorized], codes[http.StatusTooManyRequests], limit)
}
