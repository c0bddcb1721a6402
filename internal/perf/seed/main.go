// Command seed fills a SQLite database file with many live sessions fast,
// for the scale test of scripts/perf.sh (who-am-I at 1,000,000 sessions).
// It runs while no server has the file open:
//
//	go run ./internal/perf/seed --db perf.db --sessions 1000000 --tokens-out tokens.txt
//
// The schema and the users come through the library (sqlite.Open migrates,
// account.Service registers the users with the bench's emails and
// password, so `sessiond-load` finds them). The sessions go in by batched
// INSERTs in large transactions, which is what makes a million take
// seconds instead of the hours one synced transaction each would: their
// ids, tokens and token hashes are made by sessiond.NewID, NewSecret and
// HashToken, exactly as Manager.Create makes them, so the server takes
// them for its own. Every token is written to --tokens-out, one a line.
package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, as package sqlite uses it

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/sqlite"
)

func main() {
	var o options
	flag.StringVar(&o.db, "db", "", "SQLite database file (created and migrated if missing)")
	flag.IntVar(&o.sessions, "sessions", 1_000_000, "sessions to add")
	flag.IntVar(&o.users, "users", 32, "users to own them (created or reused)")
	flag.StringVar(&o.emailFmt, "email-format", "bench-%d@bench.sessiond.example.com", "users' emails, %d the user's number")
	flag.StringVar(&o.password, "password", "bench-sessiond-Passphrase-7q", "users' password")
	flag.StringVar(&o.tokensOut, "tokens-out", "", "write every session's token to this file")
	flag.DurationVar(&o.idle, "idle-timeout", 30*time.Minute, "idle deadline of the sessions, from now")
	flag.DurationVar(&o.absolute, "absolute-timeout", 12*time.Hour, "absolute deadline of the sessions, from now")
	flag.IntVar(&o.batch, "batch", 50_000, "sessions per transaction")
	flag.Parse()
	if o.db == "" || o.sessions < 0 || o.users < 1 || o.batch < 1 {
		flag.Usage()
		os.Exit(2)
	}
	start := time.Now()
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "seed: %d sessions of %d users in %s\n", o.sessions, o.users, time.Since(start).Round(time.Millisecond))
}

type options struct {
	db, emailFmt, password, tokensOut string
	sessions, users, batch            int
	idle, absolute                    time.Duration
}

func run(ctx context.Context, o options) error {
	userIDs, err := ensureUsers(ctx, o)
	if err != nil {
		return err
	}
	var tokens *bufio.Writer
	if o.tokensOut != "" {
		f, err := os.OpenFile(o.tokensOut, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		tokens = bufio.NewWriterSize(f, 1<<20)
	}
	if err := insertSessions(ctx, o, userIDs, tokens); err != nil {
		return err
	}
	if tokens != nil {
		return tokens.Flush()
	}
	return nil
}

// ensureUsers migrates the file and registers the users (argon2id at the
// default cost, as the server would), reusing those that exist.
func ensureUsers(ctx context.Context, o options) ([]string, error) {
	st, err := sqlite.Open(ctx, o.db)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	svc, err := account.NewService(st, account.Config{})
	if err != nil {
		return nil, err
	}
	ids := make([]string, o.users)
	for i := range ids {
		email := fmt.Sprintf(o.emailFmt, i)
		u, err := svc.CreateUser(ctx, email, o.password, nil)
		if errors.Is(err, account.ErrEmailTaken) {
			u, err = st.UserByEmail(ctx, email)
		}
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", email, err)
		}
		ids[i] = u.ID
	}
	return ids, nil
}

// The columns that Manager.Create fills; expires_at is generated.
const insertHead = `INSERT INTO sessions (id, token_hash, user_id, remember_me, created_at, last_seen_at,
	idle_expires_at, absolute_expires_at, user_agent, browser, os, ip) VALUES `

const rowsPerInsert = 500 // 12 parameters a row, well under SQLite's limit

func insertSessions(ctx context.Context, o options, userIDs []string, tokens *bufio.Writer) error {
	abs, err := filepath.Abs(o.db)
	if err != nil {
		return err
	}
	// Bulk loading: no sync per commit (the file is synced once at the
	// end by the checkpoint and close); the server opens it with its own
	// settings afterwards.
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(OFF)")
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "cache_size(-262144)") // 256 MiB of page cache while indexing
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(abs)+"?"+q.Encode())
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	stmt, err := db.PrepareContext(ctx, insertHead+strings.TrimSuffix(strings.Repeat("(?,?,?,0,?,?,?,?,?,?,?,?),", rowsPerInsert), ","))
	if err != nil {
		return err
	}
	defer stmt.Close()

	now := time.Now().UTC().Truncate(time.Microsecond)
	created := now.UnixMicro()
	idleAt := now.Add(o.idle).UnixMicro()
	absAt := now.Add(o.absolute).UnixMicro()
	dev := sessiond.ParseDevice("sessiond-seed/1")
	args := make([]any, 0, rowsPerInsert*11)
	var tx *sql.Tx
	inTx := 0
	flush := func(n int) error {
		if n == rowsPerInsert {
			_, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...)
			return err
		}
		// The last, shorter statement.
		text := insertHead + strings.TrimSuffix(strings.Repeat("(?,?,?,0,?,?,?,?,?,?,?,?),", n), ",")
		_, err := tx.ExecContext(ctx, text, args...)
		return err
	}
	last := time.Now()
	for i := 0; i < o.sessions; {
		if tx == nil {
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				return err
			}
		}
		n := min(rowsPerInsert, o.sessions-i)
		args = args[:0]
		for j := 0; j < n; j++ {
			id, err := sessiond.NewID(nil)
			if err != nil {
				return err
			}
			tok, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
			if err != nil {
				return err
			}
			h := sessiond.HashToken(tok)
			args = append(args, id, h[:], userIDs[(i+j)%len(userIDs)], created, created, idleAt, absAt,
				"sessiond-seed/1", dev.Browser, dev.OS, "127.0.0.1")
			if tokens != nil {
				tokens.WriteString(tok)
				tokens.WriteByte('\n')
			}
		}
		if err := flush(n); err != nil {
			tx.Rollback()
			return err
		}
		i += n
		inTx += n
		if inTx >= o.batch || i == o.sessions {
			if err := tx.Commit(); err != nil {
				return err
			}
			tx, inTx = nil, 0
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "seed: %d of %d sessions\n", i, o.sessions)
		}
	}
	_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}
