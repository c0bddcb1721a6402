package e2e_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // PRAGMA integrity_check on the file a killed server left
)

// Crash durability against the real binary: workers sign users in, rotate
// tokens (password change with Force Logout, reauthentication, refresh of
// client-side sessions, admin-created sessions refreshed by the client),
// end sessions (logout, DELETE /v1/sessions/{id}, admin revocation, token
// revocation, revoke-others) and write session data, while the test kills
// the server with SIGKILL at a random moment. Only what the client saw
// acknowledged (a 2xx answer) is recorded as done; a request that was cut
// off by the kill leaves what it touched uncertain, and the model stops
// expecting anything of it. After each kill the database is checked (SQLite: PRAGMA
// integrity_check on the file; PostgreSQL: every table scanned and, where
// amcheck is available, every B-tree index checked), the server restarts
// on the same database, and every acknowledged change must hold:
//
//   - every acknowledged revocation still revoked: its tokens answer 401;
//   - every acknowledged live session still valid (none expire within the
//     test), with its acknowledged data;
//   - every token rotated away (by a password change, a reauthentication or
//     a refresh) dead;
//   - every acknowledged password change in force (the next login uses the
//     new password and must succeed).
//
// Rounds: SESSIOND_CRASH_ROUNDS, else 3 under -short and 20 otherwise.
func TestCrashDurability(t *testing.T) {
	t.Parallel()
	rounds := 20
	if testing.Short() {
		rounds = 3
	}
	if v := os.Getenv("SESSIOND_CRASH_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SESSIOND_CRASH_ROUNDS=%q: want a positive number", v)
		}
		rounds = n
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		runCrash(t, rounds, "", nil)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dbURL, check := crashPostgres(t)
		runCrash(t, rounds, dbURL, check)
	})
}

// Session states in the model.
const (
	crLive    = iota // acknowledged and not ended by an acknowledged change
	crDead           // ended by an acknowledged change
	crUnknown        // touched by a request the kill cut off
)

type crSession struct {
	id      string
	user    *crUser
	jwt     bool
	proven  bool     // signed in with the password (may sign other sessions out)
	tok     string   // opaque token (jwt: "")
	oldToks []string // opaque tokens rotated away (password change, reauthentication)
	access  string   // jwt: the latest access token
	refresh string   // jwt: the current refresh token
	oldRefs []string // jwt: refresh tokens used up by a refresh
	data    map[string]string
	state   int
	why     string // the acknowledged change behind state
}

// auth is the bearer credential of the session.
func (s *crSession) auth() string {
	if s.jwt {
		return s.access
	}
	return s.tok
}

type crUser struct {
	id, email, pw string
	sessions      []*crSession
	owner         int  // the worker that changes it during the load
	retired       bool // an unacknowledged password change: the password is unknown
}

func (u *crUser) live() []*crSession {
	var out []*crSession
	for _, s := range u.sessions {
		if s.state == crLive {
			out = append(out, s)
		}
	}
	return out
}

// crashRun is one backend's run: the server, the model and the counts.
type crashRun struct {
	t     *testing.T
	srv   *Server
	hc    *http.Client
	users []*crUser // each owned by one worker during the load
	mu    sync.Mutex

	acked, cut, checks, lost atomic.Int64
	seq                      atomic.Int64
	kinds                    sync.Map // acknowledged writes by kind: string -> *atomic.Int64
}

// ack counts an acknowledged write of a kind.
func (c *crashRun) ack(kind string) {
	c.acked.Add(1)
	n, _ := c.kinds.LoadOrStore(kind, new(atomic.Int64))
	n.(*atomic.Int64).Add(1)
}

// kindCounts lists the acknowledged writes by kind.
func (c *crashRun) kindCounts() string {
	var out []string
	c.kinds.Range(func(k, v any) bool {
		out = append(out, fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load()))
		return true
	})
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// crStatus is an answer, or the error of a request that got none.
type crStatus struct {
	code int
	body map[string]any
	err  error
}

func (r crStatus) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	b, _ := json.Marshal(r.body)
	if len(b) > 200 {
		b = append(b[:200], "…"...)
	}
	return fmt.Sprintf("%d %s", r.code, b)
}

// refused reports whether the request never reached a server (the process
// was already dead): it changed nothing.
func (r crStatus) refused() bool { return errors.Is(r.err, syscall.ECONNREFUSED) }

