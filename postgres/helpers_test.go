package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	neturl "net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultTestURL is the server the tests use unless
// SESSIOND_TEST_POSTGRES_URL names another.
const defaultTestURL = "postgres://root@127.0.0.1:5432/test?sslmode=disable"

var (
	serverOnce sync.Once
	serverErr  error
)

// testURL returns the URL of the test server. When the server cannot be
// reached, it skips t, or fails it when SESSIOND_REQUIRE_BACKENDS=1 (CI).
func testURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("SESSIOND_TEST_POSTGRES_URL")
	if url == "" {
		url = defaultTestURL
	}
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		serverErr = err
	})
	if serverErr != nil {
		if os.Getenv("SESSIOND_REQUIRE_BACKENDS") == "1" {
			t.Fatalf("PostgreSQL at %s: %v (SESSIOND_REQUIRE_BACKENDS=1)", redacted(url), serverErr)
		}
		t.Skipf("PostgreSQL at %s not reachable: %v", redacted(url), serverErr)
	}
	return url
}

// redacted is the URL u without its password, for messages.
func redacted(u string) string {
	p, err := neturl.Parse(u)
	if err != nil {
		return "(the test URL)"
	}
	return p.Redacted()
}

// testSchema returns the name of a schema of t's own, which does not exist
// yet, and drops it with everything in it when t ends.
func testSchema(t testing.TB) string {
	t.Helper()
	url := testURL(t)
	var b [6]byte
	rand.Read(b[:])
	name := "sessiond_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{name}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return name
}

// openTest opens a store in a fresh schema and closes it when t ends.
func openTest(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return openSchema(t, testSchema(t), opts...)
}

// openSchema opens a store in schema, which t's cleanup drops, and closes
// the store when t ends (before the schema is dropped).
func openSchema(t testing.TB, schema string, opts ...Option) *Store {
	t.Helper()
	st, err := Open(t.Context(), testURL(t), append([]Option{WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// adminConn returns a connection to the test server with search_path set
// to schema, closed when t ends.
func adminConn(t testing.TB, schema string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(testURL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}
