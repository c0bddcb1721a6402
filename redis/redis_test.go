package redis_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/storetest"
)

// The servers the tests use. SESSIOND_REQUIRE_BACKENDS=1 turns "skip when
// unreachable" into a failure, for CI.
const (
	envURL      = "SESSIOND_TEST_REDIS_URL"
	defaultURL  = "redis://127.0.0.1:6379/0"
	envCluster  = "SESSIOND_TEST_REDIS_CLUSTER"
	envRequired = "SESSIOND_REQUIRE_BACKENDS"
)

func required() bool { return os.Getenv(envRequired) == "1" }

// probes remembers, per URL, whether a server answered, so that a missing
// server costs one timeout, not one per subtest.
var probes sync.Map // url → func() error

func probe(url string) error {
	f, _ := probes.LoadOrStore(url, sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		st, err := redis.Open(ctx, url)
		if err != nil {
			return err
		}
		defer st.Close()
		return st.Ping(ctx)
	}))
	return f.(func() error)()
}

// serverURL returns the single-node server's URL, skipping the test (or
// failing it, under SESSIOND_REQUIRE_BACKENDS=1) when it does not answer.
func serverURL(tb testing.TB) string {
	tb.Helper()
	url := cmp.Or(os.Getenv(envURL), defaultURL)
	reachable(tb, url)
	return url
}

