package redis_test

import (
	"errors"
	"io"
	"net"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/redis"
)

// A dead server makes calls fail within the timeout; nothing hangs.

const testTimeout = 300 * time.Millisecond

// within fails the test unless f returns an error within the timeout (with
// some slack for a loaded machine).
func within(t *testing.T, what string, f func() error) {
	t.Helper()
	start := time.Now()
	err := f()
	took := time.Since(start)
	if err == nil {
		t.Errorf("%s: succeeded against a dead server", what)
	}
	if took > testTimeout+500*time.Millisecond {
		t.Errorf("%s: took %v, timeout %v", what, took, testTimeout)
	}
	t.Logf("%s: %v after %v", what, err, took)
}

func TestOpenClosedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	within(t, "Open(closed port)", func() error {
		_, err := redis.Open(t.Context(), "redis://"+addr, redis.WithTimeout(testTimeout))
		return err
	})
	within(t, "Open(closed ports of a cluster)", func() error {
		_, err := redis.Open(t.Context(), "redis://"+addr+"?addr="+addr, redis.WithTimeout(testTimeout))
		return err
	})
}

// TestOpenSilentServer: a server that accepts connections and never
// answers.
func TestOpenSilentServer(t *testing.T) {
	p := newProxy(t, "")
	within(t, "Open(silent server)", func() error {
		_, err := redis.Open(t.Context(), "redis://"+p.addr(), redis.WithTimeout(testTimeout))
		return err
	})
}

// TestServerGoesSilent: the server stops answering after Open; every call
// that needs it fails within the timeout, then fails fast once connections
// are refused.
func TestServerGoesSilent(t *testing.T) {
	url := serverURL(t)
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.addr()
	st := openStore(t, u.String(), newPrefix(t, url), redis.WithTimeout(testTimeout))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := newSession(t, "s1", "u1", now)
	if err := st.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	calls := []struct {
		name string
		f    func() error
	}{
		{"Create", func() error { return st.Create(ctx, newSession(t, "s2", "u1", now), sessiond.CreateOptions{}) }},
		{"ByID(unknown)", func() error { _, err := st.ByID(ctx, "nope"); return err }},
		{"ByTokenHash(unknown)", func() error { _, err := st.ByTokenHash(ctx, newHash(t)); return err }},
		{"Revoke", func() error { return st.Revoke(ctx, s.ID, now, sessiond.ReasonLogout) }},
		{"RevokeByUser", func() error { _, err := st.RevokeByUser(ctx, "u1", "", now, sessiond.ReasonLogout); return err }},
		{"Rotate", func() error { return st.Rotate(ctx, s.ID, s.TokenHash, newHash(t), now) }},
		{"ListByUser", func() error { _, err := st.ListByUser(ctx, "u1", now); return err }},
		{"SetData", func() error { return st.SetData(ctx, s.ID, "k", nil, 100, now) }},
		{"DeleteExpired", func() error { _, err := st.DeleteExpired(ctx, now, 10); return err }},
		{"Ping", func() error { return st.Ping(ctx) }},
	}
	p.silence()
	for _, c := range calls {
		within(t, "silent: "+c.name, c.f)
	}
	p.close()
	for _, c := range calls {
		within(t, "refused: "+c.name, c.f)
	}
	if err := st.Revoke(ctx, s.ID, now, sessiond.ReasonLogout); errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Revoke against a dead server = %v; a failure must not look like a missing session", err)
	}
}

// proxy forwards TCP connections to target until silenced, then keeps
// every connection open and answers nothing. With no target it is silent
// from the start.
type proxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	silent   bool
	upstream []net.Conn
	clients  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, silent: target == ""}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.clients = append(p.clients, c)
		silent := p.silent
		p.mu.Unlock()
		if silent {
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.upstream = append(p.upstream, u)
		p.mu.Unlock()
		go io.Copy(u, c)
		go io.Copy(c, u)
	}
}

// silence cuts every connection from the server, leaving the clients'
// connections open and unanswered.
func (p *proxy) silence() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.silent = true
	for _, u := range p.upstream {
		u.Close()
	}
}

// close stops listening and closes every connection: connections are
// refused from now on.
func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range append(p.upstream, p.clients...) {
		c.Close()
	}
}