func (c *crashRun) send(method, base, path string, body any, bearerTok string) crStatus {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return crStatus{err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearerTok != "" {
		req.Header.Set("Authorization", "Bearer "+bearerTok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return crStatus{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return crStatus{err: err} // cut off mid-answer: not acknowledged
	}
	out := crStatus{code: resp.StatusCode}
	_ = json.Unmarshal(b, &out.body)
	if out.code >= 500 {
		c.t.Errorf("%s %s: server error %d %s", method, path, out.code, b)
	}
	return out
}

func (c *crashRun) pub(method, path string, body any, tok string) crStatus {
	return c.send(method, c.srv.Pub, path, body, tok)
}

func (c *crashRun) admin(method, path string, body any) crStatus {
	return c.send(method, c.srv.Admin, path, body, adminKey)
}

// lose records an acknowledged change that did not hold.
func (c *crashRun) lose(format string, args ...any) {
	c.lost.Add(1)
	c.t.Errorf("LOST: "+format, args...)
}

func strOf(m map[string]any, k string) string { s, _ := m[k].(string); return s }

func sessionIDOf(m map[string]any) string {
	s, _ := m["session"].(map[string]any)
	return strOf(s, "id")
}

func runCrash(t *testing.T, rounds int, dbURL string, checkDB func(t *testing.T) string) {
	args := []string{"--log-level", "info", "--refresh-grace", "1ms", "--login-rate-per-ip", "0", "--rejected-token-rate-per-ip", "0"}
	backend := "SQLite"
	if dbURL != "" {
		backend = "PostgreSQL"
		args = append(args, "--database", dbURL)
	}
	srv := startServer(t, args, withEnv(kekEnv(newKEK())))
	c := &crashRun{t: t, srv: srv, hc: &http.Client{Timeout: 10 * time.Second, Transport: validating(http.DefaultTransport)}}
	if checkDB == nil {
		checkDB = func(t *testing.T) string { return sqliteIntegrity(t, srv.DB) }
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee))
	const workers = 6
	for w := range workers * 2 {
		c.register(rng, w%workers)
	}
	start := time.Now()
	var integrity string
	for round := 1; round <= rounds; round++ {
		// The load, and a kill at a random moment of it.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wrng := rand.New(rand.NewPCG(rng.Uint64(), uint64(w)))
			wg.Go(func() { c.work(wrng, w, stop) })
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		srv.Kill(t)
		close(stop)
		wg.Wait()
		c.hc.CloseIdleConnections()

		integrity = checkDB(t)
		if integrity != "ok" {
			t.Fatalf("round %d: database integrity after SIGKILL: %s", round, integrity)
		}
		srv.start(t)
		c.verify(round == rounds)
		if t.Failed() {
			t.Fatalf("failed in round %d; %d acknowledged changes lost", round, c.lost.Load())
		}
	}
	live, dead, unknown := 0, 0, 0
	for _, u := range c.users {
		for _, s := range u.sessions {
			switch s.state {
			case crLive:
				live++
			case crDead:
				dead++
			default:
				unknown++
			}
		}
	}
	t.Logf("%s: %d kill rounds in %v: %d acknowledged writes, %d requests cut off by the kill, %d checks after restarts, lost %d; "+
		"%d users, sessions at the end: %d live, %d revoked, %d uncertain; integrity: %s; acknowledged: %s",
		backend, rounds, time.Since(start).Round(time.Millisecond), c.acked.Load(), c.cut.Load(), c.checks.Load(), c.lost.Load(),
		len(c.users), live, dead, unknown, integrity, c.kindCounts())
}

// register adds a user owned by worker w, through the admin API or the
// public one.
func (c *crashRun) register(rng *rand.Rand, w int) crStatus {
	u := &crUser{email: fmt.Sprintf("crash-%d-%s@example.com", c.seq.Add(1), randHex(3)), pw: "Pw-" + randHex(8), owner: w}
	path, do := "/v1/register", c.pub
	if rng.IntN(2) == 0 {
		path, do = "/admin/v1/users", func(m, p string, b any, _ string) crStatus { return c.admin(m, p, b) }
	}
	r := do("POST", path, J{"email": u.email, "password": u.pw}, "")
	if r.code == http.StatusCreated {
		c.ack("registration")
		uo, _ := r.body["user"].(map[string]any)
		u.id = strOf(uo, "id")
		c.mu.Lock()
		c.users = append(c.users, u)
		c.mu.Unlock()
	} else if r.err == nil {
		c.t.Errorf("POST %s: %s", path, r)
	}
	return r
}

func (c *crashRun) owned(w int) []*crUser {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*crUser
	for _, u := range c.users {
		if u.owner == w && !u.retired {
			out = append(out, u)
		}
	}
	return out
}

// work runs random changes on worker w's users until stop, or until the
// server is gone.
func (c *crashRun) work(rng *rand.Rand, w int, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		users := c.owned(w)
		var r crStatus
		if len(users) == 0 || rng.IntN(40) == 0 {
			r = c.register(rng, w)
		} else {
			r = c.step(rng, users[rng.IntN(len(users))])
		}
		if r.err != nil {
			return // the server is gone
		}
	}
}

// step makes one change to u and records it when it is acknowledged.
func (c *crashRun) step(rng *rand.Rand, u *crUser) crStatus {
	live := u.live()
	var jwts, opaque, proven []*crSession
	for _, s := range live {
		if s.jwt {
			jwts = append(jwts, s)
		} else {
			opaque = append(opaque, s)
		}
		if s.proven {
			proven = append(proven, s)
		}
	}
	pick := func(ss []*crSession) *crSession { return ss[rng.IntN(len(ss))] }
	// Fewer than two live sessions: sign in; many: end some.
	op := rng.IntN(100)
	switch {
	case len(live) < 2:
		op = rng.IntN(20)
	case len(live) > 6:
		op = 40 + rng.IntN(60)
	}
	switch {
	case op < 10: // login with an opaque token
		r := c.pub("POST", "/v1/login", J{"email": u.email, "password": u.pw, "transport": "token", "remember_me": rng.IntN(2) == 0}, "")
		if r.code == http.StatusOK {
			c.ack("login")
			u.sessions = append(u.sessions, &crSession{id: sessionIDOf(r.body), user: u, proven: true, tok: strOf(r.body, "token")})
		} else if r.err == nil {
			c.lose("login of %s (password acknowledged) answered %s", u.email, r)
		}
		return c.cutOff(r, nil)
	case op < 16: // login with the jwt transport
		r := c.pub("POST", "/v1/login", J{"email": u.email, "password": u.pw, "transport": "jwt"}, "")
		if r.code == http.StatusOK {
			c.ack("login")
			u.sessions = append(u.sessions, &crSession{id: sessionIDOf(r.body), user: u, jwt: true, proven: true,
				access: strOf(r.body, "access_token"), refresh: strOf(r.body, "refresh_token")})
		} else if r.err == nil {
			c.lose("jwt login of %s (password acknowledged) answered %s", u.email, r)
		}
		return c.cutOff(r, nil)
	case op < 20: // a session the app's back end creates, opaque or client-side
		jwt := rng.IntN(2) == 0
		body := J{"user_id": u.id}
		if jwt {
			body["transport"] = "jwt"
		}
		r := c.admin("POST", "/admin/v1/sessions", body)
		if r.code == http.StatusCreated {
			c.ack("admin session")
			s := &crSession{id: sessionIDOf(r.body), user: u, jwt: jwt, tok: strOf(r.body, "token")}
			if jwt {
				s.access, s.refresh = strOf(r.body, "access_token"), strOf(r.body, "refresh_token")
			}
			u.sessions = append(u.sessions, s)
		} else if r.err == nil {
			c.lose("admin session for %s answered %s", u.id, r)
		}
		return c.cutOff(r, nil)
	case op < 40 && len(jwts) > 0: // the client refreshes: the refresh token rotates
		s := pick(jwts)
		r := c.pub("POST", "/v1/token/refresh", J{"refresh_token": s.refresh}, "")
		if r.code == http.StatusOK {
			c.ack("refresh")
			s.oldRefs = append(s.oldRefs, s.refresh)
			s.access, s.refresh = strOf(r.body, "access_token"), strOf(r.body, "refresh_token")
		} else if r.err == nil {
			c.lose("refresh of live session %s answered %s", s.id, r)
		}
		return c.cutOff(r, []*crSession{s})
	case op < 50: // session data
		s := pick(live)
		if len(s.data) >= 40 {
			return crStatus{}
		}
		k, v := fmt.Sprintf("k%d", c.seq.Add(1)), strconv.Itoa(rng.IntN(1e6))
		r := c.pub("PUT", "/v1/session/data/"+k, json.RawMessage(v), s.auth())
		if r.code == http.StatusNoContent {
			c.ack("data write")
			if s.data == nil {
				s.data = map[string]string{}
			}
			s.data[k] = v
		} else if r.err == nil {
			c.lose("data write on live session %s answered %s", s.id, r)
		}
		return c.cutOffQuiet(r) // an uncertain data write leaves the key unexpected, nothing else
	case op < 62: // logout
		s := pick(live)
		r := c.pub("POST", "/v1/logout", nil, s.auth())
		c.ended(r, http.StatusNoContent, "logout", s)
		return c.cutOff(r, []*crSession{s})
	case op < 72: // DELETE /v1/sessions/{id}, of itself or, from a session
		// signed in with the password, of another
		s := pick(live)
		target := s
		if len(proven) > 0 && rng.IntN(3) > 0 {
			s, target = pick(proven), pick(live)
		}
		r := c.pub("DELETE", "/v1/sessions/"+target.id, nil, s.auth())
		c.ended(r, http.StatusNoContent, "DELETE /v1/sessions/{id}", target)
		return c.cutOff(r, []*crSession{target})
	case op < 80: // admin revocation
		s := pick(live)
		r := c.admin("DELETE", "/admin/v1/sessions/"+s.id, nil)
		c.ended(r, http.StatusNoContent, "admin revocation", s)
		return c.cutOff(r, []*crSession{s})
	case op < 85 && len(jwts) > 0: // revocation by refresh token
		s := pick(jwts)
		r := c.pub("POST", "/v1/token/revoke", J{"refresh_token": s.refresh}, "")
		c.ended(r, http.StatusNoContent, "token revocation", s)
		return c.cutOff(r, []*crSession{s})
	case op < 90 && len(proven) > 0: // revoke-others, from a session signed in with the password
		s := pick(proven)
		var others []*crSession
		for _, o := range u.sessions {
			if o != s && o.state != crDead {
				others = append(others, o)
			}
		}
		r := c.pub("POST", "/v1/sessions/revoke-others", nil, s.auth())
		c.ended(r, http.StatusOK, "revoke-others", others...)
		return c.cutOff(r, others)
	case op < 95 && len(opaque) > 0: // reauthentication: the password again, a new token
		s := pick(opaque)
		r := c.pub("POST", "/v1/session/reauthenticate", J{"password": u.pw}, s.tok)
		if r.code == http.StatusOK {
			c.ack("reauthentication")
			s.oldToks = append(s.oldToks, s.tok)
			s.tok, s.proven = strOf(r.body, "token"), true
		} else if r.err == nil {
			c.lose("reauthentication of live session %s answered %s", s.id, r)
		}
		return c.cutOff(r, []*crSession{s})
	case len(opaque) > 0: // password change: a rotation and Force Logout
		s := pick(opaque)
		np := "Pw-" + randHex(8)
		r := c.pub("POST", "/v1/password/change", J{"current_password": u.pw, "new_password": np}, s.tok)
		switch {
		case r.code == http.StatusOK:
			c.ack("password change")
			u.pw = np
			s.oldToks = append(s.oldToks, s.tok)
			s.tok = strOf(r.body, "token")
			for _, o := range u.sessions {
				if o != s && o.state != crDead {
					o.state, o.why = crDead, "force logout by an acknowledged password change"
				}
			}
		case r.err == nil:
			c.lose("password change on live session %s answered %s", s.id, r)
		case !r.refused():
			// Changed or not: the password is unknown from here on, and so
			// is every session of the user.
			c.cut.Add(1)
			u.retired = true
			for _, o := range u.sessions {
				if o.state == crLive {
					o.state = crUnknown
				}
			}
		}
		return r
	}
	return crStatus{}
}

// ended records an acknowledged revocation of ss.
func (c *crashRun) ended(r crStatus, want int, what string, ss ...*crSession) {
	switch {
	case r.code == want:
		c.ack("revocation (" + what + ")")
		for _, s := range ss {
			s.state, s.why = crDead, "acknowledged "+what
		}
	case r.err == nil:
		c.lose("%s answered %s, want %d", what, r, want)
	}
}

// cutOff makes the sessions a request touched uncertain when the kill cut
// it off.
func (c *crashRun) cutOff(r crStatus, touched []*crSession) crStatus {
	if r.err != nil && !r.refused() {
		c.cut.Add(1)
		for _, s := range touched {
			if s.state == crLive {
				s.state = crUnknown
			}
		}
	}
	return r
}

func (c *crashRun) cutOffQuiet(r crStatus) crStatus { return c.cutOff(r, nil) }

// verify checks every acknowledged change against the restarted server.
// With final set it also spends every rotated-away refresh token and signs
// every user in.
func (c *crashRun) verify(final bool) {
	users := make(chan *crUser)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for u := range users {
				c.verifyUser(u, rand.IntN(4) == 0 || final, final)
			}
		})
	}
	c.mu.Lock()
	all := append([]*crUser(nil), c.users...)
	c.mu.Unlock()
	for _, u := range all {
		users <- u
	}
	close(users)
	wg.Wait()
}

