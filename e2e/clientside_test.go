package e2e_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/sessiond/sessiond/accesstoken"
)

// Client-side sessions over HTTP against the real binary. The access tokens
// are checked with lestrrat-go/jwx, a JOSE implementation independent of the
// go-jose that signs them, against the JWKS the running server publishes,
// fetched the way a third party would fetch it.

const (
	jwksPath      = "/.well-known/jwks.json"
	refreshPath   = "/v1/token/refresh"
	accessCookie  = "__Host-access"
	refreshCookie = "__Secure-refresh"
)

// newKEK returns a fresh key-encryption key, base64 of 32 random bytes.
func newKEK() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func kekEnv(kek string) string { return "SESSIOND_KEY_ENCRYPTION_KEY=" + kek }

// startJWT starts a server with client-side sessions on, under a fresh
// key-encryption key, which it returns.
func startJWT(t *testing.T, args []string, opts ...serverOpt) (*Server, string) {
	t.Helper()
	kek := newKEK()
	return startServer(t, args, append([]serverOpt{withEnv(kekEnv(kek))}, opts...)...), kek
}

// pair is a client-side session's answer: an access and a refresh token.
type pair struct {
	Access, Refresh string
	ExpiresIn       int
	Session         map[string]any // nil when the answer has none
	R               *Resp
}

