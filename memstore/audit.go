package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sessiond/sessiond/audit"
)

// Audit is an in-memory audit.Store, behind one lock. The zero value is
// ready to use.
type Audit struct {
	mu      sync.Mutex
	events  []audit.Event        // in the order recorded
	devices map[device]time.Time // last recorded; nil until the first
}

// device is a user's browser and OS, a key of Audit.devices.
type device struct{ userID, browser, os string }

var _ audit.Store = (*Audit)(nil)

// NewAudit returns an empty audit store.
func NewAudit() *Audit { return &Audit{} }

// Record implements audit.Store. Data goes through JSON, so it reads back
// as from a database: numbers as float64.
func (a *Audit) Record(ctx context.Context, e *audit.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.Check(); err != nil {
		return err
	}
	c := e.Clone()
	if len(e.Data) > 0 {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("memstore: audit data: %w", err)
		}
		c.Data = nil
		if err := json.Unmarshal(b, &c.Data); err != nil {
			return fmt.Errorf("memstore: audit data: %w", err)
		}
	} else {
		c.Data = nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, c)
	return nil
}

// List implements audit.Store.
func (a *Audit) List(ctx context.Context, userID string, f audit.Filter) ([]audit.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []audit.Event
	for i := len(a.events) - 1; i >= 0; i-- {
		e := &a.events[i]
		if e.UserID == userID && f.Match(e) {
			out = append(out, e.Clone())
		}
	}
	// Newest first; the backwards walk put equal times in reverse order
	// of recording, and a stable sort keeps it.
	slices.SortStableFunc(out, func(x, y audit.Event) int { return y.Time.Compare(x.Time) })
	if n := f.EffectiveLimit(); len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// AddDevice implements audit.Store.
func (a *Audit) AddDevice(ctx context.Context, userID, browser, os string, at time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.devices == nil {
		a.devices = make(map[device]time.Time)
	}
	k := device{userID, browser, os}
	last, known := a.devices[k]
	if !known || at.After(last) {
		a.devices[k] = at
	}
	return !known, nil
}

// DeleteBefore implements audit.Store.
func (a *Audit) DeleteBefore(ctx context.Context, t time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := len(a.events)
	a.events = slices.DeleteFunc(a.events, func(e audit.Event) bool { return e.Time.Before(t) })
	for k, last := range a.devices {
		if last.Before(t) {
			delete(a.devices, k)
		}
	}
	return n - len(a.events), nil
}
