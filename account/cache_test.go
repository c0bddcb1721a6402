package account_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

func TestUserCacheSeesOwnChanges(t *testing.T) {
	st := memstore.NewAccounts()
	svc, err := account.NewService(st, account.Config{HashParams: storetest.HashParams}, account.WithUserCache(100, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	u, err := svc.Register(ctx, "ada@example.com", "analytical engine", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.User(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.UpdateProfile(ctx, u.ID, map[string]json.RawMessage{"name": json.RawMessage(`"Ada"`)}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.User(ctx, u.ID)
	if err != nil || string(got.Profile) != `{"name":"Ada"}` {
		t.Fatalf("after a profile change the cache answered %s, %v", got.Profile, err)
	}
	if got.PasswordHash != "" {
		t.Fatal("a cached user carries the password hash")
	}
	got.Profile[0] = 'X'
	if again, _ := svc.User(ctx, u.ID); string(again.Profile) != `{"name":"Ada"}` {
		t.Fatal("changing a returned user changed the cache")
	}
	if err := svc.DeleteByAdmin(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.User(ctx, u.ID); !errors.Is(err, account.ErrUserNotFound) {
		t.Fatalf("a deleted user is still served from the cache: %v", err)
	}
}
