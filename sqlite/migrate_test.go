package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sessiond/sessiond/sqlite"
)

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sessions.db")
	for range 2 { // migrating twice is harmless
		if err := sqlite.Migrate(ctx, path); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var version int64
	if err := db.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 2 {
		t.Fatalf("schema version %d, want at least 2", version)
	}
	for _, table := range []string{"sessions", "session_data", "users", "reset_tokens"} {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: count %d, %v", table, n, err)
		}
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after Migrate: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestOpenConcurrently opens one new file from several stores at once, as
// several processes starting together would: each migrates, and all succeed.
func TestOpenConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessions.db")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			st, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			if err := st.Ping(t.Context()); err != nil {
				t.Errorf("Ping: %v", err)
			}
			st.Close()
		})
	}
	wg.Wait()
}
