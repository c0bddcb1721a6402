package account

import (
	"context"
	"testing"
	"time"
)

// The pad of an unknown-email sign-in draws from the latest lockout-write
// durations, so that its distribution, not only its mean, is that of the
// write a known account's failure causes.
func TestLatencySample(t *testing.T) {
	var l latency
	if d := l.sample(); d != 0 {
		t.Fatalf("sample before any write = %v, want 0", d)
	}
	if err := l.pad(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.observe(3 * time.Millisecond)
	for range 100 {
		if d := l.sample(); d != 3*time.Millisecond {
			t.Fatalf("sample of one write = %v, want 3ms", d)
		}
	}
	// Past the window, only the latest latencyWindow writes are drawn, and
	// every one of them is.
	for i := range 3 * latencyWindow {
		l.observe(time.Duration(i+1) * time.Microsecond)
	}
	seen := map[time.Duration]bool{}
	for range 100 * latencyWindow {
		d := l.sample()
		if d <= 2*latencyWindow*time.Microsecond || d > 3*latencyWindow*time.Microsecond {
			t.Fatalf("sample %v is not one of the latest %d writes", d, latencyWindow)
		}
		seen[d] = true
	}
	if len(seen) != latencyWindow {
		t.Errorf("%d distinct samples, want all %d of the window", len(seen), latencyWindow)
	}
	// A rare slow write does not move the median pad, and no pad exceeds
	// maxPad.
	var m latency
	for i := range latencyWindow {
		d := time.Millisecond
		if i == 0 {
			d = time.Hour
		}
		m.observe(d)
	}
	slow := 0
	for range 1000 {
		switch d := m.sample(); d {
		case time.Millisecond:
		case maxPad:
			slow++
		default:
			t.Fatalf("sample %v, want 1ms or maxPad", d)
		}
	}
	if slow > 100 {
		t.Errorf("%d of 1000 pads were the one slow write of %d", slow, latencyWindow)
	}
	// A pad ends with its context.
	var h latency
	h.observe(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := h.pad(ctx); err == nil {
		t.Error("pad of maxPad returned nil before its context's deadline")
	}
}
