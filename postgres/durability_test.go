package postgres_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/postgres"
)

// TestRevocationDurable: a revocation that Revoke acknowledged is there for
// a store opened after the first one closed, with its time and reason; so
// are the user's revocations and a rotation.
func TestRevocationDurable(t *testing.T) {
	schema := postgres.TestSchema(t)
	ctx := t.Context()
	a, err := postgres.Open(ctx, postgres.TestURL(t), postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t0 := now()
	s := newSession(t, "s1", "u1", t0)
	keep := newSession(t, "s2", "u1", t0)
	for _, x := range []*sessiond.Session{s, keep, newSession(t, "s3", "u2", t0), newSession(t, "s4", "u2", t0)} {
		if err := a.Create(ctx, x, sessiond.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	revokedAt := t0.Add(time.Second)
	if err := a.Revoke(ctx, s.ID, revokedAt, sessiond.ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	if n, err := a.RevokeByUser(ctx, "u2", "", revokedAt, sessiond.ReasonLogoutAll); err != nil || n != 2 {
		t.Fatalf("RevokeByUser = %d, %v", n, err)
	}
	next := newSession(t, "x", "", t0).TokenHash
	if err := a.Rotate(ctx, keep.ID, keep.TokenHash, next, t0); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := postgres.OpenSchema(t, schema)
	got, err := b.ByID(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked() || !got.RevokedAt.Equal(revokedAt) || got.RevokeReason != sessiond.ReasonAdmin {
		t.Fatalf("after reopening: revoked at %v (%q), want %v (%q)", got.RevokedAt, got.RevokeReason, revokedAt, sessiond.ReasonAdmin)
	}
	for _, id := range []string{"s3", "s4"} {
		if got, err := b.ByID(ctx, id); err != nil || got.RevokeReason != sessiond.ReasonLogoutAll {
			t.Fatalf("after reopening: %s = %+v, %v; want revoked", id, got, err)
		}
	}
	if got, err := b.ByTokenHash(ctx, next); err != nil || got.ID != keep.ID || got.Revoked() {
		t.Fatalf("after reopening: the rotated token = %+v, %v", got, err)
	}
}

// crashChildEnv names the schema the test binary works in when it is run
// as the child of TestCrashDurability.
const crashChildEnv = "SESSIOND_POSTGRES_CRASH_CHILD"

// TestCrashDurability runs the test binary again as a child process that
// creates and revokes sessions and reports each one on stdout as soon as
// the store acknowledged it. The parent kills the child (SIGKILL) at
// varying moments and checks, through a store of its own, that everything
// acknowledged holds: created sessions exist and are active, revoked ones
// are revoked. The server survives the client's crash, so this checks that
// the store acknowledges only committed transactions; that a commit
// survives a crash of the server is the server's fsync and
// synchronous_commit (Open warns when either is off).
func TestCrashDurability(t *testing.T) {
	if schema := os.Getenv(crashChildEnv); schema != "" {
		crashChild(t, schema)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary; skipped with -short")
	}
	schema := postgres.TestSchema(t)
	st := postgres.OpenSchema(t, schema)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x9057))
	var (
		created = map[string]bool{}
		revoked = map[string]bool{}
		begun   = map[string]bool{}
	)
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+schema, fmt.Sprintf("SESSIOND_POSTGRES_CRASH_SEED=%d", rng.Uint64()))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAfter := 1 + rng.IntN(150)
		acks := 0
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue // the test framework's own output
			}
			switch f[0] + " " + f[1] {
			case "ACK C":
				created[f[2]] = true
				acks++
			case "BEGIN R":
				begun[f[2]] = true
			case "ACK R":
				revoked[f[2]] = true
				acks++
			default:
				continue
			}
			if acks == killAfter {
				cmd.Process.Kill()
			}
		}
		if err := cmd.Wait(); err == nil || cmd.ProcessState.ExitCode() != -1 {
			t.Fatalf("round %d: the child was not killed but ended: %v", round, err)
		}
		t.Logf("round %d: killed after %d acknowledgements", round, acks)
	}
	if len(created) == 0 || len(revoked) == 0 {
		t.Fatalf("the children acknowledged %d creations, %d revocations: the test tested nothing", len(created), len(revoked))
	}
	ctx := t.Context()
	at := time.Now()
	for id := range created {
		s, err := st.ByID(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged session %s: %v", id, err)
		}
		switch {
		case revoked[id]:
			if !s.Revoked() {
				t.Errorf("acknowledged revocation of %s lost", id)
			}
		case begun[id]:
			// Revocation started but not acknowledged: either state is fine.
		default:
			if err := s.Check(at); err != nil {
				t.Errorf("acknowledged session %s is not active: %v", id, err)
			}
		}
	}
	t.Logf("%d sessions created, %d revoked", len(created), len(revoked))
}

// crashChild creates and revokes sessions until it is killed, printing
// "ACK C id" after each acknowledged creation, "BEGIN R id" before each
// revocation and "ACK R id" after each acknowledged one. It ends by itself
// after a while, in case the parent is gone.
func crashChild(t *testing.T, schema string) {
	var seed uint64
	fmt.Sscan(os.Getenv("SESSIOND_POSTGRES_CRASH_SEED"), &seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := postgres.Open(ctx, postgres.TestURL(t), postgres.WithSchema(schema))
	if err != nil {
		t.Fatalf("child: Open: %v", err)
	}
	m, err := sessiond.NewManager(st, sessiond.Policy{MaxSessionsPerUser: 1000})
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
