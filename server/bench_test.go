package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkWhoAmI is GET /v1/session through the whole public handler
// (security headers, routing, metrics, cache hits for session and user,
// the client check, JSON), without the network: the response writer keeps
// nothing, as net/http's keeps nothing between requests.
func BenchmarkWhoAmI(b *testing.B) {
	const ua = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
	h, _, tok := signedIn(b, ua)
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
