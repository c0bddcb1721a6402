package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/crashtest"
	"github.com/sessiond/sessiond/postgres"
)

// TestRevocationDurable: a revocation that Revoke acknowledged is there for
// a store opened after the first one closed, with its time and reason; so
// are the user's revocations and a rotation.
func TestRevocationDurable(t *testing.T) {
	schema := postgres.TestSchema(t)
	ctx := t.Context()
	a, err := postgres.Open(ctx, postgres.TestURL(t), postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t0 := now()
	s := newSession(t, "s1", "u1", t0)
	keep := newSession(t, "s2", "u1", t0)
	for _, x := range []*sessiond.Session{s, keep, newSession(t, "s3", "u2", t0), newSession(t, "s4", "u2", t0)} {
		if err := a.Create(ctx, x, sessiond.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	revokedAt := t0.Add(time.Second)
	if err := a.Revoke(ctx, s.ID, revokedAt, sessiond.ReasonAdmin); err != nil {
		t.Fatal(err)
	}
	if n, err := a.RevokeByUser(ctx, "u2", "", revokedAt, sessiond.ReasonLogoutAll); err != nil || n != 2 {
		t.Fatalf("RevokeByUser = %d, %v", n, err)
	}
	next := newSession(t, "x", "", t0).TokenHash
	if err := a.Rotate(ctx, keep.ID, keep.TokenHash, next, t0); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := postgres.OpenSchema(t, schema)
	got, err := b.ByID(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Revoked() || !got.RevokedAt.Equal(revokedAt) || got.RevokeReason != sessiond.ReasonAdmin {
		t.Fatalf("after reopening: revoked at %v (%q), want %v (%q)", got.RevokedAt, got.RevokeReason, revokedAt, sessiond.ReasonAdmin)
	}
	for _, id := range []string{"s3", "s4"} {
		if got, err := b.ByID(ctx, id); err != nil || got.RevokeReason != sessiond.ReasonLogoutAll {
			t.Fatalf("after reopening: %s = %+v, %v; want revoked", id, got, err)
		}
	}
	if got, err := b.ByTokenHash(ctx, next); err != nil || got.ID != keep.ID || got.Revoked() {
		t.Fatalf("after reopening: the rotated token = %+v, %v", got, err)
	}
}

// TestCrashDurability kills a child process that creates and revokes
// sessions in one schema (internal/crashtest) four times, each after a
// random number of acknowledgements, and after each kill checks through a
// store of its own that everything acknowledged holds: created sessions
// exist and are active, revoked ones are revoked. The server survives the
// client's crash, so this checks that the store acknowledges only committed
// transactions; that a commit survives a crash of the server is the
// server's fsync and synchronous_commit (Open warns when either is off).
func TestCrashDurability(t *testing.T) {
	var st *postgres.Store // the parent's, opened (and the schema migrated) before the first child
	crashtest.Run(t, crashtest.Config{
		Env: "SESSIOND_POSTGRES_CRASH_CHILD",
		Target: func(t *testing.T) string {
			schema := postgres.TestSchema(t)
			st = postgres.OpenSchema(t, schema)
			return schema
		},
		Open: func(ctx context.Context, schema string) (sessiond.Store, error) {
			return postgres.Open(ctx, postgres.TestURL(t), postgres.WithSchema(schema))
		},
		Check: func(t *testing.T, _ string, acked *crashtest.Acked) {
			acked.Verify(t, st, time.Now())
		},
		Policy:  sessiond.Policy{MaxSessionsPerUser: 1000},
		Rounds:  4,
		MaxAcks: 150,
	})
}
