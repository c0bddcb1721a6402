package e2e_test

import (
	"net/http"
	"strings"
	"testing"
)

// A pending change of email against the real binary's recovery steps
// (security review, issue 20): a thief who held the account asks for a
// change of email to their address; whatever the owner then does to take
// the account back (change or reset the password, sign out everywhere, an
// administrator ending every session) voids the change, so the thief's
// later confirmation is refused. The notice to the current address cancels
// the change by itself.
func TestPendingEmailChangeDiesWithRecovery(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--reauth-window", reauthWindow.String(), "--public-url", "https://login.example.com"})

	// thiefAsks signs the thief in with the password and asks for a
	// change to the thief's address; it returns the confirmation token.
	thiefAsks := func(t *testing.T, u user, n int) string {
		t.Helper()
		tok, _ := login(t, s, u)
		to := "thief-" + randHex(4) + "@example.net"
		wantStatus(t, s.call(t, "POST", "/v1/email/change", J{"new_email": to}, bearer(tok)), http.StatusAccepted)
		return confirmToken(t, s, u, to, n)
	}
	stillOwned := func(t *testing.T, u user, thiefToken string) {
		t.Helper()
		wantError(t, s.call(t, "POST", "/v1/email/change/confirm", J{"token": thiefToken}), http.StatusBadRequest, "invalid_token")
		if got := checkUser(t, obj(t, s.adm(t, "GET", "/admin/v1/users/"+u.ID, nil), "user")); got["email"] != u.Email {
			t.Fatalf("the thief changed the email to %v", got["email"])
		}
	}

	for _, c := range []struct {
		name    string
		how     string
		recover func(t *testing.T, u *user)
	}{
		{"password change", "password_changed", func(t *testing.T, u *user) {
			tok, _ := login(t, s, *u)
			next := "Tr0ub4dor&" + randHex(6)
			wantStatus(t, s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": next}, bearer(tok)), http.StatusOK)
			u.Password = next
		}},
		{"password reset", "password_reset", func(t *testing.T, u *user) {
			wantStatus(t, s.call(t, "POST", "/v1/password/reset", J{"email": u.Email}), http.StatusAccepted)
			msg := waitMessages(t, s, u.ID, "password_reset", 1)[0]
			next := "Tr0ub4dor&" + randHex(6)
			r := s.call(t, "POST", "/v1/password/reset/confirm", J{"token": str(t, msg["data"].(map[string]any), "token"),
				"new_password": next, "transport": "token"})
			wantStatus(t, r, http.StatusOK)
			u.Password = next
		}},
		{"sign out everywhere", "logout_all", func(t *testing.T, u *user) {
			tok, _ := login(t, s, *u)
			wantStatus(t, s.call(t, "POST", "/v1/logout", J{"scope": "all"}, bearer(tok)), http.StatusNoContent)
		}},
		{"admin ends every session", "admin", func(t *testing.T, u *user) {
			wantStatus(t, s.adm(t, "DELETE", "/admin/v1/users/"+u.ID+"/sessions", nil), http.StatusOK)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			u := newUser(t, s)
			thief := thiefAsks(t, u, 1)
			c.recover(t, &u)
			stillOwned(t, u, thief)
			evs := waitEvents(t, s, u.ID, "email_change_cancelled", 1)
			if d := evs[0]["data"].(map[string]any); d["how"] != c.how {
				t.Errorf("email_change_cancelled event %v, want how %s", evs[0], c.how)
			}
		})
	}

	t.Run("the notice cancels", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		thief := thiefAsks(t, u, 1)
		notice := waitMessages(t, s, u.ID, "email_change_requested", 1)[0]
		if notice["to"] != u.Email {
			t.Fatalf("notice sent to %v", notice["to"])
		}
		d := notice["data"].(map[string]any)
		cancel := str(t, d, "cancel_token")
		if !strings.HasPrefix(cancel, "sdx_") || d["cancel_link"] != "https://login.example.com/email/change/cancel#token="+cancel {
			t.Fatalf("notice data %v", d)
		}
		wantError(t, s.call(t, "POST", "/v1/email/change/cancel", J{"token": thief}), http.StatusBadRequest, "invalid_token")
		wantError(t, s.call(t, "POST", "/v1/email/change/cancel", J{"token": "sdx_" + randHex(20)}), http.StatusBadRequest, "invalid_token")
		wantError(t, s.call(t, "POST", "/v1/email/change/cancel", J{}, offContract("no token")), http.StatusBadRequest, "invalid_token")
		wantStatus(t, s.call(t, "POST", "/v1/email/change/cancel", J{"token": cancel}), http.StatusNoContent)
		stillOwned(t, u, thief)
		wantError(t, s.call(t, "POST", "/v1/email/change/cancel", J{"token": cancel}), http.StatusBadRequest, "invalid_token")
		evs := waitEvents(t, s, u.ID, "email_change_cancelled", 1)
		if d := evs[0]["data"].(map[string]any); d["how"] != "cancel_token" || !strings.HasPrefix(d["new_email"].(string), "thief-") {
			t.Errorf("email_change_cancelled event %v", evs[0])
		}
	})
}
