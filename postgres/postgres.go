// Package postgres is a sessiond.Store and an account.Store on PostgreSQL,
// through pgx (github.com/jackc/pgx/v5) and its connection pool, with the
// audit trail (Store.Audit, an audit.Store) and the signing keys of access
// tokens (Store.Keys, an accesstoken.KeyStore) in the same database.
//
// Open runs the schema migrations (embedded, versioned with goose, under an
// advisory lock so that nodes starting together migrate once) and returns a
// Store over a pgxpool. Connection settings come from the URL, pgxpool's own
// included (pool_max_conns, pool_max_conn_lifetime, ...); see
// [pgxpool.ParseConfig]. Every method is one round trip where it can be:
// single statements, or pipelined batches that PostgreSQL runs as one
// implicit transaction. A method returns when PostgreSQL has committed its
// change, and with the server's defaults (fsync and synchronous_commit on) a
// commit is on disk, so an acknowledged revocation survives a crash; Open
// logs a warning when the server says otherwise.
//
// Every call is bounded: by the deadline of its context, or else by the
// store's timeout (WithTimeout, else the URL's statement_timeout, else
// DefaultTimeout), which is also the server's statement_timeout unless the
// URL sets one. A store that cannot reach its server fails within that
// time; it never hangs.
//
// Several nodes share one database. Changes that end or re-key sessions
// (Revoke, RevokeByUser, Rotate, the replacements and evictions of Create,
// DeleteExpired) are announced with NOTIFY on the channel Channel in the
// same transaction; Listen delivers them, so that a node can drop what it
// cached.
//
// The tables go to the first schema of the connection's search_path
// (public by default). Give sessiond a schema of its own with WithSchema,
// or with a URL that names one (?search_path=sessiond), when the database
// is shared. Transaction-pooling proxies (PgBouncer in
// transaction mode) do not keep the per-connection settings nor LISTEN:
// connect directly or through session pooling.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DefaultTimeout is the longest a store call takes when its context has no
// earlier deadline, and the default statement_timeout.
const DefaultTimeout = 5 * time.Second

// versionTable is goose's table of applied migrations. It has a name of its
// own so that it cannot clash with an application's goose table in a shared
// schema.
const versionTable = "sessiond_goose_db_version"

// maxSchemaLen is the longest identifier PostgreSQL keeps (NAMEDATALEN-1);
// longer ones it would silently truncate.
const maxSchemaLen = 63

// Option configures Open and Migrate.
type Option func(*config)

type config struct {
	logger     *slog.Logger
	schema     string
	timeout    time.Duration
	timeoutSet bool // WithTimeout was given: it wins over the URL's
}

// WithLogger sets the logger that migrations, Open's checks and Listen
// report to. Default: none, the store logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithSchema keeps sessiond's tables in the schema name, creating it if it
// is missing: every connection of the store gets search_path set to it
// alone. Default: none, the search_path of the URL or the server applies.
//
// A URL can do the same without the option: a search_path parameter that
// names one schema (postgres://…/db?search_path=sessiond) is that schema,
// created if missing. A list of schemas (search_path=a,b) is used as it
// is, and must exist.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithTimeout bounds every store call whose context has no earlier deadline:
// waiting for a pooled connection, connecting and the statements together.
// It is also the statement_timeout and idle_in_transaction_session_timeout
// of the store's connections, unless the URL sets them, and the connect
// timeout, unless the URL sets connect_timeout. Default: the URL's
// statement_timeout when it sets one above zero
// (postgres://…?statement_timeout=2s), else DefaultTimeout; values at or
// below zero mean the default.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

func newConfig(opts []Option) (config, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.timeoutSet = c.timeout > 0
	if !c.timeoutSet {
		c.timeout = DefaultTimeout
	}
	c.timeout = max(c.timeout, time.Millisecond) // PostgreSQL counts milliseconds
	if len(c.schema) > maxSchemaLen || strings.ContainsRune(c.schema, 0) {
		return c, fmt.Errorf("postgres: schema name %q: want at most %d bytes and no NUL", c.schema, maxSchemaLen)
	}
	return c, nil
}

// connConfigs are the parsed settings of a URL: the pool's, and the
// migrations', which are the pool's without the defaulted timeouts (a
// migration may rightly wait for locks and take long; its context bounds
// it).
type connConfigs struct {
	pool    *pgxpool.Config
	migrate *pgx.ConnConfig
	// schema is the schema the migrations create if it is missing: that
	// of WithSchema, else the URL's search_path when it names one schema,
	// else none.
	schema string
	// timeout bounds the store's calls: that of WithTimeout, else the
	// URL's statement_timeout when above zero, else DefaultTimeout.
	timeout time.Duration
}

