package sqlite_test

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sqlite"
)

// crashChildEnv names the database file the test binary works on when it is
// run as the child of TestCrashDurability.
const crashChildEnv = "SESSIOND_SQLITE_CRASH_CHILD"

// TestCrashDurability runs the test binary again as a child process that
// creates and revokes sessions and reports each one on stdout as soon as the
// store acknowledged it. The parent kills the child (SIGKILL) at varying
// moments, reopens the file and checks that everything acknowledged holds:
// created sessions exist and are active, revoked ones are revoked, and the
// file passes PRAGMA integrity_check. Several rounds share one file.
//
// A killed process leaves the operating system's page cache intact, so this
// checks that the store acknowledges only committed transactions and that
// the file recovers from a crash mid-write; that the commits also reach the
// disk before a power loss is what synchronous=FULL is for, which no
// in-process test can observe.
func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary; skipped with -short")
	}
	path := filepath.Join(t.TempDir(), "sessions.db")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0x5e5510d))

	var (
		created = map[string]bool{} // acknowledged creations
		revoked = map[string]bool{} // acknowledged revocations
		begun   = map[string]bool{} // revocations that were started
	)
	totalAcks := 0
	for round := range 8 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, fmt.Sprintf("SESSIOND_SQLITE_CRASH_SEED=%d", rng.Uint64()))
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill either after a number of acknowledgements, or after a delay
		// that may fall anywhere, also into Open and its migrations.
		killAfterAcks, killAfter := 0, time.Duration(0)
		if round%2 == 0 {
			killAfterAcks = 1 + rng.IntN(200)
		} else {
			killAfter = time.Duration(rng.IntN(400)) * time.Millisecond
			timer := time.AfterFunc(killAfter, func() { cmd.Process.Kill() })
			defer timer.Stop()
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
			if acks == killAfterAcks {
				// Kill at once; lines already in the pipe are read below,
				// and they are acknowledgements all the same.
				cmd.Process.Kill()
			}
		}
		err = cmd.Wait()
		if err == nil || cmd.ProcessState.ExitCode() != -1 {
			t.Fatalf("round %d: the child was not killed but ended: %v", round, err)
		}
		totalAcks += acks
		t.Logf("round %d: killed after %d acknowledgements (target %d acks / %v)", round, acks, killAfterAcks, killAfter)
		checkAfterCrash(t, path, created, revoked, begun)
	}
	if totalAcks == 0 || len(revoked) == 0 {
		t.Fatalf("the children acknowledged nothing (%d acks, %d revocations): the test tested nothing", totalAcks, len(revoked))
	}
	t.Logf("%d sessions created, %d revoked", len(created), len(revoked))
}

func checkAfterCrash(t *testing.T, path string, created, revoked, begun map[string]bool) {
	t.Helper()
	ctx := t.Context()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if len(created) > 0 {
			t.Fatal("the database file is gone")
		}
		return
	}
	// Integrity first, on the file as the crash left it (opening it
	// recovers the WAL).
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Fatalf("integrity_check: %s", res)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after crash: %v", err)
	}
	defer st.Close()
	now := time.Now()
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
			if err := s.Check(now); err != nil {
				t.Errorf("acknowledged session %s is not active: %v", id, err)
			}
		}
	}
	for id := range revoked {
		if !created[id] {
			t.Errorf("revoked %s was never acknowledged as created", id)
		}
	}
}

// crashChild creates and revokes sessions until it is killed, printing
// "ACK C id" after each acknowledged creation, "BEGIN R id" before each
// revocation and "ACK R id" after each acknowledged one. It ends by itself
// after a while, in case the parent is gone.
func crashChild(t *testing.T, path string) {
	var seed uint64
	fmt.Sscan(os.Getenv("SESSIOND_SQLITE_CRASH_SEED"), &seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("child: Open: %v", err)
	}
	m, err := sessiond.NewManager(st, sessiond.Policy{})
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
