package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// ErrInvalidHash: a stored password hash is not a PHC string this package
// accepts (malformed, another algorithm or version, or parameters outside
// the limits below). It points at corrupt or tampered data, not at a wrong
// password.
var ErrInvalidHash = errors.New("account: invalid password hash")

// HashParams are argon2id's cost parameters.
type HashParams struct {
	// Memory in KiB. Default 19456 (19 MiB).
	Memory uint32
	// Time is the number of passes over the memory. Default 2.
	Time uint32
	// Parallelism is the number of lanes (argon2's p), each hashed by
	// its own goroutine. Default 1.
	Parallelism uint8
}

// DefaultHashParams are OWASP's recommended minimum for argon2id
// (m=19456 KiB, t=2, p=1): about 19 MiB and a few tens of milliseconds per
// hash on a current server core. Weaker parameters are for tests only.
var DefaultHashParams = HashParams{Memory: 19456, Time: 2, Parallelism: 1}

// Limits on argon2id parameters, both configured and read from a stored
// hash. They bound what one verification costs, so that a tampered database
// cannot make each login allocate gigabytes or run for minutes.
const (
	MaxHashMemory      = 256 << 10 // KiB: 256 MiB
	MaxHashTime        = 10
	MaxHashParallelism = 16
)

const (
	saltLen = 16 // bytes of salt in new hashes
	keyLen  = 32 // bytes of key in new hashes

	// Accepted in stored hashes.
	minSaltLen, maxSaltLen = 8, 64
	minKeyLen, maxKeyLen   = 16, 64
	maxPHCLen              = 256
)

var phcB64 = base64.RawStdEncoding.Strict()

func (p HashParams) withDefaults() HashParams {
	if p == (HashParams{}) {
		return DefaultHashParams
	}
	return p
}

func (p HashParams) check() error {
	switch {
	case p.Parallelism < 1 || p.Parallelism > MaxHashParallelism:
		return fmt.Errorf("parallelism %d out of [1, %d]", p.Parallelism, MaxHashParallelism)
	case p.Time < 1 || p.Time > MaxHashTime:
		return fmt.Errorf("time %d out of [1, %d]", p.Time, MaxHashTime)
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > MaxHashMemory:
		return fmt.Errorf("memory %d KiB out of [8*parallelism, %d]", p.Memory, MaxHashMemory)
	}
	return nil
}

// String returns the parameters as they appear in a PHC string.
func (p HashParams) String() string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, p.Parallelism)
}

// DefaultHashConcurrency is how many hashes run at once by default:
// half the CPUs Go may use, at least one.
func DefaultHashConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// Hasher hashes and verifies passwords with argon2id. It is safe for
// concurrent use. At most a fixed number of hashes run at once; further
// calls wait their turn (or for their context to end), so a flood of
// logins queues instead of taking every CPU from the rest of the process.
//
// Hashes are PHC strings:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// with a 16-byte salt and a 32-byte key, both in unpadded standard base64.
type Hasher struct {
	params HashParams
	sem    chan struct{}
	rand   io.Reader

	// stormShare is the share of a slot's time that hashing may take
	// while calls queue for slots (see SetStormShare); waiting counts
	// them. 1: no rest.
	stormShare float64
	waiting    atomic.Int32

	dummyOnce sync.Once
	dummy     string
	dummyErr  error

	// testHook, when set, is called as each argon2 computation starts
	// (true) and ends (false), inside the concurrency limit.
	testHook func(start bool)
}

// NewHasher returns a Hasher with params (zero: DefaultHashParams) that
// runs at most concurrency hashes at once (0: DefaultHashConcurrency) and
// reads salts from r (nil: crypto/rand.Reader). It returns ErrInvalidConfig
// for parameters outside the limits.
func NewHasher(params HashParams, concurrency int, r io.Reader) (*Hasher, error) {
	params = params.withDefaults()
	if err := params.check(); err != nil {
		return nil, fmt.Errorf("%w: hash params: %v", ErrInvalidConfig, err)
	}
	if concurrency < 0 {
		return nil, fmt.Errorf("%w: hash concurrency %d is negative", ErrInvalidConfig, concurrency)
	}
	if concurrency == 0 {
		concurrency = DefaultHashConcurrency()
	}
	if r == nil {
		r = rand.Reader
	}
	return &Hasher{params: params, sem: make(chan struct{}, concurrency), rand: r, stormShare: 1}, nil
}

// SetStormShare makes a Hasher under a storm of calls (calls queued for a
// slot when a hash ends) rest each slot after each hash, for as long as
// the hash took times (1-share)/share, so that hashing takes at most share
// of the slots' CPU time and leaves the rest to the process's other work
// (validating sessions). A call that finds a slot free never waits for a
// rest that a storm did not need. share is in (0, 1]; 1 (the default)
// never rests. Call it before the Hasher is used.
func (h *Hasher) SetStormShare(share float64) error {
	if !(share > 0 && share <= 1) {
		return fmt.Errorf("%w: storm share %v out of (0, 1]", ErrInvalidConfig, share)
	}
	h.stormShare = share
	return nil
}

// Params returns the parameters of new hashes.
func (h *Hasher) Params() HashParams { return h.params }

// Concurrency returns how many hashes may run at once.
func (h *Hasher) Concurrency() int { return cap(h.sem) }

