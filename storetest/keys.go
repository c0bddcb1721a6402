package storetest

import (
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/sessiond/sessiond/accesstoken"
)

// RunKeys checks an accesstoken.KeyStore.
func RunKeys(t *testing.T, newStore func(t *testing.T) accesstoken.KeyStore) {
	t.Helper()
	t.Run("AddListDelete", func(t *testing.T) {
		t.Parallel()
		ks := newStore(t)
		ctx := t.Context()
		if got, err := ks.SigningKeys(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty store: %v, %v", got, err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		a := accesstoken.StoredKey{ID: "a", Sealed: []byte{1, 2, 3}, CreatedAt: now, ActiveAt: now.Add(time.Minute)}
		b := accesstoken.StoredKey{ID: "b", Sealed: []byte{4}, CreatedAt: now.Add(time.Hour), ActiveAt: now.Add(2 * time.Hour)}
		for _, k := range []accesstoken.StoredKey{a, b} {
			if err := ks.AddSigningKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		if err := ks.AddSigningKey(ctx, accesstoken.StoredKey{ID: "a", Sealed: []byte{9}, CreatedAt: now, ActiveAt: now}); !errors.Is(err, accesstoken.ErrKeyExists) {
			t.Fatalf("duplicate id: %v, want ErrKeyExists", err)
		}
		got, err := ks.SigningKeys(ctx)
		if err != nil || len(got) != 2 {
			t.Fatalf("SigningKeys = %v, %v", got, err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
		for i, want := range []accesstoken.StoredKey{a, b} {
			g := got[i]
			if g.ID != want.ID || string(g.Sealed) != string(want.Sealed) || !g.CreatedAt.Equal(want.CreatedAt) || !g.ActiveAt.Equal(want.ActiveAt) {
				t.Errorf("key %d = %+v, want %+v", i, g, want)
			}
		}
		got[0].Sealed[0] = 99
		if again, _ := ks.SigningKeys(ctx); (again[0].ID == "a" && again[0].Sealed[0] == 99) || (again[1].ID == "a" && again[1].Sealed[0] == 99) {
			t.Fatal("changing a returned key changed the store")
		}
		if err := ks.DeleteSigningKey(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if err := ks.DeleteSigningKey(ctx, "missing"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if got, _ := ks.SigningKeys(ctx); len(got) != 1 || got[0].ID != "b" {
			t.Fatalf("after delete: %v", got)
		}
	})
}
