package postgres_test

import (
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/storetest"
)

// The shared Manager benchmarks, each on a store in a fresh schema of the
// test server. Every write is a round trip to the server and a commit that
// the server syncs to disk, so writes measure the server's fsync as much as
// the code.
func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(b *testing.B) sessiond.Store { return postgres.OpenTest(b) })
}

// BenchmarkValidateHitParallel validates live tokens from GOMAXPROCS
// goroutines through the pool: the read path under concurrency.
func BenchmarkValidateHitParallel(b *testing.B) {
	m, err := sessiond.NewManager(postgres.OpenTest(b), sessiond.Policy{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	tokens := make([]string, 1000)
	for i := range tokens {
		_, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := m.Validate(ctx, tokens[int(next.Add(1))%len(tokens)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
