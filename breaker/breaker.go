// Package breaker is a circuit breaker for the stores sessiond depends on:
// once a store is known to be unreachable, calls to it fail at once
// instead of each waiting for its own timeout, and a single probe now and
// then finds out when it is back.
//
// A store that is down already fails closed (every validation answers
// 503), but a client library that retries until its deadline (rueidis
// retries reads for up to the Redis store's timeout, 1s) makes each refusal
// take that long, and a flood of clients during an outage then holds a
// goroutine and a connection each for the whole wait. The breaker turns
// those refusals into an error returned in microseconds.
//
// It is a wrapper (Store) rather than a part of one backend because the
// rule is the same for every store, and the Store contract already says
// which errors are answers (ErrNotFound and the other sentinels) and which
// are failures of the store itself: the backends stay dumb, and a library
// user's own store gets the same protection.
//
// # States
//
//   - Closed: every call goes through. Config.Failures consecutive calls
//     that failed as unreachable (Config.Unreachable: network errors,
//     refused or reset connections, the store's own timeouts) open it; any
//     other outcome, an answer or an error from a store that answered,
//     resets the count.
//   - Open: every call fails at once with ErrOpen, a store failure
//     (sessiond fails closed: 503), for Config.Cooldown.
//   - HalfOpen: after the cool-down, one call at a time goes through as a
//     probe while the others still get ErrOpen. A probe that the store
//     answers closes the breaker; one that fails as unreachable opens it
//     for another cool-down.
//
// A call whose own context ended (the client went away, or its deadline
// was shorter than the store's) says nothing about the store and is not
// counted either way.
package breaker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// ErrOpen is returned, without calling the store, while the breaker is
// open (and to every call but the probe while it is half-open). It is a
// failure of the store, not an answer: callers fail closed.
var ErrOpen = errors.New("breaker: store unavailable (circuit open)")

// State is a breaker's state. Its numeric value is what the metric
// sessiond_store_circuit_state shows: 0 closed, 1 open, 2 half-open.
type State int

// The states (see the package documentation).
const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "unknown"
}

// Defaults of Config.
const (
	DefaultFailures = 5
	DefaultCooldown = time.Second
)

// Config configures a Breaker. The zero value is usable.
type Config struct {
	// Name names the store in logs (and, in sessiond, the metric's store
	// label). Default "store".
	Name string
	// Failures is how many consecutive unreachable failures open the
	// breaker. Default 5: a single slow call does not open it, and an
	// outage costs at most that many full timeouts before refusals are
	// fast (plus the calls already waiting when it opens).
	Failures int
	// Cooldown is how long the breaker stays open before it lets a probe
	// through. It bounds how long after the store's return calls still
	// fail. Default 1s.
	Cooldown time.Duration
	// Unreachable reports whether err means the store could not be
	// reached. Default Unreachable.
	Unreachable func(err error) bool
	// Logger receives a line at each change of state. Default
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Breaker is a circuit breaker. It is safe for concurrent use and starts no
// goroutines: the cool-down is checked when a call arrives.
type Breaker struct {
	cfg Config

	mu       sync.Mutex
	state    State
	epoch    uint64    // advances at every change of state
	failures int       // consecutive unreachable failures while closed
	until    time.Time // end of the cool-down while open
	probing  bool      // a probe is in flight while half-open
	rejected uint64    // calls refused with ErrOpen, ever
}

// New returns a closed Breaker.
func New(cfg Config) *Breaker {
	if cfg.Name == "" {
		cfg.Name = "store"
	}
	if cfg.Failures <= 0 {
		cfg.Failures = DefaultFailures
	}
	if cfg.Cooldown <= 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.Unreachable == nil {
		cfg.Unreachable = Unreachable
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Breaker{cfg: cfg}
}

// Name is Config.Name.
func (b *Breaker) Name() string { return b.cfg.Name }

// State returns the current state. An open breaker whose cool-down has
// passed still reports Open until a call arrives to probe.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Rejected returns how many calls were refused with ErrOpen so far.
func (b *Breaker) Rejected() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rejected
}

// Do calls f with ctx unless the breaker refuses the call (ErrOpen), and
// counts f's outcome.
func (b *Breaker) Do(ctx context.Context, f func(context.Context) error) error {
	epoch, err := b.allow()
	if err != nil {
		return err
	}
	err = f(ctx)
	b.done(ctx, epoch, err)
	return err
}

// change is a change of state, logged once the lock is released.
type change struct {
	from, to State
	err      error
}

// allow admits a call, or refuses it with ErrOpen. It returns the epoch
// the call belongs to: only outcomes of the current epoch count, so a call
// that was admitted before the breaker opened cannot close or reopen it
// later.
func (b *Breaker) allow() (uint64, error) {
	b.mu.Lock()
	var c *change
	switch b.state {
	case Open:
		if b.cfg.Now().Before(b.until) {
			break
		}
		c = b.set(HalfOpen, nil)
		fallthrough
	case HalfOpen:
		if b.probing {
			break
		}
		b.probing = true
		fallthrough
	case Closed:
		epoch := b.epoch
		b.mu.Unlock()
		b.log(c)
		return epoch, nil
	}
	b.rejected++
	b.mu.Unlock()
	return 0, ErrOpen
}

// done counts the outcome err of a call admitted in epoch.
func (b *Breaker) done(ctx context.Context, epoch uint64, err error) {
	b.mu.Lock()
	if epoch != b.epoch {
		b.mu.Unlock()
		return
	}
	uncounted := err != nil && ctx.Err() != nil
	down := err != nil && !uncounted && b.cfg.Unreachable(err)
	var c *change
	switch b.state {
	case Closed:
		switch {
		case uncounted:
		case down:
			b.failures++
			if b.failures >= b.cfg.Failures {
				c = b.set(Open, err)
			}
		default:
			b.failures = 0
		}
	case HalfOpen:
		b.probing = false
		switch {
		case uncounted: // the next call probes
		case down:
			c = b.set(Open, err)
		default:
			c = b.set(Closed, nil)
		}
	}
	b.mu.Unlock()
	b.log(c)
}

// set moves to state to; b.mu is held.
func (b *Breaker) set(to State, err error) *change {
	c := &change{from: b.state, to: to, err: err}
	b.state = to
	b.epoch++
	b.failures = 0
	b.probing = false
	if to == Open {
		b.until = b.cfg.Now().Add(b.cfg.Cooldown)
	}
	return c
}

func (b *Breaker) log(c *change) {
	if c == nil {
		return
	}
	l := b.cfg.Logger.With("store", b.cfg.Name, "from", c.from.String(), "to", c.to.String())
	switch c.to {
	case Open:
		l.Warn("store unreachable: circuit open, calls fail at once until a probe succeeds",
			"cooldown", b.cfg.Cooldown, "err", c.err)
	case HalfOpen:
		l.Info("store circuit half-open: probing")
	case Closed:
		l.Info("store reachable again: circuit closed")
	}
}

// Unreachable is the default Config.Unreachable: network errors (a
// refused, reset or timed-out connection, a failed name lookup), a
// connection that ended mid-answer (EOF), and a deadline that passed
// (the store's own timeout; an ended caller's context is never counted).
// Errors a store answered with, and the Store contract's sentinels, are
// not.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne != nil {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}
