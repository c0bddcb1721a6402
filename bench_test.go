package sessiond_test

import (
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/sessiond/sessiond"
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
