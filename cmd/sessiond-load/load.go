package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sessiond/sessiond/internal/perf"
)

const benchUsage = `Usage: sessiond-load [flags]

Load-tests a RUNNING sessiond: creates users and sessions through the admin
API (key from SESSIOND_ADMIN_KEY), then runs each scenario for --duration
after --warmup with --connections workers, each a closed loop on its own
keep-alive connection, and prints requests/s and latency percentiles.

Scenarios (--scenario, comma-separated, or all):
  whoami   GET /v1/session with a bearer token, spread over --sessions
           sessions created beforehand
  login    POST /v1/login with the right password (argon2id at the server's
           cost), as the --users users in turn
  refresh  POST /v1/token/refresh, each worker renewing its own client-side
           session; skipped when the server has no client-side sessions
           (no --key-encryption-key-file)
  mixed    a fixed mix, counted in requests: of every 100, 90 GET /v1/session,
           5 PUT /v1/session/data/{key}, 3 POST /v1/login and 2 POST /v1/logout
           (each logout ends a session that the same worker's logins made)

Latencies are of successful requests; an unexpected status or a failed
connection counts as an error. Users are bench-N@bench.sessiond.example.com
with one shared password; existing ones are reused, so runs can repeat.

Flags:
`

// The scenarios, in the order "all" runs them.
var benchScenarios = []string{"whoami", "login", "refresh", "mixed"}

// benchOp is one kind of request.
type benchOp int

const (
	opWhoami benchOp = iota
	opData
	opLogin
	opLogout
	opRefresh
	numBenchOps
)

var benchOpNames = [numBenchOps]string{"whoami", "data", "login", "logout", "refresh"}

// benchExpect is each operation's status of success.
var benchExpect = [numBenchOps]int{http.StatusOK, http.StatusNoContent, http.StatusOK, http.StatusNoContent, http.StatusOK}

// mixedShare is the mixed scenario, in requests out of 100.
var mixedShare = [numBenchOps]int{opWhoami: 90, opData: 5, opLogin: 3, opLogout: 2}

const (
	benchPassword   = "bench-sessiond-Passphrase-7q"
	benchEmailFmt   = "bench-%d@bench.sessiond.example.com"
	benchUserAgent  = "sessiond-bench/1"
	benchDataValue  = `{"step":"checkout","items":[1,2,3]}`
	benchSetupConns = 8 // admin calls in flight while creating users and sessions
)

type benchConfig struct {
	target, admin string
	adminKey      string
	users         int
	sessions      int
	scenarios     []string
	duration      time.Duration
	warmup        time.Duration
	connections   int
	timeout       time.Duration
	jsonFile      string
	svgFile       string
	tokensIn      string
	tokensOut     string
	setupOnly     bool
}

func parseBenchFlags(args []string, getenv func(string) string, stderr io.Writer) (*benchConfig, error) {
	c := &benchConfig{}
	fs := flag.NewFlagSet("sessiond-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, benchUsage)
		fs.PrintDefaults()
	}
	var scenario string
	fs.StringVar(&c.target, "target", "http://127.0.0.1:8080", "public URL of the server under test")
	fs.StringVar(&c.admin, "admin", "http://127.0.0.1:8081", "admin URL of the server (users and sessions are created there)")
	fs.IntVar(&c.users, "users", 32, "users to create (or reuse) for logins and sessions")
	fs.IntVar(&c.sessions, "sessions", 1000, "sessions to create beforehand and spread who-am-I requests over")
	fs.StringVar(&scenario, "scenario", "whoami", "whoami, login, refresh, mixed, a comma-separated list, or all")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time of each scenario")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each scenario's measured time")
	fs.IntVar(&c.connections, "connections", 32, "concurrent workers, each with its own keep-alive connection")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "longest wait for an answer's headers")
	fs.StringVar(&c.jsonFile, "json", "", "write the results as JSON to this file")
	fs.StringVar(&c.svgFile, "svg", "", "write a latency-by-percentile chart (SVG) to this file")
	fs.StringVar(&c.tokensIn, "tokens-in", "", "read session tokens (one a line) from this file instead of creating --sessions sessions")
	fs.StringVar(&c.tokensOut, "tokens-out", "", "write the tokens of the sessions created to this file")
	fs.BoolVar(&c.setupOnly, "setup-only", false, "create the users and sessions (see --tokens-out), then exit")
	if err := fs.Parse(args); err != nil {
		return nil, usageErr(err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessiond-load: unexpected argument %q\n", fs.Arg(0))
		return nil, errUsage
	}
	c.adminKey = getenv("SESSIOND_ADMIN_KEY")
	for _, s := range strings.Split(scenario, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			for _, s := range benchScenarios {
				if !slices.Contains(c.scenarios, s) {
					c.scenarios = append(c.scenarios, s)
				}
			}
		case slices.Contains(benchScenarios, s):
			if !slices.Contains(c.scenarios, s) {
				c.scenarios = append(c.scenarios, s)
			}
		default:
			return nil, fmt.Errorf("--scenario: unknown scenario %q (want %s or all)", s, strings.Join(benchScenarios, ", "))
		}
	}
	for _, u := range []*string{&c.target, &c.admin} {
		p, err := url.Parse(*u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("%q is not an http(s) URL", *u)
		}
		*u = strings.TrimRight(*u, "/")
	}
	switch {
	case c.connections < 1:
		return nil, errors.New("--connections must be at least 1")
	case c.users < 1:
		return nil, errors.New("--users must be at least 1")
	case c.sessions < 1 && c.tokensIn == "":
		return nil, errors.New("--sessions must be at least 1")
	case c.duration <= 0 && !c.setupOnly:
		return nil, errors.New("--duration must be positive")
	case c.warmup < 0:
		return nil, errors.New("--warmup must not be negative")
	case c.timeout <= 0:
		return nil, errors.New("--timeout must be positive")
	}
	return c, nil
}

