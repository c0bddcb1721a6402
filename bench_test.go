package sessiond_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
)

// The baselines put the session benchmarks in scale on a noisy machine:
// what a bare SHA-256 of a token and a locked map lookup cost here.

func BenchmarkBaselineSHA256Token(b *testing.B) {
	tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	buf := []byte(tok)
	b.ReportAllocs()
	for b.Loop() {
		_ = sha256.Sum256(buf)
	}
}

func BenchmarkBaselineLockedMapLookup(b *testing.B) {
	var mu sync.RWMutex
	m := map[string]int{"k": 1}
	b.ReportAllocs()
	for b.Loop() {
		mu.RLock()
		_ = m["k"]
		mu.RUnlock()
	}
}

func BenchmarkParseToken(b *testing.B) {
	tok, _ := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	b.ReportAllocs()
	for b.Loop() {
		if sessiond.ParseToken(tok) != nil {
			b.Fatal("valid token refused")
		}
	}
}

func BenchmarkNewToken(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sessiond.NewSecret(nil, sessiond.TokenPrefix); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateCached is library use with the cache on: a validation
// served from memory (the target is under 1 µs and at most 2 allocations).
func BenchmarkValidateCached(b *testing.B) {
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{},
		sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour}))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	toks := make([]string, 1000)
	for i := range toks {
		_, toks[i], _ = m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
		m.Validate(ctx, toks[i])
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := m.Validate(ctx, toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkValidateCachedParallel(b *testing.B) {
	m, _ := sessiond.NewManager(memstore.New(), sessiond.Policy{},
		sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour}))
	ctx := context.Background()
	toks := make([]string, 1000)
	for i := range toks {
		_, toks[i], _ = m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
		m.Validate(ctx, toks[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := m.Validate(ctx, toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}
