package account

import (
	"math"
	"testing"
	"time"
)

// TestLockDurationNeverOverflows: each further lock doubles, up to
// LockoutMaxDuration. With a maximum near the largest Duration, the
// doubling used to wrap past 2^63 ns after about 28 locks and give a
// negative lock, which locks nothing; it stops at the maximum instead.
func TestLockDurationNeverOverflows(t *testing.T) {
	for _, c := range []Config{
		{LockoutDuration: time.Minute, LockoutMaxDuration: math.MaxInt64},
		{LockoutDuration: time.Second, LockoutMaxDuration: math.MaxInt64 - 1},
		{LockoutDuration: time.Minute, LockoutMaxDuration: time.Hour},
		{LockoutDuration: math.MaxInt64 / 2, LockoutMaxDuration: math.MaxInt64},
	} {
		prev := time.Duration(0)
		for n := 1; n <= 100; n++ {
			d := c.lockDuration(n)
			if d < prev || d < c.LockoutDuration || d > c.LockoutMaxDuration {
				t.Fatalf("%v doubling to %v: lock %d lasts %v (lock %d lasted %v)", c.LockoutDuration, c.LockoutMaxDuration, n, d, n-1, prev)
			}
			prev = d
		}
		if prev != c.LockoutMaxDuration {
			t.Errorf("%v doubling to %v: the 100th lock lasts %v", c.LockoutDuration, c.LockoutMaxDuration, prev)
		}
	}
	if got := (&Config{LockoutDuration: time.Minute, LockoutMaxDuration: time.Hour}).lockDuration(3); got != 4*time.Minute {
		t.Errorf("third lock of 1m doubling: %v, want 4m", got)
	}
}
