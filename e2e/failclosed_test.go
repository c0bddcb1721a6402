package e2e_test

import (
	"encoding/json"
	"net"
	"net/http"
	neturl "net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// tcpProxy stands between sessiond and a store, so that a test can take
// the store away without touching the shared server: Stop closes the
// listener and cuts every connection (the store is down), Start listens
// again on the same port (it is back), SetDelay holds every chunk of bytes
// in both directions for a while (it is slow).
type tcpProxy struct {
	target string // host:port of the store
	addr   string // 127.0.0.1:port, the same across restarts

	delay atomic.Int64 // nanoseconds

	mu    sync.Mutex
	ln    net.Listener // nil while stopped
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// newProxy starts a proxy to target on a free loopback port and stops it
// when t ends.
func newProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, addr: ln.Addr().String(), conns: make(map[net.Conn]struct{})}
	p.serve(ln)
	t.Cleanup(func() {
		p.Stop()
		p.wg.Wait()
	})
	return p
}

// via returns rawURL with its host:port replaced by the proxy's.
func (p *tcpProxy) via(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := neturl.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

// hostPort is the host:port of rawURL, with the default port when it has
// none.
func hostPort(t *testing.T, rawURL, defaultPort string) string {
	t.Helper()
	u, err := neturl.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), defaultPort)
	}
	return u.Host
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.pipe(c) })
		}
	})
}

