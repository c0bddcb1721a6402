package sessionhttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/sessionhttp"
)

// fuzzSessions is one Sessions per fuzzing process with one issued
// session. Inputs write $TOKEN where that session's token goes, so the
// fuzzer can build headers around a token it could never guess.
var fuzzSessions = sync.OnceValues(func() (*sessionhttp.Sessions, string) {
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		panic(err)
	}
	_, tok, err := m.Create(context.Background(), sessiond.CreateParams{UserID: "u1"})
	if err != nil {
		panic(err)
	}
	return sessionhttp.New(m, sessionhttp.Cookie{}), tok
})

// FuzzRequestToken sends arbitrary Cookie and Authorization headers
// through Cookie.Token and the Middleware. Properties:
//   - with bearer on, a non-empty Authorization header decides alone
//     (BearerToken's answer, never the cookie); otherwise the token is the
//     session cookie's value exactly as net/http parses it, made only of
//     cookie octets;
//   - BearerToken's answer is trimmed, non-empty, and round-trips through
//     "Bearer "+token in any letter case;
//   - the Middleware signs the request in exactly when the token it
//     carries is the issued one, and an Authorization header never signs
//     in when bearer is off;
//   - a token set with Cookie.Set comes back from Cookie.Token unchanged.
func FuzzRequestToken(f *testing.F) {
	f.Add("__Host-session=$TOKEN", "", false, false)
	f.Add("", "Bearer $TOKEN", true, true)
	f.Add("__Host-session=$TOKEN", "Bearer $TOKEN", true, false)
	f.Add("__Host-session=$TOKEN", "Basic Zm9vOmJhcg==", true, true)
	f.Add("a=b; __Host-session=\"$TOKEN\"; c=d", "bearer   $TOKEN  ", true, true)
	f.Add("__Host-session=$TOKEN; __Host-session=other", "", false, true)
	f.Add("__host-session=$TOKEN", "Bearer", true, true)
	f.Add("__Host-session=$TOKEN\x00", "BEARER\t$TOKEN", true, true)
	f.Add(";;;=;=\"\";", "Bearer \"$TOKEN\"", true, true)
	f.Fuzz(func(t *testing.T, cookieHeader, auth string, withAuth, bearer bool) {
		s, issued := fuzzSessions()
		cookieHeader = strings.ReplaceAll(cookieHeader, "$TOKEN", issued)
		auth = strings.ReplaceAll(auth, "$TOKEN", issued)
		c := sessionhttp.Cookie{}.WithDefaults()

		r := httptest.NewRequest("GET", "/", nil)
		r.Header["Cookie"] = []string{cookieHeader}
		if withAuth {
			r.Header["Authorization"] = []string{auth}
		}
		tok, fromCookie := c.Token(r, bearer)
		if bearer && withAuth && auth != "" {
			want, _ := sessionhttp.BearerToken(auth)
			if tok != want || fromCookie {
				t.Fatalf("Authorization %q: Token = %q (cookie %v), want %q from the header", auth, tok, fromCookie, want)
			}
		} else {
			ck, err := r.Cookie(c.Name)
			switch {
			case err != nil && (tok != "" || fromCookie):
				t.Fatalf("no %s cookie in %q, Token = %q (cookie %v)", c.Name, cookieHeader, tok, fromCookie)
			case err == nil && (tok != ck.Value || !fromCookie):
				t.Fatalf("cookie header %q: Token = %q (cookie %v), the cookie is %q", cookieHeader, tok, fromCookie, ck.Value)
			}
			for i := 0; fromCookie && i < len(tok); i++ {
				if b := tok[i]; b < 0x20 || b >= 0x7f || b == ';' || b == '"' || b == '\\' {
					t.Fatalf("cookie value %q has byte %#x", tok, b)
				}
			}
		}

		if bt, ok := sessionhttp.BearerToken(auth); ok {
			if bt == "" || bt != strings.TrimSpace(bt) {
				t.Fatalf("BearerToken(%q) = %q: empty or untrimmed", auth, bt)
			}
			for _, scheme := range []string{"Bearer ", "bearer ", "BEARER ", "bEaReR "} {
				if again, ok := sessionhttp.BearerToken(scheme + bt); !ok || again != bt {
					t.Fatalf("BearerToken(%q) = %q, %v; want %q", scheme+bt, again, ok, bt)
				}
			}
		} else if bt != "" {
			t.Fatalf("BearerToken(%q) refused but returned %q", auth, bt)
		}

		s.Bearer = bearer
		var signedIn bool
		h := s.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, signedIn = sessionhttp.FromContext(r.Context())
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("middleware answered %d on a memory store", w.Code)
		}
		if signedIn != (tok == issued) {
			t.Fatalf("cookie %q, authorization %q (bearer %v): signed in %v, carried token %q", cookieHeader, auth, bearer, signedIn, tok)
		}
		if signedIn && !bearer && !fromCookie {
			t.Fatalf("signed in through Authorization %q with bearer off", auth)
		}

		// Round trip: what Set writes, Token reads back.
		if tok == "" || !isCookieSafe(tok) {
			return
		}
		w = httptest.NewRecorder()
		c.Set(w, tok, &sessiond.Session{RememberMe: withAuth, AbsoluteExpiresAt: time.Now().Add(time.Hour)}, time.Now())
		back := httptest.NewRequest("GET", "/", nil)
		for _, ck := range w.Result().Cookies() {
			back.AddCookie(ck)
		}
		if got, fromCookie := c.Token(back, bearer); got != tok || !fromCookie {
			t.Fatalf("Set(%q) then Token = %q (cookie %v)", tok, got, fromCookie)
		}
	})
}

// isCookieSafe reports whether net/http's SetCookie keeps v as it is
// (it drops other bytes, and quotes values with spaces or commas).
func isCookieSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if b := v[i]; b <= 0x20 || b >= 0x7f || b == ';' || b == '"' || b == '\\' || b == ',' {
			return false
		}
	}
	return true
}
