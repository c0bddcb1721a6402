package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/perf"
)

func TestJSONString(t *testing.T) {
	for _, c := range []struct{ body, key, want string }{
		{`{"session":{"id":"x"},"token":"sdt_abc"}`, "token", "sdt_abc"},
		{`{"token_type":"Bearer","refresh_token":"sdr_1","access_token":"a.b.c"}`, "refresh_token", "sdr_1"},
		{`{"token_type":"Bearer","refresh_token":"sdr_1"}`, "token", ""},
		{`{ "token" : "spaced" }`, "token", "spaced"},
		{`{"note":"token","token":"second"}`, "token", "second"},
		{`{"token":null}`, "token", ""},
		{`{"token":"unterminated`, "token", ""},
		{``, "token", ""},
	} {
		if got := jsonString([]byte(c.body), c.key); got != c.want {
			t.Errorf("jsonString(%s, %q) = %q, want %q", c.body, c.key, got, c.want)
		}
	}
}

func TestMixedScheduleHasTheMixAndLogsOutOnlyAfterLogins(t *testing.T) {
	for seed := uint64(0); seed < 200; seed++ {
		s := mixedSchedule(seed)
		var n [numBenchOps]int
		balance := 0
		for i, op := range s {
			n[op]++
			switch op {
			case opLogin:
				balance++
			case opLogout:
				if balance == 0 {
					t.Fatalf("seed %d: logout at %d before any unmatched login: %v", seed, i, s)
				}
				balance--
			}
		}
		if n != mixedShare {
			t.Fatalf("seed %d: mix %v, want %v", seed, n, mixedShare)
		}
	}
	if fmt.Sprint(mixedSchedule(1)) == fmt.Sprint(mixedSchedule(2)) {
		t.Error("workers should not share one order")
	}
	if fmt.Sprint(mixedSchedule(7)) != fmt.Sprint(mixedSchedule(7)) {
		t.Error("a seed should give the same order every run")
	}
}

func TestParseBenchFlags(t *testing.T) {
	env := func(string) string { return "" }
	c, err := parseBenchFlags([]string{"--scenario", "all,whoami", "--target", "http://127.0.0.1:9/"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.scenarios, ",") != "whoami,login,refresh,mixed" {
		t.Errorf("scenarios %v", c.scenarios)
	}
	if c.target != "http://127.0.0.1:9" || c.connections != 32 || c.duration != 10*time.Second {
		t.Errorf("defaults/target: %+v", c)
	}
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--connections", "0"},
		{"--target", "127.0.0.1:8080"},
		{"--duration", "0s"},
		{"extra"},
	} {
		if _, err := parseBenchFlags(args, env, io.Discard); err == nil {
			t.Errorf("%v: want an error", args)
		}
	}
}

func TestReportRowsAndSeries(t *testing.T) {
	h := perf.NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Record(int64(i) * int64(time.Microsecond))
	}
	o := newOpResult("whoami", h, map[int]int64{401: 2, 0: 1}, 2*time.Second)
	if o.Requests != 1000 || o.RequestsPerSecond != 500 || o.Errors != 3 || o.ErrorsByStatus["401"] != 2 || o.ErrorsByStatus["0"] != 1 {
		t.Fatalf("op result %+v", o)
	}
	if o.Latency.P50 < 0.5 || o.Latency.P50 > 0.5*(1+perf.RelativeError) || o.Latency.Max != 1 {
		t.Fatalf("latency %+v", o.Latency)
	}
	r := benchReport{Scenarios: []scenarioResult{
		{Name: "whoami", Ops: []opResult{o}},
		{Name: "refresh", Skipped: "no client-side sessions"},
		{Name: "mixed", Ops: []opResult{{Op: "all"}, {Op: "login"}}},
	}}
	rows := r.rows()
	if len(rows) != 4 || rows[0].P50 != dur(o.Latency.P50) || rows[1].Note != "skipped: no client-side sessions" || rows[3].Op != "login" {
		t.Fatalf("rows %+v", rows)
	}
	series := r.series()
	if len(series) != 3 || series[0].Name != "whoami" || series[2].Name != "mixed / login" || len(series[0].Points) != len(o.Spectrum) {
		t.Fatalf("series %+v", series)
	}
}

