package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// cookieName is the default session cookie name.
const cookieName = "__Host-session"

// J is a JSON object for request bodies.
type J = map[string]any

// httpClient follows no redirects and keeps no cookies: every cookie a test
// sends it sets itself.
var httpClient = &http.Client{
	Timeout:   20 * time.Second,
	Transport: validating(http.DefaultTransport),
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Resp is a finished response with its body read.
type Resp struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
	JSON         map[string]any // the body as a JSON object, nil when it is not one
	Took         time.Duration
}

// reqOpt adjusts a request.
type reqOpt func(*http.Request)

// bearer authenticates with Authorization: Bearer tok.
func bearer(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

// cookie sends the session cookie with value tok.
func cookie(tok string) reqOpt {
	return func(r *http.Request) { r.Header.Add("Cookie", cookieName+"="+tok) }
}

// header sets a request header; an empty value deletes it.
func header(k, v string) reqOpt {
	return func(r *http.Request) {
		if v == "" {
			r.Header.Del(k)
			return
		}
		r.Header.Set(k, v)
	}
}

// userAgent sets the User-Agent.
func userAgent(ua string) reqOpt { return header("User-Agent", ua) }

// raw is a request body sent as is, with no Content-Type unless a header
// option adds one.
type raw []byte

// call makes a request to the public API.
func (s *Server) call(t *testing.T, method, path string, body any, opts ...reqOpt) *Resp {
	t.Helper()
	return do(t, s.Pub, method, path, body, opts...)
}

// adm makes a request to the admin listener with the admin key.
func (s *Server) adm(t *testing.T, method, path string, body any, opts ...reqOpt) *Resp {
	t.Helper()
	return do(t, s.Admin, method, path, body, append([]reqOpt{bearer(adminKey)}, opts...)...)
}

// do makes one request and checks the invariants every answer of sessiond
// must keep, whatever the request: no 5xx, the JSON error shape on every
// error, Cache-Control: no-store on session and user data, Retry-After on
// 429, no credentialed CORS, and never a password hash.
func do(t *testing.T, base, method, path string, body any, opts ...reqOpt) *Resp {
	t.Helper()
	var rd io.Reader
	jsonBody := false
	switch b := body.(type) {
	case nil:
	case raw:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encoding request body: %v", err)
		}
		rd = bytes.NewReader(enc)
		jsonBody = true
	}
	req, err := http.NewRequestWithContext(context.WithValue(t.Context(), testNameKey{}, t.Name()), method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if jsonBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "sessiond-e2e")
	for _, o := range opts {
		o(req)
	}
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	r := &Resp{Method: method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: b, Took: took}
	if len(bytes.TrimSpace(b)) > 0 {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			r.JSON = m
		}
	}
	checkInvariants(t, req, r)
	return r
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func checkInvariants(t *testing.T, req *http.Request, r *Resp) {
	t.Helper()
	where := fmt.Sprintf("%s %s -> %d", r.Method, r.Path, r.Status)
	if r.Status >= 500 && !(r.Path == "/readyz" && r.Status == http.StatusServiceUnavailable) {
		t.Errorf("%s: server error, body %s", where, r.Body)
	}
	if r.Status >= 400 && r.Method != http.MethodHead {
		e, _ := r.JSON["error"].(map[string]any)
		code, _ := e["code"].(string)
		msg, _ := e["message"].(string)
		switch {
		case r.JSON == nil || len(r.JSON) != 1 || e == nil || len(e) != 2:
			t.Errorf(`%s: error body is not {"error":{"code","message"}}: %s`, where, r.Body)
		case !snakeCase.MatchString(code) || msg == "":
			t.Errorf("%s: error code %q / message %q", where, code, msg)
		}
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: error Content-Type %q", where, ct)
		}
	}
	if r.Status == http.StatusTooManyRequests {
		n, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || n < 1 {
			t.Errorf("%s: Retry-After %q, want whole seconds >= 1", where, r.Header.Get("Retry-After"))
		}
	}
	for _, k := range []string{"session", "user", "sessions", "token", "data"} {
		if _, ok := r.JSON[k]; ok && !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
			t.Errorf("%s: body has %q but Cache-Control is %q", where, k, r.Header.Get("Cache-Control"))
		}
	}
	if acao := r.Header.Get("Access-Control-Allow-Origin"); acao != "" {
		if strings.EqualFold(r.Header.Get("Access-Control-Allow-Credentials"), "true") || acao == req.Header.Get("Origin") {
			t.Errorf("%s: grants CORS to %q (credentials %q)", where, acao, r.Header.Get("Access-Control-Allow-Credentials"))
		}
	}
	checkTokenLeaks(t, where, r)
	// Tokens are random base64url: blank them out first, or one that
	// happens to spell "panic" would look like a leaked stack trace.
	low := strings.ToLower(randomText.ReplaceAllString(string(r.Body), ""))
	for _, bad := range []string{"$argon2", "password_hash", "passwordhash", "goroutine ", "panic", "sqlite", ".go:"} {
		if strings.Contains(low, bad) {
			t.Errorf("%s: body contains %q: %s", where, bad, r.Body)
		}
	}
}

