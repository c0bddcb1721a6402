package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime"
)

// The database file holds password hashes, sealed signing keys and the
// hashes of every live token: it is the owner's only (0600).
//
// SQLite's unix VFS creates a new database file with mode 0644 (less the
// umask), and its WAL and shared-memory files with the mode of the
// database file. So ownerOnly creates the file itself, empty (an empty
// file is an empty SQLite database), with mode 0600 before SQLite opens
// it, and the -wal and -shm files follow. A file that exists with group or
// other permissions is tightened to owner-only, with a warning in the log,
// rather than left readable: nothing but the owner should read it (a
// backup job reads it as its owner or through `sqlite3 .backup`). A file
// that cannot be tightened (another user's) is opened all the same, with
// the warning.
const fileMode fs.FileMode = 0o600

// ownerOnly creates the database file at path with mode fileMode if it does
// not exist, and tightens the file and its -wal and -shm to owner-only if
// they are looser, logging each file it tightened or could not tighten.
func ownerOnly(path string, log *slog.Logger) error {
	if runtime.GOOS == "windows" {
		return nil // no Unix permission bits; the directory's ACL decides
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	switch {
	case err == nil:
		// The umask may only have taken bits away.
		return f.Close()
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		mode := st.Mode().Perm()
		if mode&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, mode&^0o077); err != nil {
			log.Warn("database file readable by others than its owner, and it could not be made owner-only",
				"file", p, "mode", mode.String(), "err", err)
			continue
		}
		log.Warn("database file was readable by others than its owner: made owner-only",
			"file", p, "was", mode.String(), "now", (mode &^ 0o077).String())
	}
	return nil
}