// Start listens again on the proxy's port.
func (p *tcpProxy) Start(t *testing.T) {
	t.Helper()
	var err error
	for range 50 { // the port was ours a moment ago; give the kernel a moment
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("proxy: listening again on %s: %v", p.addr, err)
}

// Stop closes the listener and every connection through the proxy.
func (p *tcpProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// SetDelay makes every chunk of bytes wait d before it is passed on; 0
// passes them at once again, the waiting ones included.
func (p *tcpProxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// track adds c to the connections Stop cuts; false when stopped.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) untrack(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
	c.Close()
}

func (p *tcpProxy) pipe(client net.Conn) {
	if !p.track(client) {
		client.Close()
		return
	}
	defer p.untrack(client)
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(server) {
		server.Close()
		return
	}
	defer p.untrack(server)
	done := make(chan struct{}, 2)
	go func() { p.copy(server, client); done <- struct{}{} }()
	go func() { p.copy(client, server); done <- struct{}{} }()
	<-done // either side ended: end both
}

// copy passes bytes from src to dst, each chunk held for the delay current
// while it waits.
func (p *tcpProxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			read := time.Now()
			for time.Since(read) < time.Duration(p.delay.Load()) {
				time.Sleep(5 * time.Millisecond)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Bounds of the fail-closed tests.
const (
	// downLatency bounds every answer while a store is unreachable: a
	// refused connection must fail fast, whatever the timeouts.
	downLatency = 3 * time.Second
	// noticeWithin is how soon after its store's connections break a node
	// must stop answering from memory.
	noticeWithin = 500 * time.Millisecond
	// recoverWithin is how soon after the store returns validations must
	// succeed again.
	recoverWithin = 5 * time.Second
	// slack is added to a store's timeout for the answer of a call that
	// waited for it.
	slack = time.Second
)

// TestFailClosedPostgres: PostgreSQL (the database of accounts and
// sessions) goes away, comes back, and turns slow.
func TestFailClosedPostgres(t *testing.T) {
	t.Parallel()
	db := postgresDB(t)
	px := newProxy(t, hostPort(t, db, "5432"))
	// The URL's statement_timeout is also the bound of every store call
	// (instead of postgres.DefaultTimeout, 5s). The node caches validated
	// sessions for --cache-max-age, dropping them all when it loses the
	// database's notifications.
	url := withQuery(t, px.via(t, db), "statement_timeout", "2s")
	testFailClosed(t, px, []string{"--database", url, "--cache-max-age", "2s"}, 2*time.Second, 2*time.Second)
}

// TestFailClosedRedis: Redis (the session store) goes away, comes back,
// and turns slow; PostgreSQL (accounts) stays up.
func TestFailClosedRedis(t *testing.T) {
	t.Parallel()
	db, rs := postgresDB(t), redisStore(t)
	px := newProxy(t, hostPort(t, rs, "6379"))
	// The store bounds every call by redis.DefaultTimeout, 1s; cached
	// lookups may be answered from memory for 1.5 × --cache-max-age (the
	// Manager's cache over the Redis client's, see cmd/sessiond/backend.go).
	testFailClosed(t, px, []string{"--database", db, "--session-store", px.via(t, rs), "--cache-max-age", "2s"}, time.Second, 3*time.Second)
}

// testFailClosed runs one sessiond whose store is behind px. storeTimeout
// bounds each store call; cacheTTL is how long a node may answer a hot
// session from its cache when its connections stay up but the store does
// not answer.
func testFailClosed(t *testing.T, px *tcpProxy, args []string, storeTimeout, cacheTTL time.Duration) {
	s := startServer(t, args)
	u := newUser(t, s)
	tok, _ := login(t, s, u)
	alive(t, s, tok)

	// seen is what each phase's requests got, for the log.
	type answers struct {
		statuses map[int]int
		slowest  time.Duration
	}
	var mu sync.Mutex // check runs concurrently too
	seen := map[string]*answers{}
	var phases []string
	defer func() {
		for _, k := range phases {
			t.Logf("%s: answers %v, slowest %v", k, seen[k].statuses, seen[k].slowest.Round(time.Millisecond))
		}
	}()

	// check makes the request and fails the test unless the answer is one
	// of want within limit.
	check := func(what, method, url, tok string, limit time.Duration, want ...int) int {
		t.Helper()
		st, took := quick(t, method, url, tok)
		u, _ := neturl.Parse(url)
		k := what + ": " + method + " " + u.Path
		mu.Lock()
		defer mu.Unlock()
		if seen[k] == nil {
			seen[k] = &answers{statuses: map[int]int{}}
			phases = append(phases, k)
		}
		seen[k].statuses[st]++
		seen[k].slowest = max(seen[k].slowest, took)
		if !slices.Contains(want, st) {
			t.Errorf("%s: %s %s answered %d, want %v", what, method, url, st, want)
		}
		if took > limit {
			t.Errorf("%s: %s %s took %v, want at most %v", what, method, url, took, limit)
		}
		return st
	}
	// recovered waits until the session validates and /readyz is 200.
	recovered := func(what string) {
		t.Helper()
		start := time.Now()
		for {
			st, _ := quick(t, "GET", s.Pub+"/v1/session", tok)
			rd, _ := quick(t, "GET", s.Admin+"/readyz", "")
			if st == http.StatusOK && rd == http.StatusOK {
				t.Logf("%s: validations succeed again %v after the store returned", what, time.Since(start).Round(time.Millisecond))
				break
			}
			if st != http.StatusServiceUnavailable && st != http.StatusOK {
				t.Fatalf("%s: validation answered %d while recovering, want 503 or 200", what, st)
			}
			if time.Since(start) > recoverWithin {
				t.Fatalf("%s: validation %d, /readyz %d %v after the store returned; want 200 within %v", what, st, rd, time.Since(start), recoverWithin)
			}
			time.Sleep(50 * time.Millisecond)
		}
		alive(t, s, tok)
		t2, _ := login(t, s, u)
		alive(t, s, t2)
	}

	// Down: /readyz is 503, and so is every validation, fast; a login
	// cannot start a session. A node learns that its store is gone when its
	// connections break; one with a cache may answer a hot session from
	// memory in the instant before it notices (never longer than
	// noticeWithin, far below the cache's bound), and from its first 503
	// on, never a 200 again, for longer than the cache's bound.
	for round := range 2 {
		alive(t, s, tok) // cached, where the node caches
		px.Stop()
		down := time.Now()
		for check("store down, noticing", "GET", s.Pub+"/v1/session", tok, downLatency,
			http.StatusOK, http.StatusServiceUnavailable) == http.StatusOK {
			if time.Since(down) > noticeWithin {
				t.Fatalf("store down: validations still succeed %v after the cut, want 503 within %v", time.Since(down), noticeWithin)
			}
		}
		for time.Since(down) < max(cacheTTL, time.Second)+slack {
			check("store down", "GET", s.Pub+"/v1/session", tok, downLatency, http.StatusServiceUnavailable)
			check("store down", "GET", s.Admin+"/readyz", "", downLatency, http.StatusServiceUnavailable)
			time.Sleep(50 * time.Millisecond)
		}
		st, took := quickLogin(t, s, u)
		if st != http.StatusServiceUnavailable || took > downLatency {
			t.Errorf("store down: login answered %d in %v, want 503 within %v", st, took, downLatency)
		}
		if t.Failed() {
			t.FailNow()
		}
		px.Start(t)
		recovered("after outage " + strconv.Itoa(round+1))
	}

	// Slow: nothing waits past the store's timeout. A node with a cache may
	// answer a hot session from memory until the cache's bound, never after.
	alive(t, s, tok)
	px.SetDelay(time.Hour)
	slow := time.Now()
	until := slow.Add(max(cacheTTL, storeTimeout) + 2*slack)
	for time.Now().Before(until) {
		want := []int{http.StatusServiceUnavailable}
		if time.Since(slow) < cacheTTL {
			want = append(want, http.StatusOK)
		}
		check("store slow", "GET", s.Pub+"/v1/session", tok, storeTimeout+slack, want...)
		check("store slow", "GET", s.Admin+"/readyz", "", 2*time.Second+slack, http.StatusServiceUnavailable)
	}
	// More requests at once than the store has connections: waiting for
	// one is within the timeout too. A login cannot start a session.
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			check("store slow, 32 at once", "GET", s.Pub+"/v1/session", tok, storeTimeout+slack, http.StatusServiceUnavailable)
		})
	}
	wg.Wait()
	if st, took := quickLogin(t, s, u); st != http.StatusServiceUnavailable || took > storeTimeout+slack {
		t.Errorf("store slow: login answered %d in %v, want 503 within %v", st, took, storeTimeout+slack)
	}
	if t.Failed() {
		t.FailNow()
	}
	px.SetDelay(0)
	recovered("after slowness")
}

// quickLogin is u's login, outside the invariant checks (for a 503).
func quickLogin(t *testing.T, s *Server, u user) (int, time.Duration) {
	t.Helper()
	body, _ := json.Marshal(J{"email": u.Email, "password": u.Password, "transport": "token"})
	return quickBody(t, "POST", s.Pub+"/v1/login", "", string(body))
}
