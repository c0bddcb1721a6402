package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak runs mixed traffic against the real server for a while and
// samples the process's resident memory (VmRSS in /proc/PID/status) and
// goroutine count (sessiond_go_goroutines on /metrics) as it goes. Virtual
// users sign in (token, cookie and jwt transports, some carrying an
// anonymous session's cart), ask who they are, write and read session data,
// patch their profile, list their sessions, refresh client-side sessions,
// and sign out; now and then a client behind the trusted proxy mistypes a
// password (a limiter bucket for its address). Sign-ins and sign-outs
// balance, so the number of live sessions stays level and whatever grows
// after the warm-up is a leak.
//
// SESSIOND_SOAK=10m (any duration of a minute or more) runs the soak
// proper, sampled every 10s: after the first quarter (the warm-up), the
// average of the last quarter must be within 20% of the average of the
// second quarter, for RSS and for goroutines (these plus one for each
// worker's request in flight). scripts/soak.sh runs it. Without SESSIOND_SOAK, runs other than
// -short (CI's among them) take a 20s version sampled every second: it
// checks every answer of the traffic and the goroutine bound, and reports
// memory without judging it, since 20 seconds are too short for the heap to
// settle.
func TestSoak(t *testing.T) {
	t.Parallel()
	dur, interval, full := 20*time.Second, time.Second, false
	if v := os.Getenv("SESSIOND_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute {
			t.Fatalf("SESSIOND_SOAK=%q: want a duration of a minute or more, like 10m", v)
		}
		dur, interval, full = d, 10*time.Second, true
	} else if testing.Short() {
		t.Skip("the 20s soak is skipped with -short (SESSIOND_SOAK=10m runs the real one)")
	}
	s := startServer(t, []string{"--log-level", "info", "--trusted-proxies", "127.0.0.1/32"}, withEnv(kekEnv(newKEK())))
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()

	sk := &soak{t: t, s: s, hc: &http.Client{Timeout: 20 * time.Second, Transport: validating(&http.Transport{MaxIdleConnsPerHost: 64}),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	for i := range 40 {
		u := user{Email: fmt.Sprintf("soak-%d-%s@example.com", i, randHex(3)), Password: "Tr0ub4dor&" + randHex(4)}
		r := s.adm(t, "POST", "/admin/v1/users", J{"email": u.Email, "password": u.Password})
		wantStatus(t, r, http.StatusCreated)
		sk.users = append(sk.users, u)
	}

	type sample struct {
		at         time.Duration
		rss        int64 // KiB
		goroutines int
		requests   int64
	}
	take := func(start time.Time) sample {
		return sample{time.Since(start), rssKiB(t, pid), goroutines(t, s), sk.requests.Load()}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 8
	start := time.Now()
	samples := []sample{take(start)}
	for w := range workers {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sk.visit(rng)
			}
		})
	}
	for time.Since(start) < dur && !t.Failed() {
		time.Sleep(time.Until(start.Add(time.Duration(len(samples)) * interval)))
		samples = append(samples, take(start))
	}
	close(stop)
	wg.Wait()
	healthy(t, s)

	var table strings.Builder
	for _, x := range samples {
		fmt.Fprintf(&table, "  %8v  rss %7.1f MiB  goroutines %4d  requests %d\n", x.at.Round(time.Second), float64(x.rss)/1024, x.goroutines, x.requests)
	}
	t.Logf("soak of %v, %d workers: %d requests (%.0f/s), %d unexpected answers; samples:\n%s",
		dur, workers, sk.requests.Load(), float64(sk.requests.Load())/time.Since(start).Seconds(), sk.bad.Load(), table.String())

	n := len(samples)
	if n < 8 {
		t.Fatalf("%d samples, too few to judge", n)
	}
	avg := func(from, to int, f func(sample) float64) float64 {
		sum := 0.0
		for _, x := range samples[from:to] {
			sum += f(x)
		}
		return sum / float64(to-from)
	}
	q := n / 4
	rss := func(x sample) float64 { return float64(x.rss) }
	gor := func(x sample) float64 { return float64(x.goroutines) }
	rss2, rss4 := avg(q, 2*q, rss), avg(n-q, n, rss)
	gor2, gor4 := avg(q, 2*q, gor), avg(n-q, n, gor)
	t.Logf("RSS: start %.1f MiB, after the warm-up %.1f MiB, end %.1f MiB; second-quarter average %.1f MiB, last-quarter %.1f MiB (%+.1f%%)",
		float64(samples[0].rss)/1024, float64(samples[q].rss)/1024, float64(samples[n-1].rss)/1024, rss2/1024, rss4/1024, 100*(rss4/rss2-1))
	t.Logf("goroutines: start %d, after the warm-up %d, end %d; second-quarter average %.1f, last-quarter %.1f",
		samples[0].goroutines, samples[q].goroutines, samples[n-1].goroutines, gor2, gor4)
	if gor4 > 1.2*gor2+workers { // each worker may have a request in flight
		t.Errorf("goroutines grew after the warm-up: last-quarter average %.1f, second-quarter %.1f", gor4, gor2)
	}
	if full && rss4 > 1.2*rss2 {
		t.Errorf("RSS grew after the warm-up: last-quarter average %.1f MiB, second-quarter %.1f MiB", rss4/1024, rss2/1024)
	}
}

