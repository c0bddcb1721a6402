package sessionhttp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/sessionhttp"
)

// crossOriginApp serves /login, /put?k=v, /logout and /whoami through the
// middleware of Sessions set up by configure (before Middleware).
func crossOriginApp(t *testing.T, configure func(*sessionhttp.Sessions)) (*httptest.Server, *sessiond.Manager) {
	t.Helper()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	s := sessionhttp.New(m, sessionhttp.Cookie{})
	if configure != nil {
		configure(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.Login(w, r, r.URL.Query().Get("user"), false); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("POST /put", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Put(w, r, "k", []byte(r.URL.Query().Get("v"))); err != nil {
			http.Error(w, err.Error(), 400)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Logout(w, r); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		u, _ := sessionhttp.UserID(r.Context())
		v, _, _ := s.Get(r, "k")
		io.WriteString(w, u+" "+string(v))
	})
	srv := httptest.NewServer(s.Middleware(mux))
	t.Cleanup(srv.Close)
	return srv, m
}

// send makes a request with the session cookie tok (if any) and headers
// as "Name: value" pairs, and returns the status, the new session cookie
// (if one was set) and the body.
func send(t *testing.T, method, u, tok string, headers ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	if tok != "" {
		req.AddCookie(&http.Cookie{Name: sessionhttp.DefaultCookieName, Value: tok})
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var set string
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionhttp.DefaultCookieName {
			set = ck.Value
		}
	}
	return resp.StatusCode, set, string(b)
}

var (
	crossSite   = []string{"Sec-Fetch-Site: cross-site", "Origin: https://evil.example"}
	crossOrigin = []string{"Origin: https://evil.example"} // an older browser: no Sec-Fetch-Site
)

// TestCrossOriginRefused: a cross-site POST carrying the session cookie is
// refused 403 by the middleware and changes nothing (no data written, no
// sign-out, no sign-in); the same requests from the same origin, and
// reads from anywhere, work.
func TestCrossOriginRefused(t *testing.T) {
	srv, _ := crossOriginApp(t, nil)
	code, tok, _ := send(t, "POST", srv.URL+"/login?user=ada", "", "Sec-Fetch-Site: same-origin")
	if code != 200 || tok == "" {
		t.Fatalf("same-origin sign-in: %d, cookie %q", code, tok)
	}
	for name, h := range map[string][]string{"cross-site": crossSite, "cross-origin Origin": crossOrigin} {
		for _, path := range []string{"/put?v=evil", "/logout", "/login?user=mallory"} {
			if code, set, _ := send(t, "POST", srv.URL+path, tok, h...); code != http.StatusForbidden || set != "" {
				t.Errorf("%s POST %s with the cookie: %d (cookie set %q), want 403 and none", name, path, code, set)
			}
		}
		// Login CSRF: no cookie at all.
		if code, set, _ := send(t, "POST", srv.URL+"/login?user=mallory", "", h...); code != http.StatusForbidden || set != "" {
			t.Errorf("%s sign-in without a cookie: %d (cookie set %q), want 403", name, code, set)
		}
		// A non-Bearer Authorization header exempts nothing.
		if code, _, _ := send(t, "POST", srv.URL+"/logout", tok, append([]string{"Authorization: Basic YTpi"}, h...)...); code != http.StatusForbidden {
			t.Errorf("%s POST with Authorization: Basic: %d, want 403", name, code)
		}
	}
	// Reads are not state changes.
	if code, _, body := send(t, "GET", srv.URL+"/whoami", tok, crossSite...); code != 200 || body != "ada " {
		t.Fatalf("cross-site GET: %d %q, want ada signed in and no data", code, body)
	}
	// Same origin, by either header, and programs that send neither.
	for _, h := range [][]string{{"Sec-Fetch-Site: same-origin"}, {"Origin: " + srv.URL}, nil} {
		if code, _, _ := send(t, "POST", srv.URL+"/put?v=mine", tok, h...); code != 200 {
			t.Errorf("POST with %v: %d, want 200", h, code)
		}
	}
	if _, _, body := send(t, "GET", srv.URL+"/whoami", tok); body != "ada mine" {
		t.Errorf("after same-origin writes: %q, want ada mine", body)
	}
	if code, _, _ := send(t, "POST", srv.URL+"/logout", tok, "Sec-Fetch-Site: same-origin"); code != 200 {
		t.Errorf("same-origin logout: %d", code)
	}
	if _, _, body := send(t, "GET", srv.URL+"/whoami", tok); body != " " {
		t.Errorf("after same-origin logout: %q, want anonymous", body)
	}
}

// TestCrossOriginTrustedAndOptOut: a trusted origin may post; AllowCrossOrigin
// turns the check off; a bearer token (with Bearer on) is exempt.
func TestCrossOriginTrustedAndOptOut(t *testing.T) {
	t.Run("trusted origin", func(t *testing.T) {
		srv, _ := crossOriginApp(t, func(s *sessionhttp.Sessions) {
			if err := s.CrossOrigin.AddTrustedOrigin("https://app.example"); err != nil {
				t.Fatal(err)
			}
		})
		if code, _, _ := send(t, "POST", srv.URL+"/login?user=ada", "", "Sec-Fetch-Site: cross-site", "Origin: https://app.example"); code != 200 {
			t.Errorf("trusted origin: %d, want 200", code)
		}
		if code, _, _ := send(t, "POST", srv.URL+"/login?user=ada", "", crossSite...); code != http.StatusForbidden {
			t.Errorf("another origin: %d, want 403", code)
		}
	})
	t.Run("opt out", func(t *testing.T) {
		srv, _ := crossOriginApp(t, func(s *sessionhttp.Sessions) { s.AllowCrossOrigin = true })
		code, tok, _ := send(t, "POST", srv.URL+"/login?user=ada", "", crossSite...)
		if code != 200 || tok == "" {
			t.Fatalf("cross-site sign-in with the check off: %d", code)
		}
		if code, _, _ := send(t, "POST", srv.URL+"/put?v=x", tok, crossSite...); code != 200 {
			t.Errorf("cross-site POST with the check off: %d, want 200", code)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		srv, _ := crossOriginApp(t, func(s *sessionhttp.Sessions) { s.Bearer = true })
		_, tok, _ := send(t, "POST", srv.URL+"/login?user=ada", "")
		if code, _, _ := send(t, "POST", srv.URL+"/put?v=x", "", append([]string{"Authorization: Bearer " + tok}, crossSite...)...); code != 200 {
			t.Errorf("cross-site POST with a bearer token: %d, want 200", code)
		}
		if _, _, body := send(t, "GET", srv.URL+"/whoami", tok); body != "ada x" {
			t.Errorf("after the bearer POST: %q", body)
		}
	})
}
