package e2e_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Abuse against the real binary, on loopback, bounded in count and time:
// password guessing against one account and across many accounts from one
// address, hostile bodies and headers, slow clients and idle connections.

// guessList returns n distinct wrong passwords for the account whose
// password is real: the common passwords sessiond refuses at registration
// (what a guessing run tries first), then near misses of the real one (a
// leaked old password, a typo), never the real one.
func guessList(t *testing.T, real string, n int) []string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "account", "common-passwords.txt"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{real: true}
	var out []string
	add := func(g string) {
		if !seen[g] && len(out) < n {
			seen[g] = true
			out = append(out, g)
		}
	}
	// Near misses first, so that they are tried however the run ends.
	add(strings.ToUpper(real))
	add(strings.ToLower(real))
	add(real[:len(real)-1])
	add(real[1:])
	add(" " + real)
	add(real + " ")
	for i := range len(real) {
		add(real[:i] + real[i+1:])
		add(real[:i] + "x" + real[i+1:])
	}
	for i := range 40 {
		add(real + strconv.Itoa(i))
		add(strconv.Itoa(i) + real)
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		add(line)
		add(line + "!")
	}
	if len(out) < n {
		t.Fatalf("only %d guesses, want %d", len(out), n)
	}
	return out
}

// TestPasswordGuessing runs a password-guessing attack against one
// account: thousands of attempts from a list of 2000 distinct wrong
// passwords, for as long as six locks take. None
// signs in; lockout engages after every five failures, each lock doubles
// the one before up to the cap, every 429 carries Retry-After, the right
// password is refused too while the account is locked, and the real user
// signs in once the last lock has ended. Then the same 2000 guesses against
// a server without lockout, so that each one meets the password check.
func TestPasswordGuessing(t *testing.T) {
	t.Parallel()
	const (
		first, maxLock = 1, 4 // seconds: --lockout-duration, --lockout-max-duration
		wantLocks      = 6    // 1s, 2s, 4s, 4s, 4s, 4s
		distinct       = 2000
	)
	s := startServer(t, []string{"--lockout-duration", strconv.Itoa(first) + "s", "--lockout-max-duration", strconv.Itoa(maxLock) + "s",
		"--login-rate-per-ip", "0", // the per-address limit would stop the run first; it has its own test
		"--log-level", "info"})
	victim := newUser(t, s)
	guesses := guessList(t, victim.Password, distinct)

	var (
		attempts, refused, evaluated, successes int
		locks                                   []int // Retry-After at the start of each lock
		last429                                 time.Time
		lastRetry                               int
		triedRight                              bool
	)
	// The run lasts until the sixth lock (some 15 seconds) and the whole
	// list has been tried, or 30 seconds on a machine too loaded for that.
	prev := 0
	start := time.Now()
	for i := 0; ; i++ {
		if len(locks) >= wantLocks && (i >= len(guesses) || time.Since(start) > 30*time.Second) {
			break
		}
		if time.Since(start) > 90*time.Second {
			t.Fatalf("after %v: %d attempts, locks %v: the run did not finish", time.Since(start), attempts, locks)
		}
		r := tryLogin(t, s, victim.Email, guesses[i%len(guesses)])
		attempts++
		switch r.Status {
		case http.StatusUnauthorized:
			wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
			evaluated++
		case http.StatusTooManyRequests:
			wantError(t, r, http.StatusTooManyRequests, "account_locked")
			wantNoSessionCookie(t, r)
			refused++
			n := retryAfter(t, r)
			if n < 1 || n > maxLock {
				t.Errorf("Retry-After %d, want 1 to %d (--lockout-max-duration)", n, maxLock)
			}
			if prev != http.StatusTooManyRequests {
				locks = append(locks, n)
				if evaluated%5 != 0 {
					t.Errorf("lock %d began after %d evaluated failures, want a multiple of 5", len(locks), evaluated)
				}
				if len(locks) == 3 && !triedRight {
					// The owner's own password is refused while locked, and
					// not counted.
					triedRight = true
					r := tryLogin(t, s, victim.Email, victim.Password)
					wantError(t, r, http.StatusTooManyRequests, "account_locked")
					wantNoSessionCookie(t, r)
				}
			}
			last429, lastRetry = time.Now(), n
		case http.StatusOK:
			successes++
			t.Errorf("guess %q signed in", guesses[i%len(guesses)])
		default:
			t.Fatalf("guess answered %d %s", r.Status, r.Body)
		}
		prev = r.Status
		time.Sleep(2 * time.Millisecond) // about 300 attempts a second
	}
	took := time.Since(start)
	want := []int{1, 2, 4}
	for len(want) < len(locks) {
		want = append(want, maxLock)
	}
	if !slices.Equal(locks, want) {
		t.Errorf("lock lengths (Retry-After at each lock's start) %v, want %v: doubling from %ds, capped at %ds", locks, want, first, maxLock)
	}
	if ev := eventsOf(t, s, victim.ID, "locked_out"); len(ev) != len(locks) {
		t.Errorf("%d locked_out events in the audit trail, want %d", len(ev), len(locks))
	}

	// The run stops; once the last lock ends the real user signs in.
	wantError(t, tryLogin(t, s, victim.Email, victim.Password), http.StatusTooManyRequests, "account_locked")
	time.Sleep(time.Until(last429.Add(time.Duration(lastRetry)*time.Second + 50*time.Millisecond)))
	r := tryLogin(t, s, victim.Email, victim.Password)
	wantStatus(t, r, http.StatusOK)
	alive(t, s, wantSessionCookie(t, r))
	t.Logf("password guessing against one account, lockout on: %d attempts in %v (%d distinct wrong passwords), %d checked and refused, %d refused by the lock, %d successes; locks %v s; the real user signed in after the last lock",
		attempts, took.Round(time.Millisecond), min(attempts, len(guesses)), evaluated, refused, successes, locks)

	// The lock spared the password check most of the guesses. Without
	// lockout and the address limit every guess reaches it, near misses of
	// the real password included (no trimming, no case folding, no
	// truncation), and none passes.
	open := startServer(t, []string{"--lockout-threshold", "0", "--login-rate-per-ip", "0", "--log-level", "info"})
	victim = newUser(t, open)
	guesses = guessList(t, victim.Password, distinct)
	start = time.Now()
	checked := 0
	for _, g := range guesses {
		r := tryLogin(t, open, victim.Email, g)
		if r.Status == http.StatusOK {
			t.Errorf("guess %q signed in", g)
			continue
		}
		wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
		checked++
	}
	wantStatus(t, tryLogin(t, open, victim.Email, victim.Password), http.StatusOK)
	t.Logf("password guessing against one account, lockout off: %d distinct wrong passwords checked in %v, %d refused, 0 successes; the real password then signs in",
		len(guesses), time.Since(start).Round(time.Millisecond), checked)
}