func (c *crashRun) verifyUser(u *crUser, spendOld, login bool) {
	whoami := func(tok string) crStatus {
		c.checks.Add(1)
		return c.again(func() crStatus { return c.pub("GET", "/v1/session", nil, tok) })
	}
	for _, s := range u.sessions {
		switch s.state {
		case crLive:
			if r := whoami(s.auth()); r.code != http.StatusOK || sessionIDOf(r.body) != s.id {
				c.lose("acknowledged session %s of %s: who-am-I answers %s", s.id, u.email, r)
				continue
			}
			for _, old := range s.oldToks {
				if r := whoami(old); r.code != http.StatusUnauthorized {
					c.lose("session %s: a token rotated away by an acknowledged rotation answers %s", s.id, r)
				}
			}
			if len(s.data) > 0 {
				c.checks.Add(1)
				r := c.again(func() crStatus { return c.pub("GET", "/v1/session/data", nil, s.auth()) })
				d, _ := r.body["data"].(map[string]any)
				for k, v := range s.data {
					got, _ := json.Marshal(d[k])
					if string(got) != v {
						c.lose("session %s: acknowledged data %s=%s reads %s (answer %s)", s.id, k, v, got, r)
					}
				}
			}
			if s.jwt {
				// The acknowledged refresh token is the current one: it
				// refreshes (a rotation of its own).
				c.checks.Add(1)
				r := c.pub("POST", "/v1/token/refresh", J{"refresh_token": s.refresh}, "")
				if r.err != nil { // no answer: the chain may have moved on
					c.t.Logf("session %s: refresh after the restart got no answer (%v); its state is uncertain from here", s.id, r.err)
					s.state = crUnknown
					continue
				}
				if r.code != http.StatusOK {
					c.lose("session %s: the acknowledged refresh token answers %s", s.id, r)
					continue
				}
				c.ack("refresh")
				s.oldRefs = append(s.oldRefs, s.refresh)
				s.access, s.refresh = strOf(r.body, "access_token"), strOf(r.body, "refresh_token")
				if spendOld {
					// A rotated-away refresh token is refused, and its reuse
					// ends the session. (Past the grace window of 1ms, which
					// a loopback round trip can beat.)
					time.Sleep(5 * time.Millisecond)
					c.checks.Add(1)
					old := s.oldRefs[rand.IntN(len(s.oldRefs))]
					r := c.pub("POST", "/v1/token/refresh", J{"refresh_token": old}, "")
					if r.err != nil {
						c.t.Logf("session %s: a reuse got no answer (%v); its state is uncertain from here", s.id, r.err)
						s.state = crUnknown
						continue
					}
					if r.code != http.StatusUnauthorized || strOf(objOf(r.body, "error"), "code") != "refresh_token_reused" {
						c.lose("session %s: a refresh token rotated away answers %s, want 401 refresh_token_reused", s.id, r)
						continue
					}
					c.ack("revocation (refresh-token reuse)") // the reuse ended the session
					s.state, s.why = crDead, "acknowledged refresh-token reuse"
				}
			}
		case crDead:
			toks := append([]string{s.auth()}, s.oldToks...)
			for _, tok := range toks {
				if r := whoami(tok); r.code != http.StatusUnauthorized {
					c.lose("session %s (%s): token answers %s, want 401", s.id, s.why, r)
				}
			}
			if s.jwt {
				c.checks.Add(1)
				r := c.again(func() crStatus { return c.pub("POST", "/v1/token/refresh", J{"refresh_token": s.refresh}, "") })
				if r.code != http.StatusUnauthorized {
					c.lose("session %s (%s): its refresh token answers %s, want 401", s.id, s.why, r)
				}
			}
		}
	}
	if u.retired {
		return
	}
	c.checks.Add(1)
	if r := c.again(func() crStatus { return c.admin("GET", "/admin/v1/users/"+u.id, nil) }); r.code != http.StatusOK || strOf(objOf(r.body, "user"), "email") != u.email {
		c.lose("acknowledged user %s: GET answers %s", u.email, r)
	}
	if login {
		c.checks.Add(1)
		r := c.again(func() crStatus {
			return c.pub("POST", "/v1/login", J{"email": u.email, "password": u.pw, "transport": "token"}, "")
		})
		if r.code != http.StatusOK {
			c.lose("user %s: the acknowledged password answers %s", u.email, r)
			return
		}
		c.ack("login")
		u.sessions = append(u.sessions, &crSession{id: sessionIDOf(r.body), user: u, proven: true, tok: strOf(r.body, "token")})
	}
}

