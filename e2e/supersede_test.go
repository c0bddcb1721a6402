package e2e_test

import (
	"net/http"
	"testing"
	"time"
)

// TestAccessTokensDieWithRotation (security review, issue 20): after a
// reauthentication or a change of password, the access tokens issued
// before it answered 200 on sessiond's own API, and (with a short
// reauthentication window) let a copied token pass the fresh-authentication
// check on the strength of the owner's proof. Access tokens now carry
// auth_time, and sessiond refuses those older than the session's latest
// proof; the new ones work.
func TestAccessTokensDieWithRotation(t *testing.T) {
	t.Parallel()
	s, _ := startJWT(t, []string{"--reauth-window", "2s"})
	u := newUser(t, s)
	r := s.call(t, "POST", "/v1/login", J{"email": u.Email, "password": u.Password, "transport": "jwt"})
	wantStatus(t, r, http.StatusOK)
	copied := str(t, r.JSON, "access_token")
	if _, err := verifyJWX(t, s, copied, "sessiond", ""); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // auth_time has whole seconds; past the window too
	wantError(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(copied)), http.StatusForbidden, "reauthentication_required")

	// The owner proves the password again: the copied token is dead, even
	// for the sensitive action the proof now allows.
	r = s.call(t, "POST", "/v1/session/reauthenticate", J{"password": u.Password}, bearer(copied))
	wantStatus(t, r, http.StatusOK)
	fresh := str(t, r.JSON, "access_token")
	wantError(t, s.call(t, "GET", "/v1/session", nil, bearer(copied)), http.StatusUnauthorized, "unauthenticated")
	wantError(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(copied)), http.StatusUnauthorized, "unauthenticated")
	wantStatus(t, s.call(t, "GET", "/v1/session", nil, bearer(fresh)), http.StatusOK)
	wantStatus(t, s.call(t, "POST", "/v1/sessions/revoke-others", nil, bearer(fresh)), http.StatusOK)

	// The same after a change of password.
	time.Sleep(1100 * time.Millisecond)
	next := "Tr0ub4dor&" + randHex(6)
	r = s.call(t, "POST", "/v1/password/change", J{"current_password": u.Password, "new_password": next}, bearer(fresh))
	wantStatus(t, r, http.StatusOK)
	wantError(t, s.call(t, "GET", "/v1/session", nil, bearer(fresh)), http.StatusUnauthorized, "unauthenticated")
	wantStatus(t, s.call(t, "GET", "/v1/session", nil, bearer(str(t, r.JSON, "access_token"))), http.StatusOK)
}