// rssKiB reads VmRSS of the process pid.
func rssKiB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the server's memory: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// soak is the traffic of TestSoak.
type soak struct {
	t             *testing.T
	s             *Server
	hc            *http.Client
	users         []user
	requests, bad atomic.Int64
	seq           atomic.Int64
}

type soakResp struct {
	status int
	body   map[string]any
	cookie string // the session cookie it sets, if any
}

// call makes one request; a transport error or an answer other than want
// counts as unexpected (the first few are reported).
func (k *soak) call(method, path string, body any, want int, hdr ...string) soakResp {
	k.requests.Add(1)
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, k.s.Pub+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] != "" {
			req.Header.Add(hdr[i], hdr[i+1])
		}
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		k.unexpected("%s %s: %v", method, path, err)
		return soakResp{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := soakResp{status: resp.StatusCode}
	_ = json.Unmarshal(b, &out.body)
	for _, c := range resp.Cookies() {
		if c.Name == cookieName && c.Value != "" {
			out.cookie = c.Value
		}
	}
	if resp.StatusCode != want {
		k.unexpected("%s %s: %d %.200s, want %d", method, path, resp.StatusCode, b, want)
	}
	return out
}

func (k *soak) unexpected(format string, args ...any) {
	if k.bad.Add(1) <= 20 {
		k.t.Errorf(format, args...)
	}
}

// visit is one virtual user's visit: sign in, use the session, sign out.
func (k *soak) visit(rng *rand.Rand) {
	u := k.users[rng.IntN(len(k.users))]
	if rng.IntN(25) == 0 {
		// A mistyped password from some client behind the proxy.
		ip := fmt.Sprintf("198.51.%d.%d", rng.IntN(256), rng.IntN(256))
		k.call("POST", "/v1/login", J{"email": u.Email, "password": "mistyped"}, http.StatusUnauthorized, "X-Forwarded-For", ip)
	}
	var carry string
	if rng.IntN(4) == 0 {
		// A visitor fills a cart before signing in, from an address of
		// its own behind the proxy (new anonymous sessions are limited
		// per address).
		ip := fmt.Sprintf("203.0.%d.%d", rng.IntN(256), rng.IntN(256))
		carry = k.call("PUT", "/v1/session/data/cart", J{"items": rng.IntN(9)}, http.StatusNoContent, "X-Forwarded-For", ip).cookie
		k.call("GET", "/v1/session/data", nil, http.StatusOK, "Cookie", cookieName+"="+carry, "X-Forwarded-For", ip)
	}
	transport := []string{"token", "cookie", "jwt"}[rng.IntN(3)]
	cookieHdr := ""
	if carry != "" {
		cookieHdr = cookieName + "=" + carry
	}
	r := k.call("POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": transport, "remember_me": rng.IntN(2) == 0},
		http.StatusOK, "Cookie", cookieHdr)
	var auth []string
	var refresh string
	switch transport {
	case "token":
		tok, _ := r.body["token"].(string)
		auth = []string{"Authorization", "Bearer " + tok}
	case "cookie":
		auth = []string{"Cookie", cookieName + "=" + r.cookie, "Origin", k.s.Pub}
	case "jwt":
		tok, _ := r.body["access_token"].(string)
		refresh, _ = r.body["refresh_token"].(string)
		auth = []string{"Authorization", "Bearer " + tok}
	}
	if r.status != http.StatusOK {
		return
	}
	for range 3 + rng.IntN(8) {
		switch n := rng.IntN(10); {
		case n < 4:
			k.call("GET", "/v1/session", nil, http.StatusOK, auth...)
		case n < 6:
			key := "k" + strconv.Itoa(rng.IntN(20))
			k.call("PUT", "/v1/session/data/"+key, J{"n": k.seq.Add(1), "pad": strings.Repeat("x", rng.IntN(512))}, http.StatusNoContent, auth...)
		case n < 7:
			k.call("GET", "/v1/session/data", nil, http.StatusOK, auth...)
		case n < 8:
			k.call("GET", "/v1/sessions", nil, http.StatusOK, auth...)
		case n < 9:
			k.call("PATCH", "/v1/profile", J{"profile": J{"seen": k.seq.Add(1)}}, http.StatusOK, auth...)
		default:
			if refresh != "" {
				r := k.call("POST", "/v1/token/refresh", J{"refresh_token": refresh}, http.StatusOK)
				if r.status == http.StatusOK {
					tok, _ := r.body["access_token"].(string)
					refresh, _ = r.body["refresh_token"].(string)
					auth = []string{"Authorization", "Bearer " + tok}
				}
			} else {
				k.call("DELETE", "/v1/session/data/k"+strconv.Itoa(rng.IntN(20)), nil, http.StatusNoContent, auth...)
			}
		}
	}
	if refresh != "" && rng.IntN(2) == 0 {
		k.call("POST", "/v1/token/revoke", J{"refresh_token": refresh}, http.StatusNoContent)
		return
	}
	k.call("POST", "/v1/logout", nil, http.StatusNoContent, auth...)
}