// randomText matches the random texts an answer may carry: session,
// refresh and reset tokens, and JWTs.
var randomText = regexp.MustCompile(`sd[trp]_[A-Za-z0-9_-]+|eyJ[A-Za-z0-9_.-]+`)

// issued holds every token a response has handed out (a "token" field or
// a cookie value), across the suite.
var issued sync.Map

// checkTokenLeaks records the tokens r issues and fails when its body
// holds a token besides the one it issues: no answer returns a token
// except the one that created or rotated it.
func checkTokenLeaks(t *testing.T, where string, r *Resp) {
	t.Helper()
	own, _ := r.JSON["token"].(string)
	body := string(r.Body)
	if own != "" {
		body = strings.Replace(body, `"`+own+`"`, `""`, 1)
	}
	issued.Range(func(k, _ any) bool {
		if tok := k.(string); strings.Contains(body, tok) {
			t.Errorf("%s: the body holds a token it does not issue: %s", where, r.Body)
			return false
		}
		return true
	})
	if own != "" {
		issued.Store(own, true)
	}
	for _, line := range r.Header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(line); err == nil && len(c.Value) >= 32 {
			issued.Store(c.Value, true)
		}
	}
}

// wantStatus fails the test now unless r has the status.
func wantStatus(t *testing.T, r *Resp, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Method, r.Path, r.Status, status, r.Body)
	}
}

// wantError fails the test now unless r is the error status with code.
func wantError(t *testing.T, r *Resp, status int, code string) {
	t.Helper()
	wantStatus(t, r, status)
	if got := errCode(r); got != code {
		t.Fatalf("%s %s: error code %q, want %q; body %s", r.Method, r.Path, got, code, r.Body)
	}
}

func errCode(r *Resp) string {
	e, _ := r.JSON["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// obj returns r.JSON[key] as an object, failing when it is not one.
func obj(t *testing.T, r *Resp, key string) map[string]any {
	t.Helper()
	o, ok := r.JSON[key].(map[string]any)
	if !ok {
		t.Fatalf("%s %s: %q is not an object in %s", r.Method, r.Path, key, r.Body)
	}
	return o
}

// str returns m[key] as a non-empty string, failing otherwise.
func str(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, ok := m[key].(string)
	if !ok || s == "" {
		t.Fatalf("%q is not a non-empty string in %v", key, m)
	}
	return s
}

// wantKeys fails unless m has exactly keys.
func wantKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want := append([]string(nil), keys...)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("%s has keys %v, want exactly %v", what, got, want)
	}
}

var sessionKeys = []string{"id", "user_id", "anonymous", "remember_me", "created_at", "last_seen_at",
	"expires_at", "idle_expires_at", "absolute_expires_at", "authenticated_at", "device", "ip", "current"}

