package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/postgres"
)

// within fails t unless fn returns an error within limit.
func within(t *testing.T, what string, limit time.Duration, fn func() error) {
	t.Helper()
	start := time.Now()
	err := fn()
	took := time.Since(start)
	t.Logf("%s: %v after %v", what, err, took)
	if err == nil {
		t.Errorf("%s succeeded, want an error", what)
	}
	if took > limit {
		t.Errorf("%s took %v, want an error within %v", what, took, limit)
	}
}

// TestUnreachable: with nothing listening on the port, Open fails at once.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now closed: connections are refused
	within(t, "Open on a closed port", 2*time.Second, func() error {
		_, err := postgres.Open(context.Background(), "postgres://root@"+addr+"/test?sslmode=disable",
			postgres.WithTimeout(time.Second))
		return err
	})
}

// TestBlackhole: a server that accepts connections and never answers
// makes Open fail within the timeout (the connect timeout), even with a
// context that never ends.
func TestBlackhole(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { io.Copy(io.Discard, c) }) // read, never answer
		}
	})
	within(t, "Open on a silent server", 2*time.Second, func() error {
		_, err := postgres.Open(context.Background(), "postgres://root@"+ln.Addr().String()+"/test?sslmode=disable",
			postgres.WithTimeout(500*time.Millisecond))
		return err
	})
	ln.Close()
}

// proxy forwards TCP connections to a PostgreSQL server until frozen: then
// it forwards nothing in either direction and keeps every connection open,
// like a network partition that no one reports.
type proxy struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.frozen.Store(false)
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Go(func() {
			p.waitThaw()
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.track(up)
			p.wg.Go(func() { p.pipe(up, c) })
			p.pipe(c, up)
		})
	}
}

// pipe copies src to dst, holding back what it read while frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.waitThaw()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) waitThaw() {
	for p.frozen.Load() {
		time.Sleep(5 * time.Millisecond)
	}
}

// url returns the test URL with its host and port replaced by the proxy's.
func (p *proxy) url(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	pu.Host = p.ln.Addr().String()
	return pu.String()
}

// TestStalledServer: when the server stops answering in the middle of the
// store's life (here a proxy that forwards nothing more, keeping the
// connections open), every call fails within the store's timeout, with a
// context that never ends; once the server answers again, the store
// recovers.
func TestStalledServer(t *testing.T) {
	u := postgres.TestURL(t)
	cfg, err := pgx.ParseConfig(u)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
	schema := postgres.TestSchema(t)
	const timeout = 500 * time.Millisecond
	st, err := postgres.Open(t.Context(), p.url(t, u), postgres.WithSchema(schema), postgres.WithTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background() // no deadline: the store's timeout must apply
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	s := newSession(t, "s1", "u1", t0)
	if err := st.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	p.frozen.Store(true)
	limit := timeout + time.Second
	within(t, "ByTokenHash", limit, func() error { _, err := st.ByTokenHash(ctx, s.TokenHash); return err })
	within(t, "Revoke", limit, func() error { return st.Revoke(ctx, s.ID, t0, sessiond.ReasonLogout) })
	within(t, "Create", limit, func() error {
		return st.Create(ctx, newSession(t, "s2", "u1", t0), sessiond.CreateOptions{MaxPerUser: 3})
	})
	within(t, "SetData", limit, func() error { return st.SetData(ctx, s.ID, "k", []byte("v"), 100, t0) })
	within(t, "Ping", limit, func() error { return st.Ping(ctx) })
	// A context with a shorter deadline wins over the store's timeout.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	within(t, "ByID with a 50ms context", 400*time.Millisecond, func() error { _, err := st.ByID(short, s.ID); return err })

	p.frozen.Store(false)
	var got *sessiond.Session
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err = st.ByID(ctx, s.ID)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || got.ID != s.ID {
		t.Fatalf("ByID after the server came back: %v", err)
	}
	// A call that timed out has an unknown outcome (its bytes may have
	// reached the server after all); a new one works.
	if err := st.Revoke(ctx, s.ID, t0, sessiond.ReasonLogout); err != nil && !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Revoke after the server came back: %v", err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("Ping after the server came back: %v", err)
	}
}

// TestCanceledContext: a call with an ended context fails with its error.
func TestCanceledContext(t *testing.T) {
	st := postgres.OpenTest(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.ByID(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("ByID(canceled) = %v, want context.Canceled", err)
	}
	if err := st.Revoke(ctx, "x", time.Now(), sessiond.ReasonLogout); !errors.Is(err, context.Canceled) {
		t.Fatalf("Revoke(canceled) = %v, want context.Canceled", err)
	}
}
