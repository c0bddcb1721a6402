package account_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/sessiond/sessiond/account"
)

// small are argon2id parameters cheap enough for tests.
var small = account.HashParams{Memory: 64, Time: 1, Parallelism: 1}

func newHasher(t testing.TB, p account.HashParams, concurrency int) *account.Hasher {
	t.Helper()
	h, err := account.NewHasher(p, concurrency, nil)
	if err != nil {
		t.Fatalf("NewHasher: %v", err)
	}
	return h
}

// counting installs a hook that counts argon2 computations.
func counting(h *account.Hasher) *atomic.Int32 {
	var n atomic.Int32
	account.SetHashHook(h, func(start bool) {
		if start {
			n.Add(1)
		}
	})
	return &n
}

func mustHash(t testing.TB, h *account.Hasher, pw string) string {
	t.Helper()
	phc, err := h.Hash(context.Background(), pw)
	if err != nil {
		t.Fatalf("Hash: %v", err)
	}
	return phc
}

var phcRE = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`)

func TestHashRoundTrip(t *testing.T) {
	h := newHasher(t, small, 0)
	for _, pw := range []string{"correct horse battery staple", "", "pässwörd ✓", strings.Repeat("x", 4096)} {
		phc := mustHash(t, h, pw)
		if !phcRE.MatchString(phc) || !strings.HasPrefix(phc, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("Hash = %q, not a PHC argon2id string with the parameters", phc)
		}
		ok, rehash, err := h.Verify(t.Context(), phc, pw)
		if !ok || rehash || err != nil {
			t.Fatalf("Verify(right) = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
		for _, wrong := range []string{pw + "x", strings.ToUpper(pw) + "X", "y"} {
			ok, rehash, err = h.Verify(t.Context(), phc, wrong)
			if ok || rehash || err != nil {
				t.Fatalf("Verify(wrong %q) = %v, %v, %v; want false, false, nil", wrong, ok, rehash, err)
			}
		}
		if again := mustHash(t, h, pw); again == phc {
			t.Fatal("two hashes of one password are equal: no fresh salt")
		}
	}
}

func TestHashDefaultParams(t *testing.T) {
	h := newHasher(t, account.HashParams{}, 0)
	if h.Params() != account.DefaultHashParams || account.DefaultHashParams != (account.HashParams{Memory: 19456, Time: 2, Parallelism: 1}) {
		t.Fatalf("default params = %+v, want OWASP's m=19456, t=2, p=1", h.Params())
	}
	if want := max(1, runtime.GOMAXPROCS(0)/2); h.Concurrency() != want {
		t.Fatalf("default concurrency = %d, want %d", h.Concurrency(), want)
	}
	phc := mustHash(t, h, "plum-kettle-47-ravine")
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") || !phcRE.MatchString(phc) {
		t.Fatalf("Hash = %q", phc)
	}
	if ok, rehash, err := h.Verify(t.Context(), phc, "plum-kettle-47-ravine"); !ok || rehash || err != nil {
		t.Fatalf("Verify = %v, %v, %v", ok, rehash, err)
	}
}

// TestHashEncoding checks the PHC text against argon2 run directly: the
// salt comes from the Hasher's reader and both parts are unpadded standard
// base64, as other argon2id implementations write them.
func TestHashEncoding(t *testing.T) {
	salt := bytes.Repeat([]byte{0xfb}, 16) // 0xfb... has + and / in base64
	h, err := account.NewHasher(small, 1, bytes.NewReader(salt))
	if err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte("pw"), salt, 1, 64, 1, 32)
	want := "$argon2id$v=19$m=64,t=1,p=1$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(key)
	if got := mustHash(t, h, "pw"); got != want {
		t.Fatalf("Hash = %q,\nwant %q", got, want)
	}
}

// phcOf builds a PHC string by hand, with any salt and key length.
func phcOf(pw string, p account.HashParams, saltLen, keyLen int) string {
	salt := bytes.Repeat([]byte{7}, saltLen)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Parallelism, uint32(keyLen))
	return fmt.Sprintf("$argon2id$v=19$%s$%s$%s", p, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

func TestNeedsRehash(t *testing.T) {
	cur := account.HashParams{Memory: 256, Time: 2, Parallelism: 2}
	h := newHasher(t, cur, 0)
	for _, tc := range []struct {
		name    string
		p       account.HashParams
		salt    int
		key     int
		rehash  bool
		comment string
	}{
		{"same", cur, 16, 32, false, ""},
		{"less memory", account.HashParams{Memory: 128, Time: 2, Parallelism: 2}, 16, 32, true, ""},
		{"fewer passes", account.HashParams{Memory: 256, Time: 1, Parallelism: 2}, 16, 32, true, ""},
		{"less memory, more passes", account.HashParams{Memory: 128, Time: 4, Parallelism: 2}, 16, 32, true, "each parameter counts"},
		{"stronger", account.HashParams{Memory: 512, Time: 3, Parallelism: 2}, 16, 32, false, "never downgraded"},
		{"other parallelism", account.HashParams{Memory: 256, Time: 2, Parallelism: 1}, 16, 32, false, "not weaker"},
		{"short salt", cur, 8, 32, true, ""},
		{"short key", cur, 16, 16, true, ""},
		{"long salt and key", cur, 32, 64, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			phc := phcOf("pw", tc.p, tc.salt, tc.key)
			ok, rehash, err := h.Verify(t.Context(), phc, "pw")
			if !ok || err != nil || rehash != tc.rehash {
				t.Fatalf("Verify(%s) = %v, %v, %v; want true, %v, nil %s", phc, ok, rehash, err, tc.rehash, tc.comment)
			}
			if ok, rehash, _ := h.Verify(t.Context(), phc, "wrong"); ok || rehash {
				t.Fatal("a wrong password asks for a rehash")
			}
		})
	}
}

func TestMalformedPHC(t *testing.T) {
	h := newHasher(t, small, 0)
	calls := counting(h)
	good := mustHash(t, h, "pw")
	calls.Store(0)
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	salt, key := parts[4], parts[5]
	b64 := base64.RawStdEncoding.EncodeToString
	for _, bad := range []string{
		"",
		"pw",
		"$argon2id$",
		good + "$",
		"$" + good,
		strings.TrimPrefix(good, "$"),
		with(1, "argon2i"),
		with(1, "argon2d"),
		with(1, "ARGON2ID"),
		with(1, "bcrypt"),
		with(2, "v=16"),
		with(2, "v=019"),
		with(2, ""),
		with(3, "m=64,t=1"),
		with(3, "m=64,t=1,p=1,k=2"),
		with(3, "t=1,m=64,p=1"),
		with(3, "m=064,t=1,p=1"),
		with(3, "m=+64,t=1,p=1"),
		with(3, "m=-64,t=1,p=1"),
		with(3, "m=64, t=1,p=1"),
		with(3, "m=0x40,t=1,p=1"),
		with(3, "m=64,t=1,p=1,"),
		with(3, "m=,t=1,p=1"),
		// Parameters out of range: zero, below argon2's minimum, or absurd
		// (a tampered row must not make a login allocate gigabytes).
		with(3, "m=0,t=1,p=1"),
		with(3, "m=64,t=0,p=1"),
		with(3, "m=64,t=1,p=0"),
		with(3, "m=7,t=1,p=1"),
		with(3, "m=64,t=1,p=9"),
		with(3, "m=4294967295,t=1,p=1"),
		with(3, "m=4294967296,t=1,p=1"),
		with(3, fmt.Sprintf("m=%d,t=1,p=1", account.MaxHashMemory+1)),
		with(3, fmt.Sprintf("m=64,t=%d,p=1", account.MaxHashTime+1)),
		with(3, "m=64,t=4294967295,p=1"),
		with(3, "m=4096,t=1,p=255"),
		with(3, "m=4096,t=1,p=256"),
		// Salt and key: alphabet, padding, length.
		with(4, ""),
		with(4, salt+"=="),
		with(4, strings.ReplaceAll(salt, salt[:1], "-")+"-"),
		with(4, salt[:len(salt)-1]+"!"),
		with(4, b64(make([]byte, 4))),
		with(4, b64(make([]byte, 65))),
		with(5, ""),
		with(5, key+"="),
		with(5, key[:len(key)-1]+"_"),
		with(5, b64(make([]byte, 8))),
		with(5, b64(make([]byte, 65))),
		with(5, key+"AAAA"+strings.Repeat("A", 300)),
		good + "\n",
		" " + good,
	} {
		ok, rehash, err := h.Verify(t.Context(), bad, "pw")
		if ok || rehash || !errors.Is(err, account.ErrInvalidHash) {
			t.Errorf("Verify(%q) = %v, %v, %v; want ErrInvalidHash", bad, ok, rehash, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("malformed hashes ran argon2 %d times, want 0", n)
	}
}

func TestNewHasherRejectsParams(t *testing.T) {
	for _, p := range []account.HashParams{
		{Memory: 64, Time: 0, Parallelism: 1},
		{Memory: 64, Time: 1, Parallelism: 0},
		{Memory: 7, Time: 1, Parallelism: 1},
		{Memory: 64, Time: 1, Parallelism: 9},
		{Memory: account.MaxHashMemory + 1, Time: 1, Parallelism: 1},
		{Memory: 64, Time: account.MaxHashTime + 1, Parallelism: 1},
		{Memory: 1 << 20, Time: 1, Parallelism: account.MaxHashParallelism + 1},
	} {
		if _, err := account.NewHasher(p, 1, nil); !errors.Is(err, account.ErrInvalidConfig) {
			t.Errorf("NewHasher(%+v) = %v, want ErrInvalidConfig", p, err)
		}
	}
	if _, err := account.NewHasher(small, -1, nil); !errors.Is(err, account.ErrInvalidConfig) {
		t.Errorf("NewHasher(concurrency -1) = %v, want ErrInvalidConfig", err)
	}
}

// TestConcurrencyBound measures how many argon2 computations overlap under
// a flood of Hash and Verify calls: exactly the limit.
func TestConcurrencyBound(t *testing.T) {
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			h := newHasher(t, small, limit)
			phc := mustHash(t, h, "pw")
			var cur, peak atomic.Int32
			account.SetHashHook(h, func(start bool) {
				if !start {
					cur.Add(-1)
					return
				}
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(5 * time.Millisecond) // hold the slot so that others pile up
			})
			var wg sync.WaitGroup
			for i := range 8 * limit {
				wg.Go(func() {
					var err error
					if i%2 == 0 {
						_, err = h.Hash(t.Context(), "pw")
					} else {
						_, _, err = h.Verify(t.Context(), phc, "pw")
					}
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if p := peak.Load(); p != int32(limit) {
				t.Fatalf("at most %d hashes ran at once, want exactly the limit %d", p, limit)
			}
		})
	}
}

// TestHashQueueHonoursContext: a caller waiting for a slot gives up when
// its context ends, without hashing.
func TestHashQueueHonoursContext(t *testing.T) {
	h := newHasher(t, small, 1)
	phc := mustHash(t, h, "pw")
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	account.SetHashHook(h, func(start bool) {
		if start && calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	done := make(chan error)
	go func() { _, err := h.Hash(context.Background(), "pw"); done <- err }()
	<-entered

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash while the slot is taken = %v, want DeadlineExceeded", err)
	}
	if _, _, err := h.Verify(ctx, phc, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify while the slot is taken = %v, want DeadlineExceeded", err)
	}
	if err := h.VerifyDummy(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("VerifyDummy while the slot is taken = %v, want DeadlineExceeded", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d hashes ran, want 1: a cancelled caller hashed", n)
	}
}

func TestVerifyDummy(t *testing.T) {
	h := newHasher(t, small, 0)
	calls := counting(h)
	for i := range 3 {
		if err := h.VerifyDummy(t.Context(), "pw"); err != nil {
			t.Fatal(err)
		}
		if n := calls.Load(); n != int32(i+1) {
			t.Fatalf("after %d dummy verifications, %d argon2 runs; want one each", i+1, n)
		}
	}
}

func benchHasher(b *testing.B) (*account.Hasher, string) {
	h := newHasher(b, account.HashParams{}, 1)
	return h, mustHash(b, h, "plum-kettle-47-ravine")
}

// BenchmarkHash is one hash at the default parameters (m=19456 KiB, t=2,
// p=1) on one core.
func BenchmarkHash(b *testing.B) {
	h, _ := benchHasher(b)
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "plum-kettle-47-ravine"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is one verification at the default parameters.
func BenchmarkVerify(b *testing.B) {
	h, phc := benchHasher(b)
	for b.Loop() {
		if ok, _, err := h.Verify(b.Context(), phc, "plum-kettle-47-ravine"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// TestStormShare checks that a slot rests between queued hashes, for as
// long as SetStormShare asks, and that a call finding a slot free does not
// wait for a rest. Only lower bounds are asserted on queued calls (a busy
// machine lengthens gaps, never shortens them).
func TestStormShare(t *testing.T) {
	const hold = 50 * time.Millisecond // each "hash" takes this long
	h := newHasher(t, small, 1)
	if err := h.SetStormShare(0.1); err != nil { // rest = 9 × hold
		t.Fatal(err)
	}
	for _, bad := range []float64{0, -0.5, 1.01, math.NaN()} {
		if err := h.SetStormShare(bad); !errors.Is(err, account.ErrInvalidConfig) {
			t.Errorf("SetStormShare(%v) = %v, want ErrInvalidConfig", bad, err)
		}
	}
	var mu sync.Mutex
	var starts []time.Time
	var storm atomic.Bool
	account.SetHashHook(h, func(start bool) {
		if start {
			mu.Lock()
			starts = append(starts, time.Now())
			left := 3 - len(starts) // storm calls not started yet
			mu.Unlock()
			time.Sleep(hold)
			// In the storm, the hash ends only once the others queue,
			// however slow the machine is to start them.
			for deadline := time.Now().Add(5 * time.Second); storm.Load() && account.Waiting(h) < left && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
		}
	})
	// A lone call: no rest before or after it matters to anyone.
	begin := time.Now()
	mustHash(t, h, "pw")
	if d := starts[0].Sub(begin); d > 6*hold {
		t.Errorf("a lone call waited %v for its slot", d)
	}
	// A storm of three: each queued call starts a hash plus a rest after
	// the one before it.
	time.Sleep(time.Second) // the lone call's slot is surely free
	starts = nil
	storm.Store(true)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { mustHash(t, h, "pw") })
	}
	wg.Wait()
	storm.Store(false)
	slices.SortFunc(starts, func(a, b time.Time) int { return a.Compare(b) })
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < hold+9*hold*9/10 {
			t.Errorf("queued hash %d started %v after the one before; want the hash (%v) and a rest (%v)", i, gap, hold, 9*hold)
		}
	}
	// The storm over, the last call's slot frees without a rest (nobody
	// was waiting when it ended): a new lone call goes straight in.
	begin = time.Now()
	mustHash(t, h, "pw")
	if d := starts[len(starts)-1].Sub(begin); d > 6*hold {
		t.Errorf("a lone call after the storm waited %v", d)
	}
}