// parse parses url and applies c. Every connection of the pool, of Listen
// and of the migrations gets these runtime parameters in its startup
// message, so a reconnect has them too:
//
//   - search_path: the schema of WithSchema, when given; else the URL's.
//   - statement_timeout and idle_in_transaction_session_timeout: the
//     store's timeout, unless the URL sets them; the second ends a
//     transaction whose client vanished while it held row locks. The
//     store's timeout is WithTimeout's, else the URL's statement_timeout,
//     so that a URL sets every timeout of the store.
//   - default_transaction_isolation: read committed, always. The store's
//     statements rely on its rules: each statement of a transaction sees
//     what committed before it started, and an UPDATE that waited for a row
//     lock re-checks its WHERE clause on the row's newest version.
//   - application_name: "sessiond", unless the URL sets one.
func parse(url string, c config) (connConfigs, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's ParseConfigError redacts the password.
		return connConfigs{}, fmt.Errorf("postgres: %w", err)
	}
	cc := pc.ConnConfig
	rp := cc.RuntimeParams
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "sessiond"
	}
	rp["default_transaction_isolation"] = "read committed"
	schema := c.schema
	if schema != "" {
		rp["search_path"] = pgx.Identifier{schema}.Sanitize()
	} else if name, ok := oneSchema(rp["search_path"]); ok {
		if len(name) > maxSchemaLen || strings.ContainsRune(name, 0) {
			return connConfigs{}, fmt.Errorf("postgres: search_path %q: want at most %d bytes and no NUL", name, maxSchemaLen)
		}
		schema = name
	}
	timeout := c.timeout
	if d, ok := pgDuration(rp["statement_timeout"]); ok && d > 0 && !c.timeoutSet {
		timeout = max(d, time.Millisecond)
	}
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = timeout
	}
	mc := cc.Copy()
	ms := strconv.FormatInt(timeout.Milliseconds(), 10)
	for _, p := range []string{"statement_timeout", "idle_in_transaction_session_timeout"} {
		if !hasSetting(rp, p) {
			rp[p] = ms
		}
	}
	return connConfigs{pool: pc, migrate: mc, schema: schema, timeout: timeout}, nil
}

// pgDuration reads a time setting as PostgreSQL does: a number, possibly
// with a fraction, and a unit (us, ms, s, min, h or d; none means ms).
func pgDuration(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], strings.TrimSpace(v[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, false
	}
	per := map[string]time.Duration{"": time.Millisecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour}
	d, ok := per[unit]
	if !ok || f*float64(d) > float64(1<<62) {
		return 0, false
	}
	return time.Duration(f * float64(d)), true
}

// oneSchema returns the schema that search_path names when it names exactly
// one, as PostgreSQL reads it: an unquoted name folded to lower case, or a
// double-quoted one taken as it is ("" standing for a quote). "$user" and
// lists are not one schema.
func oneSchema(searchPath string) (string, bool) {
	v := strings.TrimSpace(searchPath)
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		inner := v[1 : len(v)-1]
		if strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) || inner == "" {
			return "", false // several quoted names, or a stray quote
		}
		return strings.ReplaceAll(inner, `""`, `"`), true
	}
	if v == "" || v == "$user" {
		return "", false
	}
	for i, r := range v {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case i > 0 && ('0' <= r && r <= '9' || r == '$'):
		default:
			return "", false // a list, or something to leave to the server
		}
	}
	return strings.ToLower(v), true
}

// hasSetting reports whether the runtime parameters set name, on their own
// or through "options" (-c name=value), which the server would apply
// before them.
func hasSetting(rp map[string]string, name string) bool {
	if _, ok := rp[name]; ok {
		return true
	}
	return strings.Contains(rp["options"], name)
}

// Migrate brings the database at url up to the newest schema (creating the
// schema of WithSchema if missing) and returns. Open does the same; Migrate
// is for a command that only migrates. Migrating twice, or from several
// processes at once, is harmless.
func Migrate(ctx context.Context, url string, opts ...Option) error {
	c, err := newConfig(opts)
	if err != nil {
		return err
	}
	cfg, err := parse(url, c)
	if err != nil {
		return err
	}
	return migrate(ctx, cfg, c.logger)
}

// migrations returns the SQL migration files. The schema is PostgreSQL's;
// other backends have their own.
func migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded directory is always there
	}
	return sub
}

// migrate runs the migrations through database/sql (goose's interface) on
// connections of their own, which it closes, after creating cfg.schema.
func migrate(ctx context.Context, cfg connConfigs, logger *slog.Logger) error {
	db := stdlib.OpenDB(*cfg.migrate)
	defer db.Close()
	if schema := cfg.schema; schema != "" {
		// Two processes creating the same schema at once can collide on the
		// catalog's unique index even with IF NOT EXISTS; the loser finds it
		// there, which is all it wanted.
		_, err := db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize())
		if err != nil && !isCode(err, codeUniqueViolation) && !isCode(err, codeDuplicateSchema) {
			return fmt.Errorf("postgres: creating schema %q: %w", schema, err)
		}
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations(),
		goose.WithSlog(logger),
		goose.WithDisableGlobalRegistry(true),
		goose.WithTableName(versionTable),
		goose.WithSessionLocker(migrationLock{}),
	)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// migrationLock serialises migrations of one schema across processes with