// checkSession checks the shape of a session object and returns it.
func checkSession(t *testing.T, s map[string]any) map[string]any {
	t.Helper()
	wantKeys(t, "session", s, sessionKeys...)
	str(t, s, "id")
	for _, k := range []string{"created_at", "last_seen_at", "expires_at", "idle_expires_at", "absolute_expires_at"} {
		ts(t, s, k)
	}
	idle, abs := ts(t, s, "idle_expires_at"), ts(t, s, "absolute_expires_at")
	if want := minTime(idle, abs); !ts(t, s, "expires_at").Equal(want) {
		t.Errorf("expires_at %v is not the earlier of idle %v and absolute %v", s["expires_at"], idle, abs)
	}
	dev, ok := s["device"].(map[string]any)
	if !ok {
		t.Fatalf("device is not an object: %v", s["device"])
	}
	wantKeys(t, "device", dev, "user_agent", "browser", "os")
	for _, k := range []string{"anonymous", "remember_me", "current"} {
		if _, ok := s[k].(bool); !ok {
			t.Errorf("session %q is not a boolean: %v", k, s[k])
		}
	}
	if _, ok := s["ip"].(string); !ok {
		t.Errorf("session ip is not a string: %v", s["ip"])
	}
	if s["authenticated_at"] != nil { // null: no proof of the password
		ts(t, s, "authenticated_at")
	}
	switch uid := s["user_id"].(type) {
	case nil:
		if s["anonymous"] != true {
			t.Errorf("user_id null but anonymous %v", s["anonymous"])
		}
	case string:
		if uid == "" || s["anonymous"] != false {
			t.Errorf("user_id %q with anonymous %v", uid, s["anonymous"])
		}
	default:
		t.Errorf("user_id is %T", uid)
	}
	return s
}

// checkUser checks the shape of a user object and returns it.
func checkUser(t *testing.T, u map[string]any) map[string]any {
	t.Helper()
	wantKeys(t, "user", u, "id", "email", "profile", "created_at")
	str(t, u, "id")
	str(t, u, "email")
	ts(t, u, "created_at")
	if _, ok := u["profile"].(map[string]any); !ok {
		t.Errorf("profile is not an object: %v", u["profile"])
	}
	return u
}

// ts parses m[key] as an RFC 3339 UTC time.
func ts(t *testing.T, m map[string]any, key string) time.Time {
	t.Helper()
	s := str(t, m, key)
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s = %q is not RFC 3339: %v", key, s, err)
	}
	if !strings.HasSuffix(s, "Z") {
		t.Errorf("%s = %q is not UTC", key, s)
	}
	return v
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// setCookies returns the response's Set-Cookie headers for the session
// cookie, parsed, with their raw text.
func setCookies(t *testing.T, r *Resp, name string) (cookies []*http.Cookie, lines []string) {
	t.Helper()
	for _, line := range r.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("%s %s: bad Set-Cookie %q: %v", r.Method, r.Path, line, err)
		}
		if c.Name == name {
			cookies = append(cookies, c)
			lines = append(lines, line)
		}
	}
	return cookies, lines
}

// sessionCookie returns the one session cookie r sets, failing when there
// is not exactly one, and checks the attributes every session cookie has.
func sessionCookie(t *testing.T, r *Resp) (*http.Cookie, string) {
	t.Helper()
	cs, lines := setCookies(t, r, cookieName)
	if len(cs) != 1 {
		t.Fatalf("%s %s: %d %s cookies set, want 1: %q", r.Method, r.Path, len(cs), cookieName, r.Header.Values("Set-Cookie"))
	}
	c, line := cs[0], lines[0]
	attrs := strings.ToLower(line)
	if c.Path != "/" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Domain != "" ||
		strings.Contains(attrs, "domain=") {
		t.Errorf("session cookie %q: want Path=/; Secure; HttpOnly; SameSite=Lax and no Domain", line)
	}
	return c, line
}

