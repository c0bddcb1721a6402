// Package crashtest is the crash harness of the SQL backends' durability
// tests: it runs the test binary again as a child process that creates and
// revokes sessions through a Manager and reports each one on stdout as soon
// as the store acknowledged it, kills the child (SIGKILL) at varying
// moments, and has the backend check, through a store of its own, that
// everything acknowledged holds.
//
// A killed process leaves the operating system (and a database server)
// intact, so this checks that a store acknowledges only committed
// transactions and recovers from a client that died mid-write; that a
// commit also survives a power loss is the database's fsync, which no test
// in one process can observe.
package crashtest

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// Config describes one backend's crash test.
type Config struct {
	// Env names the environment variable that carries the target (a
	// database file, a schema) to the child; the test binary is the child
	// when it is set. Env+"_SEED" carries the child's random seed.
	// Required.
	Env string
	// Target makes the target in the parent, e.g. a file in t.TempDir().
	// All rounds share it. Required.
	Target func(t *testing.T) string
	// Open opens the store the child writes to. Required.
	Open func(ctx context.Context, target string) (sessiond.Store, error)
	// Check runs in the parent after each round: it opens a store of its
	// own on target and calls acked.Verify with it, plus any check of its
	// own (a file's integrity). Required.
	Check func(t *testing.T, target string, acked *Acked)
	// Policy is the child's Manager policy. Default: the zero Policy.
	Policy sessiond.Policy
	// Rounds is how many children are killed, one after the other, on the
	// same target. Default 4.
	Rounds int
	// MaxAcks: a round kills its child after 1 to MaxAcks
	// acknowledgements, picked at random. Default 150.
	MaxAcks int
	// MaxDelay, when set, makes every second round kill its child after a
	// random delay below it instead, which may fall anywhere, also into
	// Open and its migrations. Default 0: every round counts
	// acknowledgements.
	MaxDelay time.Duration
}

// Acked is what the children reported, over all rounds so far.
type Acked struct {
	Created map[string]bool // acknowledged creations
	Revoked map[string]bool // acknowledged revocations
	Begun   map[string]bool // revocations that were started
}

// Verify checks that st holds what was acknowledged: created sessions exist
// and are active at now, revoked ones are revoked, and a session whose
// revocation began but was not acknowledged may be either.
func (a *Acked) Verify(t *testing.T, st sessiond.Store, now time.Time) {
	t.Helper()
	ctx := t.Context()
	for id := range a.Created {
		s, err := st.ByID(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged session %s: %v", id, err)
		}
		switch {
		case a.Revoked[id]:
			if !s.Revoked() {
				t.Errorf("acknowledged revocation of %s lost", id)
			}
		case a.Begun[id]:
			// Revocation started but not acknowledged: either state is fine.
		default:
			if err := s.Check(now); err != nil {
				t.Errorf("acknowledged session %s is not active: %v", id, err)
			}
		}
	}
	for id := range a.Revoked {
		if !a.Created[id] {
			t.Errorf("revoked %s was never acknowledged as created", id)
		}
	}
}

// Run is the whole test: in the child (Env set) it writes until it is
// killed; in the parent it runs the rounds. Call it from a top-level test,
// which the child runs again by its name. Skipped with -short.
func Run(t *testing.T, c Config) {
	if target := os.Getenv(c.Env); target != "" {
		child(t, c, target)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary; skipped with -short")
	}
	if c.Rounds == 0 {
		c.Rounds = 4
	}
	if c.MaxAcks == 0 {
		c.MaxAcks = 150
	}
	target := c.Target(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5e5510d))
	acked := &Acked{Created: map[string]bool{}, Revoked: map[string]bool{}, Begun: map[string]bool{}}
	for round := range c.Rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.count=1")
		cmd.Env = append(os.Environ(), c.Env+"="+target, fmt.Sprintf("%s_SEED=%d", c.Env, rng.Uint64()))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfterAcks, killAfter := 0, time.Duration(0)
		if c.MaxDelay > 0 && round%2 == 1 {
			killAfter = time.Duration(rng.Int64N(int64(c.MaxDelay)))
			timer := time.AfterFunc(killAfter, func() { cmd.Process.Kill() })
			defer timer.Stop()
		} else {
			killAfterAcks = 1 + rng.IntN(c.MaxAcks)
		}
		acks := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue // the test framework's own output
			}
			switch f[0] + " " + f[1] {
			case "ACK C":
				acked.Created[f[2]] = true
				acks++
			case "BEGIN R":
				acked.Begun[f[2]] = true
			case "ACK R":
				acked.Revoked[f[2]] = true
				acks++
			default:
				continue
			}
			if acks == killAfterAcks {
				// Kill at once; lines already in the pipe are read on, and
				// they are acknowledgements all the same.
				cmd.Process.Kill()
			}
		}
		if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != -1 {
			t.Fatalf("round %d: the child was not killed but ended: %v", round, err)
		}
		t.Logf("round %d: killed after %d acknowledgements (target %d acks / %v)", round, acks, killAfterAcks, killAfter)
		c.Check(t, target, acked)
	}
	if len(acked.Created) == 0 || len(acked.Revoked) == 0 {
		t.Fatalf("the children acknowledged %d creations, %d revocations: the test tested nothing", len(acked.Created), len(acked.Revoked))
	}
	t.Logf("%d sessions created, %d revoked", len(acked.Created), len(acked.Revoked))
}

// child creates and revokes sessions until it is killed, printing "ACK C id"
// after each acknowledged creation, "BEGIN R id" before each revocation and
// "ACK R id" after each acknowledged one. It ends by itself after a while,
// in case the parent is gone.
func child(t *testing.T, c Config, target string) {
	var seed uint64
	fmt.Sscan(os.Getenv(c.Env+"_SEED"), &seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.Open(ctx, target)
	if err != nil {
		t.Fatalf("child: Open: %v", err)
	}
	m, err := sessiond.NewManager(st, c.Policy)
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	for i := 0; ctx.Err() == nil && i < 100_000; i++ {
		s, _, err := m.Create(ctx, sessiond.CreateParams{UserID: fmt.Sprintf("user%d", i%7)})
		if err != nil {
			t.Fatalf("child: Create: %v", err)
		}
		fmt.Printf("ACK C %s\n", s.ID)
		live = append(live, s.ID)
		if rng.IntN(2) == 0 {
			j := rng.IntN(len(live))
			id := live[j]
			live[j] = live[len(live)-1]
			live = live[:len(live)-1]
			fmt.Printf("BEGIN R %s\n", id)
			if err := m.Revoke(ctx, id, sessiond.ReasonLogout); err != nil {
				t.Fatalf("child: Revoke: %v", err)
			}
			fmt.Printf("ACK R %s\n", id)
		}
	}
	t.Fatal("child: was not killed")
}
