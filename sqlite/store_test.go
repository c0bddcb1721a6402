package sqlite_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sqlite"
)

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

// TestDataSizeCountsBytes: the size limit counts bytes of keys, not
// characters. The Manager only lets ASCII keys through, but the Store
// contract is about len(key).
func TestDataSizeCountsBytes(t *testing.T) {
	st := openTest(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := st.Create(ctx, newSession(t, "s1", "", now), sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	key := "ééé" // 6 bytes, 3 characters
	if err := st.SetData(ctx, "s1", key, []byte("1234"), 10, now); err != nil {
		t.Fatalf("SetData at the limit: %v", err)
	}
	if err := st.SetData(ctx, "s1", "k", nil, 10, now); !errors.Is(err, sessiond.ErrDataTooLarge) {
		t.Fatalf("SetData over the limit = %v, want ErrDataTooLarge", err)
	}
	// Replacing a key's value counts the new value, not both.
	if err := st.SetData(ctx, "s1", key, []byte("abcd"), 10, now); err != nil {
		t.Fatalf("SetData replacing a value: %v", err)
	}
	data, err := st.Data(ctx, "s1", now)
	if err != nil || string(data[key]) != "abcd" || len(data) != 1 {
		t.Fatalf("Data = %q, %v", data, err)
	}
}

// TestTwoHandles: two Stores on one file, as two processes would have,
// see each other's writes at once.
func TestTwoHandles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sessions.db")
	a, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	s := newSession(t, "s1", "u1", now)
	if err := a.Create(ctx, s, sessiond.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ByTokenHash(ctx, s.TokenHash); err != nil {
		t.Fatalf("b.ByTokenHash after a.Create: %v", err)
	}
	next := newSession(t, "x", "", now).TokenHash
	if err := b.Rotate(ctx, "s1", s.TokenHash, next, now); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ByTokenHash(ctx, s.TokenHash); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("a.ByTokenHash(old) after b.Rotate = %v, want ErrNotFound", err)
	}
	if err := a.Revoke(ctx, "s1", now, sessiond.ReasonLogout); err != nil {
		t.Fatal(err)
	}
	got, err := b.ByTokenHash(ctx, next)
	if err != nil || !got.Revoked() || got.RevokeReason != sessiond.ReasonLogout {
		t.Fatalf("b.ByTokenHash after a.Revoke = %+v, %v; want revoked", got, err)
	}
}

func TestPing(t *testing.T) {
	st := openTest(t)
	if err := st.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
