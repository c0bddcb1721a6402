package sessiond

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// pendingTouches are sliding-expiry writes waiting for RunTouches: at most
// one per session (the latest), so a session used a thousand times between
// two flushes costs one write.
type pendingTouches struct {
	mu      sync.Mutex
	running bool
	m       map[string]pendingTouch
}

type pendingTouch struct {
	Touch
	userID string
}

// maxPending bounds the waiting touches; beyond it Validate writes its own.
const maxPending = 65536

// add queues t; false when RunTouches is not running or the queue is full,
// and the caller must write t itself.
func (p *pendingTouches) add(t Touch, userID string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running || (len(p.m) >= maxPending && p.m[t.ID].ID == "") {
		return false
	}
	if old, ok := p.m[t.ID]; !ok || t.LastSeenAt.After(old.LastSeenAt) {
		p.m[t.ID] = pendingTouch{Touch: t, userID: userID}
	}
	return true
}

// take removes and returns every waiting touch.
func (p *pendingTouches) take() []Touch {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.m) == 0 {
		return nil
	}
	out := make([]Touch, 0, len(p.m))
	for _, t := range p.m {
		out = append(out, t.Touch)
	}
	clear(p.m)
	return out
}

// flushUser writes the waiting touches of one user's sessions now.
func (p *pendingTouches) flushUser(ctx context.Context, st Store, userID string) error {
	p.mu.Lock()
	var mine []Touch
	for id, t := range p.m {
		if t.userID == userID {
			mine = append(mine, t.Touch)
			delete(p.m, id)
		}
	}
	p.mu.Unlock()
	if len(mine) == 0 {
		return nil
	}
	return st.Touch(ctx, mine)
}

// overlay applies waiting touches to sessions read from the store and
// reports whether any applied.
func (p *pendingTouches) overlay(list []*Session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed := false
	for _, s := range list {
		if t, ok := p.m[s.ID]; ok && t.LastSeenAt.After(s.LastSeenAt) {
			s.LastSeenAt = t.LastSeenAt
			if t.IdleExpiresAt.After(s.IdleExpiresAt) {
				s.IdleExpiresAt = t.IdleExpiresAt
			}
			changed = true
		}
	}
	return changed
}

// sortByUse orders sessions the way stores list them: most recently used
// first, then by id.
func sortByUse(list []*Session) {
	slices.SortFunc(list, func(a, b *Session) int {
		if c := b.LastSeenAt.Compare(a.LastSeenAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
}

// RunTouches writes sliding-expiry touches in batches, off the request
// path, every interval until ctx ends; then it writes what is still
// waiting. While it runs, Validate leaves its touches here instead of
// writing them: a busy node makes one store write per interval for all its
// sessions, not one per session. Without it Validate writes touches itself.
// Errors go to onError (may be nil): a lost touch only lets a session's idle
// deadline in the store lag, which can end the session early, never late.
func (m *Manager) RunTouches(ctx context.Context, every time.Duration, onError func(error)) error {
	p := &m.pending
	p.mu.Lock()
	if p.running {
		p.mu.Unlock()
		return errors.New("sessiond: RunTouches is already running")
	}
	p.running = true
	if p.m == nil {
		p.m = make(map[string]pendingTouch)
	}
	p.mu.Unlock()

	const batchMax = 1000
	flush := func(ctx context.Context) {
		all := p.take()
		for len(all) > 0 {
			n := min(len(all), batchMax)
			if err := m.store.Touch(ctx, all[:n]); err != nil && onError != nil {
				onError(fmt.Errorf("writing %d touches: %w", n, err))
			}
			all = all[n:]
		}
	}
	// Writes run on a context of their own: ctx only says when to stop, and
	// a touch taken from the queue is written, not lost to a cancellation.
	write := context.WithoutCancel(ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			wctx, cancel := context.WithTimeout(write, 10*time.Second)
			flush(wctx)
			cancel()
		case <-ctx.Done():
			p.mu.Lock()
			p.running = false
			p.mu.Unlock()
			final, cancel := context.WithTimeout(write, 10*time.Second)
			defer cancel()
			flush(final)
			return ctx.Err()
		}
	}
}
