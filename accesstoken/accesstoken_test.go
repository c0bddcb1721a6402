package accesstoken_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/sessiond/sessiond/accesstoken"
)

func newKey(t *testing.T, at time.Time) *accesstoken.Key {
	t.Helper()
	k, err := accesstoken.NewKey(at, 0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyFor(keys ...*accesstoken.Key) func(string) (ed25519.PublicKey, bool) {
	return func(kid string) (ed25519.PublicKey, bool) {
		for _, k := range keys {
			if k.ID == kid {
				return k.Public(), true
			}
		}
		return nil, false
	}
}

var issuer = &accesstoken.Issuer{Name: "https://login.example", Audience: []string{"orders"}, TTL: 5 * time.Minute}

func TestIssueAndVerify(t *testing.T) {
	now := time.Now()
	k := newKey(t, now)
	tok, claims, err := issuer.Issue(accesstoken.NewRing([]*accesstoken.Key{k}), accesstoken.Params{
		UserID: "u1", SessionID: "s1", RememberMe: true, AMR: []string{"pwd"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := accesstoken.Verify(tok, keyFor(k), accesstoken.Expected{Issuer: "https://login.example", Audience: "orders"}, now)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "u1" || c.SessionID != "s1" || !c.RememberMe || c.ID == "" || c.ID != claims.ID || c.AMR[0] != "pwd" {
		t.Fatalf("claims = %+v", c)
	}
	if got := c.Expiry.Time().Sub(c.IssuedAt.Time()); got != 5*time.Minute {
		t.Fatalf("lifetime %v", got)
	}
	other := newKey(t, now)
	for name, tc := range map[string]struct {
		tok  string
		keys func(string) (ed25519.PublicKey, bool)
		want accesstoken.Expected
		at   time.Time
		err  error
	}{
		"other issuer":        {tok, keyFor(k), accesstoken.Expected{Issuer: "https://evil"}, now, accesstoken.ErrInvalid},
		"other audience":      {tok, keyFor(k), accesstoken.Expected{Issuer: issuer.Name, Audience: "billing"}, now, accesstoken.ErrInvalid},
		"expired":             {tok, keyFor(k), accesstoken.Expected{Issuer: issuer.Name}, now.Add(6 * time.Minute), accesstoken.ErrExpired},
		"not yet valid":       {tok, keyFor(k), accesstoken.Expected{Issuer: issuer.Name}, now.Add(-2 * time.Minute), accesstoken.ErrInvalid},
		"unknown key":         {tok, keyFor(other), accesstoken.Expected{Issuer: issuer.Name}, now, accesstoken.ErrUnknownKey},
		"wrong key, same kid": {tok, func(string) (ed25519.PublicKey, bool) { return other.Public(), true }, accesstoken.Expected{Issuer: issuer.Name}, now, accesstoken.ErrInvalid},
		"tampered":            {tok[:len(tok)-3] + "AAA", keyFor(k), accesstoken.Expected{Issuer: issuer.Name}, now, accesstoken.ErrInvalid},
		"alg none":            {"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1MSJ9.", keyFor(k), accesstoken.Expected{Issuer: issuer.Name}, now, accesstoken.ErrInvalid},
		"garbage":             {"not a jwt", keyFor(k), accesstoken.Expected{Issuer: issuer.Name}, now, accesstoken.ErrInvalid},
	} {
		if _, err := accesstoken.Verify(tc.tok, tc.keys, tc.want, tc.at); !errors.Is(err, tc.err) {
			t.Errorf("%s: Verify = %v, want %v", name, err, tc.err)
		}
	}
	// Within the leeway an expired token still passes.
	if _, err := accesstoken.Verify(tok, keyFor(k), accesstoken.Expected{Issuer: issuer.Name}, now.Add(5*time.Minute+10*time.Second)); err != nil {
		t.Errorf("10s past expiry with a 30s leeway: %v", err)
	}
}

func TestRingRotationRules(t *testing.T) {
	t0 := time.Now()
	old := newKey(t, t0)
	cur, err := accesstoken.NewKey(t0.Add(time.Hour), 10*time.Minute) // signs from t0+1h10m
	if err != nil {
		t.Fatal(err)
	}
	ring := accesstoken.NewRing([]*accesstoken.Key{old, cur})
	ttl, skew := 5*time.Minute, 30*time.Second
	at := func(d time.Duration) time.Time { return t0.Add(time.Hour + d) }
	if s, _ := ring.Signing(at(5 * time.Minute)); s.ID != old.ID {
		t.Fatal("a new key must not sign before it is active")
	}
	if got := ring.Published(at(5*time.Minute), ttl, skew); len(got) != 2 {
		t.Fatalf("a new key must be published before it signs; got %d keys", len(got))
	}
	if s, _ := ring.Signing(at(10 * time.Minute)); s.ID != cur.ID {
		t.Fatal("the newest active key must sign")
	}
	if got := ring.Published(at(15*time.Minute), ttl, skew); len(got) != 2 {
		t.Fatalf("a key retired 5m ago (tokens live 5m + 30s skew) must stay published; got %d keys", len(got))
	}
	if got := ring.Published(at(16*time.Minute), ttl, skew); len(got) != 1 || got[0].ID != cur.ID {
		t.Fatal("a key whose tokens have all expired must leave the JWKS")
	}
	if got := ring.Expired(at(16*time.Minute), ttl, skew); len(got) != 1 || got[0].ID != old.ID {
		t.Fatal("Expired must name the retired key once its tokens are dead")
	}
	if got := ring.Expired(at(15*time.Minute), ttl, skew); len(got) != 0 {
		t.Fatal("a key is not expired while its tokens may live")
	}
	// The very first key signs at once even with an activation delay.
	first, _ := accesstoken.NewKey(t0, time.Hour)
	if s, err := accesstoken.NewRing([]*accesstoken.Key{first}).Signing(t0); err != nil || s.ID != first.ID {
		t.Fatal("a lone key must sign")
	}
	if _, err := accesstoken.NewRing(nil).Signing(t0); !errors.Is(err, accesstoken.ErrNoKey) {
		t.Fatal("an empty ring must say ErrNoKey")
	}
}

func TestKeyEncryption(t *testing.T) {
	e, err := accesstoken.NewKeyEncryption("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=") // 32 bytes
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t, time.Now())
	sealed, err := e.Seal(k)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), string(k.Private.Seed())) {
		t.Fatal("the sealed key contains the seed")
	}
	priv, err := e.Open(k.ID, sealed)
	if err != nil || !priv.Equal(k.Private) {
		t.Fatalf("Open: %v", err)
	}
	other, _ := accesstoken.NewKeyEncryption("YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=")
	if _, err := other.Open(k.ID, sealed); err == nil {
		t.Fatal("another key-encryption key opened the key")
	}
	if _, err := e.Open("another-id", sealed); err == nil {
		t.Fatal("a sealed key opened under another id")
	}
	if _, err := accesstoken.NewKeyEncryption("c2hvcnQ="); !errors.Is(err, accesstoken.ErrKEK) {
		t.Fatal("a short key-encryption key was accepted")
	}
}

// jwksServer serves the JWKS of *keys and counts fetches.
func jwksServer(t *testing.T, mu *sync.Mutex, keys *[]*accesstoken.Key, fetches *atomic.Int32) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		b, err := accesstoken.JWKS(*keys)
		mu.Unlock()
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestVerifierFetchesAndRefetchesOnUnknownKid(t *testing.T) {
	now := time.Now()
	k1 := newKey(t, now)
	var mu sync.Mutex
	keys := []*accesstoken.Key{k1}
	var fetches atomic.Int32
	srv := jwksServer(t, &mu, &keys, &fetches)
	v := accesstoken.NewVerifier(accesstoken.VerifierConfig{JWKSURL: srv.URL, Issuer: issuer.Name, Audience: "orders", MinRefetch: time.Millisecond})
	tok1, _, _ := issuer.Issue(accesstoken.NewRing(keys), accesstoken.Params{UserID: "u1", SessionID: "s1"}, now)
	for range 3 {
		if _, err := v.Verify(context.Background(), tok1); err != nil {
			t.Fatal(err)
		}
	}
	if fetches.Load() != 1 {
		t.Fatalf("%d JWKS fetches for 3 tokens, want 1 (cached)", fetches.Load())
	}
	// Rotation: a new key signs; the verifier learns it on the first token.
	k2 := newKey(t, now.Add(time.Second))
	mu.Lock()
	keys = []*accesstoken.Key{k2, k1}
	mu.Unlock()
	time.Sleep(2 * time.Millisecond)
	tok2, _, _ := issuer.Issue(accesstoken.NewRing([]*accesstoken.Key{k2}), accesstoken.Params{UserID: "u2", SessionID: "s2"}, now)
	c, err := v.Verify(context.Background(), tok2)
	if err != nil || c.Subject != "u2" {
		t.Fatalf("token of a new key: %v", err)
	}
	if fetches.Load() != 2 {
		t.Fatalf("fetches = %d, want 2", fetches.Load())
	}
	// Middleware.
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := accesstoken.FromContext(r.Context())
		w.Write([]byte(c.Subject))
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Authorization", "Bearer "+tok2)
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Body.String() != "u2" {
		t.Fatalf("middleware with a good token: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 401 {
		t.Fatalf("middleware without a token: %d", rec.Code)
	}
}

func TestVerifierThrottlesRefetches(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	keys := []*accesstoken.Key{newKey(t, now)}
	var fetches atomic.Int32
	srv := jwksServer(t, &mu, &keys, &fetches)
	v := accesstoken.NewVerifier(accesstoken.VerifierConfig{JWKSURL: srv.URL, Issuer: issuer.Name, MinRefetch: time.Hour})
	stranger := newKey(t, now)
	tok, _, _ := issuer.Issue(accesstoken.NewRing([]*accesstoken.Key{stranger}), accesstoken.Params{UserID: "u", SessionID: "s"}, now)
	for range 20 {
		if _, err := v.Verify(context.Background(), tok); err == nil {
			t.Fatal("token of an unpublished key verified")
		}
	}
	if fetches.Load() != 1 {
		t.Fatalf("%d fetches for 20 tokens of an unknown key, want 1", fetches.Load())
	}
}

// TestVerifierHonoursAShortMaxAge: with a JWKS max-age shorter than
// MinRefetch, an expired copy is fetched again at its max-age, so a key
// published ahead of its activation is known when its first token arrives.
func TestVerifierHonoursAShortMaxAge(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	keys := []*accesstoken.Key{newKey(t, now)}
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		b, _ := accesstoken.JWKS(keys)
		mu.Unlock()
		w.Header().Set("Cache-Control", "public, max-age=2")
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	clock := now
	v := accesstoken.NewVerifier(accesstoken.VerifierConfig{JWKSURL: srv.URL, Issuer: issuer.Name,
		Now: func() time.Time { return clock }}) // MinRefetch: the default 10s
	tok, _, _ := issuer.Issue(accesstoken.NewRing(keys), accesstoken.Params{UserID: "u", SessionID: "s"}, now)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// A rotation: the new key is published, and signs 3s later.
	k2 := newKey(t, now)
	mu.Lock()
	keys = append(keys, k2)
	mu.Unlock()
	clock = now.Add(3 * time.Second)
	tok2, _, _ := issuer.Issue(accesstoken.NewRing([]*accesstoken.Key{k2}), accesstoken.Params{UserID: "u", SessionID: "s"}, clock)
	if _, err := v.Verify(context.Background(), tok2); err != nil {
		t.Fatalf("the new key's token 3s after a fetch with max-age=2: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// Within the max-age nothing is fetched, even for unknown keys beyond
	// MinRefetch's allowance.
	stranger, _, _ := issuer.Issue(accesstoken.NewRing([]*accesstoken.Key{newKey(t, now)}), accesstoken.Params{UserID: "u", SessionID: "s"}, clock)
	for range 5 {
		_, _ = v.Verify(context.Background(), stranger)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after unknown-key tokens within MinRefetch, want still 2", n)
	}
}

// TestOtherJOSELibraryVerifies checks our tokens with lestrrat-go/jwx, a
// JOSE implementation independent of the go-jose that signs them, reading
// the keys from the JWKS document as a third party would.
func TestOtherJOSELibraryVerifies(t *testing.T) {
	now := time.Now()
	k := newKey(t, now)
	doc, err := accesstoken.JWKS([]*accesstoken.Key{k})
	if err != nil {
		t.Fatal(err)
	}
	set, err := jwk.Parse(doc)
	if err != nil {
		t.Fatalf("jwx cannot parse our JWKS: %v", err)
	}
	tok, _, _ := issuer.Issue(accesstoken.NewRing([]*accesstoken.Key{k}), accesstoken.Params{UserID: "u9", SessionID: "s9"}, now)
	parsed, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithIssuer(issuer.Name), jwt.WithAudience("orders"))
	if err != nil {
		t.Fatalf("jwx refuses our token: %v", err)
	}
	if sub, _ := parsed.Subject(); sub != "u9" {
		t.Fatalf("sub = %q", sub)
	}
	var sid string
	if err := parsed.Get("sid", &sid); err != nil || sid != "s9" {
		t.Fatalf("sid = %q, %v", sid, err)
	}
}
