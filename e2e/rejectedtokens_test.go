package e2e_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// Rejected tokens per client address (issue 20: "unknown, revoked and
// expired tokens read the store every time"; "rate-limit invalid
// refreshes per address"): a flood of random tokens from one address is
// answered 429 rate_limited once its allowance
// (--rejected-token-rate-per-ip) is spent, before any store read; another
// address is unaffected; valid tokens are never charged. Past the
// allowance a valid token from the flooding address is refused too (the
// documented choice: telling it apart would take the store read the limit
// saves) until the allowance refills.

// answer is one request's status, error code and Retry-After.
type answer struct {
	status     int
	code       string
	retryAfter string
}

// callFrom makes a request from client c (see clientFrom) with bearer token
// tok (none when empty) and a JSON body (none when nil).
func callFrom(t *testing.T, c *http.Client, method, url, tok string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &e)
	return answer{resp.StatusCode, e.Error.Code, resp.Header.Get("Retry-After")}
}

func randomToken(t *testing.T) string {
	t.Helper()
	tok, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRejectedTokensPerAddress(t *testing.T) {
	t.Parallel()
	const limit = 30 // a minute: one back every 2 s
	s, _ := startJWT(t, []string{"--rejected-token-rate-per-ip", strconv.Itoa(limit)})
	flooder, other := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	u := newUser(t, s)
	tok, _ := login(t, s, u)
	jwt := loginJWT(t, s, u, false)

	// Valid tokens, more than the allowance, spend none of it.
	for range 2 * limit {
		if a := callFrom(t, flooder, "GET", s.Pub+"/v1/session", tok, nil); a.status != http.StatusOK {
			t.Fatalf("a valid token: %+v", a)
		}
	}

	// The flood: random well-formed tokens, then anything.
	rejected, limited := 0, 0
	start := time.Now()
	for range 3 * limit {
		switch a := callFrom(t, flooder, "GET", s.Pub+"/v1/session", randomToken(t), nil); {
		case a.status == http.StatusUnauthorized:
			// Before the first 429, or a token refilled during the flood
			// (one every 2 s: a slow machine sees some).
			rejected++
		case a.status == http.StatusTooManyRequests && a.code == "rate_limited" && a.retryAfter != "":
			limited++
		default:
			t.Fatalf("token %d of the flood (%d rejected, %d limited before): %+v", rejected+limited+1, rejected, limited, a)
		}
	}
	// The burst, plus what refilled during the flood.
	if refill := int(time.Since(start).Seconds()*limit/60) + 1; rejected < limit || rejected > limit+refill {
		t.Fatalf("%d random tokens answered 401, want %d (+%d refilled)", rejected, limit, refill)
	}
	t.Logf("a flood of %d random tokens from one address with --rejected-token-rate-per-ip %d: %d answered 401, then %d answered 429",
		3*limit, limit, rejected, limited)

	// Every token from the address is refused now, valid or not, on every
	// route that reads one.
	for _, c := range []struct {
		method, path, tok string
		body              any
	}{
		{"GET", "/v1/session", tok, nil},
		{"GET", "/v1/session", jwt.Access, nil},
		{"GET", "/v1/profile", randomToken(t), nil},
		{"POST", "/v1/logout", randomToken(t), nil},
		{"POST", refreshPath, "", J{"refresh_token": jwt.Refresh}},
		{"POST", "/v1/token/revoke", "", J{"refresh_token": jwt.Refresh}},
	} {
		a := callFrom(t, flooder, c.method, s.Pub+c.path, c.tok, c.body)
		for retry := 0; a.status != http.StatusTooManyRequests && retry < 3; retry++ {
			// A token refilled meanwhile (one every 2 s; a loaded machine
			// is slow between requests): spend it and ask again.
			for range 3 {
				callFrom(t, flooder, "GET", s.Pub+"/v1/session", randomToken(t), nil)
			}
			a = callFrom(t, flooder, c.method, s.Pub+c.path, c.tok, c.body)
		}
		if a.status != http.StatusTooManyRequests || a.code != "rate_limited" {
			t.Fatalf("%s %s from the flooding address: %+v, want 429 rate_limited", c.method, c.path, a)
		}
	}
	// A request without a token is not limited.
	if a := callFrom(t, flooder, "GET", s.Pub+"/v1/session", "", nil); a.status != http.StatusUnauthorized {
		t.Fatalf("no token from the flooding address: %+v, want 401", a)
	}
	// Another address is not affected, and neither is the session.
	if a := callFrom(t, other, "GET", s.Pub+"/v1/session", tok, nil); a.status != http.StatusOK {
		t.Fatalf("a valid token from another address: %+v", a)
	}
	if a := callFrom(t, other, "GET", s.Pub+"/v1/session", randomToken(t), nil); a.status != http.StatusUnauthorized {
		t.Fatalf("a random token from another address: %+v, want 401", a)
	}

	// Once the flood stops, the allowance refills: the valid token works
	// again, and keeps working (it spends nothing).
	time.Sleep(2500 * time.Millisecond)
	for range limit {
		if a := callFrom(t, flooder, "GET", s.Pub+"/v1/session", tok, nil); a.status != http.StatusOK {
			t.Fatalf("a valid token after the refill: %+v", a)
		}
	}
}

// Invalid refresh tokens are charged to the address as rejected session
// tokens are, at the refresh and at the revocation (RFC 7009's 204 for
// any token otherwise).
func TestRejectedRefreshTokensPerAddress(t *testing.T) {
	t.Parallel()
	const limit = 10
	s, _ := startJWT(t, []string{"--rejected-token-rate-per-ip", strconv.Itoa(limit)})
	flooder, other := clientFrom("127.0.0.3"), clientFrom("127.0.0.2")
	u := newUser(t, s)
	p := loginJWT(t, s, u, false)
	forged := p.Refresh[:len(p.Refresh)-8] + "AAAAAAAA"
	rejected, limited := 0, 0
	for i := range 2 * limit {
		path := refreshPath
		if i%2 == 1 {
			path = "/v1/token/revoke"
		}
		switch a := callFrom(t, flooder, "POST", s.Pub+path, "", J{"refresh_token": forged}); {
		case limited == 0 && (a.status == http.StatusUnauthorized && a.code == "invalid_refresh_token" ||
			a.status == http.StatusNoContent && path != refreshPath):
			rejected++
		case a.status == http.StatusTooManyRequests && a.code == "rate_limited" && a.retryAfter != "":
			limited++
		default:
			t.Fatalf("%s with a forged token (%d rejected, %d limited before): %+v", path, rejected, limited, a)
		}
	}
	if rejected < limit || rejected > limit+1 {
		t.Fatalf("%d forged refresh tokens answered before the first 429, want %d", rejected, limit)
	}
	if a := callFrom(t, other, "POST", s.Pub+refreshPath, "", J{"refresh_token": p.Refresh}); a.status != http.StatusOK {
		t.Fatalf("the genuine refresh token from another address: %+v", a)
	}
}