// clusterURL returns the cluster's URL from SESSIOND_TEST_REDIS_CLUSTER
// (scripts/redis-cluster.sh start prints it).
func clusterURL(tb testing.TB) string {
	tb.Helper()
	url := os.Getenv(envCluster)
	if url == "" {
		msg := envCluster + " is not set; start a cluster with scripts/redis-cluster.sh start"
		if required() {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	reachable(tb, url)
	return url
}

func reachable(tb testing.TB, url string) {
	tb.Helper()
	if err := probe(url); err != nil {
		if required() {
			tb.Fatalf("Redis at %s: %v", url, err)
		}
		tb.Skipf("Redis at %s unreachable (set %s=1 to fail instead): %v", url, envRequired, err)
	}
}

// newPrefix returns a key prefix of its own for one test and deletes every
// key under it when the test ends.
func newPrefix(tb testing.TB, url string) string {
	tb.Helper()
	var b [6]byte
	rand.Read(b[:])
	prefix := "sessiondtest:" + hex.EncodeToString(b[:]) + ":"
	tb.Cleanup(func() {
		if err := deleteKeys(url, prefix); err != nil {
			tb.Errorf("cleaning up %s*: %v", prefix, err)
		}
	})
	return prefix
}

// deleteKeys deletes every key under prefix on every node (SCAN MATCH).
func deleteKeys(url, prefix string) error {
	o, err := rueidis.ParseURL(url)
	if err != nil {
		return err
	}
	o.DisableCache = true
	c, err := rueidis.NewClient(o)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, n := range c.Nodes() {
		var cursor uint64
		for {
			e, err := n.Do(ctx, n.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
			if err != nil {
				return err
			}
			// One key per DEL: in a cluster, keys of a node span slots.
			cmds := make(rueidis.Commands, 0, len(e.Elements))
			for _, k := range e.Elements {
				cmds = append(cmds, n.B().Del().Key(k).Build())
			}
			for _, r := range n.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil {
					return err
				}
			}
			if cursor = e.Cursor; cursor == 0 {
				break
			}
		}
	}
	return nil
}

// openStore opens a store on url under prefix and closes it when the test
// ends.
func openStore(tb testing.TB, url, prefix string, opts ...redis.Option) *redis.Store {
	tb.Helper()
	st, err := redis.Open(context.Background(), url, append([]redis.Option{redis.WithPrefix(prefix)}, opts...)...)
	if err != nil {
		tb.Fatalf("Open(%s): %v", url, err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// newStore returns a constructor of fresh, empty stores on url.
func newStore(url string, opts ...redis.Option) storetest.NewStore {
	return func(t *testing.T) sessiond.Store {
		return openStore(t, url, newPrefix(t, url), opts...)
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, newStore(serverURL(t)))
}

// TestConformanceNoCache runs the suite with the client-side cache off:
// every lookup is a round trip.
func TestConformanceNoCache(t *testing.T) {
	storetest.Run(t, newStore(serverURL(t), redis.WithCacheTTL(0)))
}

// TestClusterConformance runs the suite on a three-node Redis Cluster:
// scripts/redis-cluster.sh starts one and prints its URL.
func TestClusterConformance(t *testing.T) {
	url := clusterURL(t)
	st := openStore(t, url, newPrefix(t, url))
	if m := redis.Mode(st); m != "cluster" {
		t.Fatalf("%s: client mode %q, want cluster", envCluster, m)
	}
	storetest.Run(t, newStore(url))
	t.Run("OddIDs", func(t *testing.T) { testOddIDs(t, openStore(t, url, newPrefix(t, url))) })
}

func newSession(t *testing.T, id, user string, now time.Time) *sessiond.Session {
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

func newHash(t *testing.T) sessiond.TokenHash {
	t.Helper()
	return newSession(t, "x", "", time.Now()).TokenHash
}

func TestOddIDs(t *testing.T) {
	url := serverURL(t)
	testOddIDs(t, openStore(t, url, newPrefix(t, url)))
}

// testOddIDs: ids and user ids with the characters that matter to Redis
// keys (hash-tag braces, the ':' separator, the '%' escape) work for every
// method, and on a cluster never make a command span two slots.
func testOddIDs(t *testing.T, st *redis.Store) {
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	user := "u}{:%7B"
	a := newSession(t, "a{b}:c%d", user, now)
	b := newSession(t, "{", user, now)
	anon := newSession(t, "}:x{", "", now)
	for _, s := range []*sessiond.Session{a, b, anon} {
		if err := st.Create(ctx, s, sessiond.CreateOptions{MaxPerUser: 5}); err != nil {
			t.Fatalf("Create(%q): %v", s.ID, err)
		}
		if got, err := st.ByID(ctx, s.ID); err != nil || got.ID != s.ID || got.UserID != s.UserID {
			t.Fatalf("ByID(%q) = %+v, %v", s.ID, got, err)
		}
		if got, err := st.ByTokenHash(ctx, s.TokenHash); err != nil || got.ID != s.ID {
			t.Fatalf("ByTokenHash(%q) = %+v, %v", s.ID, got, err)
		}
	}
	if err := st.SetData(ctx, anon.ID, "k:{}", []byte("v"), 100, now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Minute)
	if err := st.Touch(ctx, []sessiond.Touch{
		{ID: a.ID, LastSeenAt: later, IdleExpiresAt: later.Add(time.Hour)},
		{ID: anon.ID, LastSeenAt: later, IdleExpiresAt: later.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	l, err := st.ListByUser(ctx, user, later)
	if err != nil || len(l) != 2 || l[0].ID != a.ID || l[1].ID != b.ID {
		t.Fatalf("ListByUser = %v, %v; want [%s %s]", l, err, a.ID, b.ID)
	}
	// Upgrade the anonymous session: a Replace across slots with its data.
	c := newSession(t, "c", user, later)
	if err := st.Create(ctx, c, sessiond.CreateOptions{Replace: anon.ID, ReplaceReason: sessiond.ReasonReplaced, CarryData: true}); err != nil {
		t.Fatal(err)
	}
	if d, err := st.Data(ctx, c.ID, later); err != nil || string(d["k:{}"]) != "v" {
		t.Fatalf("carried data = %q, %v", d, err)
	}
	nh := newHash(t)
	if err := st.Rotate(ctx, a.ID, a.TokenHash, nh, later); err != nil {
		t.Fatal(err)
	}
	if got, err := st.ByTokenHash(ctx, nh); err != nil || got.ID != a.ID {
		t.Fatalf("ByTokenHash(rotated) = %+v, %v", got, err)
	}
	if n, err := st.RevokeByUser(ctx, user, c.ID, later, sessiond.ReasonLogoutAll); err != nil || n != 2 {
		t.Fatalf("RevokeByUser = %d, %v; want 2", n, err)
	}
	if err := st.Revoke(ctx, c.ID, later, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	n, err := st.DeleteExpired(ctx, now.Add(3*time.Hour), 100)
	if err != nil || n != 4 {
		t.Fatalf("DeleteExpired = %d, %v; want 4", n, err)
	}
	for _, s := range []*sessiond.Session{a, b, anon, c} {
		if _, err := st.ByID(ctx, s.ID); !errors.Is(err, sessiond.ErrNotFound) {
			t.Errorf("ByID(%q) after the sweep = %v", s.ID, err)
		}
	}
}

// TestURLPrefix: the URL's prefix parameter puts the keys under it, and
// WithPrefix wins over it.
func TestURLPrefix(t *testing.T) {
	url := serverURL(t)
	prefix, other := newPrefix(t, url), newPrefix(t, url)
	withPrefix := func(p string) string {
		u, err := neturl.Parse(url)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("prefix", p)
		u.RawQuery = q.Encode()
		return u.String()
	}
	ctx := t.Context()
	st, err := redis.Open(ctx, withPrefix(prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := newSession(t, "s1", "u1", time.Now().UTC().Truncate(time.Microsecond))
	if err := st.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := openStore(t, url, prefix).ByID(ctx, s.ID); err != nil || got.ID != s.ID {
		t.Fatalf("ByID under %q = %+v, %v; want the session created with ?prefix=", prefix, got, err)
	}
	if _, err := openStore(t, url, redis.DefaultPrefix).ByID(ctx, s.ID); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("ByID under the default prefix = %v, want ErrNotFound", err)
	}
	over, err := redis.Open(ctx, withPrefix(prefix), redis.WithPrefix(other))
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if _, err := over.ByID(ctx, s.ID); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("ByID with WithPrefix over the URL's = %v, want ErrNotFound", err)
	}
	if _, err := redis.Open(ctx, withPrefix("a{b}:")); err == nil {
		t.Fatal("Open with a brace in the URL's prefix succeeded")
	}
}

// TestInvalidationAcrossStores: two Stores, as two processes would have,
// each with its own client and client-side cache. A change made through one
// is seen by the other at once, long before its cache TTL, because Redis
// invalidates the other's cached keys.
func TestInvalidationAcrossStores(t *testing.T) {
	url := serverURL(t)
	prefix := newPrefix(t, url)
	a := openStore(t, url, prefix)
	b := openStore(t, url, prefix, redis.WithCacheTTL(time.Hour))
	var mu sync.Mutex
	var hits int
	redis.SetCacheHook(b, func(hit bool) {
		if hit {
			mu.Lock()
			hits++
			mu.Unlock()
		}
	})
	hitCount := func() int { mu.Lock(); defer mu.Unlock(); return hits }

	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := newSession(t, "s1", "u1", now)
	if err := a.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := b.ByTokenHash(ctx, s.TokenHash); err != nil {
			t.Fatal(err)
		}
		if _, err := b.ByID(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if hitCount() < 3 {
		t.Fatalf("%d cache hits on b after reading twice, want the second reads from memory", hitCount())
	}

	// Rotation through a: b refuses the old hash and finds the new one.
	nh := newHash(t)
	if err := a.Rotate(ctx, s.ID, s.TokenHash, nh, now); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b refuses the rotated-out hash", func() bool {
		_, err := b.ByTokenHash(ctx, s.TokenHash)
		return errors.Is(err, sessiond.ErrNotFound)
	})
	if got, err := b.ByTokenHash(ctx, nh); err != nil || got.ID != s.ID {
		t.Fatalf("b.ByTokenHash(new) = %+v, %v", got, err)
	}
	if _, err := b.ByTokenHash(ctx, nh); err != nil { // cached again
		t.Fatal(err)
	}

	// Revocation through a: b sees the session revoked.
	if err := a.Revoke(ctx, s.ID, now, sessiond.ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b sees the revocation", func() bool {
		got, err := b.ByTokenHash(ctx, nh)
		return err == nil && got.Revoked() && got.RevokeReason == sessiond.ReasonAdmin
	})
	if got, err := b.ByID(ctx, s.ID); err != nil || !got.Revoked() {
		t.Fatalf("b.ByID after a.Revoke = %+v, %v; want revoked", got, err)
	}

	// Data written through a is read through b.
	s2 := newSession(t, "s2", "", now)
	if err := a.Create(ctx, s2, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2"} {
		if _, err := b.Data(ctx, s2.ID, now); err != nil {
			t.Fatal(err)
		}
		if err := a.SetData(ctx, s2.ID, "k", []byte(v), 100, now); err != nil {
			t.Fatal(err)
		}
		eventually(t, "b reads the data a wrote", func() bool {
			d, err := b.Data(ctx, s2.ID, now)
			return err == nil && string(d["k"]) == v
		})
	}
}

// eventually waits for cond, which must hold long before any cache TTL of
// the test: an invalidation travels on its own connection, so it may land
// a moment after the writer has its reply. It logs how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for tries := 1; ; tries++ {
		if cond() {
			t.Logf("%s: after %v (%d reads)", what, time.Since(start), tries)
			return
		}
		if time.Since(start) > 500*time.Millisecond {
			t.Fatalf("%s: still not after %v", what, time.Since(start))
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestExpiryFollowsDeadlines: every key of a session expires, on Redis's
// clock, at the session's earlier deadline, revoked or not; Touch moves it
// forward.
func TestExpiryFollowsDeadlines(t *testing.T) {
	url := serverURL(t)
	prefix := newPrefix(t, url)
	st := openStore(t, url, prefix)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := newSession(t, "s1", "u1", now)
	s.IdleExpiresAt = now.Add(30*time.Minute + 1500*time.Microsecond) // rounds up to the next ms
	s.Data = map[string][]byte{"a": []byte("1")}
	if err := st.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, url)
	keys := []string{prefix + "s:{u1}:s1", prefix + "d:{u1}:s1", prefix + "u:{u1}", prefix + "i:{s1}",
		prefix + "t:{" + hex.EncodeToString(s.TokenHash[:]) + "}"}
	check := func(deadline time.Time) {
		t.Helper()
		want := (deadline.UnixMicro() + 999) / 1000
		for _, k := range keys {
			got, err := raw.Do(ctx, raw.B().Pexpiretime().Key(k).Build()).AsInt64()
			if err != nil || got != want {
				t.Errorf("PEXPIRETIME %s = %d, %v; want %d", strings.TrimPrefix(k, prefix), got, err, want)
			}
		}
	}
	check(s.IdleExpiresAt)
	later := now.Add(10 * time.Minute)
	if err := st.Touch(ctx, []sessiond.Touch{{ID: s.ID, LastSeenAt: later, IdleExpiresAt: later.Add(30 * time.Minute)}}); err != nil {
		t.Fatal(err)
	}
	check(later.Add(30 * time.Minute))
	if err := st.Revoke(ctx, s.ID, later, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	// A revoked session leaves the user's index; the rest stays until the
	// session expires.
	keys = slices.Delete(keys, 2, 3)
	check(later.Add(30 * time.Minute))
}

func rawClient(t *testing.T, url string) rueidis.Client {
	t.Helper()
	o, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.DisableCache = true
	c, err := rueidis.NewClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	if _, err := redis.Open(ctx, "redis://127.0.0.1:1", redis.WithPrefix("a{b")); err == nil || !strings.Contains(err.Error(), "brace") {
		t.Errorf("Open with a brace in the prefix = %v", err)
	}
	if _, err := redis.Open(ctx, "http://127.0.0.1:6379"); err == nil {
		t.Error("Open(http://) succeeded")
	}
	_, err := redis.Open(ctx, "redis://user:s3cret@127.0.0.1:6379/%zz")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Open(bad URL with a password) = %v; want an error without the password", err)
	}
}

// TestReadYourWrites: through one Store, a read right after a write sees
// it, though the key was in the client-side cache and its invalidation
// may still be on its way.
func TestReadYourWrites(t *testing.T) {
	url := serverURL(t)
	st := openStore(t, url, newPrefix(t, url), redis.WithCacheTTL(time.Hour))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				s := newSession(t, fmt.Sprintf("w%d-%d", w, i), fmt.Sprintf("u%d", w), now)
				if err := st.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
					t.Error(err)
					return
				}
				for range 2 { // the second read is served from memory
					if _, err := st.ByTokenHash(ctx, s.TokenHash); err != nil {
						t.Error(err)
						return
					}
					if _, err := st.Data(ctx, s.ID, now); err != nil {
						t.Error(err)
						return
					}
				}
				nh := newHash(t)
				if err := st.Rotate(ctx, s.ID, s.TokenHash, nh, now); err != nil {
					t.Error(err)
					return
				}
				if _, err := st.ByTokenHash(ctx, s.TokenHash); !errors.Is(err, sessiond.ErrNotFound) {
					t.Errorf("ByTokenHash(old) right after Rotate = %v", err)
				}
				if err := st.SetData(ctx, s.ID, "k", []byte("v"), 100, now); err != nil {
					t.Error(err)
				}
				if d, err := st.Data(ctx, s.ID, now); err != nil || string(d["k"]) != "v" {
					t.Errorf("Data right after SetData = %q, %v", d, err)
				}
				if err := st.Revoke(ctx, s.ID, now, sessiond.ReasonLogout); err != nil {
					t.Error(err)
				}
				if got, err := st.ByTokenHash(ctx, nh); err != nil || !got.Revoked() {
					t.Errorf("ByTokenHash right after Revoke = %+v, %v; want revoked", got, err)
				}
			}
		})
	}
	wg.Wait()
}
