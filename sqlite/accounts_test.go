package sqlite_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/storetest"
)

func TestAccountsConformance(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) account.Store { return openTest(t) })
}

// TestDuplicateUserID: only the email's UNIQUE constraint means
// ErrEmailTaken; a duplicate id (a PRIMARY KEY violation) is a failure.
func TestDuplicateUserID(t *testing.T) {
	st := openTest(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	u := &account.User{ID: "u1", Email: "ada@example.com", PasswordHash: "h", Profile: []byte("{}"),
		CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	dup := *u
	dup.Email = "bob@example.com"
	err := st.CreateUser(ctx, &dup)
	if err == nil || errors.Is(err, account.ErrEmailTaken) {
		t.Fatalf("CreateUser(same id, other email) = %v, want a non-ErrEmailTaken error", err)
	}
}

// TestNoResetTokensOnDisk stores reset tokens as account.Service makes
// them, then reads every byte of the database file and its -wal and -shm
// files, while the store is open and after it closed, and checks that no
// token appears in them: not its text, not its random base64 body, not the
// bytes that body encodes. Only the SHA-256 of the text is stored.
func TestNoResetTokensOnDisk(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sessions.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	const marker = "marker-email-that-must-be-on-disk@example.com"
	var tokens []string
	var live [32]byte
	for i, email := range []string{marker, "bob@example.com"} {
		u := &account.User{ID: "user-" + email, Email: email, PasswordHash: "h", Profile: []byte("{}"),
			CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now}
		if err := st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		// Three each: the first two are replaced; Bob's last one is used.
		for range 3 {
			tok, err := sessiond.NewSecret(nil, account.ResetTokenPrefix)
			if err != nil {
				t.Fatal(err)
			}
			tokens = append(tokens, tok)
			h := sessiond.HashToken(tok)
			if err := st.CreateResetToken(ctx, u.ID, h, now.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				live = h
			}
		}
	}
	last := tokens[len(tokens)-1]
	if _, err := st.ConsumeResetToken(ctx, sessiond.HashToken(last), now); err != nil {
		t.Fatalf("ConsumeResetToken: %v", err)
	}

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
			t.Fatalf("%s: the live reset token's hash is not in the files: reading the wrong files?", when)
		}
		if !bytes.Contains(all, []byte(marker)) {
			t.Fatalf("%s: the user's email is not in the files: reading the wrong files?", when)
		}
		for _, tok := range tokens {
			p := len(account.ResetTokenPrefix)
			body := tok[p : p+base64.RawURLEncoding.EncodedLen(32)]
			raw, err := base64.RawURLEncoding.DecodeString(body)
			if err != nil {
				t.Fatal(err)
			}
			for name, b := range got {
				for _, needle := range [][]byte{[]byte(tok), []byte(body), raw} {
					if bytes.Contains(b, needle) {
						t.Errorf("%s: %s holds a reset token (%q)", when, name, needle)
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

func TestKeysConformance(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) accesstoken.KeyStore { return openTest(t).Keys() })
}
