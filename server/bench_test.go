package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

// BenchmarkWhoAmI is GET /v1/session through the whole public handler
// (security headers, routing, metrics, cache hits for session and user,
// the client check, JSON), without the network: the response writer keeps
// nothing, as net/http's keeps nothing between requests.
func BenchmarkWhoAmI(b *testing.B) {
	m, _ := sessiond.NewManager(memstore.New(), sessiond.Policy{}, sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour}))
	a, _ := account.NewService(memstore.NewAccounts(), account.Config{HashParams: storetest.HashParams}, account.WithUserCache(1000, time.Hour))
	s, err := New(Config{}, Deps{Sessions: m, Accounts: a})
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	u, err := a.Register(ctx, "ada@example.com", "analytical engine", nil)
	if err != nil {
		b.Fatal(err)
	}
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
	_, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: u.ID, UserAgent: ua, IP: "192.0.2.1"})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Public()
	req := httptest.NewRequest("GET", "/v1/session", nil)
	req.RemoteAddr = "192.0.2.1:40000"
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK || w.n == 0 {
			b.Fatalf("status %d, %d bytes", w.code, w.n)
		}
		w.code, w.n = 0, 0
	}
}

// discardWriter is a ResponseWriter that counts and drops.
type discardWriter struct {
	h    http.Header
	code int
	n    int
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(c int)   { d.code = c }
func (d *discardWriter) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	d.n += len(b)
	return len(b), nil
}