// Hash returns the PHC string of password with fresh salt. It waits for a
// free slot first and returns ctx's error if ctx ends before one frees up.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(h.rand, salt); err != nil {
		return "", fmt.Errorf("account: reading randomness: %w", err)
	}
	key, err := h.derive(ctx, password, salt, h.params, keyLen)
	if err != nil {
		return "", err
	}
	return formatPHC(h.params, salt, key), nil
}

// Verify reports whether password matches the PHC string phc, comparing in
// constant time. needsRehash is true when the password matches and phc was
// made with weaker parameters than the Hasher's (less memory, fewer passes,
// a shorter salt or key): the caller should store a fresh Hash. A phc that
// does not parse, or whose parameters are outside the limits, gives
// ErrInvalidHash without any hashing; ctx's error is returned when ctx ends
// while waiting for a slot.
func (h *Hasher) Verify(ctx context.Context, phc, password string) (ok, needsRehash bool, err error) {
	d, err := parsePHC(phc)
	if err != nil {
		return false, false, err
	}
	key, err := h.derive(ctx, password, d.salt, d.params, uint32(len(d.key)))
	if err != nil {
		return false, false, err
	}
	if subtle.ConstantTimeCompare(key, d.key) != 1 {
		return false, false, nil
	}
	return true, h.weaker(d), nil
}

// VerifyDummy does the work of a Verify that fails, for a user that does not
// exist, so that an unknown email costs the same time as a wrong password.
// It returns only ctx's error or a failure to read randomness.
func (h *Hasher) VerifyDummy(ctx context.Context, password string) error {
	h.dummyOnce.Do(func() {
		// The dummy need not be the hash of anything: it is a salt and a key
		// that no password derives, with the Hasher's own parameters. Making
		// it costs no argon2 computation, so the first unknown email is not
		// slower than the others.
		b := make([]byte, saltLen+keyLen)
		if _, err := io.ReadFull(h.rand, b); err != nil {
			h.dummyErr = fmt.Errorf("account: reading randomness: %w", err)
			return
		}
		h.dummy = formatPHC(h.params, b[:saltLen], b[saltLen:])
	})
	if h.dummyErr != nil {
		return h.dummyErr
	}
	_, _, err := h.Verify(ctx, h.dummy, password)
	return err
}

func (h *Hasher) weaker(d decodedPHC) bool {
	return d.params.Memory < h.params.Memory || d.params.Time < h.params.Time ||
		len(d.salt) < saltLen || len(d.key) < keyLen
}

// derive runs argon2id within the concurrency limit.
func (h *Hasher) derive(ctx context.Context, password string, salt []byte, p HashParams, n uint32) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h.waiting.Add(1)
	select {
	case h.sem <- struct{}{}:
		h.waiting.Add(-1)
	case <-ctx.Done():
		h.waiting.Add(-1)
		return nil, ctx.Err()
	}
	start := time.Now()
	defer func() {
		if h.stormShare < 1 && h.waiting.Load() > 0 {
			// A storm: the slot rests before the next queued call gets
			// it. The caller has its key already and does not wait.
			rest := time.Duration(float64(time.Since(start)) * (1 - h.stormShare) / h.stormShare)
			time.AfterFunc(rest, func() { <-h.sem })
			return
		}
		<-h.sem
	}()
	if h.testHook != nil {
		h.testHook(true)
		defer h.testHook(false)
	}
	return argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Parallelism, n), nil
}

func formatPHC(p HashParams, salt, key []byte) string {
	return "$argon2id$v=" + strconv.Itoa(argon2.Version) + "$" + p.String() +
		"$" + phcB64.EncodeToString(salt) + "$" + phcB64.EncodeToString(key)
}

type decodedPHC struct {
	params    HashParams
	salt, key []byte
}

// parsePHC parses a PHC string in exactly the form formatPHC writes:
// argon2id, version 19, parameters m, t, p in that order as plain decimals,
// then salt and key in unpadded standard base64.
func parsePHC(s string) (decodedPHC, error) {
	var d decodedPHC
	bad := func(why string) (decodedPHC, error) {
		return decodedPHC{}, fmt.Errorf("%w: %s", ErrInvalidHash, why)
	}
	if len(s) > maxPHCLen {
		return bad("too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("not a PHC string")
	}
	if parts[1] != "argon2id" {
		return bad("not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("unsupported version")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return bad("malformed parameters")
	}
	var vals [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return bad("malformed parameters")
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return bad("malformed parameters")
		}
		vals[i] = n
	}
	if vals[2] > MaxHashParallelism {
		return bad("parameters out of range")
	}
	d.params = HashParams{Memory: uint32(vals[0]), Time: uint32(vals[1]), Parallelism: uint8(vals[2])}
	if err := d.params.check(); err != nil {
		return bad("parameters out of range")
	}
	var err error
	if d.salt, err = decodeB64(parts[4]); err != nil || len(d.salt) < minSaltLen || len(d.salt) > maxSaltLen {
		return bad("malformed salt")
	}
	if d.key, err = decodeB64(parts[5]); err != nil || len(d.key) < minKeyLen || len(d.key) > maxKeyLen {
		return bad("malformed key")
	}
	return d, nil
}

// decodeB64 decodes unpadded standard base64, refusing the line breaks
// that package base64 skips.
func decodeB64(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, errors.New("not base64")
		}
	}
	return phcB64.DecodeString(s)
}
