package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/audit"
)

// RunAudit runs the conformance suite of audit.Store against stores made
// by newStore, which returns a fresh, empty store and arranges its cleanup.
// Subtests run in parallel, each with a store of its own.
//
//	func TestAudit(t *testing.T) {
//		storetest.RunAudit(t, func(t *testing.T) audit.Store { return newAuditStoreForTest(t) })
//	}
func RunAudit(t *testing.T, newStore func(t *testing.T) audit.Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, audit.Store)
	}{
		{"RecordAndList", testAuditRecordAndList},
		{"Invalid", testAuditInvalid},
		{"Copies", testAuditCopies},
		{"Filter", testAuditFilter},
		{"Limit", testAuditLimit},
		{"EqualTimes", testAuditEqualTimes},
		{"AddDevice", testAuditAddDevice},
		{"AddDeviceConcurrent", testAuditAddDeviceConcurrent},
		{"DeleteBefore", testAuditDeleteBefore},
		{"Concurrent", testAuditConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newStore(t))
		})
	}
}

var auditSeq struct {
	sync.Mutex
	n int
}

// auditEvent returns a valid event of user with type typ at time at.
func auditEvent(user, typ string, at time.Time) *audit.Event {
	auditSeq.Lock()
	auditSeq.n++
	n := auditSeq.n
	auditSeq.Unlock()
	return &audit.Event{ID: fmt.Sprintf("%032x", n), UserID: user, Type: typ, Time: at}
}

func mustRecord(t *testing.T, s audit.Store, e *audit.Event) {
	t.Helper()
	if err := s.Record(t.Context(), e); err != nil {
		t.Fatalf("Record(%s): %v", e.Type, err)
	}
}

func mustList(t *testing.T, s audit.Store, user string, f audit.Filter) []audit.Event {
	t.Helper()
	got, err := s.List(t.Context(), user, f)
	if err != nil {
		t.Fatalf("List(%s, %+v): %v", user, f, err)
	}
	return got
}

func types(evs []audit.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

func testAuditRecordAndList(t *testing.T, s audit.Store) {
	base := time.Now().UTC().Truncate(time.Microsecond)
	full := auditEvent("ada", audit.PasswordChanged, base.Add(time.Second).In(time.FixedZone("X", 3600)))
	full.SessionID, full.IP, full.Browser, full.OS = "s1", "192.0.2.1", "Firefox", "Linux"
	full.Data = map[string]any{"sessions_ended": 3, "note": "x", "flag": true}
	mustRecord(t, s, auditEvent("ada", audit.SignedIn, base))
	mustRecord(t, s, full)
	mustRecord(t, s, auditEvent("bob", audit.SignedIn, base.Add(2*time.Second)))
	mustRecord(t, s, auditEvent("ada", audit.SignedOut, base.Add(3*time.Second)))

	got := mustList(t, s, "ada", audit.Filter{})
	if want := []string{audit.SignedOut, audit.PasswordChanged, audit.SignedIn}; !reflect.DeepEqual(types(got), want) {
		t.Fatalf("List(ada) types = %v, want %v (newest first, only ada's)", types(got), want)
	}
	e := got[1]
	if e.ID != full.ID || e.UserID != "ada" || e.SessionID != "s1" || e.IP != "192.0.2.1" ||
		e.Browser != "Firefox" || e.OS != "Linux" {
		t.Errorf("event = %+v, want the fields of %+v", e, full)
	}
	if !e.Time.Equal(base.Add(time.Second)) || e.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v in UTC", e.Time, base.Add(time.Second))
	}
	wantData := map[string]any{"sessions_ended": float64(3), "note": "x", "flag": true}
	if !reflect.DeepEqual(e.Data, wantData) {
		t.Errorf("Data = %#v, want %#v (numbers read back as float64)", e.Data, wantData)
	}
	if got[0].Data != nil && len(got[0].Data) != 0 {
		t.Errorf("an event without data read back with %v", got[0].Data)
	}
	if got := mustList(t, s, "nobody", audit.Filter{}); len(got) != 0 {
		t.Errorf("List(unknown user) = %v, want none", got)
	}
}

