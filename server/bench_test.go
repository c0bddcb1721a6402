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
// JSON), without the network.
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
	_, tok, _ := m.Create(ctx, sessiond.CreateParams{UserID: u.ID, UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"})
	h := s.Public()
	req := httptest.NewRequest("GET", "/v1/session", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
