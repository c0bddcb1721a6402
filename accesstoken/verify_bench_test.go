package accesstoken_test

import (
	"bytes"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
)

// The cost of telling a refresh token's place in its chain (issue 20,
// forged refresh tokens): a malformed token, a forgery carrying a live
// session id, and the genuine current token. Before tags, a forgery was
// walked MaxChainSteps (10,000) links forward (ForgedWalk); now one HMAC
// refuses it (ForgedTag).

const benchSID = "0123456789abcdef0123456789abcdef"

func benchChain(b *testing.B) (*accesstoken.Chain, string, sessiond.TokenHash, string) {
	b.Helper()
	c, err := accesstoken.NewChain(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	cur, err := c.First(benchSID, nil)
	if err != nil {
		b.Fatal(err)
	}
	other, _ := accesstoken.NewChain(bytes.Repeat([]byte{8}, 32))
	forged, err := other.First(benchSID, nil)
	if err != nil {
		b.Fatal(err)
	}
	return c, cur, sessiond.HashToken(cur), forged
}

func BenchmarkRefreshMalformed(b *testing.B) {
	tok := "sdr_" + string(bytes.Repeat([]byte{'A'}, 70))
	for b.Loop() {
		if _, err := accesstoken.RefreshSessionID(tok); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkRefreshForgedWalk is the cost before tags: the walk.
func BenchmarkRefreshForgedWalk(b *testing.B) {
	c, _, cur, forged := benchChain(b)
	for b.Loop() {
		if _, ok := c.Steps(forged, cur, 10000); ok {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkRefreshForgedTag is the cost now: the two hash compares of the
// current and previous links, then the tag.
func BenchmarkRefreshForgedTag(b *testing.B) {
	c, _, cur, forged := benchChain(b)
	var prev sessiond.TokenHash
	for b.Loop() {
		h := sessiond.HashToken(forged)
		if h.Equal(cur) || h.Equal(prev) || c.Genuine(forged) {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkRefreshGenuine: the current token, and the next one minted.
func BenchmarkRefreshGenuine(b *testing.B) {
	c, tok, cur, _ := benchChain(b)
	for b.Loop() {
		if _, err := accesstoken.RefreshSessionID(tok); err != nil || !sessiond.HashToken(tok).Equal(cur) {
			b.Fatal("refused")
		}
		if _, err := c.Next(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRefreshGenuine(t *testing.T) {
	c, err := accesstoken.NewChain(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.First(benchSID, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if !c.Genuine(tok) {
			t.Fatalf("link %d is not genuine", i)
		}
		if tok, err = c.Next(tok); err != nil {
			t.Fatal(err)
		}
	}
	other, _ := accesstoken.NewChain(bytes.Repeat([]byte{8}, 32))
	forged, _ := other.First(benchSID, nil)
	if c.Genuine(forged) {
		t.Error("a token of another key is genuine")
	}
	typo := "A" // a checksum character changed: malformed
	if tok[len(tok)-1] == 'A' {
		typo = "B"
	}
	for _, bad := range []string{"", "sdr_x", tok[:len(tok)-1] + typo} {
		if c.Genuine(bad) {
			t.Errorf("malformed %q is genuine", bad)
		}
	}
}