func testAuditInvalid(t *testing.T, s audit.Store) {
	now := time.Now()
	for name, e := range map[string]*audit.Event{
		"no id":   {UserID: "u", Type: audit.SignedIn, Time: now},
		"no user": {ID: "1", Type: audit.SignedIn, Time: now},
		"no type": {ID: "1", UserID: "u", Time: now},
		"no time": {ID: "1", UserID: "u", Type: audit.SignedIn},
	} {
		if err := s.Record(t.Context(), e); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Errorf("Record(%s) = %v, want ErrInvalidEvent", name, err)
		}
	}
}

func testAuditCopies(t *testing.T, s audit.Store) {
	e := auditEvent("ada", audit.PasswordChanged, time.Now())
	e.Data = map[string]any{"sessions_ended": 1}
	mustRecord(t, s, e)
	e.Data["sessions_ended"] = 99
	e.IP = "changed"
	got := mustList(t, s, "ada", audit.Filter{})
	if len(got) != 1 || got[0].Data["sessions_ended"] != float64(1) || got[0].IP != "" {
		t.Fatalf("stored event changed with the caller's copy: %+v", got)
	}
	got[0].Data["sessions_ended"] = 42
	again := mustList(t, s, "ada", audit.Filter{})
	if again[0].Data["sessions_ended"] != float64(1) {
		t.Fatal("stored event changed through a listed copy")
	}
}

