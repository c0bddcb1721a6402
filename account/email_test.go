package account_test

import (
	"errors"
	"testing"

	"github.com/sessiond/sessiond/account"
)

// TestEmailLookAlikes: a compatibility variant of an address (fullwidth)
// is the same address, a look-alike from another script is refused as a
// new address, and accounts stored under a non-ASCII or non-NFKC address
// before that rule are still found.
func TestEmailLookAlikes(t *testing.T) {
	ctx := t.Context()
	svc, st := newService(t, account.Config{})
	const pw = "analytical engine"
	ada, err := svc.Register(ctx, "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"ａda@example.com", "ＡＤＡ@ＥＸＡＭＰＬＥ.ＣＯＭ", "ada@ｅxample.com"} {
		if _, err := svc.Register(ctx, e, pw, nil); !errors.Is(err, account.ErrEmailTaken) {
			t.Errorf("Register(%q) = %v, want ErrEmailTaken", e, err)
		}
		if u, err := svc.Authenticate(ctx, e, pw); err != nil || u.ID != ada.ID {
			t.Errorf("Authenticate(%q) = %v, %v; want ada", e, u, err)
		}
		if u, err := svc.UserByEmail(ctx, e); err != nil || u.ID != ada.ID {
			t.Errorf("UserByEmail(%q) = %v, %v; want ada", e, u, err)
		}
		if _, u, _, err := svc.RequestReset(ctx, e); err != nil || u == nil || u.ID != ada.ID {
			t.Errorf("RequestReset(%q) = %v, %v; want ada's token", e, u, err)
		}
	}
	for _, e := range []string{"ada@exаmple.com" /* Cyrillic а */, "аda@example.com", "jörg@example.de", "ada@münchen.de"} {
		if _, err := svc.Register(ctx, e, pw, nil); !errors.Is(err, account.ErrInvalidEmail) {
			t.Errorf("Register(%q) = %v, want ErrInvalidEmail", e, err)
		}
		if _, err := svc.RequestEmailChange(ctx, ada.ID, e); !errors.Is(err, account.ErrInvalidEmail) {
			t.Errorf("RequestEmailChange(%q) = %v, want ErrInvalidEmail", e, err)
		}
	}
	if _, err := svc.Register(ctx, "ada@xn--mnchen-3ya.de", pw, nil); err != nil {
		t.Errorf("an internationalised domain in its xn-- form: %v", err)
	}

	// Accounts stored before the rule, under the old form (trimmed, lower
	// case): copies of ada's record with other ids and emails.
	stored, err := st.UserByEmail(ctx, "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for i, legacy := range []string{"jörg@exämple.de", "ｂob@example.com", "ada@exаmple.com"} {
		u := *stored
		u.ID, u.Email = "legacy"+string(rune('0'+i)), legacy
		if err := st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if got, err := svc.Authenticate(ctx, " "+legacy+" ", pw); err != nil || got.ID != u.ID {
			t.Errorf("Authenticate(%q) = %v, %v; want the stored account %s", legacy, got, err, u.ID)
		}
		if got, err := svc.UserByEmail(ctx, legacy); err != nil || got.ID != u.ID {
			t.Errorf("UserByEmail(%q) = %v, %v; want the stored account %s", legacy, got, err, u.ID)
		}
		if _, got, _, err := svc.RequestReset(ctx, legacy); err != nil || got == nil || got.ID != u.ID {
			t.Errorf("RequestReset(%q) = %v, %v; want the stored account's token", legacy, got, err)
		}
	}
}
