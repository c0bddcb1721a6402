package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/notify"
)

func TestEmailChange(t *testing.T) {
	e := newHijackEnv(t, flows.Config{PublicURL: "https://login.example.com"})
	const pw = "correct horse battery"
	u, err := e.users.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.users.Register(t.Context(), "bob@example.com", pw, nil); err != nil {
		t.Fatal(err)
	}
	tok, _ := e.login(u.Email, pw, firefoxLinux)
	other, _ := e.login(u.Email, pw, firefoxLinux)

	for _, c := range []struct {
		body, code string
		status     int
	}{
		{`{"new_email":"nope"}`, "invalid_email", 400},
		{`{"new_email":"ADA@example.com"}`, "email_unchanged", 400},
		{`{"new_email":"bob@example.com"}`, "email_taken", 409},
		{`{"email":"x@example.com"}`, "unknown_field", 400},
	} {
		wantCode(t, "email change "+c.body, e.call(e.pub, "POST", "/v1/email/change", c.body, firefoxLinux, authz(tok)...), c.status, c.code)
	}
	wantCode(t, "email change without a session", e.call(e.pub, "POST", "/v1/email/change", `{"new_email":"x@example.com"}`, firefoxLinux), 401, "unauthenticated")

	w := e.call(e.pub, "POST", "/v1/email/change", `{"new_email":" Ada@New.Example "}`, firefoxLinux, authz(tok)...)
	wantCode(t, "email change", w, http.StatusAccepted, "")
	var started struct {
		NewEmail  string    `json:"new_email"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &started); err != nil || started.NewEmail != "ada@new.example" ||
		started.ExpiresAt.Sub(time.Now()) < 50*time.Minute {
		t.Fatalf("email change answer %s", w.Body)
	}
	confirm := e.notes.wait(t, notify.TypeEmailChangeConfirm, 1)[0]
	notice := e.notes.wait(t, notify.TypeEmailChangeRequested, 1)[0]
	ct, _ := confirm.Data["token"].(string)
	if confirm.To != "ada@new.example" || confirm.UserID != u.ID || len(ct) < 40 ||
		confirm.Data["link"] != "https://login.example.com/email/change/confirm#token="+ct {
		t.Fatalf("confirmation message %+v", confirm)
	}
	if notice.To != "ada@example.com" || notice.Data["new_email"] != "ada@new.example" || notice.Data["browser"] != "Firefox" {
		t.Fatalf("notice to the old address %+v", notice)
	}
	// Nothing changed yet.
	if got, _ := e.users.User(t.Context(), u.ID); got.Email != "ada@example.com" {
		t.Fatalf("email before confirmation: %q", got.Email)
	}

	wantCode(t, "a wrong token", e.call(e.pub, "POST", "/v1/email/change/confirm", `{"token":"sde_nope"}`, chromeWindows), 400, "invalid_token")
	// Confirmed from the first session: it stays, every other ends.
	w = e.call(e.pub, "POST", "/v1/email/change/confirm", `{"token":"`+ct+`"}`, firefoxLinux, authz(tok)...)
	wantCode(t, "confirm", w, 200, "")
	var done struct {
		User    struct{ Email string }
		Revoked int
	}
	if err := json.Unmarshal(w.Body.Bytes(), &done); err != nil || done.User.Email != "ada@new.example" || done.Revoked != 1 {
		t.Fatalf("confirm answer %s", w.Body)
	}
	wantCode(t, "the confirming session", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, authz(tok)...), 200, "")
	wantCode(t, "another session", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, authz(other)...), 401, "")
	wantCode(t, "the token again", e.call(e.pub, "POST", "/v1/email/change/confirm", `{"token":"`+ct+`"}`, firefoxLinux), 400, "invalid_token")
	changed := e.notes.wait(t, notify.TypeEmailChanged, 1)[0]
	if changed.To != "ada@example.com" || changed.Data["new_email"] != "ada@new.example" || changed.Data["sessions_ended"] != 1 {
		t.Fatalf("notice of the change %+v", changed)
	}
	if _, code := e.login("ada@new.example", pw, firefoxLinux); code != 200 {
		t.Fatalf("login with the new address: %d", code)
	}
	types := e.types(u.ID)
	for _, want := range []string{audit.EmailChangeRequested, audit.EmailChanged} {
		if !slices.Contains(types, want) {
			t.Errorf("audit trail %v lacks %s", types, want)
		}
	}
	evs := e.eventsOf(u.ID, audit.EmailChanged)
	if len(evs) != 1 || evs[0].Data["old_email"] != "ada@example.com" || fmt.Sprint(evs[0].Data["sessions_ended"]) != "1" {
		t.Fatalf("email_changed events %+v", evs)
	}

	// Taken meanwhile: 409, nothing changes.
	w = e.call(e.pub, "POST", "/v1/email/change", `{"new_email":"carol@example.com"}`, firefoxLinux, authz(tok)...)
	wantCode(t, "second change", w, http.StatusAccepted, "")
	ct2, _ := e.notes.wait(t, notify.TypeEmailChangeConfirm, 2)[1].Data["token"].(string)
	if _, err := e.users.Register(t.Context(), "carol@example.com", pw, nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "confirm a taken address", e.call(e.pub, "POST", "/v1/email/change/confirm", `{"token":"`+ct2+`"}`, chromeWindows), 409, "email_taken")
	if got, _ := e.users.User(t.Context(), u.ID); got.Email != "ada@new.example" {
		t.Fatalf("email after a refused confirmation: %q", got.Email)
	}
	wantCode(t, "the confirming session after a refusal", e.call(e.pub, "GET", "/v1/session", "", firefoxLinux, authz(tok)...), 200, "")
}

func TestEmailChangeNeedsFreshAuthentication(t *testing.T) {
	e := newReauthEnv(t)
	const pw = "correct horse battery"
	u, err := e.srv.accounts.Register(t.Context(), "ada@example.com", pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := e.login(u.Email, pw, firefoxLinux)
	e.clock.Advance(sessiond.DefaultReauthWindow)
	body := `{"new_email":"ada@new.example"}`
	wantCode(t, "stale", e.call(e.pub, "POST", "/v1/email/change", body, firefoxLinux, authz(tok)...), 403, "reauthentication_required")
	w := e.call(e.pub, "POST", "/v1/session/reauthenticate", `{"password":"`+pw+`"}`, firefoxLinux, authz(tok)...)
	var re struct{ Token string }
	_ = json.Unmarshal(w.Body.Bytes(), &re)
	wantCode(t, "after reauthentication", e.call(e.pub, "POST", "/v1/email/change", body, firefoxLinux, authz(re.Token)...), 202, "")
}
