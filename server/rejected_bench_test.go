package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/storetest"
)

// BenchmarkWhoAmIRefusals is GET /v1/session through the whole public
// handler on SQLite (issue 20, "unknown tokens read the store every
// time"): a valid token served by the session cache, beside one unknown
// token repeated from one address without the cache of refused tokens,
// with it, and past the address's allowance of rejected tokens (429
// before any read).
func BenchmarkWhoAmIRefusals(b *testing.B) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
	for _, bc := range []struct {
		name     string
		valid    bool
		rejected bool // the cache of refused tokens
		limit    bool // the per-address limit (off: every request is read)
		want     int
	}{
		{"valid", true, true, true, http.StatusOK},
		{"unknown", false, false, false, http.StatusUnauthorized},
		{"unknown-rejected-cache", false, true, false, http.StatusUnauthorized},
		{"unknown-over-limit", false, true, true, http.StatusTooManyRequests},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "s.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			// The clock stands still: the allowance does not refill.
			now := time.Now()
			opts := []sessiond.Option{sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour}),
				sessiond.WithClock(func() time.Time { return now })}
			if bc.rejected {
				opts = append(opts, sessiond.WithRejectedCache(0))
			}
			m, err := sessiond.NewManager(st, sessiond.Policy{}, opts...)
			if err != nil {
				b.Fatal(err)
			}
			a, err := account.NewService(memstore.NewAccounts(), account.Config{HashParams: storetest.HashParams}, account.WithUserCache(1000, time.Hour))
			if err != nil {
				b.Fatal(err)
			}
			s, err := newServerWith(Config{}, testDeps{Sessions: m, Accounts: a, Logger: slog.New(slog.DiscardHandler),
				Flows: flows.Config{RejectedTokenRateOff: !bc.limit}})
			if err != nil {
				b.Fatal(err)
			}
			u, err := a.Register(b.Context(), "ada@example.com", "analytical engine", nil)
			if err != nil {
				b.Fatal(err)
			}
			_, tok, err := m.Create(b.Context(), sessiond.CreateParams{UserID: u.ID, UserAgent: ua, IP: "192.0.2.1"})
			if err != nil {
				b.Fatal(err)
			}
			if !bc.valid {
				tok, _ = sessiond.NewSecret(nil, sessiond.TokenPrefix)
			}
			h := s.Public()
			req := httptest.NewRequest("GET", "/v1/session", nil)
			req.RemoteAddr = "192.0.2.1:40000"
			req.Header.Set("User-Agent", ua)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := &discardWriter{h: http.Header{}}
			if bc.want == http.StatusTooManyRequests {
				for range 2 * flows.DefaultRejectedTokenRatePerIP {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				w.code, w.n = 0, 0
				h.ServeHTTP(w, req)
				if w.code != bc.want {
					b.Fatalf("status %d, want %d", w.code, bc.want)
				}
			}
		})
	}
}
