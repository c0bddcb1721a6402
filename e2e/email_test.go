package e2e_test

import (
	"net/http"
	"strings"
	"testing"
)

// Changes of email against the real binary: a fresh session asks, the
// confirmation token goes to the new address and a notice to the old one
// (both in the outbox, in their documented shapes), the token applies the
// change once, every other session ends, and an address taken meanwhile
// is 409.

// confirmToken returns the token of the user's latest email_change_confirm
// message to address, after waiting for n such messages in all.
func confirmToken(t *testing.T, s *Server, u user, address string, n int) string {
	t.Helper()
	msgs := waitMessages(t, s, u.ID, "email_change_confirm", n)
	m := msgs[n-1]
	if m["to"] != address {
		t.Fatalf("confirmation sent to %v, want %s", m["to"], address)
	}
	return str(t, m["data"].(map[string]any), "token")
}

func TestEmailChange(t *testing.T) {
	t.Parallel()
	s := startServer(t, []string{"--reauth-window", reauthWindow.String(), "--public-url", "https://login.example.com"})

	t.Run("confirmed", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		c, _ := loginCookie(t, s, u)
		other, _ := login(t, s, u)
		third, _ := login(t, s, u)
		newEmail := "moved-" + randHex(4) + "@example.org"

		r := s.call(t, "POST", "/v1/email/change", J{"new_email": "  " + strings.ToUpper(newEmail) + " "}, cookie(c))
		wantStatus(t, r, http.StatusAccepted)
		wantKeys(t, "email change answer", r.JSON, "new_email", "expires_at")
		if r.JSON["new_email"] != newEmail {
			t.Fatalf("new_email %v, want the normalised %s", r.JSON["new_email"], newEmail)
		}
		ts(t, r.JSON, "expires_at")
		tok := confirmToken(t, s, u, newEmail, 1)
		m := waitMessages(t, s, u.ID, "email_change_confirm", 1)[0]
		if link := m["data"].(map[string]any)["link"]; link != "https://login.example.com/email/change/confirm#token="+tok {
			t.Errorf("confirmation link %v", link)
		}
		notice := waitMessages(t, s, u.ID, "email_change_requested", 1)[0]
		if notice["to"] != u.Email || notice["data"].(map[string]any)["new_email"] != newEmail {
			t.Errorf("notice to the old address %v", notice)
		}
		// Nothing changes before the confirmation.
		alive(t, s, other)
		if got := checkUser(t, obj(t, s.adm(t, "GET", "/admin/v1/users/"+u.ID, nil), "user")); got["email"] != u.Email {
			t.Fatalf("email before confirmation: %v", got["email"])
		}

		wantError(t, s.call(t, "POST", "/v1/email/change/confirm", J{"token": "sde_" + randHex(20)}), http.StatusBadRequest, "invalid_token")
		r = s.call(t, "POST", "/v1/email/change/confirm", J{"token": tok}, cookie(c))
		wantStatus(t, r, http.StatusOK)
		wantKeys(t, "confirm answer", r.JSON, "user", "revoked")
		if got := checkUser(t, obj(t, r, "user")); got["email"] != newEmail || r.JSON["revoked"] != float64(2) {
			t.Fatalf("confirm answer %s", r.Body)
		}
		alive(t, s, c) // the confirming session stays
		dead(t, s, other)
		dead(t, s, third)
		wantError(t, s.call(t, "POST", "/v1/email/change/confirm", J{"token": tok}), http.StatusBadRequest, "invalid_token")
		changed := waitMessages(t, s, u.ID, "email_changed", 1)[0]
		if changed["to"] != u.Email || changed["data"].(map[string]any)["sessions_ended"] != float64(2) {
			t.Errorf("notice of the change %v", changed)
		}
		// The new address signs in; the old one no longer does.
		wantError(t, s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password}), http.StatusUnauthorized, "invalid_credentials")
		u.Email = newEmail
		login(t, s, u)
		evs := waitEvents(t, s, u.ID, "email_changed", 1)
		if d := evs[0]["data"].(map[string]any); d["new_email"] != newEmail || d["sessions_ended"] != float64(2) {
			t.Errorf("email_changed event %v", evs[0])
		}
		waitEvents(t, s, u.ID, "email_change_requested", 1)
	})

	t.Run("confirmed without a session", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		newEmail := "moved-" + randHex(4) + "@example.org"
		wantStatus(t, s.call(t, "POST", "/v1/email/change", J{"new_email": newEmail}, bearer(tok)), http.StatusAccepted)
		r := s.call(t, "POST", "/v1/email/change/confirm", J{"token": confirmToken(t, s, u, newEmail, 1)})
		wantStatus(t, r, http.StatusOK)
		if r.JSON["revoked"] != float64(1) {
			t.Errorf("revoked %v, want 1 (every session)", r.JSON["revoked"])
		}
		dead(t, s, tok)
	})

	t.Run("fresh authentication", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, s)
		tok, _ := login(t, s, u)
		stale()
		body := J{"new_email": "moved-" + randHex(4) + "@example.org"}
		wantReauth(t, s.call(t, "POST", "/v1/email/change", body, bearer(tok)))
		r := s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(tok))
		wantStatus(t, r, http.StatusOK)
		wantStatus(t, s.call(t, "POST", "/v1/email/change", body, bearer(str(t, r.JSON, "token"))), http.StatusAccepted)
	})

	t.Run("refused addresses", func(t *testing.T) {
		t.Parallel()
		u, v := newUser(t, s), newUser(t, s)
		tok, _ := login(t, s, u)
		wantError(t, s.call(t, "POST", "/v1/email/change", J{"new_email": "not an address"}, bearer(tok)), http.StatusBadRequest, "invalid_email")
		wantError(t, s.call(t, "POST", "/v1/email/change", J{"new_email": u.Email}, bearer(tok)), http.StatusBadRequest, "email_unchanged")
		wantError(t, s.call(t, "POST", "/v1/email/change", J{"new_email": v.Email}, bearer(tok)), http.StatusConflict, "email_taken")
		wantError(t, s.call(t, "POST", "/v1/email/change", J{"new_email": "x@example.org"}), http.StatusUnauthorized, "unauthenticated")

		// Taken between the request and the confirmation: 409, nothing changes.
		newEmail := "contested-" + randHex(4) + "@example.org"
		wantStatus(t, s.call(t, "POST", "/v1/email/change", J{"new_email": newEmail}, bearer(tok)), http.StatusAccepted)
		ctok := confirmToken(t, s, u, newEmail, 1)
		wantStatus(t, s.call(t, "POST", "/v1/register", J{"email": newEmail, "password": "Tr0ub4dor&" + randHex(4)}), http.StatusCreated)
		wantError(t, s.call(t, "POST", "/v1/email/change/confirm", J{"token": ctok}), http.StatusConflict, "email_taken")
		alive(t, s, tok)
		if got := checkUser(t, obj(t, s.adm(t, "GET", "/admin/v1/users/"+u.ID, nil), "user")); got["email"] != u.Email {
			t.Fatalf("email after a refused confirmation: %v", got["email"])
		}
		// A newer request voids the older token.
		a, b := "first-"+randHex(4)+"@example.org", "second-"+randHex(4)+"@example.org"
		wantStatus(t, s.call(t, "POST", "/v1/email/change", J{"new_email": a}, bearer(tok)), http.StatusAccepted)
		first := confirmToken(t, s, u, a, 2)
		wantStatus(t, s.call(t, "POST", "/v1/email/change", J{"new_email": b}, bearer(tok)), http.StatusAccepted)
		second := confirmToken(t, s, u, b, 3)
		wantError(t, s.call(t, "POST", "/v1/email/change/confirm", J{"token": first}), http.StatusBadRequest, "invalid_token")
		wantStatus(t, s.call(t, "POST", "/v1/email/change/confirm", J{"token": second}), http.StatusOK)
	})
}
