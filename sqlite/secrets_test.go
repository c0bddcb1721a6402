package sqlite_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sqlite"
)

// TestNoTokensOnDisk creates, rotates, replaces and revokes sessions, then
// reads every byte of the database file and its -wal and -shm files, both
// while the store is open and after it closed, and checks that no token
// appears in them: not its text, not its random base64 body, not the bytes
// that body encodes. Only hashes are stored.
func TestNoTokensOnDisk(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sessions.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := sessiond.NewManager(st, sessiond.Policy{MaxSessionsPerUser: 3})
	if err != nil {
		t.Fatal(err)
	}

	var tokens []string
	create := func(p sessiond.CreateParams) (*sessiond.Session, string) {
		t.Helper()
		s, tok, err := m.Create(ctx, p)
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		tokens = append(tokens, tok)
		return s, tok
	}
	const marker = "marker-value-that-must-be-on-disk"
	for range 5 { // over the limit of 3: some are revoked with ReasonLimit
		create(sessiond.CreateParams{UserID: "u1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0", IP: "192.0.2.1"})
	}
	anon, anonTok := create(sessiond.CreateParams{Data: map[string][]byte{"cart": []byte(marker)}})
	if err := m.SetData(ctx, anon.ID, "flash", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	// Login from the anonymous session: it is replaced, its data carried.
	upgraded, _ := create(sessiond.CreateParams{UserID: "u2", Replace: anonTok})
	if err := m.SetData(ctx, upgraded.ID, "csrf", []byte("not-a-session-token")); err != nil {
		t.Fatal(err)
	}
	// Rotate one, twice.
	_, tok := create(sessiond.CreateParams{UserID: "u3", RememberMe: true})
	for range 2 {
		_, next, err := m.Rotate(ctx, tok)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		tokens = append(tokens, next)
		tok = next
	}
	// Log one out.
	_, out := create(sessiond.CreateParams{UserID: "u4"})
	if _, err := m.RevokeToken(ctx, out, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	live := sessiond.HashToken(tok)

	files := func() map[string][]byte {
		got := map[string][]byte{}
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			b, err := os.ReadFile(path + suffix)
			if os.IsNotExist(err) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			got[filepath.Base(path+suffix)] = b
		}
		return got
	}
	check := func(when string, got map[string][]byte) {
		t.Helper()
		var all []byte
		for name, b := range got {
			t.Logf("%s: %s is %d bytes", when, name, len(b))
			all = append(all, b...)
		}
		// The check must be able to fail: what is stored is there.
		if !bytes.Contains(all, live[:]) {
			t.Fatalf("%s: the live session's token hash is not in the files: reading the wrong files?", when)
		}
		if !bytes.Contains(all, []byte(marker)) {
			t.Fatalf("%s: the session data is not in the files: reading the wrong files?", when)
		}
		for _, tok := range tokens {
			body := tok[len(sessiond.TokenPrefix) : len(sessiond.TokenPrefix)+base64.RawURLEncoding.EncodedLen(32)]
			raw, err := base64.RawURLEncoding.DecodeString(body)
			if err != nil {
				t.Fatal(err)
			}
			for name, b := range got {
				for _, needle := range [][]byte{[]byte(tok), []byte(body), raw} {
					if bytes.Contains(b, needle) {
						t.Errorf("%s: %s holds a token (%q)", when, name, needle)
					}
				}
			}
		}
	}
	check("open", files())
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed", files())
}
