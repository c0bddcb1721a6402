package sealed_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/sealed"
	"github.com/sessiond/sessiond/sessionhttp"
)

func mustKeys(t *testing.T, keys ...[]byte) *sealed.Keys {
	t.Helper()
	ks, err := sealed.NewKeys(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func session(now time.Time) *sealed.Session {
	return &sealed.Session{UserID: "u1", CreatedAt: now, LastSeenAt: now, IdleExpiresAt: now.Add(time.Hour),
		AbsoluteExpiresAt: now.Add(2 * time.Hour), Data: map[string]json.RawMessage{"cart": json.RawMessage(`["book"]`)}}
}

func TestSealOpenRoundTrip(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	ks := mustKeys(t, sealed.NewKey())
	text, err := ks.Seal("sid", session(now))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, "book") || strings.Contains(text, "u1") {
		t.Fatalf("sealed text shows its content: %s", text)
	}
	got, err := ks.Open("sid", text, now)
	if err != nil || got.UserID != "u1" || string(got.Data["cart"]) != `["book"]` {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	// Two seals of the same session differ (random nonce).
	if again, _ := ks.Seal("sid", session(now)); again == text {
		t.Fatal("sealing is deterministic")
	}
}

func TestOpenRefuses(t *testing.T) {
	now := time.Now().UTC()
	k := sealed.NewKey()
	ks := mustKeys(t, k)
	text, _ := ks.Seal("sid", session(now))
	flipped := []byte(text)
	flipped[len(flipped)/2] ^= 1
	if flipped[len(flipped)/2] == '.' {
		flipped[len(flipped)/2] = 'A'
	}
	for name, c := range map[string]struct{ name, text string }{
		"tampered":     {"sid", string(flipped)},
		"other cookie": {"other", text},
		"truncated":    {"sid", text[:len(text)-4]},
		"garbage":      {"sid", "s1.!!!"},
		"empty":        {"sid", ""},
		"no version":   {"sid", text[3:]},
		"another key":  {"sid", mustSeal(t, mustKeys(t, sealed.NewKey()), session(now))},
	} {
		if _, err := ks.Open(c.name, c.text, now); !errors.Is(err, sealed.ErrInvalid) {
			t.Errorf("%s: Open = %v, want ErrInvalid", name, err)
		}
	}
	if _, err := ks.Open("sid", text, now.Add(time.Hour)); !errors.Is(err, sealed.ErrExpired) {
		t.Errorf("past the idle deadline: %v, want ErrExpired", err)
	}
}

func mustSeal(t *testing.T, ks *sealed.Keys, s *sealed.Session) string {
	t.Helper()
	text, err := ks.Seal("sid", s)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

func TestKeyRotation(t *testing.T) {
	now := time.Now().UTC()
	oldKey, newKey := sealed.NewKey(), sealed.NewKey()
	before := mustSeal(t, mustKeys(t, oldKey), session(now))
	rotated := mustKeys(t, newKey, oldKey)
	if _, err := rotated.Open("sid", before, now); err != nil {
		t.Fatalf("a session sealed with the old key no longer opens during rotation: %v", err)
	}
	after := mustSeal(t, rotated, session(now))
	if _, err := mustKeys(t, newKey).Open("sid", after, now); err != nil {
		t.Fatalf("new seals do not use the first key: %v", err)
	}
	// Retiring the old key ends every session sealed with it: the only
	// revocation sealed sessions have.
	if _, err := mustKeys(t, newKey).Open("sid", before, now); !errors.Is(err, sealed.ErrInvalid) {
		t.Fatalf("retired key still opens: %v", err)
	}
}

func TestTooLarge(t *testing.T) {
	now := time.Now().UTC()
	s := session(now)
	s.Data["blob"] = json.RawMessage(`"` + strings.Repeat("x", 4000) + `"`)
	if _, err := mustKeys(t, sealed.NewKey()).Seal("sid", s); !errors.Is(err, sealed.ErrTooLarge) {
		t.Fatalf("Seal of a 4 KB session = %v, want ErrTooLarge", err)
	}
	if _, err := sealed.NewKeys([]byte("short")); !errors.Is(err, sealed.ErrKey) {
		t.Fatalf("short key: %v", err)
	}
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestMiddleware(t *testing.T) {
	clk := &clock{now: time.Now().UTC()}
	s := sealed.New(mustKeys(t, sealed.NewKey()), sessionhttp.Cookie{}, sealed.Policy{IdleTimeout: 10 * time.Minute}).WithClock(clk.Now)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Put(w, r, "cart", []string{"book"}); err != nil {
			http.Error(w, err.Error(), 413)
		}
	})
	mux.HandleFunc("POST /big", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Put(w, r, "blob", strings.Repeat("x", 5000)); errors.Is(err, sealed.ErrTooLarge) {
			http.Error(w, "too large", 413)
		}
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) { _ = s.Login(w, r, "ada", r.URL.Query().Has("remember")) })
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) { _ = s.Logout(w, r) })
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		sess, ok := sealed.FromContext(r.Context())
		if !ok {
			http.Error(w, "none", 401)
			return
		}
		_ = json.NewEncoder(w).Encode(sess)
	})
	srv := httptest.NewServer(s.Middleware(mux))
	defer srv.Close()

	var cookie string
	do := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if cookie != "" {
			req.AddCookie(&http.Cookie{Name: sessionhttp.DefaultCookieName, Value: cookie})
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if n := len(resp.Header.Values("Set-Cookie")); n > 1 {
			t.Fatalf("%s %s set %d cookies", method, path, n)
		}
		for _, c := range resp.Cookies() {
			if c.MaxAge < 0 {
				cookie = ""
			} else {
				cookie = c.Value
			}
		}
		return resp, string(b)
	}
	do("POST", "/add")
	if cookie == "" {
		t.Fatal("Put set no cookie")
	}
	do("POST", "/login?remember")
	resp, body := do("GET", "/me")
	if resp.StatusCode != 200 || !strings.Contains(body, `"u":"ada"`) || !strings.Contains(body, `"cart":["book"]`) {
		t.Fatalf("after login: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do("POST", "/big"); resp.StatusCode != 413 {
		t.Fatalf("oversized Put = %d", resp.StatusCode)
	}
	if _, body := do("GET", "/me"); !strings.Contains(body, `"cart"`) || strings.Contains(body, "blob") {
		t.Fatalf("a refused Put changed the session: %s", body)
	}
	// Sliding: use after the touch interval re-seals with a later deadline.
	stale := cookie
	clk.Add(2 * time.Minute)
	if resp, _ := do("GET", "/me"); resp.StatusCode != 200 || cookie == stale {
		t.Fatalf("use after the touch interval did not re-seal (status %d)", resp.StatusCode)
	}
	do("POST", "/logout")
	if resp, _ := do("GET", "/me"); resp.StatusCode != 401 {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
	// The honest limit: a copy of a cookie taken before logout still opens.
	cookie = stale
	if resp, _ := do("GET", "/me"); resp.StatusCode != 200 {
		t.Fatalf("a copied cookie stopped working (%d); sealed sessions cannot be revoked — update the docs if this changed", resp.StatusCode)
	}
}