// wantSessionCookie checks that r sets a live session cookie: a value, and
// no Max-Age or Expires (a browser-session cookie). It returns the token.
func wantSessionCookie(t *testing.T, r *Resp) string {
	t.Helper()
	c, line := sessionCookie(t, r)
	low := strings.ToLower(line)
	if c.Value == "" || c.MaxAge != 0 || !c.Expires.IsZero() || strings.Contains(low, "max-age") || strings.Contains(low, "expires") {
		t.Errorf("session cookie %q: want a value and no Max-Age or Expires", line)
	}
	return c.Value
}

// wantClearedCookie checks that r clears the session cookie (Max-Age=0).
func wantClearedCookie(t *testing.T, r *Resp) {
	t.Helper()
	c, line := sessionCookie(t, r)
	if c.Value != "" || c.MaxAge >= 0 || !strings.Contains(line, "Max-Age=0") {
		t.Errorf("%s %s: cookie %q does not clear the session (want an empty value and Max-Age=0)", r.Method, r.Path, line)
	}
}

// wantNoSessionCookie checks that r sets no session cookie.
func wantNoSessionCookie(t *testing.T, r *Resp) {
	t.Helper()
	if cs, lines := setCookies(t, r, cookieName); len(cs) != 0 {
		t.Errorf("%s %s: sets %q, want no session cookie", r.Method, r.Path, lines)
	}
}

// randHex returns n random bytes in hex.
func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// user is a registered account.
type user struct {
	ID, Email, Password string
}

// newUser registers a fresh account.
func newUser(t *testing.T, s *Server) user {
	t.Helper()
	u := user{Email: "u-" + randHex(6) + "@example.com", Password: "Tr0ub4dor&" + randHex(4)}
	r := s.call(t, "POST", "/v1/register", J{"email": u.Email, "password": u.Password})
	wantStatus(t, r, http.StatusCreated)
	u.ID = str(t, checkUser(t, obj(t, r, "user")), "id")
	return u
}

// login signs u in with the token transport and returns the token and the
// response.
func login(t *testing.T, s *Server, u user, opts ...reqOpt) (string, *Resp) {
	t.Helper()
	r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "token"}, opts...)
	wantStatus(t, r, http.StatusOK)
	return str(t, r.JSON, "token"), r
}

// loginCookie signs u in with the cookie transport and returns the cookie
// token and the response.
func loginCookie(t *testing.T, s *Server, u user, opts ...reqOpt) (string, *Resp) {
	t.Helper()
	r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password}, opts...)
	wantStatus(t, r, http.StatusOK)
	return wantSessionCookie(t, r), r
}

// whoami is GET /v1/session with opts.
func whoami(t *testing.T, s *Server, opts ...reqOpt) *Resp {
	t.Helper()
	return s.call(t, "GET", "/v1/session", nil, opts...)
}

// alive asserts that tok signs in as a user (200) and returns the session.
func alive(t *testing.T, s *Server, tok string) map[string]any {
	t.Helper()
	r := whoami(t, s, bearer(tok))
	wantStatus(t, r, http.StatusOK)
	checkUser(t, obj(t, r, "user"))
	return checkSession(t, obj(t, r, "session"))
}

// deadSoon asserts that tok stops signing anyone in within d: a change
// made by another process (the CLI) reaches the server's cache through the
// database's change log, not at once.
func deadSoon(t *testing.T, s *Server, tok string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r := whoami(t, s, bearer(tok))
		if r.Status == http.StatusUnauthorized {
			dead(t, s, tok)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still signs in %v after it was revoked elsewhere (status %d)", d, r.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dead asserts that tok signs nobody in (401), by bearer and by cookie.
func dead(t *testing.T, s *Server, tok string) {
	t.Helper()
	wantError(t, whoami(t, s, bearer(tok)), http.StatusUnauthorized, "unauthenticated")
	wantError(t, whoami(t, s, cookie(tok)), http.StatusUnauthorized, "unauthenticated")
}
