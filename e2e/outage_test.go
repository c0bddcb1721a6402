package e2e_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// While a store is down, refusals are fast: once the node knows the store
// is unreachable (its circuit breaker is open), a who-am-I answers 503 in
// milliseconds instead of waiting for the store's timeout and retries
// (about 0.9s with Redis before the breaker), and the node recovers by
// itself when the store is back.

// Bounds of the outage tests.
const (
	// opensWithin is how soon after the store dies the breaker must be
	// open: a few failed calls, each bounded by the store's timeout.
	opensWithin = 10 * time.Second
	// fastP50 bounds the refusals while the breaker is open.
	// Every cool-down one call goes through as a probe and waits for the
	// store's timeout, hence a bound on a percentile, not on each answer.
	// The bounds are far below the ~0.9 s that Redis's timeout gave every
	// refusal before the breaker (p50 823 ms), and loose enough for a
	// loaded machine (20 clients at once saw p50 52 ms while the whole
	// test suite ran).
	fastP50 = 300 * time.Millisecond
	// outageSamples is how many who-am-I are measured, one after the
	// other and then from many clients at once.
	outageSamples = 200
	floodClients  = 20
)

// TestOutageRefusedFastRedis SIGKILLs a Redis session store of the test's
// own (never the machine's shared one) and starts it again on the same
// port, with its append-only file, so that sessions survive.
func TestOutageRefusedFastRedis(t *testing.T) {
	// Not parallel: it measures latencies, which the other tests' load
	// would distort; serial tests run alone in this package.
	rs := startPrivateRedis(t)
	s := startServer(t, []string{"--session-store", rs.url()})
	testOutage(t, s, "redis", rs.kill, rs.start)
}

// TestOutageRefusedFastPostgres takes PostgreSQL (accounts and sessions)
// away behind a TCP proxy that refuses connections and cuts the open ones,
// as a killed server would; the machine's shared PostgreSQL, which other
// work uses, is never stopped.
func TestOutageRefusedFastPostgres(t *testing.T) {
	// Not parallel, as TestOutageRefusedFastRedis.
	db := postgresDB(t)
	px := newProxy(t, hostPort(t, db, "5432"))
	s := startServer(t, []string{"--database", px.via(t, db)})
	testOutage(t, s, "postgres", func(*testing.T) { px.Stop() }, px.Start)
}

