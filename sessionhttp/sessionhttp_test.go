package sessionhttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/sessionhttp"
)

// app is a small program using the library: /put?k=v stores data, /get?k
// reads it, /login?user=u[&remember=1] signs in, /logout signs out, /whoami
// tells the user.
func app(t *testing.T, store sessiond.Store) (*httptest.Server, *sessionhttp.Sessions) {
	t.Helper()
	m, err := sessiond.NewManager(store, sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	s := sessionhttp.New(m, sessionhttp.Cookie{})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /put", func(w http.ResponseWriter, r *http.Request) {
		for k, v := range r.URL.Query() {
			if err := s.Put(w, r, k, []byte(v[0])); err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
		}
	})
	mux.HandleFunc("GET /get", func(w http.ResponseWriter, r *http.Request) {
		v, ok, err := s.Get(r, r.URL.Query().Get("k"))
		if err != nil || !ok {
			http.Error(w, "none", 404)
			return
		}
		w.Write(v)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.Login(w, r, r.URL.Query().Get("user"), r.URL.Query().Get("remember") == "1"); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Logout(w, r); err != nil {
			http.Error(w, err.Error(), 500)
		}
	})
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		u, ok := sessionhttp.UserID(r.Context())
		if !ok {
			http.Error(w, "anonymous", 401)
			return
		}
		io.WriteString(w, u)
	})
	srv := httptest.NewServer(s.Middleware(mux))
	t.Cleanup(srv.Close)
	return srv, s
}

func do(t *testing.T, c *http.Client, method, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == sessionhttp.DefaultCookieName {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", sessionhttp.DefaultCookieName, resp.Header["Set-Cookie"])
	return nil
}

// client keeps cookies; the jar ignores Secure on http://127.0.0.1 as
// browsers do for loopback, so we copy them by hand instead.
type client struct {
	t     *testing.T
	base  string
	token string
}

func (c *client) do(method, path string) (*http.Response, string) {
	req, _ := http.NewRequest(method, c.base+path, nil)
	if c.token != "" {
		req.AddCookie(&http.Cookie{Name: sessionhttp.DefaultCookieName, Value: c.token})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionhttp.DefaultCookieName {
			if ck.MaxAge < 0 {
				c.token = ""
			} else {
				c.token = ck.Value
			}
		}
	}
	return resp, string(b)
}

func TestAnonymousDataCarriedOverAtLogin(t *testing.T) {
	srv, s := app(t, memstore.New())
	c := &client{t: t, base: srv.URL}
	resp, _ := c.do("POST", "/put?cart=book")
	ck := sessionCookie(t, resp)
	if !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.MaxAge != 0 || !ck.Expires.IsZero() {
		t.Fatalf("anonymous cookie = %s; want __Host- attributes and no lifetime", resp.Header.Get("Set-Cookie"))
	}
	anonTok := c.token
	if _, body := c.do("GET", "/get?k=cart"); body != "book" {
		t.Fatalf("cart = %q", body)
	}
	if resp, _ := c.do("GET", "/whoami"); resp.StatusCode != 401 {
		t.Fatalf("anonymous whoami = %d", resp.StatusCode)
	}
	resp, _ = c.do("POST", "/login?user=alice")
	if c.token == anonTok || c.token == "" {
		t.Fatal("login did not issue a new token")
	}
	if _, body := c.do("GET", "/whoami"); body != "alice" {
		t.Fatalf("whoami = %q", body)
	}
	if _, body := c.do("GET", "/get?k=cart"); body != "book" {
		t.Fatalf("cart after login = %q", body)
	}
	if _, err := s.Manager().Validate(t.Context(), anonTok); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("anonymous token after login: %v, want revoked", err)
	}
	// The old cookie, replayed, is cleared and counts as no session.
	old := &client{t: t, base: srv.URL, token: anonTok}
	resp, body := old.do("GET", "/get?k=cart")
	if resp.StatusCode != 404 || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("replayed anonymous cookie: %d %q, Set-Cookie %q", resp.StatusCode, body, resp.Header.Get("Set-Cookie"))
	}
}

func TestRememberMeCookieAndLogout(t *testing.T) {
	srv, s := app(t, memstore.New())
	c := &client{t: t, base: srv.URL}
	resp, _ := c.do("POST", "/login?user=bob&remember=1")
	ck := sessionCookie(t, resp)
	if want := int((720 * time.Hour).Seconds()); ck.MaxAge < want-5 || ck.MaxAge > want {
		t.Fatalf("remember-me Max-Age = %d, want about %d", ck.MaxAge, want)
	}
	tok := c.token
	resp, _ = c.do("POST", "/logout")
	if sessionCookie(t, resp).MaxAge >= 0 {
		t.Fatal("logout did not clear the cookie")
	}
	if _, err := s.Manager().Validate(t.Context(), tok); !errors.Is(err, sessiond.ErrRevoked) {
		t.Fatalf("token after logout: %v", err)
	}
}

func TestTokenSources(t *testing.T) {
	srv, s := app(t, memstore.New())
	_, tok, err := s.Manager().Create(t.Context(), sessiond.CreateParams{UserID: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	// Never from the query string.
	if resp, _ := do(t, http.DefaultClient, "GET", srv.URL+"/whoami?session="+url.QueryEscape(tok)+"&"+sessionhttp.DefaultCookieName+"="+url.QueryEscape(tok)); resp.StatusCode != 401 {
		t.Fatalf("token in query accepted: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("bearer accepted while Bearer is off: %d", resp.StatusCode)
	}
	s.Bearer = true
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("bearer refused while Bearer is on: %d", resp.StatusCode)
	}
}

// failingStore fails every call, as an unreachable database would.
type failingStore struct{ sessiond.Store }

var errDown = errors.New("store down")

func (failingStore) ByTokenHash(context.Context, sessiond.TokenHash) (*sessiond.Session, error) {
	return nil, errDown
}

func TestStoreFailureFailsClosed(t *testing.T) {
	st := memstore.New()
	m, _ := sessiond.NewManager(st, sessiond.Policy{})
	_, tok, err := m.Create(t.Context(), sessiond.CreateParams{UserID: "dave"})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := app(t, failingStore{st})
	c := &client{t: t, base: srv.URL, token: tok}
	if resp, _ := c.do("GET", "/whoami"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("whoami with the store down = %d, want 503", resp.StatusCode)
	}
}

func TestCookieValidate(t *testing.T) {
	for _, tc := range []struct {
		c  sessionhttp.Cookie
		ok bool
	}{
		{sessionhttp.Cookie{}, true},
		{sessionhttp.Cookie{Name: "sid", Domain: "example.com", Insecure: true}, true},
		{sessionhttp.Cookie{Domain: "example.com"}, false},
		{sessionhttp.Cookie{Path: "/app"}, false},
		{sessionhttp.Cookie{Insecure: true}, false},
		{sessionhttp.Cookie{Name: "__Secure-s", Insecure: true}, false},
		{sessionhttp.Cookie{Name: "bad name"}, false},
		{sessionhttp.Cookie{Name: "s", SameSite: http.SameSiteNoneMode, Insecure: true}, false},
	} {
		if err := tc.c.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.c, err, tc.ok)
		}
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer ": "", "Bearer": "", "": ""} {
		if got, _ := sessionhttp.BearerToken(h); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}