// clientFrom is an HTTP client whose connections come from the loopback
// address ip (127.0.0.2, say): another client address to the server.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: validating(&http.Transport{DialContext: d.DialContext})}
}

// TestGuessingAcrossAccounts runs a guessing attack across many accounts
// from one address, each request with a forged X-Forwarded-For that the
// server must ignore (the peer is no trusted proxy). The per-address limit
// holds: the answers other than 429 never exceed what the token bucket
// allows (the burst of --login-rate-per-ip plus its refill over the run),
// no account locks, nothing signs in, and another client address is not
// affected.
func TestGuessingAcrossAccounts(t *testing.T) {
	t.Parallel()
	const limit = 30 // per minute
	s := startServer(t, []string{"--login-rate-per-ip", strconv.Itoa(limit), "--trusted-proxies", "10.0.0.0/8",
		"--log-level", "info"})
	var accounts []user
	for i := range 40 {
		u := user{Email: fmt.Sprintf("many-%d-%s@example.com", i, randHex(3)), Password: "Tr0ub4dor&" + randHex(4)}
		r := s.adm(t, "POST", "/admin/v1/users", J{"email": u.Email, "password": u.Password})
		wantStatus(t, r, http.StatusCreated)
		u.ID = str(t, obj(t, r, "user"), "id")
		accounts = append(accounts, u)
	}
	spoofs := []string{"203.0.113.%d", "10.0.0.1, 198.51.100.%d", "192.0.2.%d, 10.9.9.9", "::ffff:198.51.100.%d"}
	var answered, limited, successes int
	start := time.Now()
	var lastAnswered time.Time
	// Six seconds at least, and until the limit has refused 20: a loaded
	// machine may take longer to empty the bucket.
	for i := 0; time.Since(start) < 6*time.Second || limited < 20; i++ {
		if time.Since(start) > time.Minute {
			t.Fatalf("after a minute: %d answered, %d refused", answered, limited)
		}
		email := accounts[i%len(accounts)].Email
		if i%7 == 0 {
			email = fmt.Sprintf("nobody-%d@example.com", i) // unknown accounts count too
		}
		xff := fmt.Sprintf(spoofs[i%len(spoofs)], i%250+1)
		r := tryLogin(t, s, email, "guess-"+strconv.Itoa(i), header("X-Forwarded-For", xff))
		switch r.Status {
		case http.StatusTooManyRequests:
			wantError(t, r, http.StatusTooManyRequests, "rate_limited")
			limited++
		case http.StatusUnauthorized:
			wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
			answered++
			lastAnswered = time.Now()
		case http.StatusOK:
			successes++
			t.Errorf("a guess signed in to %s", email)
		default:
			t.Fatalf("guess answered %d %s", r.Status, r.Body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	// A bucket of `limit` tokens refilled at limit/minute: at most limit +
	// limit*elapsed/60 answers in the run.
	allowed := limit + int(math.Ceil(float64(limit)*lastAnswered.Sub(start).Seconds()/60))
	if answered > allowed || answered < limit {
		t.Errorf("%d answers other than 429 in %v from one address, want %d to %d (--login-rate-per-ip %d)",
			answered, took, limit, allowed, limit)
	}
	// The right password from the limited address is refused too; another
	// address signs in.
	// (A token that came back meanwhile lets a login through, and the next
	// failure takes it again.)
	u := accounts[0]
	for try := 1; ; try++ {
		r := tryLogin(t, s, u.Email, u.Password, header("X-Forwarded-For", "203.0.113.250"))
		if r.Status == http.StatusTooManyRequests {
			wantError(t, r, http.StatusTooManyRequests, "rate_limited")
			break
		}
		if try == 3 {
			t.Fatalf("the right password from the limited address: %d %s, want 429", r.Status, r.Body)
		}
		tryLogin(t, s, u.Email, "one more guess")
	}
	body, _ := json.Marshal(J{"email": u.Email, "password": u.Password, "transport": "token"})
	resp, err := clientFrom("127.0.0.2").Post(s.Pub+"/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("login from 127.0.0.2: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("login from another address (127.0.0.2): %d, want 200", resp.StatusCode)
	}
	for _, a := range accounts {
		if ev := eventsOf(t, s, a.ID, "locked_out"); len(ev) != 0 {
			t.Errorf("account %s locked during a run the address limit should have stopped", a.Email)
		}
	}
	t.Logf("guessing across %d accounts from one address with forged X-Forwarded-For: %d attempts in %v, %d answered, %d refused 429 (bucket %d, %d/min: at most %d), %d successes",
		len(accounts), answered+limited+successes, took.Round(time.Millisecond), answered, limited, limit, limit, allowed, successes)
}

// rawConn dials the server's public listener.
func rawConn(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.Pub, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// statusLine writes req on a new connection (from a goroutine, since the
// server may answer before it has read all of it) and returns the first
// line of the answer.
func statusLine(t *testing.T, s *Server, req string) string {
	t.Helper()
	c := rawConn(t, s)
	go func() { _, _ = io.WriteString(c, req) }()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v (read %q)", err, line)
	}
	return strings.TrimSpace(line)
}

// healthy checks that the server process is still up and answering.
func healthy(t *testing.T, s *Server) {
	t.Helper()
	select {
	case <-s.done:
		t.Fatalf("sessiond exited: %v\nlog:\n%s", s.exitErr(), s.Logs())
	default:
	}
	wantStatus(t, do(t, s.Admin, "GET", "/healthz", nil), http.StatusOK)
}

// TestHostileInput sends what a hostile client sends: deeply nested and
// oversized JSON, invalid UTF-8 everywhere, header floods. Every answer is
// a 4xx (the invariants of do: no 5xx, the JSON error shape), quickly, and
// the process stays up.
func TestHostileInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--max-body-bytes", strconv.Itoa(1 << 20), "--log-level", "info"})
	u := newUser(t, s)
	tok, _ := login(t, s, u)
	ct := header("Content-Type", "application/json")

	t.Run("deeply nested JSON", func(t *testing.T) {
		arrays := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)            // 200 KB
		objects := strings.Repeat(`{"a":`, 100_000) + "1" + strings.Repeat("}", 100_000) // 600 KB
		unclosed := strings.Repeat("[", 500_000)
		huge := strings.Repeat("[", 600_000) + strings.Repeat("]", 600_000) // over the 1 MiB limit
		for _, c := range []struct {
			name, method, path, body string
			auth                     reqOpt
			status                   int
		}{
			{"login email", "POST", "/v1/login", `{"email":` + arrays + `,"password":"x"}`, nil, 400},
			{"login remember_me", "POST", "/v1/login", `{"email":"a@example.com","password":"x","remember_me":` + objects + `}`, nil, 400},
			{"login unclosed", "POST", "/v1/login", `{"email":` + unclosed, nil, 400},
			{"register profile", "POST", "/v1/register", `{"email":"n@example.com","password":"Tr0ub4dor&x","profile":{"a":` + arrays + `}}`, nil, 400},
			{"profile patch", "PATCH", "/v1/profile", `{"profile":{"a":` + objects + `}}`, bearer(tok), 400},
			{"session data value", "PUT", "/v1/session/data/k", arrays, bearer(tok), 400},
			{"session data unclosed", "PUT", "/v1/session/data/k", unclosed, bearer(tok), 400},
			{"password change", "POST", "/v1/password/change", `{"current_password":` + arrays + `}`, bearer(tok), 400},
			{"reset", "POST", "/v1/password/reset", `{"email":` + objects + `}`, nil, 400},
			{"refresh", "POST", "/v1/token/refresh", `{"refresh_token":` + arrays + `}`, nil, 400},
			{"over the body limit", "POST", "/v1/login", `{"email":` + huge + `}`, nil, 413},
		} {
			opts := []reqOpt{ct, offContract("hostile JSON")}
			if c.auth != nil {
				opts = append(opts, c.auth)
			}
			r := s.call(t, c.method, c.path, raw(c.body), opts...)
			if r.Status != c.status {
				t.Errorf("%s (%d bytes): %d %s, want %d", c.name, len(c.body), r.Status, r.Body, c.status)
			}
			if r.Took > 5*time.Second {
				t.Errorf("%s: took %v", c.name, r.Took)
			}
		}
		r := s.adm(t, "POST", "/admin/v1/sessions", raw(`{"user_id":"`+u.ID+`","data":{"k":`+arrays+`}}`), ct, offContract("hostile JSON"))
		if r.Status != http.StatusBadRequest {
			t.Errorf("admin session with nested data: %d %s, want 400", r.Status, r.Body)
		}
		// Just under encoding/json's depth limit is valid JSON: stored and
		// read back, not a stack overflow.
		deep := strings.Repeat("[", 8000) + strings.Repeat("]", 8000)
		wantStatus(t, s.call(t, "PUT", "/v1/session/data/deep", raw(deep), ct, bearer(tok)), http.StatusNoContent)
		r = s.call(t, "GET", "/v1/session/data", nil, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		if !bytes.Contains(r.Body, []byte(deep)) {
			t.Errorf("8000 nested arrays did not come back as stored")
		}
		healthy(t, s)
		alive(t, s, tok)
	})

	t.Run("invalid UTF-8", func(t *testing.T) {
		bad := "\xff\xfe\xc3\x28\xed\xa0\x80" // invalid bytes, a bad sequence, an encoded surrogate
		// In a header the server stores and shows back.
		r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "token"}, userAgent("Mozilla/5.0 "+bad))
		wantStatus(t, r, http.StatusOK)
		tok2 := str(t, r.JSON, "token")
		for _, path := range []string{"/v1/sessions", "/v1/session"} {
			r := s.call(t, "GET", path, nil, bearer(tok2))
			wantStatus(t, r, http.StatusOK)
			if !utf8.Valid(r.Body) || r.JSON == nil {
				t.Errorf("GET %s after a User-Agent with invalid UTF-8: not valid UTF-8 JSON: %q", path, r.Body)
			}
		}
		// In bodies.
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/v1/register", `{"email":"a` + bad + `@example.com","password":"Tr0ub4dor&x"}`},
			{"POST", "/v1/login", `{"email":"` + u.Email + `","password":"` + bad + `"}`},
			{"PATCH", "/v1/profile", `{"profile":{"` + bad + `":1}}`},
			{"PUT", "/v1/session/data/k", `"` + bad + `"`},
			{"POST", "/v1/password/reset", `{"email":"` + bad + `"}`},
		} {
			r := s.call(t, c.method, c.path, raw(c.body), ct, bearer(tok), offContract("invalid UTF-8"))
			if r.Status != http.StatusBadRequest {
				t.Errorf("%s %s with invalid UTF-8: %d %s, want 400", c.method, c.path, r.Status, r.Body)
			}
		}
		// JSON escapes of lone surrogates are valid UTF-8 text: a wrong
		// password, not a crash.
		wantError(t, s.call(t, "POST", "/v1/login", raw(`{"email":"`+u.Email+`","password":"\ud800\udfff\ud800"}`), ct),
			http.StatusUnauthorized, "invalid_credentials")
		// In credentials and paths.
		wantError(t, whoami(t, s, bearer(bad)), http.StatusUnauthorized, "unauthenticated")
		wantError(t, whoami(t, s, header("Cookie", cookieName+"="+bad)), http.StatusUnauthorized, "unauthenticated")
		wantError(t, whoami(t, s, header("Authorization", bad)), http.StatusUnauthorized, "unauthenticated")
		wantError(t, s.call(t, "PUT", "/v1/session/data/%FF%FE", raw(`1`), ct, bearer(tok), offContract("an invalid key")), http.StatusBadRequest, "invalid_key")
		wantError(t, s.call(t, "DELETE", "/v1/sessions/%FF%FE", nil, bearer(tok)), http.StatusNotFound, "not_found")
		if r := s.adm(t, "GET", "/admin/v1/users?email=%FF%FE%40example.com", nil); r.Status != 404 && r.Status != 400 {
			t.Errorf("admin user lookup by an invalid UTF-8 email: %d %s", r.Status, r.Body)
		}
		if r := s.adm(t, "POST", "/admin/v1/sessions/validate", J{"token": bad}); r.Status != 200 || r.JSON["active"] != false {
			t.Errorf("validate an invalid UTF-8 token: %d %s", r.Status, r.Body)
		}
		healthy(t, s)
		alive(t, s, tok)
	})

	t.Run("header floods", func(t *testing.T) {
		// The listeners cap headers at 32 KiB (net/http adds 4 KiB of
		// slack): beyond that, 431 from net/http, before any handler.
		var many strings.Builder
		for i := range 2000 {
			fmt.Fprintf(&many, "X-Flood-%d: %s\r\n", i, strings.Repeat("a", 30))
		}
		floods := map[string]string{
			"2000 headers":        "GET /v1/session HTTP/1.1\r\nHost: x\r\n" + many.String() + "\r\n",
			"one 100 KB header":   "GET /v1/session HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 100<<10) + "\r\n\r\n",
			"a 100 KB cookie":     "GET /v1/session HTTP/1.1\r\nHost: x\r\nCookie: " + cookieName + "=" + strings.Repeat("c", 100<<10) + "\r\n\r\n",
			"a 100 KB URL":        "GET /v1/session/data?" + strings.Repeat("q", 100<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n",
			"a 40 KB bearer":      "GET /v1/session HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + strings.Repeat("t", 40<<10) + "\r\n\r\n",
			"10000 empty headers": "GET /v1/session HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X: \r\n", 10000) + "\r\n",
		}
		var wg sync.WaitGroup
		for name, req := range floods {
			for range 5 { // a few at once
				wg.Go(func() {
					if line := statusLine(t, s, req); !strings.Contains(line, " 431 ") {
						t.Errorf("%s: %q, want 431", name, line)
					}
				})
			}
		}
		wg.Wait()
		// Within the limit, many headers are just a request.
		var ok strings.Builder
		for i := range 200 {
			fmt.Fprintf(&ok, "X-Ok-%d: %s\r\n", i, strings.Repeat("a", 30))
		}
		if line := statusLine(t, s, "GET /healthz HTTP/1.1\r\nHost: x\r\n"+ok.String()+"\r\n"); !strings.Contains(line, " 200 ") {
			t.Errorf("200 headers of 40 bytes: %q, want 200", line)
		}
		healthy(t, s)
		alive(t, s, tok)
	})
}

