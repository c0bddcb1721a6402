package sealed_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiond/sessiond/sealed"
	"github.com/sessiond/sessiond/sessionhttp"
)

// TestMiddlewareRefusesCrossOrigin: the sealed middleware, like
// sessionhttp's, answers a cross-origin state change 403 before the
// handler runs (no sign-in, no data written), lets same-origin requests
// and reads through, and lets everything through when AllowCrossOrigin is
// set.
func TestMiddlewareRefusesCrossOrigin(t *testing.T) {
	for _, allow := range []bool{false, true} {
		s := sealed.New(mustKeys(t, sealed.NewKey()), sessionhttp.Cookie{}, sealed.Policy{IdleTimeout: 10 * time.Minute})
		s.AllowCrossOrigin = allow
		ran := 0
		h := s.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ran++
			if r.Method == http.MethodPost {
				if err := s.Login(w, r, "u1", false); err != nil {
					t.Fatal(err)
				}
			}
		}))
		call := func(method string, headers ...string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, "https://app.example/login", nil)
			for i := 0; i+1 < len(headers); i += 2 {
				r.Header.Set(headers[i], headers[i+1])
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return w
		}
		w := call("POST", "Sec-Fetch-Site", "cross-site")
		if allow {
			if w.Code != 200 || ran != 1 {
				t.Fatalf("AllowCrossOrigin: %d, handler ran %d times", w.Code, ran)
			}
			continue
		}
		if w.Code != http.StatusForbidden || ran != 0 || len(w.Result().Cookies()) != 0 {
			t.Fatalf("cross-site POST: %d, handler ran %d times, cookies %v", w.Code, ran, w.Result().Cookies())
		}
		if w := call("POST", "Origin", "https://evil.example"); w.Code != http.StatusForbidden || ran != 0 {
			t.Fatalf("foreign Origin: %d", w.Code)
		}
		if w := call("GET", "Sec-Fetch-Site", "cross-site"); w.Code != 200 || ran != 1 {
			t.Fatalf("cross-site GET: %d", w.Code)
		}
		if w := call("POST", "Sec-Fetch-Site", "same-origin"); w.Code != 200 || ran != 2 || len(w.Result().Cookies()) == 0 {
			t.Fatalf("same-origin POST: %d, cookies %v", w.Code, w.Result().Cookies())
		}
	}
}
