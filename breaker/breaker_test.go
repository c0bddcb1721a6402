package breaker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/breaker"
	"github.com/sessiond/sessiond/storetest"
)

// refused is what a client returns for a store that is down.
var refused = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newBreaker(t *testing.T) (*breaker.Breaker, *storetest.Clock, *syncBuffer) {
	t.Helper()
	c := storetest.NewClock()
	logs := &syncBuffer{}
	b := breaker.New(breaker.Config{Name: "redis", Failures: 3, Cooldown: time.Second, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	return b, c, logs
}

// call runs one call through b that returns err, and reports whether the
// store was called.
func call(t *testing.T, b *breaker.Breaker, err error) (called bool, got error) {
	t.Helper()
	got = b.Do(t.Context(), func(context.Context) error { called = true; return err })
	return called, got
}

func wantState(t *testing.T, b *breaker.Breaker, want breaker.State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state %v, want %v", got, want)
	}
}

func TestOpensAfterConsecutiveFailures(t *testing.T) {
	b, _, logs := newBreaker(t)
	for i := range 2 {
		if called, err := call(t, b, refused); !called || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("failure %d: called %v, err %v; want the store's own error", i+1, called, err)
		}
	}
	wantState(t, b, breaker.Closed)
	call(t, b, refused)
	wantState(t, b, breaker.Open)
	for range 100 {
		called, err := call(t, b, nil)
		if called || !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("open: called %v, err %v; want ErrOpen without calling the store", called, err)
		}
	}
	if got := b.Rejected(); got != 100 {
		t.Errorf("Rejected() = %d, want 100", got)
	}
	if !strings.Contains(logs.String(), "circuit open") || !strings.Contains(logs.String(), "store=redis") {
		t.Errorf("no log line for the opening:\n%s", logs)
	}
}

// Answers of a store that is reachable never open the breaker, and reset
// the count of failures in a row.
func TestAnswersDoNotOpen(t *testing.T) {
	b, _, _ := newBreaker(t)
	answers := []error{nil, sessiond.ErrNotFound, sessiond.ErrDataTooLarge, sessiond.ErrCredentialsChanged,
		fmt.Errorf("redis: rotate: %w", sessiond.ErrNotFound), errors.New("ERR unknown command")}
	for _, a := range answers {
		for range 10 {
			call(t, b, a)
		}
		wantState(t, b, breaker.Closed)
	}
	for _, a := range answers {
		call(t, b, refused)
		call(t, b, refused)
		call(t, b, a) // resets the count
		call(t, b, refused)
		call(t, b, refused)
		wantState(t, b, breaker.Closed)
		call(t, b, nil)
	}
}

// A call whose caller gave up says nothing about the store.
func TestCallerCancellationNotCounted(t *testing.T) {
	b, _, _ := newBreaker(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 10 {
		_ = b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
		_ = b.Do(ctx, func(context.Context) error { return refused })
	}
	wantState(t, b, breaker.Closed)
}

func TestHalfOpenProbe(t *testing.T) {
	b, c, logs := newBreaker(t)
	for range 3 {
		call(t, b, refused)
	}
	wantState(t, b, breaker.Open)
	c.Advance(999 * time.Millisecond)
	if called, _ := call(t, b, nil); called {
		t.Fatal("a call went through before the cool-down ended")
	}

	// The cool-down is over: one probe at a time goes through; the others
	// are refused while it is in flight.
	c.Advance(time.Millisecond)
	inProbe, release := make(chan struct{}), make(chan struct{})
	probeErr := make(chan error)
	go func() {
		probeErr <- b.Do(context.Background(), func(context.Context) error {
			close(inProbe)
			<-release
			return refused
		})
	}()
	<-inProbe
	wantState(t, b, breaker.HalfOpen)
	for range 10 {
		if called, err := call(t, b, nil); called || !errors.Is(err, breaker.ErrOpen) {
			t.Fatalf("half-open, probe in flight: called %v, err %v; want ErrOpen", called, err)
		}
	}
	close(release)
	if err := <-probeErr; !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("probe: %v", err)
	}
	// The probe failed: open for another cool-down.
	wantState(t, b, breaker.Open)
	if called, _ := call(t, b, nil); called {
		t.Fatal("a call went through right after a failed probe")
	}
	c.Advance(time.Second)
	if called, err := call(t, b, sessiond.ErrNotFound); !called || !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("second probe: called %v, err %v", called, err)
	}
	// An answer closes it.
	wantState(t, b, breaker.Closed)
	for range 10 {
		if called, err := call(t, b, nil); !called || err != nil {
			t.Fatalf("closed again: called %v, err %v", called, err)
		}
	}
	for _, want := range []string{"to=half-open", "to=closed", "reachable again"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// A probe whose caller gave up frees the slot for the next call.
func TestAbandonedProbe(t *testing.T) {
	b, c, _ := newBreaker(t)
	for range 3 {
		call(t, b, refused)
	}
	c.Advance(time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_ = b.Do(ctx, func(ctx context.Context) error { return ctx.Err() })
	wantState(t, b, breaker.HalfOpen)
	if called, _ := call(t, b, nil); !called {
		t.Fatal("the next call after an abandoned probe was refused")
	}
	wantState(t, b, breaker.Closed)
}

// Calls admitted before the breaker opened cannot decide its state when
// they end late.
func TestLateOutcomesIgnored(t *testing.T) {
	b, c, _ := newBreaker(t)
	var late []chan error
	results := make(chan error, 10)
	for range 2 {
		ch := make(chan error)
		late = append(late, ch)
		started := make(chan struct{})
		go func() {
			results <- b.Do(context.Background(), func(context.Context) error { close(started); return <-ch })
		}()
		<-started
	}
	for range 3 {
		call(t, b, refused)
	}
	wantState(t, b, breaker.Open)
	late[0] <- nil // a success from before the outage does not close it
	<-results
	wantState(t, b, breaker.Open)
	c.Advance(time.Second)
	call(t, b, nil) // the probe closes it
	wantState(t, b, breaker.Closed)
	late[1] <- refused // nor does a late failure count in the new era
	<-results
	call(t, b, refused)
	call(t, b, refused)
	wantState(t, b, breaker.Closed)
}

func TestUnreachable(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{refused, true},
		{fmt.Errorf("redis: by token: %w", refused), true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("postgres: %w", context.DeadlineExceeded), true},
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{syscall.ECONNRESET, true},
		{net.ErrClosed, true},
		{&net.DNSError{Err: "no such host", Name: "redis"}, true},
		{sessiond.ErrNotFound, false},
		{sessiond.ErrDataTooLarge, false},
		{sessiond.ErrCredentialsChanged, false},
		{context.Canceled, false},
		{errors.New("ERR wrong number of arguments"), false},
	} {
		if got := breaker.Unreachable(c.err); got != c.want {
			t.Errorf("Unreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	b := breaker.New(breaker.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if b.Name() != "store" {
		t.Errorf("Name() = %q", b.Name())
	}
	for range breaker.DefaultFailures - 1 {
		call(t, b, refused)
	}
	wantState(t, b, breaker.Closed)
	call(t, b, refused)
	wantState(t, b, breaker.Open)
}