// again repeats a check that got no answer (a loaded machine drops a
// connection now and then; that says nothing about what the database
// kept), at most three times. Only for checks that change nothing, or
// nothing that matters when repeated.
func (c *crashRun) again(f func() crStatus) crStatus {
	var r crStatus
	for try := 0; try < 3; try++ {
		if r = f(); r.err == nil {
			return r
		}
		c.t.Logf("a check after the restart got no answer (%v); trying again", r.err)
		time.Sleep(200 * time.Millisecond)
	}
	return r
}

func objOf(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

// sqliteIntegrity opens the file a killed server left, read-only, and
// returns what PRAGMA integrity_check says ("ok") and any foreign-key
// violation.
func sqliteIntegrity(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		return "integrity_check: " + err.Error()
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err.Error()
		}
		out = append(out, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	fk, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return "foreign_key_check: " + err.Error()
	}
	defer fk.Close()
	if fk.Next() {
		out = append(out, "foreign_key_check: a row refers to a missing parent")
	}
	return strings.Join(out, "; ")
}

// crashPostgres returns the URL of a fresh schema on the test server (the
// server creates it; the test drops it at the end) and a check of its
// tables and indexes. It skips t when PostgreSQL is unreachable, unless
// SESSIOND_REQUIRE_BACKENDS=1.
func crashPostgres(t *testing.T) (string, func(t *testing.T) string) {
	t.Helper()
	base := os.Getenv("SESSIOND_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://root@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err == nil {
		err = conn.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("SESSIOND_REQUIRE_BACKENDS") == "1" {
			t.Fatalf("PostgreSQL not reachable: %v (SESSIOND_REQUIRE_BACKENDS=1)", err)
		}
		t.Skipf("PostgreSQL not reachable: %v", err)
	}
	schema := "sessiond_crash_" + randHex(6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
		conn.Close(ctx)
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()

	// amcheck verifies B-tree indexes against their tables; it comes with
	// PostgreSQL but needs installing in the database, which a superuser
	// may do. Without it every table is still read in full.
	var amcheck bool
	var once sync.Once
	check := func(t *testing.T) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		once.Do(func() {
			if _, err := conn.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS amcheck`); err != nil {
				t.Logf("amcheck unavailable (%v): tables are scanned, indexes not checked", err)
				return
			}
			amcheck = true
		})
		rows, err := conn.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind = 'r'`, schema)
		if err != nil {
			return err.Error()
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err.Error()
		}
		if len(tables) == 0 {
			return "no tables in schema " + schema
		}
		for _, tb := range tables {
			var n int64
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, tb}.Sanitize()).Scan(&n); err != nil {
				return fmt.Sprintf("scanning %s: %v", tb, err)
			}
		}
		if amcheck {
			_, err := conn.Exec(ctx, `SELECT bt_index_check(c.oid, true) FROM pg_index i
				JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
				JOIN pg_am am ON am.oid = c.relam WHERE n.nspname = $1 AND am.amname = 'btree'`, schema)
			if err != nil {
				return "bt_index_check: " + err.Error()
			}
		}
		return "ok"
	}
	return u.String(), check
}