// bench is one run: the configuration, the client and what setup made.
type bench struct {
	cfg    *benchConfig
	rt     *http.Transport
	stderr io.Writer
	tty    bool

	users   []benchUser
	tokens  []string // pre-created sessions
	bearers []string // "Bearer " + tokens[i]
	logins  [][]byte // login body of users[i]
}

type benchUser struct{ ID, Email string }

func benchCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c, err := parseBenchFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	b := &bench{cfg: c, stderr: stderr, tty: isTerminal(stderr)}
	b.rt = &http.Transport{
		Proxy:                 nil, // loopback or a known host: never through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          c.connections + benchSetupConns,
		MaxIdleConnsPerHost:   c.connections,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: c.timeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	defer b.rt.CloseIdleConnections()

	if err := b.checkHealth(ctx); err != nil {
		return err
	}
	started := time.Now()
	if err := b.setup(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench: setup: %d users, %d sessions in %s\n", len(b.users), len(b.tokens), time.Since(started).Round(time.Millisecond))
	if c.setupOnly {
		return nil
	}

	report := benchReport{
		Target: c.target, Started: time.Now().UTC(), Connections: c.connections,
		DurationSeconds: c.duration.Seconds(), WarmupSeconds: c.warmup.Seconds(),
		Users: len(b.users), Sessions: len(b.tokens), GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	for _, sc := range c.scenarios {
		if ctx.Err() != nil {
			break
		}
		res, err := b.runScenario(ctx, sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
		report.Scenarios = append(report.Scenarios, res)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted; the results so far:")
	}
	fmt.Fprintf(stdout, "sessiond-load: %s, %d connections, %s per scenario after %s warm-up; latency of successful requests\n\n",
		c.target, c.connections, c.duration, c.warmup)
	fmt.Fprint(stdout, perf.FormatTable(report.rows()))
	if c.jsonFile != "" {
		out, err := json.MarshalIndent(report, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonFile, append(out, '\n'), 0o644); err != nil {
			return err
		}
	}
	if c.svgFile != "" {
		title := fmt.Sprintf("sessiond-load: latency by percentile, %d connections", c.connections)
		if err := os.WriteFile(c.svgFile, perf.PercentileSVG(title, report.series()), 0o644); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ---- setup through the admin API ----

// call makes one request and returns its status and body. For setup only:
// it allocates freely.
func (b *bench) call(ctx context.Context, method, u, auth string, body []byte) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("User-Agent", benchUserAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := b.rt.RoundTrip(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// apiError is the error answer of sessiond.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return "HTTP " + strconv.Itoa(e.Status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

func toAPIError(status int, body []byte) error {
	var v struct {
		Error struct{ Code, Message string }
	}
	_ = json.Unmarshal(body, &v)
	return &apiError{Status: status, Code: v.Error.Code, Message: v.Error.Message}
}

func (b *bench) checkHealth(ctx context.Context) error {
	for _, base := range []string{b.cfg.target} {
		status, _, err := b.call(ctx, http.MethodGet, base+"/healthz", "", nil)
		if err != nil {
			return fmt.Errorf("%s is not answering: %w", base, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s/healthz answered %d", base, status)
		}
	}
	return nil
}

func (b *bench) needs(sc ...string) bool {
	return slices.ContainsFunc(b.cfg.scenarios, func(s string) bool { return slices.Contains(sc, s) })
}

func (b *bench) setup(ctx context.Context) error {
	c := b.cfg
	wantSessions := c.setupOnly || b.needs("whoami", "mixed")
	if c.tokensIn != "" && wantSessions {
		toks, err := readTokens(c.tokensIn)
		if err != nil {
			return err
		}
		b.tokens = toks
	}
	needUsers := b.needs("login", "refresh", "mixed") || (wantSessions && b.tokens == nil)
	if needUsers {
		if c.adminKey == "" {
			return errors.New("SESSIOND_ADMIN_KEY is not set: the bench creates its users and sessions through the admin API")
		}
		if err := b.ensureUsers(ctx); err != nil {
			return fmt.Errorf("creating users: %w", err)
		}
	}
	if wantSessions && b.tokens == nil {
		if err := b.createSessions(ctx); err != nil {
			return fmt.Errorf("creating sessions: %w", err)
		}
	}
	if c.tokensOut != "" {
		if err := writeTokens(c.tokensOut, b.tokens); err != nil {
			return err
		}
	}
	b.bearers = make([]string, len(b.tokens))
	for i, t := range b.tokens {
		b.bearers[i] = "Bearer " + t
	}
	b.logins = make([][]byte, len(b.users))
	for i, u := range b.users {
		b.logins[i], _ = json.Marshal(map[string]string{"email": u.Email, "password": benchPassword, "transport": "token"})
	}
	return nil
}

func readTokens(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var toks []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if t := strings.TrimSpace(sc.Text()); t != "" {
			toks = append(toks, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("%s holds no tokens", path)
	}
	return toks, nil
}

func writeTokens(path string, toks []string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, t := range toks {
		w.WriteString(t)
		w.WriteByte('\n')
	}
	return errors.Join(w.Flush(), f.Close())
}

// parallel runs fn(i) for i in [0, n) on up to workers goroutines and
// returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// ensureUsers creates the bench users, or finds them when they exist.
func (b *bench) ensureUsers(ctx context.Context) error {
	b.users = make([]benchUser, b.cfg.users)
	return parallel(ctx, b.cfg.users, benchSetupConns, func(ctx context.Context, i int) error {
		email := fmt.Sprintf(benchEmailFmt, i)
		body, _ := json.Marshal(map[string]string{"email": email, "password": benchPassword})
		status, out, err := b.call(ctx, http.MethodPost, b.cfg.admin+"/admin/v1/users", b.cfg.adminKey, body)
		if err != nil {
			return err
		}
		if status == http.StatusConflict {
			status, out, err = b.call(ctx, http.MethodGet, b.cfg.admin+"/admin/v1/users?email="+url.QueryEscape(email), b.cfg.adminKey, nil)
			if err != nil {
				return err
			}
		}
		if status != http.StatusOK && status != http.StatusCreated {
			return toAPIError(status, out)
		}
		var v struct{ User struct{ ID, Email string } }
		if err := json.Unmarshal(out, &v); err != nil || v.User.ID == "" {
			return fmt.Errorf("unexpected answer for %s: %.200s", email, out)
		}
		b.users[i] = benchUser{ID: v.User.ID, Email: email}
		return nil
	})
}

func (b *bench) createSessions(ctx context.Context) error {
	b.tokens = make([]string, b.cfg.sessions)
	return parallel(ctx, b.cfg.sessions, benchSetupConns, func(ctx context.Context, i int) error {
		body, _ := json.Marshal(map[string]string{"user_id": b.users[i%len(b.users)].ID})
		status, out, err := b.call(ctx, http.MethodPost, b.cfg.admin+"/admin/v1/sessions", b.cfg.adminKey, body)
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return toAPIError(status, out)
		}
		tok := jsonString(out, "token")
		if tok == "" {
			return fmt.Errorf("no token in %.200s", out)
		}
		b.tokens[i] = tok
		return nil
	})
}

// errNoJWT: the server has no client-side sessions.
var errNoJWT = errors.New("the server has no client-side sessions (start it with --key-encryption-key-file or SESSIOND_KEY_ENCRYPTION_KEY)")

// newRefreshChain starts a client-side session for user and returns its
// refresh token.
func (b *bench) newRefreshChain(ctx context.Context, user string) (string, error) {
	body, _ := json.Marshal(map[string]string{"user_id": user, "transport": "jwt"})
	status, out, err := b.call(ctx, http.MethodPost, b.cfg.admin+"/admin/v1/sessions", b.cfg.adminKey, body)
	if err != nil {
		return "", err
	}
	if status != http.StatusCreated {
		err := toAPIError(status, out)
		if e := (*apiError)(nil); errors.As(err, &e) && e.Code == "jwt_unavailable" {
			return "", errNoJWT
		}
		return "", err
	}
	tok := jsonString(out, "refresh_token")
	if tok == "" {
		return "", fmt.Errorf("no refresh_token in %.200s", out)
	}
	return tok, nil
}

// jsonString finds "key": "value" in a JSON text and returns value, or ""
// when absent. For values without escapes (tokens): it does not unquote. It
// neither allocates nor decodes the rest, to keep the load generator light.
func jsonString(body []byte, key string) string {
	for off := 0; ; {
		i := bytes.Index(body[off:], []byte(`"`+key+`"`))
		if i < 0 {
			return ""
		}
		rest := bytes.TrimLeft(body[off+i+len(key)+2:], " \t\r\n")
		off += i + len(key) + 2
		if len(rest) == 0 || rest[0] != ':' {
			continue // a value equal to the key, not the key
		}
		rest = bytes.TrimLeft(rest[1:], " \t\r\n")
		if len(rest) == 0 || rest[0] != '"' {
			return ""
		}
		end := bytes.IndexByte(rest[1:], '"')
		if end < 0 {
			return ""
		}
		return string(rest[1 : 1+end])
	}
}

// ---- the load ----

// worker is one closed loop of requests on its own connection. Its
// requests and buffers are made once and reused, so that a request costs
// the generator little besides the HTTP client itself.
type worker struct {
	b   *bench
	id  int
	ctx context.Context

	auth   []string // the Authorization value of the current request, set in place
	reader bytes.Reader
	body   io.ReadCloser // a NopCloser around reader
	buf    []byte        // answers that are read
	refBuf []byte        // the refresh request body

	whoami, data, login, logout, logoutAnon, refresh *http.Request
	loginBody                                        []byte

	nextToken int
	nextUser  int
	schedule  []benchOp // the mixed scenario's order of requests
	step      int
	own       []string // tokens of the sessions this worker's logins made
	chain     string   // refresh token

	hist     [numBenchOps]*perf.Histogram
	errs     [numBenchOps]map[int]int64 // by status; 0: no answer
	requests atomic.Int64               // done, for the progress display
	failures atomic.Int64
}

func (b *bench) newWorker(ctx context.Context, id int) *worker {
	w := &worker{b: b, id: id, ctx: ctx, auth: []string{""}, buf: make([]byte, 0, 16<<10)}
	w.body = io.NopCloser(&w.reader)
	mk := func(method, u string, auth bool) *http.Request {
		req, err := http.NewRequestWithContext(ctx, method, u, nil)
		if err != nil {
			panic(err) // the URL was checked at start
		}
		req.Header["User-Agent"] = []string{benchUserAgent}
		if auth {
			req.Header["Authorization"] = w.auth
		}
		if method != http.MethodGet {
			req.Header["Content-Type"] = []string{"application/json"}
		}
		return req
	}
	t := b.cfg.target
	w.whoami = mk(http.MethodGet, t+"/v1/session", true)
	w.data = mk(http.MethodPut, t+"/v1/session/data/bench-"+strconv.Itoa(id), true)
	w.login = mk(http.MethodPost, t+"/v1/login", false)
	w.logout = mk(http.MethodPost, t+"/v1/logout", true)
	w.logoutAnon = mk(http.MethodPost, t+"/v1/logout", false)
	w.refresh = mk(http.MethodPost, t+"/v1/token/refresh", false)
	if n := len(b.tokens); n > 0 {
		w.nextToken = id * n / b.cfg.connections
	}
	if n := len(b.users); n > 0 {
		w.nextUser = id % n
	}
	for i := range w.hist {
		w.hist[i] = perf.NewHistogram()
		w.errs[i] = map[int]int64{}
	}
	w.schedule = mixedSchedule(uint64(id))
	return w
}

// mixedSchedule returns the mixed scenario's 100 requests in a shuffled
// order (seeded, so runs repeat), where no logout comes before a login has
// made a session for it to end.
func mixedSchedule(seed uint64) []benchOp {
	var s []benchOp
	for op, n := range mixedShare {
		for range n {
			s = append(s, benchOp(op))
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5e55))
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	balance := 0
	for i, op := range s {
		switch op {
		case opLogin:
			balance++
		case opLogout:
			if balance == 0 {
				// Swap with the next login.
				j := i + slices.Index(s[i:], opLogin)
				s[i], s[j] = s[j], s[i]
				balance++
				continue
			}
			balance--
		}
	}
	return s
}

func (w *worker) setBody(req *http.Request, body []byte) {
	w.reader.Reset(body)
	req.Body = w.body
	req.ContentLength = int64(len(body))
}

// roundTrip sends req and reads the answer: into w.buf when keep is set,
// else to nowhere.
func (w *worker) roundTrip(req *http.Request, keep bool) (int, error) {
	resp, err := w.b.rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	if keep {
		w.buf = w.buf[:0]
		for {
			if len(w.buf) == cap(w.buf) {
				w.buf = slices.Grow(w.buf, cap(w.buf))
			}
			n, err := resp.Body.Read(w.buf[len(w.buf):cap(w.buf)])
			w.buf = w.buf[:len(w.buf)+n]
			if err != nil {
				break
			}
		}
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func (w *worker) bearer() {
	w.auth[0] = w.b.bearers[w.nextToken]
	w.nextToken++
	if w.nextToken == len(w.b.bearers) {
		w.nextToken = 0
	}
}

// do sends one request of kind op and returns its status.
func (w *worker) do(op benchOp) (int, error) {
	switch op {
	case opWhoami:
		w.bearer()
		return w.roundTrip(w.whoami, false)
	case opData:
		w.bearer()
		w.setBody(w.data, []byte(benchDataValue))
		return w.roundTrip(w.data, false)
	case opLogin:
		w.setBody(w.login, w.b.logins[w.nextUser])
		if w.nextUser++; w.nextUser == len(w.b.logins) {
			w.nextUser = 0
		}
		keep := w.schedule != nil // mixed: keep the token for a later logout
		status, err := w.roundTrip(w.login, keep)
		if keep && status == http.StatusOK {
			if tok := jsonString(w.buf, "token"); tok != "" {
				w.own = append(w.own, tok)
			}
		}
		return status, err
	case opLogout:
		if len(w.own) == 0 { // the login before it failed: nothing to end
			return w.roundTrip(w.logoutAnon, false)
		}
		tok := w.own[len(w.own)-1]
		w.own = w.own[:len(w.own)-1]
		w.auth[0] = "Bearer " + tok
		return w.roundTrip(w.logout, false)
	case opRefresh:
		w.refBuf = append(append(append(w.refBuf[:0], `{"refresh_token":"`...), w.chain...), `"}`...)
		w.setBody(w.refresh, w.refBuf)
		status, err := w.roundTrip(w.refresh, true)
		if status == http.StatusOK {
			if next := jsonString(w.buf, "refresh_token"); next != "" {
				w.chain = next
			}
		}
		return status, err
	}
	panic("unknown op")
}

// loop runs requests until end (or stop) and records those that started at
// or after measureFrom.
func (w *worker) loop(sc string, measureFrom, end time.Time, stop *atomic.Bool) {
	for !stop.Load() {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		var op benchOp
		switch sc {
		case "whoami":
			op = opWhoami
		case "login":
			op = opLogin
		case "refresh":
			op = opRefresh
		case "mixed":
			op = w.schedule[w.step%len(w.schedule)]
			w.step++
		}
		status, err := w.do(op)
		elapsed := time.Since(t0)
		w.requests.Add(1)
		ok := err == nil && status == benchExpect[op]
		if !ok {
			w.failures.Add(1)
		}
		if !t0.Before(measureFrom) {
			if ok {
				w.hist[op].Record(int64(elapsed))
			} else {
				w.errs[op][status]++
			}
		}
		switch {
		case err != nil && w.ctx.Err() != nil:
			return
		case err != nil:
			time.Sleep(10 * time.Millisecond) // no hot loop against a server that is down
		case op == opRefresh && !ok:
			// The chain may be dead: start another (not timed).
			if tok, err := w.b.newRefreshChain(w.ctx, w.b.users[w.id%len(w.b.users)].ID); err == nil {
				w.chain = tok
			}
		}
	}
}

func (b *bench) runScenario(ctx context.Context, sc string) (scenarioResult, error) {
	c := b.cfg
	workers := make([]*worker, c.connections)
	for i := range workers {
		workers[i] = b.newWorker(ctx, i)
		if sc != "mixed" {
			workers[i].schedule = nil
		}
	}
	if sc == "refresh" {
		err := parallel(ctx, len(workers), benchSetupConns, func(ctx context.Context, i int) error {
			tok, err := b.newRefreshChain(ctx, b.users[i%len(b.users)].ID)
			workers[i].chain = tok
			return err
		})
		if errors.Is(err, errNoJWT) {
			fmt.Fprintf(b.stderr, "bench: refresh: skipped: %v\n", err)
			return scenarioResult{Name: sc, Skipped: errNoJWT.Error()}, nil
		}
		if err != nil {
			return scenarioResult{}, err
		}
	}

	if !b.tty {
		fmt.Fprintf(b.stderr, "bench: %s: started: %s warm-up, then %s measured\n", sc, c.warmup, c.duration)
	}
	start := time.Now()
	measureFrom := start.Add(c.warmup)
	end := measureFrom.Add(c.duration)
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.loop(sc, measureFrom, end, &stop) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	b.showProgress(ctx, sc, workers, start, measureFrom, end, done, &stop)

	res := scenarioResult{Name: sc}
	all := perf.NewHistogram()
	allErrs := map[int]int64{}
	var ops []opResult
	for op := range numBenchOps {
		h := perf.NewHistogram()
		errs := map[int]int64{}
		for _, w := range workers {
			h.Merge(w.hist[op])
			for k, v := range w.errs[op] {
				errs[k] += v
				allErrs[k] += v
			}
		}
		all.Merge(h)
		if h.Count() == 0 && len(errs) == 0 {
			continue
		}
		ops = append(ops, newOpResult(benchOpNames[op], h, errs, c.duration))
	}
	if sc == "mixed" {
		res.Ops = append(res.Ops, newOpResult("all", all, allErrs, c.duration))
	}
	res.Ops = append(res.Ops, ops...)
	for _, o := range res.Ops {
		if o.Op == "all" || sc != "mixed" {
			fmt.Fprintf(b.stderr, "bench: %s: %s requests, %s/s, p99 %s, %s errors\n", sc,
				perf.FormatCount(o.Requests), perf.FormatRate(o.RequestsPerSecond),
				perf.FormatDuration(time.Duration(o.Latency.P99*1e6)), perf.FormatCount(o.Errors))
		}
	}
	return res, nil
}

// showProgress draws a progress bar on a terminal, else a line every few
// seconds, until done.
func (b *bench) showProgress(ctx context.Context, sc string, workers []*worker, start, measureFrom, end time.Time, done <-chan struct{}, stop *atomic.Bool) {
	const tick = 100 * time.Millisecond
	total := end.Sub(start)
	var bar *progressbar.ProgressBar
	if b.tty {
		bar = progressbar.NewOptions64(int64(total/tick),
			progressbar.OptionSetWriter(b.stderr),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetDescription(sc),
			progressbar.OptionThrottle(tick),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionClearOnFinish(),
		)
	}
	sum := func() (n, failed int64) {
		for _, w := range workers {
			n += w.requests.Load()
			failed += w.failures.Load()
		}
		return
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	lastN, lastT := int64(0), start
	lastLine := start
	rate := 0.0
	for {
		select {
		case <-done:
			if bar != nil {
				_ = bar.Finish()
			}
			return
		case <-ctx.Done():
			stop.Store(true)
			ctx = context.Background() // keep waiting for done
		case now := <-t.C:
			n, failed := sum()
			if dt := now.Sub(lastT); dt >= time.Second {
				rate = float64(n-lastN) / dt.Seconds()
				lastN, lastT = n, now
			}
			phase := "measuring"
			if now.Before(measureFrom) {
				phase = "warm-up"
			} else if !now.Before(end) {
				phase = "finishing"
			}
			if bar != nil {
				bar.Describe(fmt.Sprintf("%-8s %-9s %9s req/s  %s errors", sc, phase, perf.FormatRate(rate), perf.FormatCount(failed)))
				_ = bar.Set64(int64(min(now.Sub(start), total) / tick))
			} else if now.Sub(lastLine) >= 5*time.Second {
				lastLine = now
				fmt.Fprintf(b.stderr, "bench: %s: %s, %s/%s, %s req/s, %s errors\n", sc, phase,
					min(now.Sub(start), total).Round(time.Second), total, perf.FormatRate(rate), perf.FormatCount(failed))
			}
		}
	}
}

// ---- results ----

type benchReport struct {
	Target          string           `json:"target"`
	Started         time.Time        `json:"started"`
	Connections     int              `json:"connections"`
	DurationSeconds float64          `json:"duration_seconds"`
	WarmupSeconds   float64          `json:"warmup_seconds"`
	Users           int              `json:"users"`
	Sessions        int              `json:"sessions"`
	GOMAXPROCS      int              `json:"gomaxprocs"`
	Scenarios       []scenarioResult `json:"scenarios"`
}

type scenarioResult struct {
	Name    string     `json:"name"`
	Skipped string     `json:"skipped,omitempty"`
	Ops     []opResult `json:"ops,omitempty"`
}

type opResult struct {
	Op                string           `json:"op"`
	Requests          int64            `json:"requests"`
	RequestsPerSecond float64          `json:"requests_per_second"`
	Errors            int64            `json:"errors"`
	ErrorsByStatus    map[string]int64 `json:"errors_by_status,omitempty"` // "0" is no answer
	Latency           latencyMS        `json:"latency_ms"`
	Spectrum          []spectrumPoint  `json:"spectrum,omitempty"`
}

type latencyMS struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

type spectrumPoint struct {
	Percentile float64 `json:"percentile"`
	MS         float64 `json:"ms"`
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

func newOpResult(name string, h *perf.Histogram, errs map[int]int64, d time.Duration) opResult {
	o := opResult{
		Op: name, Requests: h.Count(), RequestsPerSecond: float64(h.Count()) / d.Seconds(),
		Latency: latencyMS{
			Min: ms(h.Min()), Mean: h.Mean() / 1e6, P50: ms(h.ValueAt(50)), P90: ms(h.ValueAt(90)),
			P99: ms(h.ValueAt(99)), P999: ms(h.ValueAt(99.9)), Max: ms(h.Max()),
		},
	}
	for status, n := range errs {
		if o.ErrorsByStatus == nil {
			o.ErrorsByStatus = map[string]int64{}
		}
		o.ErrorsByStatus[strconv.Itoa(status)] = n
		o.Errors += n
	}
	for _, p := range h.Spectrum() {
		o.Spectrum = append(o.Spectrum, spectrumPoint{Percentile: p.Percentile, MS: ms(p.Value)})
	}
	return o
}

func dur(msec float64) time.Duration { return time.Duration(msec * 1e6) }

// rows is the report as table rows.
func (r benchReport) rows() []perf.Row {
	var rows []perf.Row
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			rows = append(rows, perf.Row{Scenario: s.Name, Op: "-", Note: "skipped: " + s.Skipped})
			continue
		}
		for _, o := range s.Ops {
			rows = append(rows, perf.Row{
				Scenario: s.Name, Op: o.Op, Requests: o.Requests, Errors: o.Errors, RPS: o.RequestsPerSecond,
				P50: dur(o.Latency.P50), P90: dur(o.Latency.P90), P99: dur(o.Latency.P99),
				P999: dur(o.Latency.P999), Max: dur(o.Latency.Max),
			})
		}
	}
	return rows
}

// series is the report as chart lines: every operation of every scenario.
func (r benchReport) series() []perf.Series {
	var out []perf.Series
	for _, s := range r.Scenarios {
		for _, o := range s.Ops {
			name := s.Name
			if s.Name == "mixed" {
				name += " / " + o.Op
			}
			var pts []perf.Point
			for _, p := range o.Spectrum {
				pts = append(pts, perf.Point{Percentile: p.Percentile, Value: int64(p.MS * 1e6)})
			}
			out = append(out, perf.Series{Name: name, Points: pts})
		}
	}
	return out
}