func testAuditFilter(t *testing.T, s audit.Store) {
	base := time.Now().UTC().Truncate(time.Microsecond)
	for i, typ := range []string{audit.SignedIn, audit.NewDevice, audit.SignedOut, audit.SignedIn, audit.LockedOut} {
		mustRecord(t, s, auditEvent("ada", typ, base.Add(time.Duration(i)*time.Minute)))
	}
	for _, tc := range []struct {
		f    audit.Filter
		want []string
	}{
		{audit.Filter{Types: []string{audit.SignedIn}}, []string{audit.SignedIn, audit.SignedIn}},
		{audit.Filter{Types: []string{audit.SignedOut, audit.LockedOut}}, []string{audit.LockedOut, audit.SignedOut}},
		{audit.Filter{Since: base.Add(2 * time.Minute)}, []string{audit.LockedOut, audit.SignedIn, audit.SignedOut}},
		{audit.Filter{Until: base.Add(2 * time.Minute)}, []string{audit.NewDevice, audit.SignedIn}},
		{audit.Filter{Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute)}, []string{audit.SignedOut, audit.NewDevice}},
		{audit.Filter{Limit: 2}, []string{audit.LockedOut, audit.SignedIn}},
		{audit.Filter{Types: []string{audit.SignedIn}, Limit: 1}, []string{audit.SignedIn}},
		{audit.Filter{Types: []string{"no_such_type"}}, []string{}},
	} {
		if got := types(mustList(t, s, "ada", tc.f)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("List(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func testAuditLimit(t *testing.T, s audit.Store) {
	base := time.Now().UTC().Truncate(time.Microsecond)
	for i := range audit.DefaultLimit + 2 {
		mustRecord(t, s, auditEvent("ada", audit.SignedIn, base.Add(time.Duration(i)*time.Millisecond)))
	}
	got := mustList(t, s, "ada", audit.Filter{})
	if len(got) != audit.DefaultLimit {
		t.Fatalf("List with no limit gave %d events, want DefaultLimit %d", len(got), audit.DefaultLimit)
	}
	if want := base.Add(time.Duration(audit.DefaultLimit+1) * time.Millisecond); !got[0].Time.Equal(want) {
		t.Errorf("first event at %v, want the newest, %v", got[0].Time, want)
	}
	if got := mustList(t, s, "ada", audit.Filter{Limit: audit.MaxLimit * 2}); len(got) != audit.DefaultLimit+2 {
		t.Errorf("List(Limit over MaxLimit) gave %d, want all %d", len(got), audit.DefaultLimit+2)
	}
}

func testAuditEqualTimes(t *testing.T, s audit.Store) {
	at := time.Now().UTC().Truncate(time.Microsecond)
	first := auditEvent("ada", audit.SignedIn, at)
	second := auditEvent("ada", audit.NewDevice, at)
	mustRecord(t, s, first)
	mustRecord(t, s, second)
	got := mustList(t, s, "ada", audit.Filter{})
	if len(got) != 2 || got[0].ID != second.ID || got[1].ID != first.ID {
		t.Fatalf("equal times: got %v, want the later recorded (%s) first", types(got), second.Type)
	}
}

func testAuditAddDevice(t *testing.T, s audit.Store) {
	ctx := t.Context()
	base := time.Now().UTC().Truncate(time.Microsecond)
	add := func(user, browser, os string, at time.Time) bool {
		t.Helper()
		added, err := s.AddDevice(ctx, user, browser, os, at)
		if err != nil {
			t.Fatalf("AddDevice: %v", err)
		}
		return added
	}
	if !add("ada", "Firefox", "Linux", base) {
		t.Fatal("AddDevice on an empty store = false")
	}
	if add("ada", "Firefox", "Linux", base.Add(time.Minute)) {
		t.Error("AddDevice(ada, Firefox, Linux) = true the second time")
	}
	switch {
	case !add("ada", "Firefox", "Windows", base), !add("ada", "Chrome", "Linux", base):
		t.Error("AddDevice took another browser or OS for a known one")
	case !add("bob", "Firefox", "Linux", base):
		t.Error("AddDevice took another user's device for ada's")
	case !add("ada", "", "", base):
		t.Error("AddDevice of an unknown browser and OS = false")
	case add("ada", "", "", base):
		t.Error("AddDevice of an unknown browser and OS = true the second time")
	}
	// Events are not devices: a sign-in event alone records none.
	e := auditEvent("cy", audit.SignedIn, base)
	e.Browser, e.OS = "Safari", "iOS"
	mustRecord(t, s, e)
	if !add("cy", "Safari", "iOS", base) {
		t.Error("AddDevice = false after a sign-in event alone")
	}

	// The retention sweep forgets a device with its last sign-in: ada's
	// Firefox on Linux was last seen a minute after base, Chrome at base.
	if _, err := s.DeleteBefore(ctx, base.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if add("ada", "Firefox", "Linux", base.Add(2*time.Minute)) {
		t.Error("a device seen after the cut was forgotten by DeleteBefore")
	}
	if !add("ada", "Chrome", "Linux", base.Add(2*time.Minute)) {
		t.Error("a device last seen before the cut was kept by DeleteBefore")
	}
}

// testAuditAddDeviceConcurrent: of concurrent additions of one device
// exactly one is new.
func testAuditAddDeviceConcurrent(t *testing.T, s audit.Store) {
	const n = 16
	at := time.Now().UTC().Truncate(time.Microsecond)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		added int
	)
	for i := range n {
		wg.Go(func() {
			ok, err := s.AddDevice(t.Context(), "ada", "Firefox", "Linux", at.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Errorf("AddDevice: %v", err)
			}
			if ok {
				mu.Lock()
				added++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if added != 1 {
		t.Fatalf("%d of %d concurrent AddDevice calls for one device reported it new, want 1", added, n)
	}
}

func testAuditDeleteBefore(t *testing.T, s audit.Store) {
	base := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 5 {
		mustRecord(t, s, auditEvent("ada", audit.SignedIn, base.Add(time.Duration(i)*time.Hour)))
		mustRecord(t, s, auditEvent("bob", audit.SignedIn, base.Add(time.Duration(i)*time.Hour)))
	}
	n, err := s.DeleteBefore(t.Context(), base.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Errorf("DeleteBefore removed %d, want 4", n)
	}
	got := mustList(t, s, "ada", audit.Filter{})
	if len(got) != 3 || !got[2].Time.Equal(base.Add(2*time.Hour)) {
		t.Errorf("after DeleteBefore: %d events, oldest %v; want 3, the oldest at the cut", len(got), got[len(got)-1].Time)
	}
	if n, err := s.DeleteBefore(t.Context(), base.Add(2*time.Hour)); err != nil || n != 0 {
		t.Errorf("second DeleteBefore = %d, %v; want 0, nil", n, err)
	}
}

func testAuditConcurrent(t *testing.T, s audit.Store) {
	const workers, each = 8, 10
	base := time.Now().UTC().Truncate(time.Microsecond)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				e := auditEvent("ada", audit.SignedIn, base.Add(time.Duration(w*each+i)*time.Millisecond))
				if err := s.Record(t.Context(), e); err != nil {
					errs <- err
				}
				if _, err := s.List(t.Context(), "ada", audit.Filter{Limit: 5}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := mustList(t, s, "ada", audit.Filter{Limit: audit.MaxLimit}); len(got) != workers*each {
		t.Fatalf("%d events after concurrent records, want %d", len(got), workers*each)
	}
}
