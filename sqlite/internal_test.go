package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

func openInternal(t *testing.T, name string) *Store {
	t.Helper()
	st, err := Open(t.Context(), filepath.Join(t.TempDir(), name), WithReadConns(3))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestPragmasOnEveryConnection holds every connection of both pools at once
// and checks that each has the pragmas of the DSN.
func TestPragmasOnEveryConnection(t *testing.T) {
	st := openInternal(t, "sessions.db")
	ctx := t.Context()
	check := func(pool string, db *sql.DB, n int, want map[string]string) {
		t.Helper()
		var conns []*sql.Conn
		for range n {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			for pragma, v := range want {
				var got string
				if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
					t.Fatalf("%s conn %d: PRAGMA %s: %v", pool, i, pragma, err)
				}
				if !strings.EqualFold(got, v) {
					t.Errorf("%s conn %d: PRAGMA %s = %s, want %s", pool, i, pragma, got, v)
				}
			}
		}
		for _, c := range conns {
			c.Close()
		}
	}
	common := map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": "5000",
	}
	write := map[string]string{"query_only": "0"}
	read := map[string]string{"query_only": "1"}
	for k, v := range common {
		write[k], read[k] = v, v
	}
	check("write", st.w, 1, write)
	check("read", st.r, 3, read)

	// The write pool begins IMMEDIATE transactions: one holds the write
	// lock before it reads, so a read-only connection cannot write.
	if _, err := st.r.ExecContext(ctx, `DELETE FROM sessions`); err == nil {
		t.Error("a write through the read pool succeeded")
	}
}

// TestQueryPlans checks that the hot queries use their indexes rather than
// scan the table.
func TestQueryPlans(t *testing.T) {
	st := openInternal(t, "sessions.db")
	for _, tc := range []struct {
		query string
		index string
	}{
		{readStmts[0].query, "sqlite_autoindex_sessions_2"}, // token_hash UNIQUE
		{readStmts[1].query, "sqlite_autoindex_sessions_1"}, // id PRIMARY KEY
		{readStmts[2].query, "sessions_user_last_seen"},
		{writeStmtQuery(t, func(s *Store) **sql.Stmt { return &s.revokeUser }), "sessions_user_last_seen"},
		{writeStmtQuery(t, func(s *Store) **sql.Stmt { return &s.deleteExpired }), "sessions_expires_at"},
	} {
		rows, err := st.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, "x", int64(1), int64(1), "x")
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, tc.index) || strings.Contains(p, "SCAN sessions") {
			t.Errorf("query %s\nplan %s\nwant a search of %s", tc.query, p, tc.index)
		}
	}
}

func writeStmtQuery(t *testing.T, dst func(*Store) **sql.Stmt) string {
	var s Store
	for _, p := range writeStmts {
		if p.dst(&s) == dst(&s) {
			return p.query
		}
	}
	t.Fatal("no such statement")
	return ""
}

// TestOddPaths opens files whose names hold the characters of a URI.
func TestOddPaths(t *testing.T) {
	for _, name := range []string{"a?b.db", "a#b.db", "a%20b.db", "a b&c=d.db"} {
		st := openInternal(t, name)
		if err := st.Ping(t.Context()); err != nil {
			t.Errorf("%s: Ping: %v", name, err)
		}
		matches, _ := filepath.Glob(filepath.Join(filepath.Dir(st.path), "*"))
		found := false
		for _, m := range matches {
			found = found || filepath.Base(m) == name
		}
		if !found {
			t.Errorf("%s: file not created under its name; have %v", name, matches)
		}
	}
	for _, bad := range []string{"", ":memory:", "file:x.db"} {
		if _, err := Open(context.Background(), bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}
