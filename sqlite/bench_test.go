package sqlite_test

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond"
)

// Manager-level benchmarks over a SQLite store on a file in b.TempDir.
// Writes (Create, Rotate) each commit a transaction synced to disk, so they
// measure the disk's fsync as much as the code.

const benchUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

func benchManager(b *testing.B) *sessiond.Manager {
	b.Helper()
	m, err := sessiond.NewManager(openTest(b), sessiond.Policy{})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// benchTokens creates n sessions and returns their tokens.
func benchTokens(b *testing.B, m *sessiond.Manager, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		_, tok, err := m.Create(b.Context(), sessiond.CreateParams{
			UserID: "user" + strconv.Itoa(i%100), UserAgent: benchUA, IP: "192.0.2.1",
		})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	return tokens
}

func BenchmarkCreate(b *testing.B) {
	m := benchManager(b)
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, _, err := m.Create(ctx, sessiond.CreateParams{
			UserID: "user" + strconv.Itoa(i%1000), UserAgent: benchUA, IP: "192.0.2.1",
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateHit validates live tokens of a store holding 10,000
// sessions. The benchmark runs for less than a touch interval, so this is
// the read path: one indexed lookup on the read pool.
func BenchmarkValidateHit(b *testing.B) {
	m := benchManager(b)
	tokens := benchTokens(b, m, 10_000)
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := m.Validate(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateHitParallel is BenchmarkValidateHit from GOMAXPROCS
// goroutines, through the read pool.
func BenchmarkValidateHitParallel(b *testing.B) {
	m := benchManager(b)
	tokens := benchTokens(b, m, 10_000)
	ctx := b.Context()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(next.Add(1))
			if _, err := m.Validate(ctx, tokens[i%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkValidateMiss validates well-formed tokens that name no session:
// the lookup finds nothing.
func BenchmarkValidateMiss(b *testing.B) {
	m := benchManager(b)
	benchTokens(b, m, 10_000)
	unknown := make([]string, 1000)
	for i := range unknown {
		tok, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
		if err != nil {
			b.Fatal(err)
		}
		unknown[i] = tok
	}
	ctx := b.Context()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := m.Validate(ctx, unknown[i%len(unknown)]); err != sessiond.ErrNotFound {
			b.Fatalf("Validate(unknown) = %v, want ErrNotFound", err)
		}
	}
}

// BenchmarkRotate rotates one session's token again and again: a lookup and
// a compare-and-swap UPDATE, committed.
func BenchmarkRotate(b *testing.B) {
	m := benchManager(b)
	tok := benchTokens(b, m, 1)[0]
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		_, next, err := m.Rotate(ctx, tok)
		if err != nil {
			b.Fatal(err)
		}
		tok = next
	}
}
