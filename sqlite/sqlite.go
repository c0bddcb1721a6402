// Package sqlite is a sessiond.Store and an account.Store on SQLite,
// through the pure Go driver modernc.org/sqlite: sessions and accounts in
// one file, no server, no cgo.
//
// Open runs the schema migrations (embedded, versioned with goose) and
// returns a Store that keeps two connection pools to the file: one
// connection for writes, so that the process's writers queue in Go rather
// than spin on SQLite's lock, and several read-only connections for lookups,
// which in WAL mode never wait for the writer. Every write is a transaction
// that SQLite has synced to disk (synchronous=FULL) before the method
// returns, so an acknowledged revocation survives a crash of the process or
// of the machine.
//
// Several processes may open the same file (a server and a CLI, say): they
// serialise their writes through SQLite's lock, waiting up to the busy
// timeout. The file must be on a local file system; WAL mode does not work
// over a network file system.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	msqlite "modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Defaults of the options.
const (
	// DefaultBusyTimeout is how long a write waits for another process's
	// write lock before it fails with SQLITE_BUSY.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultMinReadConns is the least number of read connections; the
	// default is the larger of this and GOMAXPROCS.
	DefaultMinReadConns = 4

	// journalSizeLimit caps the size the WAL file is truncated back to after
	// a checkpoint, so that a burst of writes does not leave a large file.
	journalSizeLimit = 64 << 20
)

// Option configures Open and Migrate.
type Option func(*config)

type config struct {
	logger      *slog.Logger
	readConns   int
	busyTimeout time.Duration
}

// WithLogger sets the logger that migrations, and the tightening of a
// database file readable by others (see fileMode), report to. Default:
// none, the store logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithReadConns sets the size of the read pool. Default: GOMAXPROCS, at
// least DefaultMinReadConns. Values below 1 mean the default.
func WithReadConns(n int) Option { return func(c *config) { c.readConns = n } }

// WithBusyTimeout sets how long a statement waits for a lock held by another
// process (PRAGMA busy_timeout). Default DefaultBusyTimeout; values at or
// below zero mean the default.
func WithBusyTimeout(d time.Duration) Option { return func(c *config) { c.busyTimeout = d } }

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.readConns < 1 {
		c.readConns = max(DefaultMinReadConns, runtime.GOMAXPROCS(0))
	}
	if c.busyTimeout <= 0 {
		c.busyTimeout = DefaultBusyTimeout
	}
	c.busyTimeout = max(c.busyTimeout, time.Millisecond) // SQLite counts milliseconds
	return c
}

// dsn returns the data source name of the file at path for modernc.org/sqlite.
// The pragmas are part of it, so every connection that database/sql opens,
// now or after a reconnect, has them:
//
//   - journal_mode=WAL: readers do not block the writer nor it them.
//   - synchronous=FULL: in WAL mode, the WAL is synced on every commit, so a
//     commit that returned is on disk. NORMAL would only sync at checkpoints
//     and could lose the last commits (an acknowledged revocation) to a
//     power loss.
//   - busy_timeout: wait that long for another process's lock.
//   - foreign_keys=ON: session_data rows go with their session.
//
// The write pool begins its transactions with BEGIN IMMEDIATE (_txlock): a
// transaction takes the write lock before it reads, so two writers can never
// both hold a read snapshot and deadlock upgrading it. The read pool is
// query_only, so that no write can slip through it.
func dsn(path string, c config, write bool) (string, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return "", fmt.Errorf("sqlite: path %q: want the path of a database file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("sqlite: path %q: %w", path, err)
	}
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:/C:/...
	}
	// A file: URI, so that a '?' or '#' in the path is not taken for the
	// start of the parameters.
	p = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)

	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(c.busyTimeout.Milliseconds(), 10)+")")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "journal_size_limit("+strconv.Itoa(journalSizeLimit)+")")
	if write {
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	return "file:" + p + "?" + q.Encode(), nil
}

// openWriter opens the write pool of the file at path: exactly one
// connection, kept open for the life of the pool.
func openWriter(ctx context.Context, path string, c config) (*sql.DB, error) {
	name, err := dsn(path, c, true)
	if err != nil {
		return nil, err
	}
	if err := ownerOnly(path, c.logger); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	// Switching a new file to WAL needs the file to itself, and SQLite
	// answers "database is locked" at once, without the busy timeout, when
	// another process is switching it too: try again until that one is
	// done, within the busy timeout.
	deadline := time.Now().Add(max(c.busyTimeout, time.Second))
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return db, nil
		}
		if !isBusy(err) || time.Now().After(deadline) || ctx.Err() != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked".
func isBusy(err error) bool {
	var e *msqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

func openReader(ctx context.Context, path string, c config) (*sql.DB, error) {
	name, err := dsn(path, c, false)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(c.readConns)
	db.SetMaxIdleConns(c.readConns)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// Migrate brings the database file at path up to the newest schema, creating
// the file if it does not exist, and returns. Open does the same; Migrate is
// for a command that only migrates. Migrating twice is harmless.
func Migrate(ctx context.Context, path string, opts ...Option) error {
	c := newConfig(opts)
	db, err := openWriter(ctx, path, c)
	if err != nil {
		return err
	}
	return errors.Join(migrate(ctx, db, c.logger, c.busyTimeout), db.Close())
}

// migrations returns the SQL migration files. The schema is SQLite's; other
// backends have their own.
func migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	return sub
}

func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger, busyTimeout time.Duration) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations(),
		goose.WithSlog(logger),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	// Another process opening the same new file may be applying the same
	// migrations meanwhile (each runs in a transaction of its own, so one
	// of ours then fails on "table already exists"). That is success once
	// the schema is up to date; while the other is still on its way, ours
	// tries again from where the version table says it got to, until the
	// other could not have taken longer (a migration that fails for good
	// fails every time and is reported then).
	deadline := time.Now().Add(max(busyTimeout, time.Second))
	for {
		_, err := p.Up(ctx)
		if err == nil {
			return nil
		}
		if pending, perr := p.HasPending(ctx); perr == nil && !pending {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("sqlite: migrate: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}
