package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sessiond/sessiond"
)

func testNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func testSession(t testing.TB, id, user string, now time.Time) *sessiond.Session {
	t.Helper()
	tok, err := sessiond.NewSecret(nil, sessiond.TokenPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return &sessiond.Session{
		ID: id, TokenHash: sessiond.HashToken(tok), UserID: user,
		CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(2 * time.Hour),
	}
}

// withParams returns the test URL with query parameters added.
func withParams(t testing.TB, kv ...string) string {
	t.Helper()
	u, err := url.Parse(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for i := 0; i < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// settings holds every connection of st's pool at once and returns each
// one's values of the named settings.
func settings(t *testing.T, pool *pgxpool.Pool, n int, names ...string) []map[string]string {
	t.Helper()
	ctx := t.Context()
	var conns []*pgxpool.Conn
	defer func() {
		for _, c := range conns {
			c.Release()
		}
	}()
	var out []map[string]string
	for range n {
		c, err := pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		got := map[string]string{}
		for _, name := range names {
			var v string
			if err := c.QueryRow(ctx, `SELECT current_setting($1)`, name).Scan(&v); err != nil {
				t.Fatal(err)
			}
			got[name] = v
		}
		out = append(out, got)
	}
	return out
}

// TestSettingsOnEveryConnection holds every connection of the pool at once
// and checks that each has the store's settings.
func TestSettingsOnEveryConnection(t *testing.T) {
	schema := testSchema(t)
	st, err := Open(t.Context(), withParams(t, "pool_max_conns", "3"), WithSchema(schema), WithTimeout(4*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want := map[string]string{
		"search_path":                         `"` + schema + `"`,
		"statement_timeout":                   "4s",
		"idle_in_transaction_session_timeout": "4s",
		"default_transaction_isolation":       "read committed",
		"application_name":                    "sessiond",
	}
	var names []string
	for k := range want {
		names = append(names, k)
	}
	for i, got := range settings(t, st.pool, 3, names...) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("conn %d: %s = %q, want %q", i, k, got[k], v)
			}
		}
	}
}

// TestURLSettingsWin: what the URL sets, the store keeps, except the
// isolation level its statements rely on. The URL's statement_timeout is
// the store's timeout too, so the defaulted idle-in-transaction timeout
// follows it.
func TestURLSettingsWin(t *testing.T) {
	schema := testSchema(t)
	st, err := Open(t.Context(), withParams(t,
		"statement_timeout", "1234", "application_name", "app",
		"default_transaction_isolation", "serializable"), WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got := settings(t, st.pool, 1, "statement_timeout", "application_name", "default_transaction_isolation", "idle_in_transaction_session_timeout")[0]
	for k, v := range map[string]string{
		"statement_timeout":                   "1234ms",
		"application_name":                    "app",
		"default_transaction_isolation":       "read committed",
		"idle_in_transaction_session_timeout": "1234ms",
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

// TestParse: the pool gets the default timeouts, the migrations do not
// (their context bounds them); what the URL sets, both keep.
func TestParse(t *testing.T) {
	c, err := newConfig([]Option{WithSchema(`we"ird`), WithTimeout(2 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := parse("postgres://u@h/db?idle_in_transaction_session_timeout=9000&connect_timeout=3", c)
	if err != nil {
		t.Fatal(err)
	}
	pool, mig := cfg.pool.ConnConfig.RuntimeParams, cfg.migrate.RuntimeParams
	for k, v := range map[string]string{
		"statement_timeout": "2000", "idle_in_transaction_session_timeout": "9000",
		"search_path": `"we""ird"`, "default_transaction_isolation": "read committed",
	} {
		if pool[k] != v {
			t.Errorf("pool: %s = %q, want %q", k, pool[k], v)
		}
	}
	if _, ok := mig["statement_timeout"]; ok {
		t.Error("the migrations have the default statement_timeout")
	}
	if mig["idle_in_transaction_session_timeout"] != "9000" || mig["search_path"] != `"we""ird"` {
		t.Errorf("migrations: %v", mig)
	}
	if cfg.pool.ConnConfig.ConnectTimeout != 3*time.Second {
		t.Errorf("connect timeout %v, want the URL's 3s", cfg.pool.ConnConfig.ConnectTimeout)
	}
	cfg, err = parse("postgres://u@h/db", c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.pool.ConnConfig.ConnectTimeout != 2*time.Second {
		t.Errorf("connect timeout %v, want the store's 2s", cfg.pool.ConnConfig.ConnectTimeout)
	}
}

// TestURLTimeout: the URL's statement_timeout is the store's timeout too,
// unless WithTimeout says otherwise; 0 (no statement timeout) leaves the
// default bound.
func TestURLTimeout(t *testing.T) {
	for _, tc := range []struct {
		url  string
		opts []Option
		want time.Duration
	}{
		{"postgres://u@h/db", nil, DefaultTimeout},
		{"postgres://u@h/db?statement_timeout=1500", nil, 1500 * time.Millisecond},
		{"postgres://u@h/db?statement_timeout=2s&connect_timeout=1", nil, 2 * time.Second},
		{"postgres://u@h/db?statement_timeout=0", nil, DefaultTimeout},
		{"postgres://u@h/db?statement_timeout=2s", []Option{WithTimeout(time.Second)}, time.Second},
	} {
		c, err := newConfig(tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := parse(tc.url, c)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.timeout != tc.want {
			t.Errorf("%s: timeout %v, want %v", tc.url, cfg.timeout, tc.want)
		}
		rp := cfg.pool.ConnConfig.RuntimeParams
		if tc.opts == nil && rp["idle_in_transaction_session_timeout"] != strconv.FormatInt(tc.want.Milliseconds(), 10) {
			t.Errorf("%s: idle_in_transaction_session_timeout %q, want the timeout", tc.url, rp["idle_in_transaction_session_timeout"])
		}
		if !strings.Contains(tc.url, "connect_timeout") && cfg.pool.ConnConfig.ConnectTimeout != tc.want {
			t.Errorf("%s: connect timeout %v, want %v", tc.url, cfg.pool.ConnConfig.ConnectTimeout, tc.want)
		}
	}
	st := openTest(t) // no WithTimeout, no statement_timeout in the URL
	if st.timeout != DefaultTimeout {
		t.Errorf("store timeout %v, want %v", st.timeout, DefaultTimeout)
	}
	st2, err := Open(t.Context(), withParams(t, "statement_timeout", "1234ms"), WithSchema(testSchema(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if st2.timeout != 1234*time.Millisecond {
		t.Errorf("store timeout %v, want the URL's 1234ms", st2.timeout)
	}
}

func TestPGDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1500": 1500 * time.Millisecond, "2s": 2 * time.Second, " 2 s ": 2 * time.Second,
		"1.5s": 1500 * time.Millisecond, "250ms": 250 * time.Millisecond, "1min": time.Minute,
		"1h": time.Hour, "1d": 24 * time.Hour, "500us": 500 * time.Microsecond, "0": 0,
	} {
		if got, ok := pgDuration(in); !ok || got != want {
			t.Errorf("pgDuration(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "s", "2 weeks", "-1", "1e400", "x1"} {
		if got, ok := pgDuration(in); ok {
			t.Errorf("pgDuration(%q) = %v, want not ok", in, got)
		}
	}
}

func TestOneSchema(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"sessiond", "sessiond", true},
		{" Sessiond_2$ ", "sessiond_2$", true},
		{`"We""ird, one"`, `We"ird, one`, true},
		{"", "", false},
		{"$user", "", false},
		{`"$user", public`, "", false},
		{"a,b", "", false},
		{"a, b", "", false},
		{`"a","b"`, "", false},
		{`""`, "", false},
		{"2fast", "", false},
	} {
		got, ok := oneSchema(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("oneSchema(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// TestURLSchema: a URL whose search_path names one schema selects it like
// WithSchema does, for the migrations (which create it) and for the pool;
// WithSchema wins over the URL.
func TestURLSchema(t *testing.T) {
	ctx := t.Context()
	schema := testSchema(t)
	st, err := Open(ctx, withParams(t, "search_path", schema))
	if err != nil {
		t.Fatalf("Open with search_path=%s: %v", schema, err)
	}
	defer st.Close()
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, testSession(t, "s1", "u1", testNow()), sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	conn := adminConn(t, schema)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM sessions WHERE id = 's1'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the session in schema %s: %d rows, %v", schema, n, err)
	}
	for _, table := range []string{"sessions", "users", "audit_events", "signing_keys", versionTable} {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, schema+"."+table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s.%s: %v, %v", schema, table, ok, err)
		}
	}

	other := testSchema(t)
	st2, err := Open(ctx, withParams(t, "search_path", schema), WithSchema(other))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if _, err := st2.ByID(ctx, "s1"); !errors.Is(err, sessiond.ErrNotFound) {
		t.Errorf("WithSchema(%s) over the URL's search_path: ByID = %v, want ErrNotFound", other, err)
	}
}

func TestOptions(t *testing.T) {
	if _, err := Open(t.Context(), "postgres://nobody@127.0.0.1:1/x", WithSchema(strings.Repeat("s", 64))); err == nil {
		t.Error("Open with a 64-byte schema name succeeded")
	}
	if _, err := Open(t.Context(), "postgres://x@127.0.0.1:1/x?pool_max_conns=zero"); err == nil {
		t.Error("Open with a bad URL succeeded")
	}
}

// TestQueryPlans checks, on a table of some thousands of sessions, that the
// hot statements search their indexes rather than scan the table.
func TestQueryPlans(t *testing.T) {
	schema := testSchema(t)
	openSchema(t, schema)
	conn := adminConn(t, schema)
	ctx := t.Context()
	if _, err := conn.Exec(ctx, `INSERT INTO sessions (id, token_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at)
		SELECT 's' || i, sha256(('t' || i)::bytea), CASE WHEN i % 3 = 0 THEN NULL ELSE 'u' || (i % 500) END,
			now(), now() - i * interval '1s', now() + i * interval '1s', now() + interval '1 day'
		FROM generate_series(1, 20000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE sessions`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	h := sessiond.HashToken("t1")
	for _, tc := range []struct {
		name, query string
		args        []any
		index       string
	}{
		{"by hash", qByHash, []any{h[:]}, "sessions_token_hash_key"},
		{"by id", qByID, []any{"s1"}, "sessions_pkey"},
		{"list by user", qListByUser, []any{"u7", now}, "sessions_user_last_seen"},
		{"revoke by user", qRevokeUser, []any{now, "r", "u7", ""}, "sessions_user_last_seen"},
		{"evict", qEvict, []any{now, "u7", "s1", 3, "limit"}, "sessions_user_last_seen"},
		{"delete expired", qDeleteExpired, []any{now, 1000}, "sessions_expires_at"},
		{"revoke", qRevoke, []any{now, "r", "s1"}, "sessions_pkey"},
		{"rotate", qRotate, []any{"s1", h[:], h[:], now}, "sessions_pkey"},
	} {
		rows, err := conn.Query(ctx, "EXPLAIN "+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if !strings.Contains(plan, tc.index) || strings.Contains(plan, "Seq Scan on sessions") {
			t.Errorf("%s: want a search of %s, plan:\n%s", tc.name, tc.index, plan)
		}
	}
}

// TestLimitUnderConcurrency: concurrent logins of one user never leave
// more than MaxPerUser sessions active, the new ones included.
func TestLimitUnderConcurrency(t *testing.T) {
	st := openTest(t)
	const max, n = 3, 24
	t0 := testNow()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// All at one time: the order among them is by id.
			if err := st.Create(context.Background(), testSession(t, fmt.Sprintf("s%02d", i), "u1", t0), sessiond.CreateOptions{MaxPerUser: max}); err != nil {
				t.Errorf("Create: %v", err)
			}
		})
	}
	wg.Wait()
	l, err := st.ListByUser(t.Context(), "u1", t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(l) != max {
		t.Fatalf("%d active sessions after %d concurrent logins, limit %d", len(l), n, max)
	}
	var evicted int64
	if err := st.pool.QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE revoke_reason = $1`, sessiond.ReasonLimit).Scan(&evicted); err != nil {
		t.Fatal(err)
	}
	if evicted != n-max {
		t.Fatalf("%d sessions evicted, want %d", evicted, n-max)
	}
}

// TestDataLimitUnderConcurrency: concurrent writes of different keys of one
// session are each held to the size limit with the others counted: of 20
// writes of 20 bytes under a limit of 100, exactly 5 succeed.
func TestDataLimitUnderConcurrency(t *testing.T) {
	st := openTest(t)
	t0 := testNow()
	s := testSession(t, "s1", "", t0)
	if err := st.Create(t.Context(), s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var ok, tooLarge atomic.Int32
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			err := st.SetData(context.Background(), s.ID, fmt.Sprintf("k%02d", i), bytes.Repeat([]byte("x"), 17), 100, t0)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, sessiond.ErrDataTooLarge):
				tooLarge.Add(1)
			default:
				t.Errorf("SetData: %v", err)
			}
		})
	}
	wg.Wait()
	d, err := st.Data(t.Context(), s.ID, t0)
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != 5 || tooLarge.Load() != 15 || sessiond.DataSize(d) != 100 {
		t.Fatalf("%d writes succeeded, %d too large, size %d; want 5, 15, 100", ok.Load(), tooLarge.Load(), sessiond.DataSize(d))
	}
}

// TestDataSizeCountsBytes: the size limit counts bytes of keys, not
// characters.
func TestDataSizeCountsBytes(t *testing.T) {
	st := openTest(t)
	ctx := t.Context()
	now := testNow()
	if err := st.Create(ctx, testSession(t, "s1", "", now), sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	key := "ééé" // 6 bytes, 3 characters
	if err := st.SetData(ctx, "s1", key, []byte("1234"), 10, now); err != nil {
		t.Fatalf("SetData at the limit: %v", err)
	}
	if err := st.SetData(ctx, "s1", "k", nil, 10, now); !errors.Is(err, sessiond.ErrDataTooLarge) {
		t.Fatalf("SetData over the limit = %v, want ErrDataTooLarge", err)
	}
	if err := st.SetData(ctx, "s1", key, []byte("abcd"), 10, now); err != nil {
		t.Fatalf("SetData replacing a value: %v", err)
	}
	data, err := st.Data(ctx, "s1", now)
	if err != nil || string(data[key]) != "abcd" || len(data) != 1 {
		t.Fatalf("Data = %q, %v", data, err)
	}
}

// TestCreateIsAtomic: a Create that fails (its id is taken) changes
// nothing: the session it would have replaced and the sessions it would
// have evicted stay active, and its data is not written.
func TestCreateIsAtomic(t *testing.T) {
	st := openTest(t)
	ctx := t.Context()
	t0 := testNow()
	for _, id := range []string{"a", "b", "old"} {
		if err := st.Create(ctx, testSession(t, id, "u1", t0), sessiond.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dup := testSession(t, "a", "u1", t0) // id taken
	dup.Data = map[string][]byte{"k": []byte("v")}
	err := st.Create(ctx, dup, sessiond.CreateOptions{MaxPerUser: 1, Replace: "old", ReplaceReason: sessiond.ReasonReplaced, CarryData: true})
	if err == nil {
		t.Fatal("Create with a taken id succeeded")
	}
	for _, id := range []string{"a", "b", "old"} {
		if s, err := st.ByID(ctx, id); err != nil || s.Revoked() {
			t.Fatalf("%s after a failed Create: %+v, %v; want active", id, s, err)
		}
	}
	if _, err := st.ByTokenHash(ctx, dup.TokenHash); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("the failed session is there: %v", err)
	}
	// Replacing oneself replaces nothing.
	self := testSession(t, "self", "", t0)
	if err := st.Create(ctx, self, sessiond.CreateOptions{Replace: "self", ReplaceReason: sessiond.ReasonReplaced}); err != nil {
		t.Fatal(err)
	}
	if s, err := st.ByID(ctx, "self"); err != nil || s.Revoked() {
		t.Fatalf("a session that replaces itself: %+v, %v", s, err)
	}
}

// TestTouchOrder: touches of one id within a batch apply in the batch's
// order, as if one by one: a touch that extended the session lets a later
// one through, and a late touch first is skipped.
func TestTouchOrder(t *testing.T) {
	st := openTest(t)
	ctx := t.Context()
	t0 := testNow()
	mk := func(id string) {
		s := testSession(t, id, "", t0)
		s.IdleExpiresAt = t0.Add(30 * time.Minute)
		if err := st.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mk("fwd")
	mk("rev")
	mk("other")
	t1 := sessiond.Touch{LastSeenAt: t0.Add(20 * time.Minute), IdleExpiresAt: t0.Add(50 * time.Minute)}
	t2 := sessiond.Touch{LastSeenAt: t0.Add(40 * time.Minute), IdleExpiresAt: t0.Add(70 * time.Minute)}
	with := func(tc sessiond.Touch, id string) sessiond.Touch { tc.ID = id; return tc }
	err := st.Touch(ctx, []sessiond.Touch{
		with(t1, "fwd"), with(t2, "rev"), with(t1, "other"), with(t2, "fwd"), with(t1, "rev"),
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]sessiond.Touch{"fwd": t2, "rev": t1, "other": t1} {
		s, err := st.ByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !s.LastSeenAt.Equal(want.LastSeenAt) || !s.IdleExpiresAt.Equal(want.IdleExpiresAt) {
			t.Errorf("%s: last seen %v, idle %v; want %v, %v", id, s.LastSeenAt, s.IdleExpiresAt, want.LastSeenAt, want.IdleExpiresAt)
		}
	}
}

// TestSchemasAreIsolated: stores in two schemas of one database do not see
// each other's sessions.
func TestSchemasAreIsolated(t *testing.T) {
	a, b := openTest(t), openTest(t)
	ctx := t.Context()
	s := testSession(t, "s1", "u1", testNow())
	if err := a.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ByID(ctx, "s1"); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("ByID in the other schema = %v, want ErrNotFound", err)
	}
	if err := b.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatalf("the same session in the other schema: %v", err)
	}
}

// TestMigrate: migrating twice, and from several processes at once, is
// harmless, and the schema has every table.
func TestMigrate(t *testing.T) {
	schema := testSchema(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := Migrate(ctx, testURL(t), WithSchema(schema)); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if err := Migrate(ctx, testURL(t), WithSchema(schema)); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	conn := adminConn(t, schema)
	var version int64
	if err := conn.QueryRow(ctx, `SELECT max(version_id) FROM `+versionTable+` WHERE is_applied`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 2 {
		t.Fatalf("schema version %d, want at least 2", version)
	}
	for _, table := range []string{"sessions", "session_data", "users", "reset_tokens"} {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, schema+"."+table).Scan(&ok); err != nil || !ok {
			t.Errorf("table %s: %v, %v", table, ok, err)
		}
	}
	st := openSchema(t, schema)
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDurabilityWarning: Open warns when commits are not synced.
func TestDurabilityWarning(t *testing.T) {
	schema := testSchema(t)
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
	st, err := Open(t.Context(), withParams(t, "synchronous_commit", "off"), WithSchema(schema), WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "synchronous_commit=off") {
		t.Fatalf("no warning about synchronous_commit=off in the log:\n%s", buf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestPing: a store is ready; one whose tables are gone is not.
func TestPing(t *testing.T) {
	schema := testSchema(t)
	st := openSchema(t, schema)
	if err := st.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn := adminConn(t, schema)
	if _, err := conn.Exec(t.Context(), `DROP TABLE session_data, sessions`); err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(t.Context()); err == nil {
		t.Fatal("Ping without tables succeeded")
	}
}

// TestListenWakesOnConnect: a Listen that waits to reconnect after its
// database went away tries again as soon as the store's pool reaches the
// database, not after its backoff, and reports the loss at once.
func TestListenWakesOnConnect(t *testing.T) {
	st := openTest(t)
	var down atomic.Bool
	down.Store(true)
	dialer := &net.Dialer{}
	st.listen.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if down.Load() {
			return nil, errors.New("test: the database is down")
		}
		return dialer.DialContext(ctx, network, addr)
	}
	resets := make(chan time.Time, 1000)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- st.Listen(ctx, func(ids []string) { resets <- time.Now() }) }()
	defer func() { cancel(); <-done }()

	// Failing to subscribe, over and over: fn(nil) each time, and the
	// backoff grows to 800ms and more.
	time.Sleep(3 * time.Second)
	if len(resets) < 3 {
		t.Fatalf("%d calls of fn(nil) in 3s of failed subscriptions, want one per attempt", len(resets))
	}
	for len(resets) > 0 {
		<-resets
	}
	down.Store(false)
	st.pool.Reset() // the next call connects anew
	back := time.Now()
	if err := st.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	// The attempt that failed last may still report; the subscription
	// reports within a moment of the pool's connection.
	deadline := time.After(5 * time.Second)
	for {
		select {
		case at := <-resets:
			if at.Before(back) {
				continue
			}
			if d := at.Sub(back); d > 300*time.Millisecond {
				t.Fatalf("subscribed %v after the pool connected, want at once", d)
			} else {
				t.Logf("subscribed %v after the pool connected", d)
			}
			return
		case err := <-done:
			t.Fatalf("Listen returned %v", err)
		case <-deadline:
			t.Fatal("Listen did not subscribe within 5s of the database's return")
		}
	}
}
