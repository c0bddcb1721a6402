package audit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/memstore"
)

func TestFilter(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := &audit.Event{Type: audit.SignedIn, Time: at}
	for _, tc := range []struct {
		f    audit.Filter
		want bool
	}{
		{audit.Filter{}, true},
		{audit.Filter{Since: at}, true},
		{audit.Filter{Since: at.Add(time.Microsecond)}, false},
		{audit.Filter{Until: at}, false},
		{audit.Filter{Until: at.Add(time.Microsecond)}, true},
		{audit.Filter{Types: []string{audit.SignedOut, audit.SignedIn}}, true},
		{audit.Filter{Types: []string{audit.SignedOut}}, false},
	} {
		if got := tc.f.Match(e); got != tc.want {
			t.Errorf("%+v.Match = %v, want %v", tc.f, got, tc.want)
		}
	}
	for limit, want := range map[int]int{0: audit.DefaultLimit, -1: audit.DefaultLimit, 5: 5, audit.MaxLimit + 1: audit.MaxLimit} {
		if got := (audit.Filter{Limit: limit}).EffectiveLimit(); got != want {
			t.Errorf("EffectiveLimit(%d) = %d, want %d", limit, got, want)
		}
	}
}

func TestRecorder(t *testing.T) {
	ctx := audit.WithClient(t.Context(), audit.NewClient("192.0.2.9",
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"))
	var nilRec *audit.Recorder
	nilRec.Record(ctx, "u", audit.SignedIn, "", nil) // records nothing, does not panic
	(&audit.Recorder{}).SignedIn(ctx, "u", "s")

	st := memstore.NewAudit()
	rec := &audit.Recorder{Store: st}
	rec.SignedIn(ctx, "u", "s1") // the first sign-in: no new-device event
	rec.SignedIn(ctx, "u", "s2") // the same device
	other := audit.WithClient(t.Context(), audit.NewClient("192.0.2.10",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"))
	rec.SignedIn(other, "u", "s3")
	evs, err := st.List(t.Context(), "u", audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := []string{audit.NewDevice, audit.SignedIn, audit.SignedIn, audit.SignedIn}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
	if e := evs[0]; e.Browser != "Chrome" || e.OS != "Windows" || e.IP != "192.0.2.10" || e.SessionID != "s3" {
		t.Errorf("new_device event %+v", e)
	}
	if e := evs[3]; e.Browser != "Firefox" || e.OS != "Linux" || e.IP != "192.0.2.9" || len(e.ID) != 32 {
		t.Errorf("first sign-in %+v", e)
	}
	until := time.Now().Add(time.Minute)
	rec.LockObserver()(ctx, "u", until)
	evs, _ = st.List(t.Context(), "u", audit.Filter{Types: []string{audit.LockedOut}})
	if len(evs) != 1 || evs[0].Data["locked_until"] != until.UTC().Format(time.RFC3339) {
		t.Errorf("locked_out events %+v", evs)
	}
}

// countingStore counts DeleteBefore calls.
type countingStore struct {
	audit.Store
	calls atomic.Int32
	cut   atomic.Int64
}

func (c *countingStore) DeleteBefore(_ context.Context, t time.Time) (int, error) {
	c.calls.Add(1)
	c.cut.Store(t.UnixMicro())
	return 0, nil
}

func TestRunRetention(t *testing.T) {
	st := &countingStore{Store: memstore.NewAudit()}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		done <- audit.RunRetention(ctx, st, 90*24*time.Hour, time.Millisecond, func() time.Time { return now }, nil)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for st.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("RunRetention returned %v, want context.Canceled", err)
	}
	if st.calls.Load() < 3 {
		t.Fatalf("%d sweeps, want several", st.calls.Load())
	}
	if got := time.UnixMicro(st.cut.Load()).UTC(); !got.Equal(now.Add(-90 * 24 * time.Hour)) {
		t.Errorf("cut at %v, want 90 days before now", got)
	}
}
