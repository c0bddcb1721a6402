package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/crashtest"
	"github.com/sessiond/sessiond/sqlite"
)

// TestCrashDurability kills a child process that creates and revokes
// sessions on one file (internal/crashtest), eight times at varying
// moments, also during Open and its migrations, and after each kill checks
// that the file passes PRAGMA integrity_check and that a store opened on it
// holds everything acknowledged: created sessions exist and are active,
// revoked ones are revoked.
//
// A killed process leaves the operating system's page cache intact, so this
// checks that the store acknowledges only committed transactions and that
// the file recovers from a crash mid-write; that the commits also reach the
// disk before a power loss is what synchronous=FULL is for, which no
// in-process test can observe.
func TestCrashDurability(t *testing.T) {
	crashtest.Run(t, crashtest.Config{
		Env:    "SESSIOND_SQLITE_CRASH_CHILD",
		Target: func(t *testing.T) string { return filepath.Join(t.TempDir(), "sessions.db") },
		Open: func(ctx context.Context, path string) (sessiond.Store, error) {
			return sqlite.Open(ctx, path)
		},
		Check:    checkAfterCrash,
		Rounds:   8,
		MaxAcks:  200,
		MaxDelay: 400 * time.Millisecond,
	})
}

func checkAfterCrash(t *testing.T, path string, acked *crashtest.Acked) {
	t.Helper()
	ctx := t.Context()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if len(acked.Created) > 0 {
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
	acked.Verify(t, st, time.Now())
}
