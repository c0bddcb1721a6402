package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the sessiond executable TestMain built.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	// The tests spend their time waiting for other processes and for
	// deadlines to pass, not computing: let more of them wait at once than
	// the default of GOMAXPROCS, unless -parallel says otherwise.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(max(16, 4*runtime.GOMAXPROCS(0))))
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sessiond-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if contract, err = newContractChecker(filepath.Join(root, "api", "openapi.yaml")); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if b := os.Getenv("E2E_SESSIOND_BINARY"); b != "" {
		binary = b // a prebuilt binary, e.g. to check that the suite catches a planted bug
		return runChecked(m)
	}
	binary = filepath.Join(dir, "sessiond")
	args := []string{"build", "-o", binary}
	if os.Getenv("E2E_SERVER_RACE") != "" {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/sessiond")...)
	build.Dir = root
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building sessiond:", err)
		return 1
	}
	return runChecked(m)
}

// runChecked runs the tests, then fails the run when a request or an
// answer did not match api/openapi.yaml (see contract).
func runChecked(m *testing.M) int {
	code := m.Run()
	mismatches := contract.report()
	fmt.Fprintf(os.Stderr, "e2e: api/openapi.yaml: %d requests and %d answers checked (%d requests to routes outside the API not checked), %d mismatches\n",
		contract.requests.Load(), contract.answers.Load(), contract.skipped.Load(), len(mismatches))
	if len(mismatches) > 0 {
		fmt.Fprintln(os.Stderr, "e2e: requests and answers that do not match api/openapi.yaml:")
		for _, l := range mismatches {
			fmt.Fprintln(os.Stderr, "  "+l)
		}
		return 1
	}
	return code
}

// moduleRoot is the directory of the module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return filepath.Abs("..")
	}
	return filepath.Dir(gomod), nil
}

// adminKey is the admin key every server gets unless a test says otherwise.
const adminKey = "e2e-admin-key-0123456789abcdef"

// fastHash keeps argon2id cheap: the suite hashes hundreds of passwords.
// Tests that care about hashing cost pass the defaults back explicitly.
var fastHash = []string{"--argon2-memory", "1024", "--argon2-time", "1"}

// Server is one running sessiond process.
type Server struct {
	Pub    string // base URL of the public API
	Admin  string // base URL of the admin listener
	Dir    string // the process's working directory
	DB     string // SQLite file
	Outbox string // notifier outbox directory

	args     []string // the test's own flags
	env      []string // extra environment
	adminKey string

	mu      sync.Mutex
	cmd     *exec.Cmd
	logs    *syncBuffer
	done    chan struct{}
	waitErr error
	stopped bool
}

// serverOpt adjusts a server before it starts.
type serverOpt func(*Server)

// withEnv adds environment variables ("K=V").
func withEnv(kv ...string) serverOpt { return func(s *Server) { s.env = append(s.env, kv...) } }

// withoutAdminKey starts the server with no admin key configured.
func withoutAdminKey() serverOpt { return func(s *Server) { s.adminKey = "" } }

// startServer starts sessiond with args (after the suite's defaults, so
// they win) and stops it with SIGTERM when the test ends, checking that
// it exits 0.
func startServer(t *testing.T, args []string, opts ...serverOpt) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{
		Dir:      dir,
		DB:       filepath.Join(dir, "sessiond.db"),
		Outbox:   filepath.Join(dir, "outbox"),
		args:     args,
		adminKey: adminKey,
	}
	for _, o := range opts {
		o(s)
	}
	s.start(t)
	t.Cleanup(func() {
		s.Stop(t)
		if t.Failed() || os.Getenv("E2E_KEEP_LOGS") != "" {
			t.Logf("server log (%s):\n%s", s.Pub, s.Logs())
		}
	})
	return s
}

// baseEnv is the test process's environment without any SESSIOND_
// variable, so that a developer's shell cannot change what the tests see.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIOND_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start launches the process on fresh ports, retrying when another process
// took a port between the check and the bind.
func (s *Server) start(t *testing.T) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		pub, adm := freePort(t), freePort(t)
		if pub == adm {
			continue
		}
		s.Pub = fmt.Sprintf("http://127.0.0.1:%d", pub)
		s.Admin = fmt.Sprintf("http://127.0.0.1:%d", adm)
		addListeners(s)
		args := []string{"serve",
			"--listen", fmt.Sprintf("127.0.0.1:%d", pub),
			"--admin-listen", fmt.Sprintf("127.0.0.1:%d", adm),
			"--database", "sqlite://" + s.DB,
			"--notify-outbox", s.Outbox,
			"--shutdown-timeout", "5s",
			"--log-level", "debug",
		}
		args = append(args, fastHash...)
		args = append(args, s.args...)
		cmd := exec.Command(binary, args...)
		cmd.Dir = s.Dir
		cmd.Env = append(baseEnv(), s.env...)
		if s.adminKey != "" {
			cmd.Env = append(cmd.Env, "SESSIOND_ADMIN_KEY="+s.adminKey)
		}
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting sessiond: %v", err)
		}
		done := make(chan struct{})
		s.mu.Lock()
		s.cmd, s.logs, s.done, s.waitErr, s.stopped = cmd, logs, done, nil, false
		s.mu.Unlock()
		go func() {
			err := cmd.Wait()
			s.mu.Lock()
			s.waitErr = err
			s.mu.Unlock()
			close(done)
		}()
		err := s.waitHealthy(15 * time.Second)
		if err == nil {
			return
		}
		lastErr = err
		_ = cmd.Process.Kill()
		<-done
		if !strings.Contains(logs.String(), "address already in use") {
			break
		}
	}
	t.Fatalf("sessiond did not become healthy: %v\nlog:\n%s", lastErr, s.Logs())
}

func (s *Server) waitHealthy(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("sessiond exited early: %v", s.exitErr())
		default:
		}
		// The log line comes once both listeners are bound: without it a
		// 200 may be another server's that took the port in the meantime.
		if !strings.Contains(s.Logs(), "sessiond serving") {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		resp, err := hc.Get(s.Admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("timed out waiting for /healthz")
}

func (s *Server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

// Logs returns everything the process wrote so far.
func (s *Server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// Stop sends SIGTERM and checks that the process exits 0 in time. Stopping
// a stopped server does nothing.
func (s *Server) Stop(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	if s.stopped || s.cmd == nil {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	removeListeners(s) // the ports may go to another process
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Errorf("sessiond did not stop within 20s of SIGTERM")
		return
	}
	if err := s.exitErr(); err != nil {
		t.Errorf("sessiond exited with %v after SIGTERM, want status 0", err)
	}
}

// Kill ends the process with SIGKILL, as a crash would.
func (s *Server) Kill(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	if s.stopped || s.cmd == nil {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	removeListeners(s) // the ports may go to another process
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	_ = cmd.Process.Kill()
	<-done
}

// Restart stops the server with SIGTERM (checking exit 0) and starts it
// again with the same flags and database, on new ports.
func (s *Server) Restart(t *testing.T) {
	t.Helper()
	s.Stop(t)
	s.start(t)
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the
// test's reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runCLI runs a sessiond subcommand to completion with stdin, in dir,
// with extra environment, and returns its stdout, stderr and exit code.
func runCLI(t *testing.T, dir, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		code = 0
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("running sessiond %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("sessiond %v did not finish within 30s; stderr:\n%s", args, errb.String())
	}
	return out.String(), errb.String(), code
}
