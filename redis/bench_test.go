package redis_test

import (
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/storetest"
)

// The shared Manager benchmarks, with the client-side cache (a validation
// within the touch interval is served from memory) and without it (every
// lookup is two round trips on loopback).

func benchStore(opts ...redis.Option) func(b *testing.B) sessiond.Store {
	return func(b *testing.B) sessiond.Store {
		url := serverURL(b)
		return openStore(b, url, newPrefix(b, url), opts...)
	}
}

func BenchmarkStore(b *testing.B) { storetest.Bench(b, benchStore()) }

func BenchmarkStoreNoCache(b *testing.B) { storetest.Bench(b, benchStore(redis.WithCacheTTL(0))) }

// BenchmarkValidateHitParallel validates 1,000 live tokens from GOMAXPROCS
// goroutines.
func BenchmarkValidateHitParallel(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []redis.Option
	}{{"Cache", nil}, {"NoCache", []redis.Option{redis.WithCacheTTL(0)}}} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := sessiond.NewManager(benchStore(bc.opts...)(b), sessiond.Policy{})
			if err != nil {
				b.Fatal(err)
			}
			toks := make([]string, 1000)
			for i := range toks {
				if _, toks[i], err = m.Create(b.Context(), sessiond.CreateParams{UserID: "u1"}); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Validate(b.Context(), toks[int(next.Add(1))%len(toks)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