// fakeServer answers the routes the bench uses, as sessiond would, and
// counts what it was asked.
type fakeServer struct {
	mu       sync.Mutex
	users    map[string]string // email → id
	sessions map[string]bool   // live tokens
	jwt      bool
	n        atomic.Int64
	logouts  atomic.Int64
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	next := atomic.Int64{}
	newTok := func() string { return fmt.Sprintf("sdt_%049d", next.Add(1)) }
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	bearer := func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") }
	admin := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if bearer(r) != "0123456789abcdef" {
				write(w, 401, map[string]any{"error": map[string]string{"code": "invalid_admin_key"}})
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { write(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("POST /admin/v1/users", admin(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Email, Password string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.users[req.Email]; ok {
			write(w, 409, map[string]any{"error": map[string]string{"code": "email_taken"}})
			return
		}
		f.users[req.Email] = fmt.Sprintf("u%031d", len(f.users))
		write(w, 201, map[string]any{"user": map[string]string{"id": f.users[req.Email], "email": req.Email}})
	}))
	mux.HandleFunc("GET /admin/v1/users", admin(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		email := r.URL.Query().Get("email")
		write(w, 200, map[string]any{"user": map[string]string{"id": f.users[email], "email": email}})
	}))
	mux.HandleFunc("POST /admin/v1/sessions", admin(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ UserID, Transport string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Transport == "jwt" {
			if !f.jwt {
				write(w, 400, map[string]any{"error": map[string]string{"code": "jwt_unavailable", "message": "no"}})
				return
			}
			write(w, 201, map[string]any{"session": map[string]string{"id": "s"}, "refresh_token": "sdr_" + newTok()})
			return
		}
		tok := newTok()
		f.mu.Lock()
		f.sessions[tok] = true
		f.mu.Unlock()
		write(w, 201, map[string]any{"session": map[string]string{"id": "s"}, "token": tok})
	}))
	live := func(r *http.Request) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.sessions[bearer(r)]
	}
	mux.HandleFunc("GET /v1/session", func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		if !live(r) {
			write(w, 401, map[string]any{"error": map[string]string{"code": "unauthenticated"}})
			return
		}
		write(w, 200, map[string]any{"session": map[string]string{"id": "s"}})
	})
	mux.HandleFunc("PUT /v1/session/data/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		if b, _ := io.ReadAll(r.Body); !json.Valid(b) || !live(r) {
			w.WriteHeader(400)
			return
		}
		w.WriteHeader(204)
	})
	mux.HandleFunc("POST /v1/login", func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		var req struct{ Email, Password, Transport string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		_, known := f.users[req.Email]
		f.mu.Unlock()
		if !known || req.Password != benchPassword || req.Transport != "token" {
			write(w, 401, map[string]any{"error": map[string]string{"code": "invalid_credentials"}})
			return
		}
		tok := newTok()
		f.mu.Lock()
		f.sessions[tok] = true
		f.mu.Unlock()
		write(w, 200, map[string]any{"session": map[string]string{"id": "s"}, "token": tok})
	})
	mux.HandleFunc("POST /v1/logout", func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		f.logouts.Add(1)
		f.mu.Lock()
		delete(f.sessions, bearer(r))
		f.mu.Unlock()
		w.WriteHeader(204)
	})
	mux.HandleFunc("POST /v1/token/refresh", func(w http.ResponseWriter, r *http.Request) {
		f.n.Add(1)
		var req struct {
			RefreshToken string `json:"refresh_token"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !strings.HasPrefix(req.RefreshToken, "sdr_") {
			write(w, 401, map[string]any{"error": map[string]string{"code": "invalid_refresh_token"}})
			return
		}
		write(w, 200, map[string]any{"token_type": "Bearer", "access_token": "a.b.c", "refresh_token": "sdr_" + newTok()})
	})
	return mux
}

func runFakeBench(t *testing.T, jwt bool, args ...string) (string, *fakeServer, string) {
	t.Helper()
	f := &fakeServer{users: map[string]string{}, sessions: map[string]bool{}, jwt: jwt}
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	env := func(k string) string {
		if k == "SESSIOND_ADMIN_KEY" {
			return "0123456789abcdef"
		}
		return ""
	}
	args = append([]string{"--target", srv.URL, "--admin", srv.URL, "--connections", "4", "--users", "3",
		"--sessions", "20", "--duration", "300ms", "--warmup", "100ms",
		"--json", filepath.Join(dir, "r.json"), "--svg", filepath.Join(dir, "r.svg")}, args...)
	var stdout, stderr bytes.Buffer
	if err := benchCmd(context.Background(), args, env, &stdout, &stderr); err != nil {
		t.Fatalf("bench: %v\n%s", err, stderr.String())
	}
	return stdout.String(), f, dir
}

func TestBenchAgainstAFakeServer(t *testing.T) {
	// Long enough that the mixed scenario reaches its logouts (2 in 100,
	// each after a login of the same worker) even on a loaded machine.
	out, f, dir := runFakeBench(t, false, "--scenario", "all", "--tokens-out", "", "--duration", "1500ms")
	for _, s := range []string{"whoami    whoami", "login     login", "refresh   -", "skipped: the server has no client-side sessions", "mixed     all", "mixed     logout"} {
		if !strings.Contains(out, s) {
			t.Errorf("table lacks %q:\n%s", s, out)
		}
	}
	if f.logouts.Load() == 0 {
		t.Error("the mixed scenario sent no logout")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Scenarios) != 4 || rep.Scenarios[2].Skipped == "" {
		t.Fatalf("scenarios %+v", rep.Scenarios)
	}
	for _, s := range rep.Scenarios {
		for _, o := range s.Ops {
			if o.Errors != 0 {
				t.Errorf("%s/%s: %d errors %v", s.Name, o.Op, o.Errors, o.ErrorsByStatus)
			}
			if o.Requests == 0 {
				t.Errorf("%s/%s: no requests", s.Name, o.Op)
			}
		}
	}
	who := rep.Scenarios[0].Ops[0]
	if who.Op != "whoami" || who.Latency.P50 <= 0 || who.Latency.P99 < who.Latency.P50 || who.Latency.Max < who.Latency.P999 {
		t.Errorf("whoami %+v", who)
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "r.svg")); err != nil || !bytes.Contains(svg, []byte("<polyline")) {
		t.Errorf("svg: %v", err)
	}
}

func TestBenchRefreshAndTokenFiles(t *testing.T) {
	dir := t.TempDir()
	toks := filepath.Join(dir, "tokens.txt")
	out, _, _ := runFakeBench(t, true, "--scenario", "refresh,whoami", "--tokens-out", toks)
	if !strings.Contains(out, "refresh   refresh") || strings.Contains(out, "skipped") {
		t.Errorf("refresh should run:\n%s", out)
	}
	got, err := readTokens(toks)
	if err != nil || len(got) != 20 {
		t.Fatalf("tokens-out: %d tokens, %v", len(got), err)
	}
	// A bench that reads tokens it cannot use reports errors, not success.
	_, _, dir2 := runFakeBench(t, false, "--scenario", "whoami", "--tokens-in", toks)
	raw, err := os.ReadFile(filepath.Join(dir2, "r.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep benchReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if o := rep.Scenarios[0].Ops[0]; o.Requests != 0 || o.Errors == 0 || o.ErrorsByStatus["401"] != o.Errors {
		t.Fatalf("foreign tokens: %+v", o)
	}
}

func TestBenchNeedsTheAdminKey(t *testing.T) {
	srv := httptest.NewServer((&fakeServer{users: map[string]string{}, sessions: map[string]bool{}}).handler())
	defer srv.Close()
	err := benchCmd(context.Background(), []string{"--target", srv.URL, "--admin", srv.URL}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "SESSIOND_ADMIN_KEY") {
		t.Fatalf("err = %v", err)
	}
	err = benchCmd(context.Background(), []string{"--target", "http://127.0.0.1:1"}, func(string) string { return "x" }, io.Discard, io.Discard)
	if err == nil || errors.Is(err, errUsage) {
		t.Fatalf("an unreachable target: err = %v", err)
	}
}

func TestRunExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
		out  string // in stderr
	}{
		{[]string{"-h"}, 0, "Usage: sessiond-load [flags]"},
		{[]string{"--no-such-flag"}, 2, "flag provided but not defined"},
		{[]string{"--connections"}, 2, "flag needs an argument"},
		{[]string{"extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--scenario", "nope"}, 1, `sessiond-load: --scenario: unknown scenario "nope"`},
	} {
		var stderr bytes.Buffer
		if got := run(context.Background(), tc.args, func(string) string { return "" }, io.Discard, &stderr); got != tc.want || !strings.Contains(stderr.String(), tc.out) {
			t.Errorf("run(%q) = %d, stderr %q; want %d and %q", tc.args, got, stderr.String(), tc.want, tc.out)
		}
		if n := strings.Count(stderr.String(), tc.out); n > 1 {
			t.Errorf("run(%q) printed %q %d times", tc.args, tc.out, n)
		}
	}
}