var jwtShape = regexp.MustCompile(`^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// wantPair checks an answer of the "jwt" transport and returns its tokens.
func wantPair(t *testing.T, r *Resp, status int) pair {
	t.Helper()
	wantStatus(t, r, status)
	p := pair{Access: str(t, r.JSON, "access_token"), Refresh: str(t, r.JSON, "refresh_token"), R: r}
	if tt := r.JSON["token_type"]; tt != "Bearer" {
		t.Errorf("%s %s: token_type %v, want Bearer", r.Method, r.Path, tt)
	}
	n, ok := r.JSON["expires_in"].(float64)
	if !ok || n != float64(int(n)) || n <= 0 {
		t.Fatalf("%s %s: expires_in %v is not a positive whole number of seconds", r.Method, r.Path, r.JSON["expires_in"])
	}
	p.ExpiresIn = int(n)
	if !jwtShape.MatchString(p.Access) {
		t.Errorf("access_token %q is not a compact JWS", p.Access)
	}
	if !strings.HasPrefix(p.Refresh, "sdr_") || strings.Contains(p.Refresh, ".") {
		t.Errorf("refresh_token %q is not an opaque sdr_ token", p.Refresh)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("%s %s: tokens with Cache-Control %q, want no-store", r.Method, r.Path, cc)
	}
	if s, ok := r.JSON["session"].(map[string]any); ok {
		p.Session = checkSession(t, s)
	}
	return p
}

// loginJWT signs u in with the "jwt" transport.
func loginJWT(t *testing.T, s *Server, u user, rememberMe bool) pair {
	t.Helper()
	r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "jwt", "remember_me": rememberMe})
	p := wantPair(t, r, http.StatusOK)
	wantKeys(t, "jwt login answer", r.JSON, "access_token", "refresh_token", "token_type", "expires_in", "session", "user")
	checkUser(t, obj(t, r, "user"))
	wantNoSessionCookie(t, r)
	if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf(`login with "transport":"jwt" sets cookies %q, want none`, sc)
	}
	return p
}

// refresh presents a refresh token in the body.
func refresh(t *testing.T, s *Server, tok string, opts ...reqOpt) *Resp {
	t.Helper()
	return s.call(t, "POST", refreshPath, J{"refresh_token": tok}, opts...)
}

// mustRefresh refreshes and checks the answer.
func mustRefresh(t *testing.T, s *Server, tok string) pair {
	t.Helper()
	r := refresh(t, s, tok)
	p := wantPair(t, r, http.StatusOK)
	if p.Session == nil {
		t.Fatalf("refresh answer has no session: %s", r.Body)
	}
	return p
}

// jwks fetches the live JWKS and checks that it holds Ed25519 public keys
// and nothing else: no private member ("d"), nothing unexpected.
func jwks(t *testing.T, s *Server) (*Resp, jwk.Set, []string) {
	t.Helper()
	r := do(t, s.Pub, "GET", jwksPath, nil)
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/jwk-set+json") && !strings.HasPrefix(ct, "application/json") {
		t.Errorf("JWKS Content-Type %q", ct)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil || doc.Keys == nil {
		t.Fatalf("JWKS is not {\"keys\":[…]}: %v: %s", err, r.Body)
	}
	var kids []string
	for _, k := range doc.Keys {
		wantKeys(t, "JWK", k, "kty", "crv", "x", "kid", "alg", "use")
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" {
			t.Errorf("JWK %v: want kty OKP, crv Ed25519, alg EdDSA, use sig", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(str(t, k, "x"))
		if err != nil || len(x) != 32 {
			t.Errorf("JWK x %q is not a base64url Ed25519 public key", k["x"])
		}
		kids = append(kids, str(t, k, "kid"))
	}
	if bytes.Contains(r.Body, []byte(`"d"`)) {
		t.Errorf("the JWKS holds private key material: %s", r.Body)
	}
	set, err := jwk.Parse(r.Body)
	if err != nil {
		t.Fatalf("jwx cannot parse the live JWKS: %v: %s", err, r.Body)
	}
	if set.Len() != len(kids) {
		t.Errorf("jwx sees %d keys, the document has %d", set.Len(), len(kids))
	}
	return r, set, kids
}

// verifyJWX verifies tok with jwx against the server's live JWKS, checking
// signature, issuer, audience (when given) and the time claims.
func verifyJWX(t *testing.T, s *Server, tok, issuer, audience string) (jwt.Token, error) {
	t.Helper()
	_, set, _ := jwks(t, s)
	opts := []jwt.ParseOption{jwt.WithKeySet(set), jwt.WithValidate(true), jwt.WithIssuer(issuer)}
	if audience != "" {
		opts = append(opts, jwt.WithAudience(audience))
	}
	return jwt.Parse([]byte(tok), opts...)
}

// segment decodes part i (0: header, 1: claims) of a compact JWS, with no
// verification: for reading the kid and exp of a token.
func segment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("JWS segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("JWS segment %d: %v", i, err)
	}
	return m
}

func kidOf(t *testing.T, tok string) string { return str(t, segment(t, tok, 0), "kid") }

func expOf(t *testing.T, tok string) time.Time {
	t.Helper()
	exp, ok := segment(t, tok, 1)["exp"].(float64)
	if !ok {
		t.Fatalf("token has no exp")
	}
	return time.Unix(int64(exp), 0)
}

// sessionIDs lists the ids of a user's active sessions (admin API).
func sessionIDs(t *testing.T, s *Server, userID string) []string {
	t.Helper()
	r := s.adm(t, "GET", "/admin/v1/users/"+userID+"/sessions", nil)
	wantStatus(t, r, http.StatusOK)
	var ids []string
	for _, x := range r.JSON["sessions"].([]any) {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	return ids
}

// eventsOf returns the user's audit events of type typ.
func eventsOf(t *testing.T, s *Server, userID, typ string) []map[string]any {
	t.Helper()
	r := s.adm(t, "GET", "/admin/v1/users/"+userID+"/events?type="+typ, nil)
	wantStatus(t, r, http.StatusOK)
	var out []map[string]any
	for _, e := range r.JSON["events"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// deadAccess asserts that sessiond's own API refuses an access token.
func deadAccess(t *testing.T, s *Server, access string) {
	t.Helper()
	wantError(t, whoami(t, s, bearer(access)), http.StatusUnauthorized, "unauthenticated")
}

// TestClientSideTokens covers what a login with "transport":"jwt" hands
// out, verified by a third party against the live JWKS.
func TestClientSideTokens(t *testing.T) {
	t.Parallel()
	const issuer = "https://login.e2e.test"
	s, _ := startJWT(t, []string{"--jwt-issuer", issuer, "--jwt-audience", "orders,billing", "--access-token-ttl", "90s"})

	t.Run("login pair verifies with jwx against the live JWKS", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		before := time.Now().Truncate(time.Second)
		p := loginJWT(t, s, u, true)
		after := time.Now()
		if p.ExpiresIn < 89 || p.ExpiresIn > 90 {
			t.Errorf("expires_in %d, want the 90s TTL", p.ExpiresIn)
		}
		h := segment(t, p.Access, 0)
		if h["alg"] != "EdDSA" || h["typ"] != "JWT" {
			t.Errorf("JWS header %v: want alg EdDSA, typ JWT", h)
		}
		_, _, kids := jwks(t, s)
		if len(kids) != 1 || kids[0] != kidOf(t, p.Access) {
			t.Errorf("kid %q, JWKS kids %v", kidOf(t, p.Access), kids)
		}
		for _, aud := range []string{"orders", "billing"} {
			tok, err := verifyJWX(t, s, p.Access, issuer, aud)
			if err != nil {
				t.Fatalf("jwx refuses the access token for audience %q: %v", aud, err)
			}
			if aud != "orders" {
				continue
			}
			sub, _ := tok.Subject()
			iss, _ := tok.Issuer()
			audience, _ := tok.Audience()
			iat, _ := tok.IssuedAt()
			nbf, _ := tok.NotBefore()
			exp, _ := tok.Expiration()
			jti, _ := tok.JwtID()
			var sid string
			var remember bool
			var amr []any
			if err := tok.Get("sid", &sid); err != nil {
				t.Errorf("sid: %v", err)
			}
			if err := tok.Get("remember_me", &remember); err != nil {
				t.Errorf("remember_me: %v", err)
			}
			if err := tok.Get("amr", &amr); err != nil {
				t.Errorf("amr: %v", err)
			}
			switch {
			case sub != u.ID:
				t.Errorf("sub %q, want the user %q", sub, u.ID)
			case iss != issuer:
				t.Errorf("iss %q", iss)
			case !slices.Equal(audience, []string{"orders", "billing"}):
				t.Errorf("aud %v", audience)
			case sid != p.Session["id"]:
				t.Errorf("sid %q, want the session %v", sid, p.Session["id"])
			case !remember:
				t.Errorf("remember_me false for a remember-me login")
			case len(amr) != 1 || amr[0] != "pwd":
				t.Errorf("amr %v, want [pwd]", amr)
			case len(jti) < 16:
				t.Errorf("jti %q", jti)
			case !iat.Equal(nbf) || iat.Before(before) || iat.After(after):
				t.Errorf("iat %v, nbf %v: want both the time of the login (%v…%v)", iat, nbf, before, after)
			case exp.Sub(iat) != 90*time.Second:
				t.Errorf("exp - iat = %v, want the 90s TTL", exp.Sub(iat))
			}
			// Only these claims: nothing secret, nothing unexpected.
			got := tok.Keys()
			slices.Sort(got)
			if want := []string{"amr", "aud", "auth_time", "exp", "iat", "iss", "jti", "nbf", "remember_me", "sid", "sub"}; !slices.Equal(got, want) {
				t.Errorf("claims %v, want exactly %v", got, want)
			}
		}
		// A second login: another session, another jti.
		p2 := loginJWT(t, s, u, false)
		c1, c2 := segment(t, p.Access, 1), segment(t, p2.Access, 1)
		if c1["jti"] == c2["jti"] || c1["sid"] == c2["sid"] || c2["remember_me"] != false {
			t.Errorf("two logins: jti %v / %v, sid %v / %v, remember_me %v", c1["jti"], c2["jti"], c1["sid"], c2["sid"], c2["remember_me"])
		}
		if p.Refresh == p2.Refresh {
			t.Error("two logins got the same refresh token")
		}
	})

	t.Run("jwx refuses what it should", func(t *testing.T) {
		t.Parallel()
		p := loginJWT(t, s, newUser(t, s), false)
		if _, err := verifyJWX(t, s, p.Access, issuer, "shipping"); err == nil {
			t.Error("jwx accepted the token for an audience it does not name")
		}
		if _, err := verifyJWX(t, s, p.Access, "https://evil.example", ""); err == nil {
			t.Error("jwx accepted the token for another issuer")
		}
		parts := strings.Split(p.Access, ".")
		claims := segment(t, p.Access, 1)
		claims["sub"] = "someone-else"
		b, _ := json.Marshal(claims)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
		if _, err := verifyJWX(t, s, forged, issuer, ""); err == nil {
			t.Error("jwx accepted a token with altered claims")
		}
		deadAccess(t, s, forged)
		sig := []byte(parts[2])
		sig[3] ^= 1
		if _, err := verifyJWX(t, s, parts[0]+"."+parts[1]+"."+string(sig), issuer, ""); err == nil {
			t.Error("jwx accepted a token with an altered signature")
		}
	})

	t.Run("the JWKS is public keys only, cacheable, for anyone", func(t *testing.T) {
		t.Parallel()
		r, _, kids := jwks(t, s)
		if len(kids) != 1 {
			t.Errorf("%d keys, want the one key made at start-up", len(kids))
		}
		cc := r.Header.Get("Cache-Control")
		m := regexp.MustCompile(`(?:^|,\s*)max-age=(\d+)(?:,|$)`).FindStringSubmatch(cc)
		if m == nil || !strings.Contains(cc, "public") || strings.Contains(cc, "no-store") {
			t.Fatalf("JWKS Cache-Control %q, want public with a max-age", cc)
		}
		// The default: 60s, shorter than the default key activation delay
		// (90s), so every cache holds a new key before it signs.
		if n, _ := strconv.Atoi(m[1]); n != 60 {
			t.Errorf("max-age %d, want the default 60", n)
		}
		if a := r.Header.Get("Access-Control-Allow-Origin"); a != "*" {
			t.Errorf("Access-Control-Allow-Origin %q, want * (public keys, no credentials)", a)
		}
		if r.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Error("the JWKS allows credentials")
		}
		if bytes.Contains(r.Body, []byte(`"d"`)) || bytes.Contains(r.Body, []byte("PRIVATE")) {
			t.Errorf("private material in %s", r.Body)
		}
	})

	t.Run("sessiond's own API accepts the access token", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p := loginJWT(t, s, u, false)
		r := whoami(t, s, bearer(p.Access))
		wantStatus(t, r, http.StatusOK)
		if sess := checkSession(t, obj(t, r, "session")); sess["id"] != p.Session["id"] || sess["user_id"] != u.ID {
			t.Errorf("who-am-I with the access token: session %v, want %v", sess["id"], p.Session["id"])
		}
		// The refresh token is no bearer credential.
		wantError(t, whoami(t, s, bearer(p.Refresh)), http.StatusUnauthorized, "unauthenticated")
		wantError(t, whoami(t, s, cookie(p.Refresh)), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("accesstoken.Verifier verifies from the live JWKS", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p := loginJWT(t, s, u, false)
		svc := func(cfg accesstoken.VerifierConfig) *httptest.Server {
			cfg.JWKSURL = s.Pub + jwksPath
			v := accesstoken.NewVerifier(cfg)
			h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, ok := accesstoken.FromContext(r.Context())
				if !ok {
					http.Error(w, "no claims", http.StatusInternalServerError)
					return
				}
				_ = json.NewEncoder(w).Encode(map[string]any{"sub": c.Subject, "sid": c.SessionID, "remember_me": c.RememberMe})
			}))
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			return srv
		}
		orders := svc(accesstoken.VerifierConfig{Issuer: issuer, Audience: "orders", CookieName: accessCookie})
		r := do(t, orders.URL, "GET", "/orders", nil, bearer(p.Access))
		wantStatus(t, r, http.StatusOK)
		if r.JSON["sub"] != u.ID || r.JSON["sid"] != p.Session["id"] || r.JSON["remember_me"] != false {
			t.Errorf("the service saw %s", r.Body)
		}
		r = do(t, orders.URL, "GET", "/orders", nil, header("Cookie", accessCookie+"="+p.Access))
		wantStatus(t, r, http.StatusOK)
		for name, opts := range map[string][]reqOpt{
			"no token":        nil,
			"garbage":         {bearer("eyJ.eyJ.x")},
			"refresh token":   {bearer(p.Refresh)},
			"altered payload": {bearer(strings.Replace(p.Access, ".eyJ", ".eyK", 1))},
		} {
			r := do(t, orders.URL, "GET", "/orders", nil, opts...)
			wantError(t, r, http.StatusUnauthorized, "invalid_token")
			if !strings.Contains(r.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", name, r.Header.Get("WWW-Authenticate"))
			}
		}
		for name, cfg := range map[string]accesstoken.VerifierConfig{
			"another audience": {Issuer: issuer, Audience: "shipping"},
			"another issuer":   {Issuer: "https://evil.example", Audience: "orders"},
		} {
			if r := do(t, svc(cfg).URL, "GET", "/x", nil, bearer(p.Access)); r.Status != http.StatusUnauthorized {
				t.Errorf("a verifier for %s: %d, want 401", name, r.Status)
			}
		}
	})

	t.Run(`admin create with "transport":"jwt"`, func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.adm(t, "POST", "/admin/v1/sessions", J{"user_id": u.ID, "transport": "jwt"})
		p := wantPair(t, r, http.StatusCreated)
		if p.Session == nil {
			t.Fatalf("no session in %s", r.Body)
		}
		if _, ok := r.JSON["token"]; ok {
			t.Errorf("a jwt answer with a session token: %s", r.Body)
		}
		tok, err := verifyJWX(t, s, p.Access, issuer, "orders")
		if err != nil {
			t.Fatalf("jwx refuses the admin-made token: %v", err)
		}
		var sid string
		_ = tok.Get("sid", &sid)
		if sub, _ := tok.Subject(); sub != u.ID || sid != p.Session["id"] {
			t.Errorf("sub %q sid %q, want %q %v", sub, sid, u.ID, p.Session["id"])
		}
		alive := whoami(t, s, bearer(p.Access))
		wantStatus(t, alive, http.StatusOK)
		n := mustRefresh(t, s, p.Refresh)
		if n.Session["id"] != p.Session["id"] {
			t.Errorf("refresh moved to session %v", n.Session["id"])
		}
	})
}

// TestRefreshRotation covers the refresh chain: rotation, reuse detection,
// the grace window, and the server-side session as the source of truth.
func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	const grace = 2 * time.Second
	s, _ := startJWT(t, []string{"--refresh-grace", "2s"})

	t.Run("revoke by refresh token ends the session, forgeries end nothing", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p := loginJWT(t, s, u, false)
		keep := loginJWT(t, s, u, false)
		forged := p.Refresh[:len(p.Refresh)-8] + "AAAAAAAA"
		wantStatus(t, s.call(t, "POST", "/v1/token/revoke", J{"refresh_token": forged}), http.StatusNoContent)
		wantStatus(t, s.call(t, "POST", "/v1/token/revoke", J{"refresh_token": "garbage"}), http.StatusNoContent)
		wantStatus(t, whoami(t, s, bearer(p.Access)), http.StatusOK)
		wantStatus(t, s.call(t, "POST", "/v1/token/revoke", J{"refresh_token": p.Refresh}), http.StatusNoContent)
		wantError(t, whoami(t, s, bearer(p.Access)), http.StatusUnauthorized, "unauthenticated")
		wantError(t, refresh(t, s, p.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		wantStatus(t, whoami(t, s, bearer(keep.Access)), http.StatusOK)
	})

	t.Run("rotation, then reuse ends the session and all derived from it", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		other, _ := login(t, s, u) // a server-side session of the same user: untouched
		p0 := loginJWT(t, s, u, false)
		sid := p0.Session["id"].(string)
		p1 := mustRefresh(t, s, p0.Refresh)
		if p1.Refresh == p0.Refresh || p1.Access == p0.Access {
			t.Fatal("refresh did not rotate the pair")
		}
		c0, c1 := segment(t, p0.Access, 1), segment(t, p1.Access, 1)
		if c1["sid"] != sid || c1["sub"] != u.ID || c1["jti"] == c0["jti"] {
			t.Errorf("refreshed token: sid %v sub %v jti %v (old jti %v)", c1["sid"], c1["sub"], c1["jti"], c0["jti"])
		}
		if _, err := verifyJWX(t, s, p1.Access, "sessiond", ""); err != nil {
			t.Errorf("jwx refuses the refreshed access token: %v", err)
		}
		p2 := mustRefresh(t, s, p1.Refresh) // the chain goes on
		wantStatus(t, whoami(t, s, bearer(p2.Access)), http.StatusOK)

		// p1's refresh token was used, and the grace window has passed:
		// presenting it again is theft.
		time.Sleep(grace + 300*time.Millisecond)
		wantError(t, refresh(t, s, p1.Refresh), http.StatusUnauthorized, "refresh_token_reused")
		// Every token of the chain is dead: the newest refresh token, the
		// reused one again, the first one, the access tokens at sessiond.
		wantError(t, refresh(t, s, p2.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		wantError(t, refresh(t, s, p1.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		wantError(t, refresh(t, s, p0.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		deadAccess(t, s, p2.Access)
		deadAccess(t, s, p0.Access)
		if ids := sessionIDs(t, s, u.ID); slices.Contains(ids, sid) || len(ids) != 1 {
			t.Errorf("sessions after reuse %v: want only the other session, not %s", ids, sid)
		}
		alive(t, s, other)
		ev := eventsOf(t, s, u.ID, "refresh_token_reused")
		if len(ev) != 1 || ev[0]["session_id"] != sid {
			t.Fatalf("refresh_token_reused events %v, want one for session %s", ev, sid)
		}
		if d, _ := ev[0]["data"].(map[string]any); d["steps_behind"] != float64(1) {
			t.Errorf("event data %v, want steps_behind 1", ev[0]["data"])
		}
	})

	t.Run("a token two links behind is reuse even within the grace window", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p0 := loginJWT(t, s, u, false)
		p1 := mustRefresh(t, s, p0.Refresh)
		p2 := mustRefresh(t, s, p1.Refresh)
		wantError(t, refresh(t, s, p0.Refresh), http.StatusUnauthorized, "refresh_token_reused")
		wantError(t, refresh(t, s, p2.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		deadAccess(t, s, p2.Access)
		if ev := eventsOf(t, s, u.ID, "refresh_token_reused"); len(ev) != 1 {
			t.Errorf("%d refresh_token_reused events, want 1", len(ev))
		}
	})

	t.Run("grace window: concurrent refreshes get the same next token", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p0 := loginJWT(t, s, u, false)
		// Let the login itself fall out of the window: only the racing
		// refreshes may open it.
		time.Sleep(grace + 200*time.Millisecond)
		const n = 8
		answers := make([]*Resp, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				answers[i] = refresh(t, s, p0.Refresh)
			})
		}
		begin := time.Now()
		close(start)
		wg.Wait()
		if took := time.Since(begin); took > grace/2 {
			t.Logf("the racing refreshes took %v: too slow to test the window", took)
		}
		var next string
		jtis := map[any]bool{}
		for i, r := range answers {
			if r.Status != http.StatusOK {
				t.Fatalf("racing refresh %d: %d %s", i, r.Status, r.Body)
			}
			p := wantPair(t, r, http.StatusOK)
			if next == "" {
				next = p.Refresh
			} else if p.Refresh != next {
				t.Errorf("racing refresh %d got another refresh token", i)
			}
			jtis[segment(t, p.Access, 1)["jti"]] = true
		}
		if len(jtis) != n {
			t.Errorf("%d distinct access tokens for %d refreshes", len(jtis), n)
		}
		// A retry after a lost answer, still within the window: the same.
		r := refresh(t, s, p0.Refresh)
		if p := wantPair(t, r, http.StatusOK); p.Refresh != next {
			t.Error("a retry within the grace window got another refresh token")
		}
		// After the window the predecessor is theft.
		time.Sleep(grace + 300*time.Millisecond)
		wantError(t, refresh(t, s, p0.Refresh), http.StatusUnauthorized, "refresh_token_reused")
		wantError(t, refresh(t, s, next), http.StatusUnauthorized, "invalid_refresh_token")
		if ev := eventsOf(t, s, u.ID, "refresh_token_reused"); len(ev) != 1 {
			t.Errorf("%d refresh_token_reused events, want exactly 1 (the races are no theft)", len(ev))
		}
	})

	t.Run("a forged refresh token is refused and ends nothing", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p0 := loginJWT(t, s, u, false)
		sid := p0.Session["id"].(string)
		// Well-formed, checksum right, the live session's id, but a secret
		// of another chain: someone who knows the session id only.
		other, err := accesstoken.NewChain(bytes.Repeat([]byte{9}, 32))
		if err != nil {
			t.Fatal(err)
		}
		forged, err := other.First(sid, nil)
		if err != nil {
			t.Fatal(err)
		}
		typo := []byte(p0.Refresh)
		typo[len(typo)-1] ^= 1 // another character: the checksum no longer matches
		for _, bad := range []string{forged, string(typo), "sdr_x", p0.Access} {
			wantError(t, refresh(t, s, bad), http.StatusUnauthorized, "invalid_refresh_token")
		}
		wantError(t, refresh(t, s, ""), http.StatusUnauthorized, "invalid_refresh_token")
		wantError(t, s.call(t, "POST", refreshPath, nil), http.StatusUnauthorized, "invalid_refresh_token")
		mustRefresh(t, s, p0.Refresh) // the session lives on
		if ev := eventsOf(t, s, u.ID, "refresh_token_reused"); len(ev) != 0 {
			t.Errorf("forgeries recorded as reuse: %v", ev)
		}
	})

	t.Run("refresh after Force Logout fails", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p := loginJWT(t, s, u, true)
		tok, _ := login(t, s, u)
		newPW := "N3w-" + randHex(6)
		r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": newPW}, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		if r.JSON["revoked"] != float64(1) {
			t.Errorf("password change revoked %v sessions, want 1 (the jwt one)", r.JSON["revoked"])
		}
		wantError(t, refresh(t, s, p.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		deadAccess(t, s, p.Access)
		if ids := sessionIDs(t, s, u.ID); slices.Contains(ids, p.Session["id"].(string)) {
			t.Errorf("the force-logged-out session is still listed: %v", ids)
		}
	})

	t.Run("a password change from the jwt session starts a new chain and ends the others", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p0 := loginJWT(t, s, u, false)
		q := loginJWT(t, s, u, false) // another client-side session of the user
		newPW := "N3w-" + randHex(6)
		r := s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": newPW}, bearer(p0.Access))
		p1 := wantPair(t, r, http.StatusOK)
		if r.JSON["revoked"] != float64(1) {
			t.Errorf("revoked %v, want 1", r.JSON["revoked"])
		}
		if p1.Session["id"] != p0.Session["id"] {
			t.Errorf("the caller's session changed: %v → %v", p0.Session["id"], p1.Session["id"])
		}
		wantError(t, refresh(t, s, q.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		deadAccess(t, s, q.Access)
		// The old chain is over; the old refresh token is no link of the
		// new one (invalid, not reuse: the session lives).
		wantError(t, refresh(t, s, p0.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		p2 := mustRefresh(t, s, p1.Refresh)
		wantStatus(t, whoami(t, s, bearer(p2.Access)), http.StatusOK)
	})

	t.Run("refresh after logout or revocation fails", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		p := loginJWT(t, s, u, false)
		wantStatus(t, s.call(t, "POST", "/v1/logout", nil, bearer(p.Access)), http.StatusNoContent)
		wantError(t, refresh(t, s, p.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		deadAccess(t, s, p.Access)

		q := loginJWT(t, s, u, false)
		q = mustRefresh(t, s, q.Refresh)
		wantStatus(t, s.adm(t, "DELETE", "/admin/v1/sessions/"+q.Session["id"].(string), nil), http.StatusNoContent)
		wantError(t, refresh(t, s, q.Refresh), http.StatusUnauthorized, "invalid_refresh_token")

		v := loginJWT(t, s, u, false)
		tok, _ := login(t, s, u)
		wantStatus(t, s.call(t, "DELETE", "/v1/sessions/"+v.Session["id"].(string), nil, bearer(tok)), http.StatusNoContent)
		wantError(t, refresh(t, s, v.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
	})

	t.Run(`"jwt_cookie" transport`, func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "jwt_cookie"})
		wantStatus(t, r, http.StatusOK)
		for _, k := range []string{"access_token", "refresh_token", "token"} {
			if _, ok := r.JSON[k]; ok {
				t.Errorf("jwt_cookie answer has %q in the body: %s", k, r.Body)
			}
		}
		if r.JSON["token_type"] != "Bearer" || r.JSON["expires_in"] == nil {
			t.Errorf("jwt_cookie answer %s", r.Body)
		}
		wantNoSessionCookie(t, r)
		access, rf := jwtCookies(t, r, 300, false)
		wantStatus(t, whoami(t, s, header("Cookie", accessCookie+"="+access)), http.StatusOK)
		if _, err := verifyJWX(t, s, access, "sessiond", ""); err != nil {
			t.Errorf("jwx refuses the access cookie's token: %v", err)
		}

		// Refresh by the cookie alone, as a browser sends it.
		r2 := s.call(t, "POST", refreshPath, nil, header("Cookie", refreshCookie+"="+rf))
		wantStatus(t, r2, http.StatusOK)
		access2, rf2 := jwtCookies(t, r2, 300, false)
		if access2 == access || rf2 == rf {
			t.Error("refresh by cookie did not rotate the pair")
		}
		wantStatus(t, whoami(t, s, header("Cookie", accessCookie+"="+access2)), http.StatusOK)

		// Reuse after the window: 401, both cookies cleared.
		time.Sleep(grace + 300*time.Millisecond)
		r3 := s.call(t, "POST", refreshPath, nil, header("Cookie", refreshCookie+"="+rf))
		wantError(t, r3, http.StatusUnauthorized, "refresh_token_reused")
		cleared := map[string]bool{}
		for _, line := range r3.Header.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(line)
			if err == nil && c.Value == "" && c.MaxAge < 0 {
				cleared[c.Name] = true
			}
		}
		if !cleared[accessCookie] || !cleared[refreshCookie] {
			t.Errorf("reuse answer Set-Cookie %q: want both cookies cleared", r3.Header.Values("Set-Cookie"))
		}
		wantError(t, s.call(t, "POST", refreshPath, nil, header("Cookie", refreshCookie+"="+rf2)), http.StatusUnauthorized, "invalid_refresh_token")

		// A remember-me login: the refresh cookie outlives the browser.
		r = s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "jwt_cookie", "remember_me": true})
		wantStatus(t, r, http.StatusOK)
		_, rf = jwtCookies(t, r, 300, true)
		// Logout with the access cookie clears both.
		access, _ = jwtCookies(t, r, 300, true)
		r = s.call(t, "POST", "/v1/logout", nil, header("Cookie", accessCookie+"="+access))
		wantStatus(t, r, http.StatusNoContent)
		wantError(t, s.call(t, "POST", refreshPath, nil, header("Cookie", refreshCookie+"="+rf)), http.StatusUnauthorized, "invalid_refresh_token")
	})
}

// jwtCookies checks the access and refresh cookies of a jwt_cookie answer
// and returns their values: the access cookie HttpOnly, Secure, Path=/,
// Max-Age the token's TTL; the refresh cookie HttpOnly, Secure,
// SameSite=Strict, only for the refresh path, persistent only for a
// remember-me session.
func jwtCookies(t *testing.T, r *Resp, ttl int, rememberMe bool) (access, refresh string) {
	t.Helper()
	ac, al := setCookies(t, r, accessCookie)
	rc, rl := setCookies(t, r, refreshCookie)
	// The refresh token goes in two cookies of one name: one for the
	// refresh endpoint, one for POST /v1/logout (so that a sign-out ends
	// the session after the access cookie expired); the same value.
	if len(ac) != 1 || len(rc) != 2 || rc[1].Path != "/v1/logout" || rc[1].Value != rc[0].Value ||
		rc[1].MaxAge != rc[0].MaxAge || !rc[1].HttpOnly || !rc[1].Secure || rc[1].SameSite != http.SameSiteStrictMode {
		t.Fatalf("%s %s: Set-Cookie %q: want one %s and two %s (Path=/v1/token/ and Path=/v1/logout)", r.Method, r.Path, r.Header.Values("Set-Cookie"), accessCookie, refreshCookie)
	}
	a, rf := ac[0], rc[0]
	if !a.HttpOnly || !a.Secure || a.Path != "/" || a.Domain != "" || a.MaxAge != ttl || a.SameSite == http.SameSiteNoneMode {
		t.Errorf("access cookie %q: want HttpOnly; Secure; Path=/; Max-Age=%d; no Domain", al[0], ttl)
	}
	if !jwtShape.MatchString(a.Value) {
		t.Errorf("access cookie value %q is not a JWT", a.Value)
	}
	if !rf.HttpOnly || !rf.Secure || rf.Path != "/v1/token/" || rf.SameSite != http.SameSiteStrictMode || rf.Domain != "" {
		t.Errorf("refresh cookie %q: want HttpOnly; Secure; Path=/v1/token/; SameSite=Strict; no Domain", rl[0])
	}
	if !strings.HasPrefix(rf.Value, "sdr_") {
		t.Errorf("refresh cookie value %q", rf.Value)
	}
	switch {
	case rememberMe && rf.MaxAge <= 24*3600:
		t.Errorf("remember-me refresh cookie %q: want a Max-Age of the remember-me lifetime", rl[0])
	case !rememberMe && (rf.MaxAge != 0 || strings.Contains(strings.ToLower(rl[0]), "expires")):
		t.Errorf("refresh cookie %q of a browser session: want no Max-Age or Expires", rl[0])
	}
	return a.Value, rf.Value
}

// TestRefreshDeadlines covers the idle and absolute deadlines of a chain:
// a refresh is use, and nothing renews a session past its absolute end.
func TestRefreshDeadlines(t *testing.T) {
	t.Parallel()
	const (
		idle     = 2 * time.Second
		absolute = 5 * time.Second
	)
	s, _ := startJWT(t, []string{"--idle-timeout", "2s", "--absolute-timeout", "5s", "--refresh-grace", "1s", "--sweep-interval", "1s"})

	t.Run("refresh after the idle deadline fails", func(t *testing.T) {
		t.Parallel()
		p := loginJWT(t, s, newUser(t, s), false)
		time.Sleep(idle + 400*time.Millisecond)
		wantError(t, refresh(t, s, p.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		deadAccess(t, s, p.Access)
	})

	t.Run("refreshes slide the idle deadline up to the absolute one", func(t *testing.T) {
		t.Parallel()
		p := loginJWT(t, s, newUser(t, s), false)
		abs := ts(t, p.Session, "absolute_expires_at")
		if d := abs.Sub(ts(t, p.Session, "created_at")); d != absolute {
			t.Fatalf("absolute deadline %v after creation, want %v", d, absolute)
		}
		n := 0
		for time.Until(abs) > 700*time.Millisecond {
			time.Sleep(700 * time.Millisecond)
			if time.Until(abs) < 200*time.Millisecond {
				break
			}
			before := time.Now()
			p = mustRefresh(t, s, p.Refresh)
			n++
			idleAt := ts(t, p.Session, "idle_expires_at")
			// The refresh slid the deadline to (its own time) + idle, so it is
			// no earlier than (before the request) + idle, however slow the
			// answer was; unless the absolute deadline caps it.
			if idleAt.After(abs) || (!idleAt.Equal(abs) && idleAt.Before(before.Add(idle).Add(-time.Millisecond))) {
				t.Errorf("after refresh %d idle deadline %v (absolute %v): want now + %v, capped", n, idleAt, abs, idle)
			}
		}
		if n < 4 {
			t.Fatalf("only %d refreshes before the absolute deadline", n)
		}
		// The chain outlived the idle timeout several times over; the
		// absolute deadline still ends it.
		time.Sleep(time.Until(abs) + 300*time.Millisecond)
		wantError(t, refresh(t, s, p.Refresh), http.StatusUnauthorized, "invalid_refresh_token")
		deadAccess(t, s, p.Access)
	})
}

// TestKeyRotation rotates the signing key with the CLI while the server
// runs, with short settings: the new key is published before it signs,
// tokens of the old key verify until they expire, then the old key leaves
// the JWKS.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	const (
		ttl        = 2 * time.Second
		skew       = time.Second
		activation = 3 * time.Second
		reload     = time.Second
	)
	// The rotation's activation delay is the CLI's flag (3s, longer than
	// the reload interval plus the JWKS max-age, as the defaults are), so
	// that "published before it signs" is observable.
	s, kek := startJWT(t, []string{"--access-token-ttl", "2s", "--key-activation-delay", "2s",
		"--key-reload-interval", "1s", "--jwks-max-age", "1s", "--clock-skew", "1s"})
	u := newUser(t, s)
	r, _, kids := jwks(t, s)
	if len(kids) != 1 {
		t.Fatalf("JWKS kids %v at start, want one", kids)
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=1") {
		t.Errorf("JWKS Cache-Control %q, want max-age=1", cc)
	}
	oldKid := kids[0]
	first := loginJWT(t, s, u, false)
	if kidOf(t, first.Access) != oldKid {
		t.Fatalf("token kid %q, JWKS %v", kidOf(t, first.Access), kids)
	}
	// A service verifying with the library middleware, warmed up on the
	// old key.
	v := accesstoken.NewVerifier(accesstoken.VerifierConfig{JWKSURL: s.Pub + jwksPath, Issuer: "sessiond"})
	if _, err := v.Verify(t.Context(), first.Access); err != nil {
		t.Fatalf("Verifier refuses the old key's token: %v", err)
	}

	// Rotate from the CLI, on the running server's database. The new key
	// signs `activation` from now at the earliest.
	rotatedAt := time.Now()
	out, errOut, code := runCLI(t, s.Dir, "", []string{kekEnv(kek)}, "keys", "rotate",
		"--database", "sqlite://"+s.DB, "--key-activation-delay", activation.String(), "--access-token-ttl", ttl.String(),
		"--key-reload-interval", reload.String(), "--jwks-max-age", "1s")
	if code != 0 {
		t.Fatalf("keys rotate: status %d: %s", code, errOut)
	}
	m := regexp.MustCompile(`added signing key ([A-Za-z0-9_-]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("keys rotate printed %q", out)
	}
	newKid := m[1]
	if !strings.Contains(out, oldKid) || !strings.Contains(out, "published, not yet signing") {
		t.Errorf("keys rotate list:\n%s", out)
	}
	activeAt := rotatedAt.Add(activation)

	// The new key reaches the JWKS (the server reloads every second)
	// before it signs: until activeAt, tokens still carry the old kid.
	var published time.Time
	for deadline := time.Now().Add(reload + 2*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, _, ks := jwks(t, s); slices.Contains(ks, newKid) {
			if !slices.Contains(ks, oldKid) {
				t.Fatalf("JWKS %v dropped the old key at once", ks)
			}
			published = time.Now()
			break
		}
	}
	if published.IsZero() {
		t.Fatalf("the new key %s never appeared in the JWKS", newKid)
	}
	if !published.Before(activeAt) {
		t.Fatalf("the new key appeared %v after rotation, not before it signs (%v)", published.Sub(rotatedAt), activation)
	}
	// Wait for the switch, keeping the old key's last token. A token
	// answered before activeAt (a lower bound of the key's activation)
	// must carry the old kid.
	var lastOld, next pair
	for deadline := activeAt.Add(reload + 3*time.Second); ; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("new tokens still carry the old kid %v after the new key's activation", time.Since(activeAt))
		}
		q := loginJWT(t, s, u, false)
		answered := time.Now()
		if kidOf(t, q.Access) == newKid {
			if answered.Before(activeAt) {
				t.Fatalf("the new key signed %v before its activation", activeAt.Sub(answered))
			}
			next = q
			break
		}
		lastOld = q
	}
	if lastOld.Access == "" {
		t.Fatal("no token of the old key was issued while the new key was published")
	}
	// A token of the new key, fresh (the one found above may have lived
	// out its short life while a loaded machine looked for it).
	fresh := loginJWT(t, s, u, false)
	if kidOf(t, fresh.Access) != newKid {
		t.Fatalf("a token after the switch carries kid %q, want the new %q", kidOf(t, fresh.Access), newKid)
	}
	if _, err := verifyJWX(t, s, fresh.Access, "sessiond", ""); err != nil {
		t.Errorf("jwx refuses the new key's token: %v", err)
	}
	if _, err := v.Verify(t.Context(), fresh.Access); err != nil {
		t.Errorf("Verifier refuses the new key's token (unknown kid refetch): %v", err)
	}
	// A refresh now signs with the new key too.
	if n := mustRefresh(t, s, next.Refresh); kidOf(t, n.Access) != newKid {
		t.Errorf("refreshed token kid %q, want the new %q", kidOf(t, n.Access), newKid)
	}

	// The old key's last token verifies against the live JWKS for as long
	// as it lives.
	lastExp := expOf(t, lastOld.Access)
	checked := 0
	for time.Now().Add(150 * time.Millisecond).Before(lastExp) {
		_, err := verifyJWX(t, s, lastOld.Access, "sessiond", "")
		if err != nil && time.Now().Before(lastExp) {
			t.Fatalf("the old key's token (exp %v) refused %v before it expires: %v", lastExp, time.Until(lastExp), err)
		}
		checked++
		time.Sleep(200 * time.Millisecond)
	}
	if checked == 0 {
		t.Logf("the old key's last token expired before it could be checked again (exp %v)", lastExp)
	}
	// Then it expires (jwx says so, not "unknown key")...
	time.Sleep(time.Until(lastExp) + 50*time.Millisecond)
	if _, err := verifyJWX(t, s, lastOld.Access, "sessiond", ""); !errors.Is(err, jwt.TokenExpiredError()) {
		t.Errorf("the old key's expired token: %v, want expired", err)
	}
	// ...and the old key leaves the JWKS once every token it may have
	// signed is past its expiry plus the skew: not before, not much after.
	retireBy := activeAt.Add(ttl + skew)
	var removed time.Time
	for deadline := retireBy.Add(reload + 3*time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		asked := time.Now()
		_, _, ks := jwks(t, s)
		if !slices.Contains(ks, newKid) {
			t.Fatalf("JWKS %v lost the signing key", ks)
		}
		if !slices.Contains(ks, oldKid) {
			removed = asked
			break
		}
	}
	if removed.IsZero() {
		t.Fatalf("the old key %s is still published %v after its tokens expired", oldKid, time.Since(retireBy))
	}
	if removed.Before(lastExp) {
		t.Errorf("the old key left the JWKS at %v, before its last token expired at %v", removed, lastExp)
	}
	if removed.Before(rotatedAt.Add(activation + ttl + skew - 100*time.Millisecond)) {
		t.Errorf("the old key left the JWKS %v after rotation, want at least activation+TTL+skew = %v", removed.Sub(rotatedAt), activation+ttl+skew)
	}
	// The server also deletes it from the database.
	for deadline := time.Now().Add(reload + 3*time.Second); ; time.Sleep(200 * time.Millisecond) {
		out, errOut, code := runCLI(t, s.Dir, "", []string{kekEnv(kek)}, "keys", "list",
			"--database", "sqlite://"+s.DB, "--access-token-ttl", ttl.String(), "--clock-skew", skew.String())
		if code != 0 {
			t.Fatalf("keys list: status %d: %s", code, errOut)
		}
		if !strings.Contains(out, oldKid) && strings.Contains(out, newKid) {
			if !regexp.MustCompile(regexp.QuoteMeta(newKid) + `\s.*signing`).MatchString(out) {
				t.Errorf("keys list:\n%s", out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old key was never pruned from the database:\n%s", out)
		}
	}
	// Tokens of the new key keep working end to end.
	last := loginJWT(t, s, u, false)
	if kidOf(t, last.Access) != newKid {
		t.Errorf("a token after the rotation carries kid %q, want %q", kidOf(t, last.Access), newKid)
	}
	if _, err := verifyJWX(t, s, last.Access, "sessiond", ""); err != nil {
		t.Errorf("jwx refuses the new key's token: %v", err)
	}
	wantStatus(t, whoami(t, s, bearer(last.Access)), http.StatusOK)
}

// TestClientSideStartup covers the key-encryption key at start-up, a server
// without one, and the keys surviving a restart.
func TestClientSideStartup(t *testing.T) {
	t.Parallel()

	t.Run("a malformed key-encryption key stops start-up with one line", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		short := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16))
		badFile := filepath.Join(dir, "kek")
		if err := os.WriteFile(badFile, []byte("this is no key\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		goodFile := filepath.Join(dir, "kek-good")
		if err := os.WriteFile(goodFile, []byte(newKEK()+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, secret string
			args, env    []string
			want         string
		}{
			{"not base64", "not-base64!!", nil, []string{kekEnv("not-base64!!")}, "key-encryption key"},
			{"16 bytes", short, nil, []string{kekEnv(short)}, "32 bytes"},
			{"bad file", "this is no key", []string{"--key-encryption-key-file", badFile}, nil, "key-encryption key"},
			{"missing file", "", []string{"--key-encryption-key-file", filepath.Join(dir, "nope")}, nil, "key-encryption-key-file"},
			{"file and environment", "", []string{"--key-encryption-key-file", goodFile}, []string{kekEnv(newKEK())}, "choose one"},
		} {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				args := []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
					"--admin-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
					"--database", "sqlite://" + filepath.Join(t.TempDir(), "db")}
				stdout, stderr, code := runCLI(t, t.TempDir(), "", c.env, append(args, c.args...)...)
				wantOneLineFailure(t, code, stdout, stderr, c.want, c.secret)
			})
		}
	})

	t.Run("keys rotate without a key-encryption key", func(t *testing.T) {
		t.Parallel()
		stdout, stderr, code := runCLI(t, t.TempDir(), "", nil, "keys", "rotate", "--database", "sqlite://"+filepath.Join(t.TempDir(), "db"))
		wantOneLineFailure(t, code, stdout, stderr, "key-encryption key", "")
	})

	t.Run("without a key-encryption key, no client-side sessions", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, nil)
		u := newUser(t, s)
		for _, tr := range []string{"jwt", "jwt_cookie"} {
			r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": tr})
			wantError(t, r, http.StatusBadRequest, "jwt_unavailable")
			if len(r.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("refused %s login sets cookies %q", tr, r.Header.Values("Set-Cookie"))
			}
		}
		wantError(t, s.adm(t, "POST", "/admin/v1/sessions", J{"user_id": u.ID, "transport": "jwt"}), http.StatusBadRequest, "jwt_unavailable")
		wantError(t, refresh(t, s, "sdr_x"), http.StatusBadRequest, "jwt_unavailable")
		if ids := sessionIDs(t, s, u.ID); len(ids) != 0 {
			t.Errorf("refused logins made sessions %v", ids)
		}
		r, _, kids := jwks(t, s)
		if len(kids) != 0 || !bytes.Equal(bytes.TrimSpace(r.Body), []byte(`{"keys":[]}`)) {
			t.Errorf("JWKS without keys: %s, want {\"keys\":[]}", r.Body)
		}
		tok, _ := login(t, s, u) // server-side sessions are unaffected
		alive(t, s, tok)
	})

	t.Run("keys and chains survive a restart; another key-encryption key does not open them", func(t *testing.T) {
		t.Parallel()
		kek, errOut, code := runCLI(t, t.TempDir(), "", nil, "keys", "new-kek")
		if code != 0 {
			t.Fatalf("keys new-kek: %d %s", code, errOut)
		}
		kekFile := filepath.Join(t.TempDir(), "kek")
		if err := os.WriteFile(kekFile, []byte(kek), 0o600); err != nil {
			t.Fatal(err)
		}
		s := startServer(t, []string{"--key-encryption-key-file", kekFile})
		u := newUser(t, s)
		p := loginJWT(t, s, u, true)
		_, _, before := jwks(t, s)
		s.Restart(t)
		_, _, after := jwks(t, s)
		if !slices.Equal(before, after) {
			t.Errorf("JWKS kids %v after a restart, %v before", after, before)
		}
		if _, err := verifyJWX(t, s, p.Access, "sessiond", ""); err != nil {
			t.Errorf("jwx refuses a token issued before the restart: %v", err)
		}
		wantStatus(t, whoami(t, s, bearer(p.Access)), http.StatusOK)
		mustRefresh(t, s, p.Refresh)
		s.Stop(t)

		wrong := newKEK()
		args := []string{"serve", "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"--admin-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--database", "sqlite://" + s.DB}
		stdout, stderr, code := runCLI(t, s.Dir, "", []string{kekEnv(wrong)}, args...)
		wantOneLineFailure(t, code, stdout, stderr, "key-encryption key", wrong)
	})
}

// wantOneLineFailure checks a command that must fail: non-zero status, one
// line on stderr mentioning want, nothing on stdout, never the secret.
func wantOneLineFailure(t *testing.T, code int, stdout, stderr, want, secret string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("exit status 0, want non-zero; stderr %q", stderr)
	}
	reason := strings.TrimSpace(stderr)
	t.Logf("status %d: %s", code, reason)
	if reason == "" || strings.Contains(reason, "\n") {
		t.Errorf("stderr has %d lines, want one: %.500q", strings.Count(reason, "\n")+1, stderr)
	}
	if !strings.Contains(strings.ToLower(reason), strings.ToLower(want)) {
		t.Errorf("reason %q does not mention %q", reason, want)
	}
	if secret != "" && strings.Contains(stderr, secret) {
		t.Errorf("the reason shows the key: %q", reason)
	}
	if stdout != "" {
		t.Errorf("stdout %q, want nothing", stdout)
	}
}
