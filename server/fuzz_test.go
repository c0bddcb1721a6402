package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/memstore"
)

const (
	fuzzAdminKey = "fuzz-admin-key-0123456789"
	fuzzEmail    = "alice@example.com"
	fuzzPassword = "correct horse battery staple"
)

// fuzzWorld is a complete in-process sessiond over memory stores, with
// client-side sessions on, one user and every kind of credential for her.
// Each fuzz input gets a fresh one, so that inputs do not depend on each
// other (a logout, a lockout or a rate limit does not carry over).
type fuzzWorld struct {
	srv           *Server
	public, admin http.Handler
	// vars replace $NAME in the path and body of an input.
	vars *strings.Replacer
	// credentials
	token, access, refresh string
}

func newFuzzWorld(t testing.TB) *fuzzWorld {
	return newWorld(t, slog.New(slog.DiscardHandler))
}

// newWorld is newFuzzWorld with the server logging to log.
func newWorld(t testing.TB, log *slog.Logger) *fuzzWorld {
	ctx := context.Background()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	// Cheap argon2: the target checks the HTTP layer, not the hash cost.
	a, err := account.NewService(memstore.NewAccounts(), account.Config{
		HashParams: account.HashParams{Memory: 64, Time: 1, Parallelism: 1}, HashConcurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := accesstoken.NewKeyEncryption(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	ring := accesstoken.NewKeyring(memstore.NewKeys(), enc, nil)
	if err := ring.EnsureKey(ctx); err != nil {
		t.Fatal(err)
	}
	chain, err := accesstoken.NewChain(enc.ChainKey())
	if err != nil {
		t.Fatal(err)
	}
	cs := &flows.ClientSide{Keys: ring, Chain: chain, Issuer: accesstoken.Issuer{Name: "sessiond"}}
	s, err := newServerWith(Config{AdminKey: fuzzAdminKey}, testDeps{Sessions: m, Accounts: a, ClientSide: cs,
		Audit: memstore.NewAudit(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.Register(ctx, fuzzEmail, fuzzPassword, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Both sessions are fresh sign-ins, so the routes that need a recent
	// password proof are reachable too.
	sess, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: u.ID, Authenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	jsess, refresh, err := m.Create(ctx, sessiond.CreateParams{UserID: u.ID, Authenticated: true, NewToken: func(id string) (string, error) { return chain.First(id, nil) }})
	if err != nil {
		t.Fatal(err)
	}
	access, _, err := cs.Issuer.Issue(ring.Ring(), accesstoken.Params{UserID: u.ID, SessionID: jsess.ID, AuthTime: jsess.AuthenticatedAt}, m.Now())
	if err != nil {
		t.Fatal(err)
	}
	reset, _, err := a.IssueResetToken(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return &fuzzWorld{
		srv: s, public: s.Public(), admin: s.Admin(),
		token: tok, access: access, refresh: refresh,
		vars: strings.NewReplacer("$TOKEN", tok, "$ACCESS", access, "$REFRESH", refresh, "$RESET", reset,
			"$USER", u.ID, "$SESSION", sess.ID, "$JSESSION", jsess.ID, "$EMAIL", fuzzEmail, "$PASSWORD", fuzzPassword),
	}
}

// fuzzRoute is a route of one of the listeners.
type fuzzRoute struct {
	pattern string
	admin   bool
}

// key names a route in fuzz inputs: its pattern, with "admin " before the
// operational endpoints of the admin listener.
func (r fuzzRoute) key() string {
	if r.admin && !strings.Contains(r.pattern, "/admin/") {
		return "admin " + r.pattern
	}
	return r.pattern
}

// fuzzRoutes are every route of both listeners, public first.
func fuzzRoutes() []fuzzRoute {
	s := &Server{}
	var routes []fuzzRoute
	for _, r := range s.publicRoutes() {
		routes = append(routes, fuzzRoute{r.pattern, false})
	}
	for _, r := range s.adminRoutes() {
		routes = append(routes, fuzzRoute{r.pattern, true})
	}
	for _, p := range []string{"GET /healthz", "GET /readyz", "GET /metrics"} {
		routes = append(routes, fuzzRoute{p, true})
	}
	return routes
}

// pickRoute is the route named by key, or, for any other text, one chosen
// by its hash: seeds name their route and keep it when routes are added,
// and mutated names still spread over every route.
func pickRoute(routes []fuzzRoute, key string) fuzzRoute {
	for _, r := range routes {
		if r.key() == key {
			return r
		}
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return routes[h.Sum32()%uint32(len(routes))]
}

// Content types an input may send (ctype picks one).
var fuzzContentTypes = []string{"application/json", "", "text/plain", "application/merge-patch+json",
	"application/json; charset=utf-8", "application/json; charset=\"", "multipart/form-data; boundary=x"}

// Credentials an input may carry (auth picks one).
const (
	authNone = iota
	authCookie
	authBearer
	authAccess       // a client-side access token as Bearer
	authJWTCookies   // the access and refresh cookies
	authBadAdminKey  // on the admin listener: a wrong key (others: none)
	authCrossSite    // the session cookie from another site (CSRF)
	authGarbageToken // an Authorization header that is not a token
	authCount
)

// FuzzAPI posts arbitrary bodies to every route of the public and admin
// listeners of an in-process server, with arbitrary path values, content
// types and credentials. Inputs may write $TOKEN, $ACCESS, $REFRESH,
// $RESET, $USER, $SESSION, $JSESSION, $EMAIL and $PASSWORD for the real
// values, so the fuzzer reaches the handlers behind authentication.
// Properties:
//   - never a 5xx (a panic is recovered into a 500, so this covers panics,
//     and a 503 would mean an unexpected error taken for a store failure);
//   - every 4xx is the contract's JSON error: application/json, not
//     cached, {"error": {"code": "...", "message": "..."}} and nothing else;
//   - every other answer with a body is JSON (the metrics excepted), and
//     a 204 has no body;
//   - no answer is a redirect, and every one carries the security headers.
//
// The route is named by its pattern ("admin GET /healthz" for the
// operational endpoints of the admin listener); other text picks a route
// by its hash.
func FuzzAPI(f *testing.F) {
	routes := fuzzRoutes()
	add := func(route, path, body string, ctype, auth uint8) {
		f.Add(route, path, []byte(body), ctype, auth)
	}
	add("POST /v1/register", "", `{"email":"bob@example.com","password":"another good password","profile":{"name":"Bob"}}`, 0, authNone)
	add("POST /v1/register", "", `{"email":"$EMAIL","password":"$PASSWORD"}`, 0, authNone)
	add("POST /v1/login", "", `{"email":"$EMAIL","password":"$PASSWORD","remember_me":true}`, 0, authNone)
	add("POST /v1/login", "", `{"email":"$EMAIL","password":"$PASSWORD","transport":"jwt"}`, 4, authCookie)
	add("POST /v1/login", "", `{"email":"$EMAIL","password":"wrong","transport":"token"}`, 0, authNone)
	add("POST /v1/login", "", `{"email":"$EMAIL","password":"$PASSWORD","extra":1}`, 0, authNone)
	add("POST /v1/login", "", `{"email":"$EMAIL","password":"$PASSWORD"} {}`, 0, authNone)
	add("POST /v1/login", "", `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, 0, authNone)
	add("POST /v1/login", "", "{\"email\":\"\xff\"}", 0, authNone)
	add("POST /v1/login", "", `null`, 0, authNone)
	add("POST /v1/login", "", `{"email":"$EMAIL","password":"$PASSWORD"}`, 2, authNone)
	add("POST /v1/logout", "", `{"scope":"all"}`, 0, authCookie)
	add("POST /v1/logout", "", ``, 1, authJWTCookies)
	add("POST /v1/logout", "", `{"scope":"current"}`, 0, authCrossSite)
	add("GET /v1/session", "", ``, 1, authAccess)
	add("GET /v1/sessions", "", ``, 1, authBearer)
	add("DELETE /v1/sessions/{id}", "$SESSION", ``, 1, authCookie)
	add("DELETE /v1/sessions/{id}", "../../admin", ``, 1, authBearer)
	add("POST /v1/sessions/revoke-others", "", ``, 1, authAccess)
	add("POST /v1/session/reauthenticate", "", `{"password":"$PASSWORD"}`, 0, authCookie)
	add("POST /v1/session/reauthenticate", "", `{"password":"wrong"}`, 0, authAccess)
	add("POST /v1/session/reauthenticate", "", `{"password":"$PASSWORD","extra":true}`, 0, authBearer)
	add("GET /v1/profile", "", ``, 1, authGarbageToken)
	add("PATCH /v1/profile", "", `{"profile":{"name":"Alice","langs":["en","fr"]}}`, 0, authBearer)
	add("PATCH /v1/profile", "", `{"profile":null}`, 0, authCookie)
	add("DELETE /v1/profile", "", `{"password":"$PASSWORD"}`, 0, authBearer)
	add("POST /v1/password/change", "", `{"current_password":"$PASSWORD","new_password":"a brand new passphrase"}`, 0, authBearer)
	add("POST /v1/password/change", "", `{"current_password":"$PASSWORD","new_password":"a brand new passphrase"}`, 0, authAccess)
	add("POST /v1/password/reset", "", `{"email":"$EMAIL"}`, 0, authNone)
	add("POST /v1/password/reset/confirm", "", `{"token":"$RESET","new_password":"a brand new passphrase","transport":"jwt_cookie"}`, 0, authNone)
	add("GET /v1/session/data", "", ``, 1, authCookie)
	add("PUT /v1/session/data/{key}", "cart", `{"items":[1,2,3]}`, 0, authCookie)
	add("PUT /v1/session/data/{key}", "cart", `"x"`, 0, authNone)
	add("PUT /v1/session/data/{key}", "a%2Fb", `1`, 0, authNone)
	add("PUT /v1/session/data/{key}", "k", `{"a":1}{"b":2}`, 0, authBearer)
	add("DELETE /v1/session/data/{key}", "cart", ``, 1, authCookie)
	add("GET /.well-known/jwks.json", "", ``, 1, authNone)
	add("POST /v1/token/refresh", "", `{"refresh_token":"$REFRESH"}`, 0, authNone)
	add("POST /v1/token/refresh", "", ``, 1, authJWTCookies)
	add("POST /v1/token/revoke", "", `{"refresh_token":"$REFRESH"}`, 0, authNone)
	add("POST /admin/v1/sessions", "", `{"user_id":"$USER","data":{"k":{"v":1}},"transport":"jwt"}`, 0, authNone)
	add("POST /admin/v1/sessions", "", `{"user_id":"$USER","data":{"bad key":1}}`, 0, authNone)
	add("POST /admin/v1/sessions/validate", "", `{"token":"$TOKEN"}`, 0, authNone)
	add("POST /admin/v1/sessions/validate", "", `{"token":"$TOKEN"}`, 0, authBadAdminKey)
	add("DELETE /admin/v1/sessions/{id}", "$SESSION", ``, 1, authNone)
	add("GET /admin/v1/users", "?email=$EMAIL", ``, 1, authNone)
	add("POST /admin/v1/users", "", `{"email":"carol@example.com","password":"yet another passphrase"}`, 0, authNone)
	add("GET /admin/v1/users/{id}", "$USER", ``, 1, authNone)
	add("DELETE /admin/v1/users/{id}", "$USER", ``, 1, authNone)
	add("GET /admin/v1/users/{id}/sessions", "$USER", ``, 1, authNone)
	add("DELETE /admin/v1/users/{id}/sessions", "$USER", ``, 1, authNone)
	add("POST /admin/v1/users/{id}/password-reset", "$USER", ``, 1, authNone)
	add("GET /admin/v1/users/{id}/events", "$USER?type=signed_in&limit=5", ``, 1, authNone)
	add("admin GET /healthz", "", ``, 1, authNone)
	add("admin GET /readyz", "", ``, 1, authNone)
	add("admin GET /metrics", "", ``, 1, authNone)

	f.Fuzz(func(t *testing.T, route, path string, body []byte, ctype, auth uint8) {
		w := newFuzzWorld(t)
		rt := pickRoute(routes, route)
		method, target, _ := strings.Cut(rt.pattern, " ")
		path = w.vars.Replace(path)
		// The path value goes where the pattern has one; anything after a
		// "?" in it is the query.
		value, query, _ := strings.Cut(path, "?")
		if i := strings.IndexByte(target, '{'); i >= 0 {
			j := strings.IndexByte(target, '}')
			target = target[:i] + url.PathEscape(value) + target[j+1:]
		}
		if query != "" {
			target += "?" + query
		}
		body = []byte(w.vars.Replace(string(body)))
		r := httptest.NewRequest(method, "http://sessiond.test"+"/", bytes.NewReader(body))
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return // not a request a client could send
		}
		r.URL, r.RequestURI = u, u.RequestURI()
		if ct := fuzzContentTypes[int(ctype)%len(fuzzContentTypes)]; ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		switch auth % authCount {
		case authCookie:
			r.AddCookie(&http.Cookie{Name: "__Host-session", Value: w.token})
		case authBearer:
			r.Header.Set("Authorization", "Bearer "+w.token)
		case authAccess:
			r.Header.Set("Authorization", "Bearer "+w.access)
		case authJWTCookies:
			r.AddCookie(&http.Cookie{Name: "__Host-access", Value: w.access})
			r.AddCookie(&http.Cookie{Name: "__Secure-refresh", Value: w.refresh})
		case authCrossSite:
			r.AddCookie(&http.Cookie{Name: "__Host-session", Value: w.token})
			r.Header.Set("Sec-Fetch-Site", "cross-site")
			r.Header.Set("Origin", "https://evil.example")
		case authGarbageToken:
			r.Header.Set("Authorization", "Bearer "+string(body))
		}
		h := w.public
		if rt.admin {
			h = w.admin
			if auth%authCount == authBadAdminKey {
				r.Header.Set("Authorization", "Bearer not-the-key")
			} else if r.Header.Get("Authorization") == "" || auth%authCount == authAccess {
				r.Header.Set("Authorization", "Bearer "+fuzzAdminKey)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		checkAnswer(t, method+" "+target, rt.key() == "admin GET /metrics", body, rec)
	})
}

// checkAnswer holds one answer to the properties of FuzzAPI.
func checkAnswer(t *testing.T, req string, metrics bool, body []byte, rec *httptest.ResponseRecorder) {
	t.Helper()
	res := rec.Result()
	all, _ := io.ReadAll(res.Body)
	got := all
	if len(got) > 300 { // enough for a message; the checks below use all
		got = append(got[:300:300], "…"...)
	}
	ct := res.Header.Get("Content-Type")
	if res.StatusCode >= 500 {
		t.Fatalf("%s with body %q: %d %s", req, body, res.StatusCode, got)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("%s: answer %d without the security headers: %v", req, res.StatusCode, res.Header)
	}
	if res.StatusCode >= 400 {
		var e struct {
			Error *struct {
				Code    *string `json:"code"`
				Message *string `json:"message"`
			} `json:"error"`
		}
		dec := json.NewDecoder(bytes.NewReader(all))
		dec.DisallowUnknownFields()
		if ct != "application/json" || dec.Decode(&e) != nil || e.Error == nil || e.Error.Code == nil ||
			*e.Error.Code == "" || e.Error.Message == nil || dec.More() {
			t.Fatalf("%s with body %q: %d answered %q (%s), not the JSON error shape", req, body, res.StatusCode, got, ct)
		}
		if !strings.Contains(res.Header.Get("Cache-Control"), "no-store") {
			t.Fatalf("%s: error %d may be cached: Cache-Control %q", req, res.StatusCode, res.Header.Get("Cache-Control"))
		}
		return
	}
	switch {
	case res.StatusCode >= 300:
		t.Fatalf("%s with body %q: %d %q (%s): the API does not redirect", req, body, res.StatusCode, got, res.Header.Get("Location"))
	case res.StatusCode == http.StatusNoContent && len(all) > 0:
		t.Fatalf("%s: 204 with a body %q", req, got)
	case len(all) > 0 && !metrics && !json.Valid(all):
		t.Fatalf("%s: %d with a body that is not JSON: %q (%s)", req, res.StatusCode, got, ct)
	}
}

// TestUncleanPathIsNotFound: a path with a doubled slash or a dot segment
// got the mux's 307 redirect with an HTML body (found by FuzzAPI); it is
// the contract's JSON 404 on both listeners.
func TestUncleanPathIsNotFound(t *testing.T) {
	w := newFuzzWorld(t)
	for _, c := range []struct {
		h      http.Handler
		method string
		path   string
	}{
		{w.admin, "GET", "/admin/v1/users//sessions"},
		{w.admin, "DELETE", "/admin/v1/users/x/../y/sessions"},
		{w.public, "GET", "/v1//session"},
		{w.public, "POST", "/v1/./login"},
		{w.public, "GET", "//healthz"},
	} {
		r := httptest.NewRequest(c.method, "/", nil)
		r.URL.Path, r.RequestURI = c.path, c.path
		r.Header.Set("Authorization", "Bearer "+fuzzAdminKey)
		rec := httptest.NewRecorder()
		c.h.ServeHTTP(rec, r)
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"not_found"`) {
			t.Errorf("%s %s: %d %q, want the JSON 404", c.method, c.path, rec.Code, rec.Body)
		}
	}
}

// TestFuzzWorldCredentials makes sure every credential of the fuzz world
// works, so that FuzzAPI's seeds do reach the handlers behind them.
func TestFuzzWorldCredentials(t *testing.T) {
	for _, c := range []struct {
		pattern, path, body string
		auth                uint8
		want                int
	}{
		{"GET /v1/session", "", "", authCookie, 200},
		{"GET /v1/session", "", "", authBearer, 200},
		{"GET /v1/session", "", "", authAccess, 200},
		{"GET /v1/session", "", "", authJWTCookies, 200},
		{"GET /v1/session", "", "", authNone, 401},
		{"POST /v1/logout", "", "", authCrossSite, 403},
		{"POST /v1/token/refresh", "", `{"refresh_token":"$REFRESH"}`, authNone, 200},
		{"POST /v1/login", "", `{"email":"$EMAIL","password":"$PASSWORD"}`, authNone, 200},
		{"POST /v1/password/reset/confirm", "", `{"token":"$RESET","new_password":"a brand new passphrase"}`, authNone, 200},
		{"POST /admin/v1/sessions/validate", "", `{"token":"$TOKEN"}`, authNone, 200},
		{"POST /admin/v1/sessions/validate", "", `{"token":"$TOKEN"}`, authBadAdminKey, 401},
		{"GET /admin/v1/users/{id}", "$USER", "", authNone, 200},
		{"GET /admin/v1/users", "?email=$EMAIL", "", authNone, 200},
	} {
		w := newFuzzWorld(t)
		method, target, _ := strings.Cut(c.pattern, " ")
		value, query, _ := strings.Cut(w.vars.Replace(c.path), "?")
		if i := strings.IndexByte(target, '{'); i >= 0 {
			target = target[:i] + value
		}
		if query != "" {
			target += "?" + query
		}
		r := httptest.NewRequest(method, target, strings.NewReader(w.vars.Replace(c.body)))
		r.Header.Set("Content-Type", "application/json")
		h := w.public
		switch c.auth {
		case authCookie, authCrossSite:
			r.AddCookie(&http.Cookie{Name: "__Host-session", Value: w.token})
			if c.auth == authCrossSite {
				r.Header.Set("Sec-Fetch-Site", "cross-site")
			}
		case authBearer:
			r.Header.Set("Authorization", "Bearer "+w.token)
		case authAccess:
			r.Header.Set("Authorization", "Bearer "+w.access)
		case authJWTCookies:
			r.AddCookie(&http.Cookie{Name: "__Host-access", Value: w.access})
		}
		if strings.Contains(c.pattern, "/admin/") {
			h = w.admin
			key := fuzzAdminKey
			if c.auth == authBadAdminKey {
				key = "wrong"
			}
			r.Header.Set("Authorization", "Bearer "+key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != c.want {
			t.Errorf("%s %s (auth %d): %d %s, want %d", method, target, c.auth, rec.Code, rec.Body, c.want)
		}
	}
}
