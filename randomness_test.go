package sessiond_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
)

// TestTokenRandomness issues 100,000 sessions through a Manager with its
// default randomness (crypto/rand) and checks what an attacker who
// collected them could exploit:
//
//   - no token and no session id repeats;
//   - every one of the 256 secret bits is set in about half the tokens
//     (each count within 6 standard deviations of n/2), the per-bit counts
//     together pass a chi-square test, all bits together pass a monobit
//     test, and the 32 byte positions take their 256 values evenly
//     (chi-square);
//   - the public session id tells nothing about the token: they share no
//     substring of 8 characters, and bit i of the id agrees with bit i of
//     the secret about half the time for each of the id's 128 bits.
//
// The bounds are 6 standard deviations (or the chi-square quantile at the
// same tail probability, about 1e-9), so an honest generator fails one
// run in hundreds of millions; a generator with a stuck bit, a short
// period or a counter in it fails every run.
func TestTokenRandomness(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 sessions: skipped with -short")
	}
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	problems, summary := tokenRandomness(m, 100_000)
	for _, p := range problems {
		t.Error(p)
	}
	t.Log(summary)
}

// TestTokenRandomnessCatchesBadGenerators runs the same checks over
// generators with known faults, so that the bounds above are known to
// matter: a bit stuck at one, a generator that repeats itself, and a
// session id that is a piece of the token's randomness.
func TestTokenRandomnessCatchesBadGenerators(t *testing.T) {
	for name, r := range map[string]io.Reader{
		"stuck bit":     &stuckBit{r: rand.Reader},
		"short period":  &repeating{period: 1000},
		"id from token": &echoing{},
	} {
		m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{}, sessiond.WithRand(r))
		if err != nil {
			t.Fatal(err)
		}
		if problems, _ := tokenRandomness(m, 20_000); len(problems) == 0 {
			t.Errorf("%s: the randomness checks found nothing", name)
		}
	}
}

// stuckBit is crypto/rand with the top bit of every 48th byte set: bit 0
// of every token secret (ids take 16 bytes, secrets the next 32).
type stuckBit struct {
	r io.Reader
	n int
}

func (s *stuckBit) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	for i := range n {
		if (s.n+i)%48 == 16 {
			p[i] |= 0x80
		}
	}
	s.n += n
	return n, err
}

// repeating yields a counter that wraps after period reads.
type repeating struct{ period, n int }

func (r *repeating) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0
	}
	binary.BigEndian.PutUint32(p, uint32(r.n%r.period))
	r.n++
	return len(p), nil
}

// echoing gives each token secret the bytes it gave the session id before.
type echoing struct {
	last []byte
}

func (e *echoing) Read(p []byte) (int, error) {
	if len(p) == 16 {
		_, _ = rand.Read(p)
		e.last = append(e.last[:0], p...)
		return len(p), nil
	}
	for i := range p {
		p[i] = e.last[i%len(e.last)]
	}
	return len(p), nil
}

