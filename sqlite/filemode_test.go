//go:build unix

package sqlite_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sessiond/sessiond/sqlite"
)

// TestFilesOwnerOnly: a new database file and its -wal and -shm are
// created owner-only (0600) under the usual umask 022, and a file that
// was left readable by others is tightened with a warning.
func TestFilesOwnerOnly(t *testing.T) {
	old := syscall.Umask(0o022) // the usual one; the test's own may differ
	t.Cleanup(func() { syscall.Umask(old) })
	path := filepath.Join(t.TempDir(), "sessiond.db")
	st, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	// The migrations wrote: the -wal and -shm files exist.
	wantModes(t, path, "-wal", "-shm")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	// An existing file with mode 0644 (made by an earlier version).
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	st, err = sqlite.Open(t.Context(), path, sqlite.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wantModes(t, path, "-wal", "-shm")
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "made owner-only") {
		t.Errorf("tightening the file logged %q, want a warning", logs.String())
	}
}

// wantModes checks that path, and path with each suffix, are mode 0600.
func wantModes(t *testing.T, path string, suffixes ...string) {
	t.Helper()
	for _, p := range append([]string{path}, prefixAll(path, suffixes)...) {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if m := st.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want -rw-------", filepath.Base(p), m)
		}
	}
}

func prefixAll(p string, suffixes []string) []string {
	var out []string
	for _, s := range suffixes {
		out = append(out, p+s)
	}
	return out
}
