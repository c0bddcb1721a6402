// Package storetest is the conformance suite for sessiond.Store. Every
// backend runs it from its own tests with a constructor and nothing else:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) sessiond.Store { return newStoreForTest(t) })
//	}
//
// The suite drives the store both directly and through a sessiond.Manager
// with a fake clock, so it checks the rules as users meet them: expiry,
// sliding, rotation, revocation, listing, limits, anonymous upgrade, data
// and concurrency (run it with -race).
package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// Clock is a settable clock for tests. It starts at the real time (so that
// stores with native TTLs see sensible deadlines) and moves only when told.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at the current real time, truncated to the
// microsecond.
func NewClock() *Clock { return &Clock{now: time.Now().UTC().Truncate(time.Microsecond)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// NewStore returns a fresh, empty store for one test and arranges its
// cleanup with t.Cleanup.
type NewStore func(t *testing.T) sessiond.Store

// Run runs the whole suite against stores made by newStore. Subtests run in
// parallel, each with a store of its own.
func Run(t *testing.T, newStore NewStore) {
	t.Helper()
	run(t, newStore)
}

// RunCached runs the suite again with the Manager's cache of validated
// sessions on: every rule must hold the same with it.
func RunCached(t *testing.T, newStore NewStore) {
	t.Helper()
	run(t, newStore, sessiond.WithCache(sessiond.CacheConfig{Size: 1000}))
}

func run(t *testing.T, newStore NewStore, opts ...sessiond.Option) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newEnv(t, newStore, sessiond.Policy{}, opts...))
		})
	}
	t.Run("MaxSessionsPerUser", func(t *testing.T) {
		t.Parallel()
		testMaxSessions(t, newEnv(t, newStore, sessiond.Policy{MaxSessionsPerUser: 2}, opts...))
	})
	t.Run("DataLimits", func(t *testing.T) {
		t.Parallel()
		testDataLimits(t, newEnv(t, newStore, sessiond.Policy{MaxValueBytes: 100, MaxDataBytes: 200}, opts...))
	})
}

// env is what one test works with.
type env struct {
	store sessiond.Store
	m     *sessiond.Manager
	clock *Clock
}

func newEnv(t *testing.T, newStore NewStore, p sessiond.Policy, opts ...sessiond.Option) *env {
	t.Helper()
	st := newStore(t)
	clock := NewClock()
	m, err := sessiond.NewManager(st, p, append([]sessiond.Option{sessiond.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return &env{store: st, m: m, clock: clock}
}

var tests = []struct {
	name string
	fn   func(*testing.T, *env)
}{
	{"CreateAndValidate", testCreateAndValidate},
	{"RoundTrip", testRoundTrip},
	{"UnknownAndMalformed", testUnknownAndMalformed},
	{"Anonymous", testAnonymous},
	{"IdleExpiry", testIdleExpiry},
	{"SlidingWritesThrottled", testSlidingThrottled},
	{"AbsoluteExpiry", testAbsoluteExpiry},
	{"RememberMeLifetimes", testRememberMe},
	{"Rotate", testRotate},
	{"RotateConcurrent", testRotateConcurrent},
	{"RotateDeadSession", testRotateDead},
	{"RotationRecord", testRotationRecord},
	{"AuthenticatedAtRoundTrip", testAuthenticatedAtRoundTrip},
	{"Reauthenticate", testReauthenticate},
	{"ReauthenticateDeadSession", testReauthenticateDead},
	{"ReauthenticateConcurrent", testReauthenticateConcurrent},
	{"TransportRoundTrip", testTransportRoundTrip},
	{"Revoke", testRevoke},
	{"RevokeUser", testRevokeUser},
	{"ForceLogout", testForceLogout},
	{"Generation", testGeneration},
	{"GenerationConcurrent", testGenerationConcurrent},
	{"List", testList},
	{"UpgradeAnonymous", testUpgradeAnonymous},
	{"ReplaceAuthenticated", testReplaceAuthenticated},
	{"Data", testData},
	{"DataConcurrentKeys", testDataConcurrent},
	{"DataOfDeadSession", testDataDead},
	{"Touch", testTouch},
	{"DeleteExpired", testDeleteExpired},
	{"ReturnsCopies", testReturnsCopies},
	{"ConcurrentMix", testConcurrentMix},
}