// tokenRandomness issues n sessions through m and returns what is wrong
// with their tokens and ids, and a one-line summary.
func tokenRandomness(m *sessiond.Manager, n int) (problems []string, summary string) {
	const z = 6.0 // standard deviations
	ctx := context.Background()
	tokens := make(map[string]struct{}, n)
	ids := make(map[string]struct{}, n)
	var ones [256]int          // sessions whose secret has bit i set
	var bytesSeen [32][256]int // byte position × value
	var agree [128]int         // id bit i == secret bit i
	dups, shared := 0, 0
	for range n {
		s, tok, err := m.Create(ctx, sessiond.CreateParams{})
		if err != nil {
			return []string{err.Error()}, ""
		}
		if _, dup := tokens[tok]; dup {
			dups++
		}
		if _, dup := ids[s.ID]; dup {
			dups++
		}
		tokens[tok], ids[s.ID] = struct{}{}, struct{}{}

		secret, err := base64.RawURLEncoding.Strict().DecodeString(tok[len(sessiond.TokenPrefix) : len(sessiond.TokenPrefix)+43])
		if err != nil || len(secret) != 32 {
			return []string{fmt.Sprintf("token %q: secret does not decode: %v", tok, err)}, ""
		}
		id, err := hex.DecodeString(s.ID)
		if err != nil || len(id) != 16 {
			return []string{fmt.Sprintf("session id %q is not 128 bits of hex", s.ID)}, ""
		}
		for i, b := range secret {
			bytesSeen[i][b]++
			for j := range 8 {
				if b&(0x80>>j) != 0 {
					ones[i*8+j]++
				}
			}
		}
		for i, b := range id {
			same := ^(b ^ secret[i]) // a one bit where id and secret agree
			for j := range 8 {
				if same&(0x80>>j) != 0 {
					agree[i*8+j]++
				}
			}
		}
		if _, ok := sharedSubstring(s.ID, tok, 8); ok {
			shared++
		}
	}
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if dups > 0 {
		fail("%d tokens or session ids issued twice in %d sessions", dups, n)
	}
	if shared > 0 {
		fail("%d session ids share 8 characters with their token", shared)
	}
	mean, sd := float64(n)/2, math.Sqrt(float64(n)/4)
	chi, total := 0.0, 0
	for i, c := range ones {
		if d := math.Abs(float64(c) - mean); d > z*sd {
			fail("secret bit %d set in %d of %d tokens: %.1f sd from %v", i, c, n, d/sd, mean)
		}
		chi += (float64(c) - mean) * (float64(c) - mean) / (float64(n) / 4)
		total += c
	}
	if limit := chiSquareQuantile(256, z); chi > limit {
		fail("per-bit chi-square %.1f over 256 bits, above %.1f", chi, limit)
	}
	allBits := float64(n) * 256
	if d := math.Abs(float64(total) - allBits/2); d > z*math.Sqrt(allBits/4) {
		fail("monobit: %d ones in %v bits, %.1f sd from half", total, allBits, d/math.Sqrt(allBits/4))
	}
	worstByte := 0.0
	for pos := range bytesSeen {
		chi := 0.0
		want := float64(n) / 256
		for _, c := range bytesSeen[pos] {
			chi += (float64(c) - want) * (float64(c) - want) / want
		}
		worstByte = max(worstByte, chi)
		if limit := chiSquareQuantile(255, z); chi > limit {
			fail("byte %d of the secret: chi-square of its values %.1f, above %.1f", pos, chi, limit)
		}
	}
	for i, c := range agree {
		if d := math.Abs(float64(c) - mean); d > z*sd {
			fail("id bit %d agrees with secret bit %d in %d of %d sessions: %.1f sd from %v", i, i, c, n, d/sd, mean)
		}
	}
	summary = fmt.Sprintf("%d sessions: per-bit chi-square %.1f (df 256, limit %.1f), ones %d of %v bits, worst byte chi-square %.1f (df 255, limit %.1f)",
		n, chi, chiSquareQuantile(256, z), total, allBits, worstByte, chiSquareQuantile(255, z))
	return problems, summary
}

// chiSquareQuantile is the Wilson–Hilferty approximation of the chi-square
// quantile with df degrees of freedom at z standard normal deviations.
func chiSquareQuantile(df, z float64) float64 {
	h := 2 / (9 * df)
	return df * math.Pow(1-h+z*math.Sqrt(h), 3)
}

// sharedSubstring returns a substring of a of length k that occurs in b.
func sharedSubstring(a, b string, k int) (string, bool) {
	for i := 0; i+k <= len(a); i++ {
		for j := 0; j+k <= len(b); j++ {
			if a[i:i+k] == b[j:j+k] {
				return a[i : i+k], true
			}
		}
	}
	return "", false
}

// TestDefaultRandomnessIsCryptoRand: a Manager without WithRand, and
// NewSecret and NewID with a nil reader, read crypto/rand.Reader, the
// operating system's CSPRNG (OWASP ASVS 3.2.4).
func TestDefaultRandomnessIsCryptoRand(t *testing.T) {
	counter := &countingReader{r: rand.Reader}
	saved := rand.Reader
	rand.Reader = counter
	defer func() { rand.Reader = saved }()

	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(context.Background(), sessiond.CreateParams{}); err != nil {
		t.Fatal(err)
	}
	if counter.n < 16+32 {
		t.Fatalf("a session read %d bytes from crypto/rand.Reader, want its id (16) and secret (32)", counter.n)
	}
	before := counter.n
	if _, err := sessiond.NewSecret(nil, "x_"); err != nil {
		t.Fatal(err)
	}
	if _, err := sessiond.NewID(nil); err != nil {
		t.Fatal(err)
	}
	if got := counter.n - before; got != 32+16 {
		t.Fatalf("NewSecret and NewID read %d bytes from crypto/rand.Reader, want 48", got)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
