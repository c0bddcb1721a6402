package breaker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/breaker"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The wrapper passes every method through: the store contract holds on it.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessiond.Store {
		return breaker.WrapStore(memstore.New(), breaker.New(breaker.Config{Logger: quiet()}))
	})
}

// downStore is a store whose every call fails as a dead server's would,
// while down is set, and otherwise is the memory store.
type downStore struct {
	sessiond.Store
	down  bool
	calls int
}

func (d *downStore) ByTokenHash(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	d.calls++
	if d.down {
		return nil, refused
	}
	return d.Store.ByTokenHash(ctx, h)
}

// Through a Manager: a store that is down makes validations fail with a
// store failure (never a rejection that could be taken for "logged out",
// never a pass), at once once the breaker is open, and they succeed again
// once a probe finds the store back.
func TestStoreThroughManager(t *testing.T) {
	ds := &downStore{Store: memstore.New()}
	c := storetest.NewClock()
	b := breaker.New(breaker.Config{Failures: 2, Cooldown: time.Second, Now: c.Now, Logger: quiet()})
	m, err := sessiond.NewManager(breaker.WrapStore(ds, b), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	ds.down = true
	before := ds.calls
	for range 10 {
		_, err := m.Validate(ctx, tok)
		if err == nil || sessiond.IsRejection(err) {
			t.Fatalf("store down: Validate = %v, want a store failure", err)
		}
	}
	if got := ds.calls - before; got != 2 {
		t.Errorf("store down: %d calls reached the store, want 2 (then the breaker is open)", got)
	}
	_, err = m.Validate(ctx, tok)
	if !errors.Is(err, breaker.ErrOpen) {
		t.Errorf("open: Validate = %v, want ErrOpen", err)
	}
	ds.down = false
	if _, err := m.Validate(ctx, tok); !errors.Is(err, breaker.ErrOpen) {
		t.Errorf("back, but cooling down: Validate = %v, want ErrOpen", err)
	}
	c.Advance(time.Second)
	if _, err := m.Validate(ctx, tok); err != nil {
		t.Fatalf("back, after the cool-down: Validate = %v", err)
	}
	if b.State() != breaker.Closed {
		t.Errorf("state %v after a successful probe", b.State())
	}
}