func testOutage(t *testing.T, s *Server, store string, kill, restart func(*testing.T)) {
	u := newUser(t, s)
	tok, _ := login(t, s, u)
	alive(t, s, tok)
	state := func() (float64, bool) {
		return scrapeMetric(t, s, `sessiond_store_circuit_state{store="`+store+`"}`)
	}
	if v, ok := state(); !ok || v != 0 {
		t.Errorf("store up: circuit state %v (found %v), want 0 (closed)", v, ok)
	}

	kill(t)
	down := time.Now()
	var before []time.Duration // refusals until the breaker opened
	for {
		st, took := quick(t, "GET", s.Pub+"/v1/session", tok)
		switch {
		case st == http.StatusServiceUnavailable:
			before = append(before, took)
		case st == http.StatusOK && time.Since(down) < noticeWithin:
		default:
			t.Fatalf("store down: who-am-I answered %d %v after the kill, want 503", st, time.Since(down))
		}
		if v, _ := state(); v == 1 {
			break
		}
		if time.Since(down) > opensWithin {
			t.Errorf("store down: the circuit is not open %v after the kill", time.Since(down))
			break
		}
	}
	t.Logf("%s down: circuit open %v after the kill, after %d refusals (slowest %v)",
		store, time.Since(down).Round(time.Millisecond), len(before), slices.Max(append(before, 0)).Round(time.Millisecond))

	refusals := func(what string, clients int) {
		t.Helper()
		var mu sync.Mutex
		var took []time.Duration
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range outageSamples / clients {
					st, d := quick(t, "GET", s.Pub+"/v1/session", tok)
					if st != http.StatusServiceUnavailable {
						t.Errorf("%s: who-am-I answered %d, want 503", what, st)
					}
					mu.Lock()
					took = append(took, d)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(took)
		p50, p99 := took[len(took)/2], took[len(took)*99/100]
		t.Logf("%s down, %s: %d refusals, p50 %v, p99 %v, max %v", store, what, len(took),
			p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), took[len(took)-1].Round(10*time.Microsecond))
		// The p99 may be a probe: one call each cool-down waits for the
		// store's timeout, and a slow run has more cool-downs among its
		// samples. The median is the refusal itself.
		if p50 > fastP50 {
			t.Errorf("%s: refusals p50 %v (p99 %v); want a p50 of at most %v", what, p50, p99, fastP50)
		}
	}
	refusals("one client", 1)
	refusals(strconv.Itoa(floodClients)+" clients at once", floodClients)
	if st, took := quickLogin(t, s, u); st != http.StatusServiceUnavailable || took > downLatency {
		t.Errorf("store down: login answered %d in %v, want 503 within %v", st, took, downLatency)
	}
	if st, _ := quick(t, "GET", s.Admin+"/readyz", ""); st != http.StatusServiceUnavailable {
		t.Errorf("store down: /readyz answered %d, want 503", st)
	}
	if v, ok := scrapeMetric(t, s, `sessiond_store_circuit_rejected_total{store="`+store+`"}`); !ok || v < outageSamples {
		t.Errorf("store down: rejected_total %v (found %v), want at least %d", v, ok, outageSamples)
	}
	if t.Failed() {
		t.FailNow()
	}

	restart(t)
	back := time.Now()
	for {
		st, _ := quick(t, "GET", s.Pub+"/v1/session", tok)
		rd, _ := quick(t, "GET", s.Admin+"/readyz", "")
		if st == http.StatusOK && rd == http.StatusOK {
			break
		}
		if st != http.StatusServiceUnavailable {
			t.Fatalf("store back: who-am-I answered %d while recovering, want 503 or 200", st)
		}
		if time.Since(back) > recoverWithin {
			t.Fatalf("store back: who-am-I %d, /readyz %d %v after the restart; want 200 within %v", st, rd, time.Since(back), recoverWithin)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%s back: who-am-I succeeds again %v after the restart", store, time.Since(back).Round(time.Millisecond))
	if v, _ := state(); v != 0 {
		t.Errorf("store back: circuit state %v, want 0 (closed)", v)
	}
	alive(t, s, tok)
	t2, _ := login(t, s, u)
	alive(t, s, t2)
	for _, want := range []string{"circuit open", "circuit closed"} {
		if !strings.Contains(s.Logs(), want) {
			t.Errorf("the log has no line with %q", want)
		}
	}
}

// privateRedis is a redis-server of one test's own on a loopback port,
// which the test may kill and start again. Its append-only file, fsync'd
// at every write, keeps sessions across a SIGKILL.
type privateRedis struct {
	port int
	dir  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// startPrivateRedis starts a redis-server, and kills it when t ends. The
// test skips without one (or fails under SESSIOND_REQUIRE_BACKENDS=1).
func startPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "redis-server", err)
	}
	r := &privateRedis{port: freePort(t), dir: t.TempDir()}
	r.start(t)
	t.Cleanup(func() { r.kill(t) })
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// start runs redis-server on r's port and waits until it answers PING.
func (r *privateRedis) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--protected-mode", "no", "--daemonize", "no")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.pong() {
			return
		}
		select {
		case <-done:
			t.Fatalf("redis-server exited:\n%s", logs)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("redis-server on port %d does not answer PING:\n%s", r.port, logs)
}

func (r *privateRedis) pong() bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// kill ends redis-server with SIGKILL, as a crash would; killing a killed
// server does nothing.
func (r *privateRedis) kill(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}
