package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessiond.Store { return openTest(t) })
}

func TestConformanceCached(t *testing.T) {
	storetest.RunCached(t, func(t *testing.T) sessiond.Store { return openTest(t) })
}

// openTest opens a store on a fresh file in t.TempDir and closes it when the
// test ends.
func openTest(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sessions.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}
