package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/storetest"
)

// TestConformanceCached runs the suite with the Manager's cache of
// validated sessions over the Redis store, as sessiond serve runs it.
func TestConformanceCached(t *testing.T) {
	storetest.RunCached(t, newStore(serverURL(t)))
}

// TestCachedManagersAcrossNodes runs two nodes, each a Store and a Manager
// with the cache of validated sessions fed by the Store's Listen, and
// checks that a change on one node reaches the other's cache within
// 100ms: revocation, rotation, revocation of a session the watching node
// wrote itself a moment before (its read is not tracked by Redis), and
// that the feed keeps working for ids that need escaping.
func TestCachedManagersAcrossNodes(t *testing.T) {
	url := serverURL(t)
	prefix := newPrefix(t, url)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	node := func() (*redis.Store, *sessiond.Manager) {
		st := openStore(t, url, prefix)
		m, err := sessiond.NewManager(st, sessiond.Policy{}, sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour}))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- st.Listen(ctx, m.Invalidate) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Listen returned %v, want context.Canceled", err)
			}
		})
		return st, m
	}
	_, a := node()
	_, b := node()

	// within waits up to 100ms for a.Validate(tok) to fail with want.
	within := func(t *testing.T, what, tok string, want error) {
		t.Helper()
		deadline := time.Now().Add(100 * time.Millisecond)
		for {
			_, err := a.Validate(ctx, tok)
			if errors.Is(err, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: node a still answers %v after 100ms, want %v", what, err, want)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	// warm validates on a until its answer comes from its cache: twice,
	// after the moment in which a store reads its own writes from the
	// server (see redis doc.go).
	warm := func(t *testing.T, tok string) {
		t.Helper()
		time.Sleep(1100 * time.Millisecond)
		for range 2 {
			if _, err := a.Validate(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, user := range []string{"u-plain", "u:odd{id}%25"} {
		t.Run(user, func(t *testing.T) {
			// Revocation on b.
			s, tok, err := b.Create(ctx, sessiond.CreateParams{UserID: user})
			if err != nil {
				t.Fatal(err)
			}
			warm(t, tok)
			if err := b.Revoke(ctx, s.ID, sessiond.ReasonRevoked); err != nil {
				t.Fatal(err)
			}
			within(t, "revoked on b", tok, sessiond.ErrRevoked)

			// Rotation on b: the old token dies on a.
			s, tok, err = b.Create(ctx, sessiond.CreateParams{UserID: user})
			if err != nil {
				t.Fatal(err)
			}
			warm(t, tok)
			_, newTok, err := b.Rotate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			within(t, "rotated on b", tok, sessiond.ErrNotFound)
			if _, err := a.Validate(ctx, newTok); err != nil {
				t.Fatalf("the rotated token on a: %v", err)
			}

			// A session a rotated itself: its reads on a in the next
			// moment come from the server, untracked, and must not sit in
			// a's cache.
			_, tok, err = a.Create(ctx, sessiond.CreateParams{UserID: user})
			if err != nil {
				t.Fatal(err)
			}
			warm(t, tok)
			s, tok, err = a.Rotate(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := a.Validate(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Revoke(ctx, s.ID, sessiond.ReasonRevoked); err != nil {
				t.Fatal(err)
			}
			within(t, "rotated on a, revoked on b", tok, sessiond.ErrRevoked)
		})
	}
}
