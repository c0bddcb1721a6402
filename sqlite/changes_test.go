package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sqlite"
)

// TestListenAcrossProcesses: two Stores on one file stand for two
// processes (a server and the CLI). A revocation through one reaches the
// other's cached Manager through Listen, well within its cache MaxAge.
func TestListenAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	ctx := t.Context()
	server, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	cli, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	m, _ := sessiond.NewManager(server, sessiond.Policy{}, sessiond.WithCache(sessiond.CacheConfig{MaxAge: time.Hour}))
	cm, _ := sessiond.NewManager(cli, sessiond.Policy{})
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = server.Listen(lctx, m.Invalidate) })
	defer func() { cancel(); wg.Wait() }()

	s, tok, err := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	s2, tok2, _ := m.Create(ctx, sessiond.CreateParams{UserID: "u1"})
	for _, tk := range []string{tok, tok2} {
		if _, err := m.Validate(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := cm.Revoke(ctx, s.ID, sessiond.ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := cm.RevokeUser(ctx, "u1", s.ID, sessiond.ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	for _, tk := range []string{tok, tok2} {
		for {
			_, err := m.Validate(ctx, tk)
			if errors.Is(err, sessiond.ErrRevoked) {
				break
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("revocation by another process not seen after %v (err %v)", time.Since(start), err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Logf("revocations by another process seen after %v", time.Since(start))
	_ = s2
}