// goroutines scrapes the server's goroutine count from its metrics.
func goroutines(t *testing.T, s *Server) int {
	t.Helper()
	n, _ := scrapeMetric(t, s, "sessiond_go_goroutines")
	return int(n)
}

// scrapeMetric returns the value of a series from /metrics on the admin
// listener: a name, or a name with its labels as /metrics writes them
// (`name{label="v"}`).
func scrapeMetric(t *testing.T, s *Server, name string) (float64, bool) {
	t.Helper()
	resp, err := httpClient.Get(s.Admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, v)
			}
			return f, true
		}
	}
	t.Fatalf("no metric %s in /metrics", name)
	return 0, false
}

// TestSlowClients checks the listeners' timeouts: a client that sends its
// headers a byte at a time (slowloris) is cut off by --read-header-timeout,
// one that trickles its body by --read-timeout, a connection that never
// sends anything by the header timeout too, and kept-alive connections left
// idle by --idle-conn-timeout. Hundreds of such connections at once do not
// keep a fresh client from being served, and once they are cut the
// server's goroutines are back to where they were.
func TestSlowClients(t *testing.T) {
	// Not parallel: it measures when the server cuts connections, which
	// the other tests' load delayed by up to 15 s; serial tests run alone
	// in this package.
	const (
		headerTimeout = time.Second
		readTimeout   = 2 * time.Second
		idleTimeout   = 3 * time.Second
		slack         = 15 * time.Second // a loaded machine is late to cut, and to notice (11 s seen while the whole suite ran)
	)
	s := startServer(t, []string{"--read-header-timeout", headerTimeout.String(), "--read-timeout", readTimeout.String(),
		"--idle-conn-timeout", idleTimeout.String(), "--log-level", "info"})
	u := newUser(t, s)
	base := goroutines(t, s)

	// cutAfter reports, on done, how long after start the server closed c
	// (reads ended), while feed trickles bytes into it.
	type cut struct {
		took time.Duration
		data string
	}
	watch := func(c net.Conn, start time.Time, done chan<- cut) {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		b, _ := io.ReadAll(c)
		done <- cut{time.Since(start), string(b)}
	}
	trickle := func(c net.Conn, prefix, drip string, stop <-chan struct{}) {
		if _, err := io.WriteString(c, prefix); err != nil {
			return
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := io.WriteString(c, drip[i%len(drip):i%len(drip)+1]); err != nil {
				return
			}
		}
	}

	const slowloris, slowBodies, silent, idle = 100, 50, 100, 300
	stop := make(chan struct{})
	defer close(stop)
	var (
		headerCuts = make(chan cut, slowloris+silent)
		bodyCuts   = make(chan cut, slowBodies)
		idleCuts   = make(chan cut, idle)
	)
	start := time.Now()
	for range slowloris {
		c := rawConn(t, s)
		go watch(c, start, headerCuts)
		go trickle(c, "GET /v1/session HTTP/1.1\r\nHost: x\r\nX-Slow: ", "abcdefgh", stop)
	}
	for range silent {
		c := rawConn(t, s)
		go watch(c, start, headerCuts)
	}
	for range slowBodies {
		c := rawConn(t, s)
		go watch(c, start, bodyCuts)
		go trickle(c, "POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n", `{"email":"`, stop)
	}
	// Kept-alive connections, each after one request, then idle.
	for range idle {
		c := rawConn(t, s)
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("keep-alive request: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("keep-alive request: %d, close %v", resp.StatusCode, resp.Close)
		}
		idleSince := time.Now()
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, _ = io.Copy(io.Discard, br)
			idleCuts <- cut{took: time.Since(idleSince)}
		}()
	}
	during := goroutines(t, s)

	// With all of them open, a fresh client is served at once.
	t0 := time.Now()
	tok, _ := login(t, s, u)
	alive(t, s, tok)
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("a fresh client took %v to sign in among %d slow and idle connections", d, slowloris+slowBodies+silent+idle)
	}

	collect := func(what string, ch <-chan cut, n int, lo, hi time.Duration) (worst time.Duration) {
		t.Helper()
		for range n {
			select {
			case c := <-ch:
				if c.took > hi || c.took < lo {
					t.Errorf("%s: cut after %v, want %v to %v", what, c.took.Round(time.Millisecond), lo, hi)
				}
				if strings.Contains(c.data, "HTTP/1.1 2") || strings.Contains(c.data, "HTTP/1.1 5") {
					t.Errorf("%s: answered %q", what, c.data)
				}
				worst = max(worst, c.took)
			case <-time.After(hi + 10*time.Second):
				t.Fatalf("%s: a connection still open %v after the timeout", what, hi+10*time.Second)
			}
		}
		return worst
	}
	// The lower bounds are loose: the server's clock for a connection
	// starts before the client's does, by as much as a loaded machine
	// delays the client.
	wh := collect("slow headers / no request", headerCuts, slowloris+silent, headerTimeout/2, headerTimeout+slack)
	wb := collect("slow body", bodyCuts, slowBodies, readTimeout/2, readTimeout+slack)
	wi := collect("idle keep-alive", idleCuts, idle, idleTimeout/2, idleTimeout+slack)

	// Back to where it was: nothing is left behind per connection.
	var after int
	for deadline := time.Now().Add(5 * time.Second); ; {
		after = goroutines(t, s)
		if after <= base+10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if after > base+10 {
		t.Errorf("server goroutines %d after every slow and idle connection was cut, %d before", after, base)
	}
	t.Logf("%d slowloris and %d silent connections cut within %v (--read-header-timeout %v), %d slow bodies within %v (--read-timeout %v), %d idle keep-alive connections within %v (--idle-conn-timeout %v); server goroutines %d before, %d with all open, %d after",
		slowloris, silent, wh.Round(time.Millisecond), headerTimeout, slowBodies, wb.Round(time.Millisecond), readTimeout,
		idle, wi.Round(time.Millisecond), idleTimeout, base, during, after)
	healthy(t, s)
}
