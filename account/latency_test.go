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
	if d := l.writes.sample(); d != 0 {
		t.Fatalf("sample before any write = %v, want 0", d)
	}
	if err := l.pad(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.observe(3 * time.Millisecond)
	for range 100 {
		if d := l.writes.sample(); d != 3*time.Millisecond {
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
		d := l.writes.sample()
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
		switch d := m.writes.sample(); d {
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
}

// A pad takes a recent overshoot of its timer off the duration it drew, and
// records its own.
func TestLatencyOvershoot(t *testing.T) {
	var l latency
	l.observe(time.Millisecond)
	if err := l.pad(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := l.overshoot.n.Load(); n != 1 {
		t.Fatalf("%d overshoots recorded after one pad, want 1", n)
	}
	if o := l.overshoot.sample(); o < 0 || o > maxPad {
		t.Errorf("overshoot %v out of [0, maxPad]", o)
	}
	// A machine so loaded that timers wake 10ms late: a 5ms write is
	// waited out by the wake-up alone.
	var busy latency
	busy.observe(5 * time.Millisecond)
	busy.overshoot.add(10 * time.Millisecond)
	start := time.Now()
	if err := busy.pad(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := busy.overshoot.n.Load(); n != 1 {
		t.Errorf("a pad shorter than the overshoot slept (%d overshoots recorded, want the 1 given)", n)
	}
	if d := time.Since(start); d > 5*time.Millisecond {
		t.Logf("a pad that needed no sleep took %v", d)
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
