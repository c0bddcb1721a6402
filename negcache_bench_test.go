package sessiond_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sqlite"
)

// BenchmarkRefusals compares, on SQLite, the refusal of a repeated unknown
// token with and without the cache of refused tokens, beside a valid
// token's validation served by the session cache (the who-am-I of the
// library): issue 20, "unknown tokens read the store every time".
func BenchmarkRefusals(b *testing.B) {
	for _, bc := range []struct {
		name     string
		rejected bool
		valid    bool
	}{
		{"valid-cached", false, true},
		{"unknown", false, false},
		{"unknown-rejected-cache", true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "s.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			opts := []sessiond.Option{sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour})}
			if bc.rejected {
				opts = append(opts, sessiond.WithRejectedCache(0))
			}
			m, err := sessiond.NewManager(st, sessiond.Policy{}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			_, tok, err := m.Create(b.Context(), sessiond.CreateParams{UserID: "u1"})
			if err != nil {
				b.Fatal(err)
			}
			want := error(nil)
			if !bc.valid {
				tok, _ = sessiond.NewSecret(nil, sessiond.TokenPrefix)
				want = sessiond.ErrNotFound
			}
			m.Validate(b.Context(), tok)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Validate(b.Context(), tok); !errors.Is(err, want) {
					b.Fatalf("Validate = %v, want %v", err, want)
				}
			}
		})
	}
}
