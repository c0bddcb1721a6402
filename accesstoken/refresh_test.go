package accesstoken_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
)

func TestRefreshChain(t *testing.T) {
	c, err := accesstoken.NewChain(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := sessiond.NewID(nil)
	r0, err := c.First(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := accesstoken.RefreshSessionID(r0); err != nil || got != id {
		t.Fatalf("RefreshSessionID = %q, %v; want %q", got, err, id)
	}
	r1, _ := c.Next(r0)
	r2, _ := c.Next(r1)
	if r1 == r0 || r2 == r1 {
		t.Fatal("the chain does not move")
	}
	if again, _ := c.Next(r0); again != r1 {
		t.Fatal("derivation is not deterministic: the grace window could not hand out the same token twice")
	}
	if n, ok := c.Steps(r0, sessiond.HashToken(r2), 10); !ok || n != 2 {
		t.Fatalf("Steps(r0 → r2) = %d, %v; want 2", n, ok)
	}
	if n, ok := c.Steps(r2, sessiond.HashToken(r2), 10); !ok || n != 0 {
		t.Fatalf("Steps(current) = %d, %v", n, ok)
	}
	if _, ok := c.Steps(r2, sessiond.HashToken(r0), 10); ok {
		t.Fatal("a later token derived backwards")
	}
	if _, ok := c.Steps(r0, sessiond.HashToken(r2), 1); ok {
		t.Fatal("Steps ignored its bound")
	}
	// A forged token with the right session id is no link of the chain.
	forged, _ := c.First(id, nil)
	if _, ok := c.Steps(forged, sessiond.HashToken(r2), 100); ok {
		t.Fatal("a forged token looks like an earlier link")
	}
	// Another server key gives another chain.
	c2, _ := accesstoken.NewChain(bytes.Repeat([]byte{8}, 32))
	if other, _ := c2.Next(r0); other == r1 {
		t.Fatal("the chain does not depend on the server key")
	}
	for _, bad := range []string{"", r0[:len(r0)-1], r0 + "A", "sdt_" + r0[4:], r0[:10] + "!" + r0[11:]} {
		if _, err := accesstoken.RefreshSessionID(bad); !errors.Is(err, accesstoken.ErrMalformedRefresh) {
			t.Errorf("RefreshSessionID(%q) = %v", bad, err)
		}
	}
	if _, err := accesstoken.NewChain(make([]byte, 16)); err == nil {
		t.Fatal("a 16-byte chain key was accepted")
	}
}