// a session-level advisory lock. Unlike goose's own Postgres locker, which
// polls, it waits in pg_advisory_lock, bounded by the context; and its key
// is the search_path, so that stores in different schemas do not wait for
// each other.
type migrationLock struct{}

var _ lock.SessionLocker = migrationLock{}

const migrationLockKey = `hashtextextended('sessiond.migrate:' || current_setting('search_path'), 0)`

func (migrationLock) SessionLock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(`+migrationLockKey+`)`)
	return err
}

func (migrationLock) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	_, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock(`+migrationLockKey+`)`)
	return err
}

// Store is a sessiond.Store and an account.Store in one PostgreSQL database
// (or schema). It is safe for concurrent use; Close it when done.
type Store struct {
	pool    *pgxpool.Pool
	listen  *pgx.ConnConfig // Listen's own connections
	timeout time.Duration
	logger  *slog.Logger

	// closed is done once Close was called; it ends Listen.
	closed context.Context
	close  context.CancelFunc

	// connected is closed, and replaced, each time the pool opens a
	// connection: the database answers, so a Listen waiting to reconnect
	// tries at once.
	connectedMu sync.Mutex
	connected   chan struct{}
}

// poolConnected wakes whoever waits on the current connected channel.
func (s *Store) poolConnected() {
	s.connectedMu.Lock()
	defer s.connectedMu.Unlock()
	close(s.connected)
	s.connected = make(chan struct{})
}

// nextConnect returns a channel closed when the pool next connects.
func (s *Store) nextConnect() <-chan struct{} {
	s.connectedMu.Lock()
	defer s.connectedMu.Unlock()
	return s.connected
}

// Open connects to the PostgreSQL database at url (a postgres:// URL or
// keyword/value string, as pgx takes them), brings its schema up to date
// and returns a Store over it. The pool connects lazily; Open checks the
// server once. See WithSchema and WithTimeout for what the options change.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	cfg, err := parse(url, c)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, cfg, c.logger); err != nil {
		return nil, err
	}
	s := &Store{
		listen:    cfg.pool.ConnConfig.Copy(),
		timeout:   cfg.timeout,
		logger:    c.logger,
		connected: make(chan struct{}),
	}
	cfg.pool.AfterConnect = func(context.Context, *pgx.Conn) error {
		s.poolConnected()
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg.pool)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s.pool = pool
	s.closed, s.close = context.WithCancel(context.Background())
	if err := s.checkDurability(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// checkDurability asks the server whether a commit is on disk when it
// returns, and warns when it is not: the Store contract promises that an
// acknowledged revocation survives a crash.
func (s *Store) checkDurability(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var fsync, syncCommit string
	err := s.pool.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).
		Scan(&fsync, &syncCommit)
	if err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	if fsync == "off" || syncCommit == "off" {
		s.logger.Warn("postgres: the server does not sync commits to disk; an acknowledged revocation may be lost in a crash",
			"fsync", fsync, "synchronous_commit", syncCommit)
	}
	return nil
}

// Close closes the pool's connections, waiting for calls in progress, and
// ends every Listen. It always returns nil; the error is there so that a
// Store is an io.Closer like the other backends.
func (s *Store) Close() error {
	s.close()
	s.pool.Close()
	return nil
}

// Ping reports whether the server can be reached, accepts writes (it is not
// a read-only standby) and has sessiond's tables, for readiness checks.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var standby, tables bool
	err := s.pool.QueryRow(ctx, `SELECT pg_is_in_recovery(), to_regclass('sessions') IS NOT NULL`).Scan(&standby, &tables)
	switch {
	case err != nil:
		return fmt.Errorf("postgres: ping: %w", err)
	case standby:
		return errors.New("postgres: ping: the server is a read-only standby")
	case !tables:
		return errors.New("postgres: ping: no sessions table in the search_path")
	}
	return nil
}

// bound returns ctx with the store's timeout, unless ctx ends sooner.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.timeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// maxAttempts is how often a call whose transaction PostgreSQL aborted to
// break a deadlock is tried. Every call is one transaction, so an aborted
// attempt changed nothing.
const maxAttempts = 3

// run calls fn with ctx bounded by the store's timeout, again when
// PostgreSQL aborted it for a deadlock or a serialisation failure.
func (s *Store) run(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || attempt == maxAttempts || ctx.Err() != nil ||
			!isCode(err, codeDeadlock) && !isCode(err, codeSerialization) {
			return err
		}
	}
}

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation = "23505"
	codeDuplicateSchema = "42P06"
	codeDeadlock        = "40P01"
	codeSerialization   = "40001"
	// Raised by sessiond_expect_generation (migration 00010).
	codeCredentialsChanged = "SD001"
)

func isCode(err error, code string) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && e.Code == code
}
