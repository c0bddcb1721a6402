package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/httperror"
)

// formExpired sends the visitor back to target with a note, when a form's
// CSRF token does not match (it was made for a session that has ended, or
// it was forged).
func (p *Pages) formExpired(w http.ResponseWriter, r *http.Request, target string) {
	p.setFlash(w, "form_expired")
	p.redirect(w, r, target)
}

// errorMessage says what went wrong with a form, in words for its user,
// and the status of the answer, which package httperror chooses. ok is
// false for failures below the rules.
func (p *Pages) errorMessage(err error) (msg string, status int, ok bool) {
	now := p.flows.Now()
	e := httperror.From(err, now)
	if e.Internal() {
		return "", 0, false
	}
	var locked *account.LockedError
	switch e.Code {
	case "rate_limited":
		msg = fmt.Sprintf("Too many failed sign-ins from your network. Try again %s.", until(now.Add(e.RetryAfter), now))
	case "account_locked":
		if errors.As(err, &locked) {
			msg = fmt.Sprintf("This account is locked after too many failed sign-in attempts. Try again %s (after %s), or reset your password.",
				until(locked.Until, now), clock(locked.Until))
		}
	case "invalid_credentials":
		msg = "The email address or password is wrong."
	case "weak_password":
		msg = strings.ToUpper(e.Message[:1]) + e.Message[1:] + "."
	case "invalid_email":
		msg = "Enter a valid email address, like name@example.com."
	case "email_taken":
		msg = "An account with this email address exists already. Sign in, or reset its password."
	case "email_unchanged":
		msg = "That is your current email address."
	case "invalid_token":
		if errors.Is(err, account.ErrInvalidEmailChangeToken) {
			msg = "This confirmation link is invalid, used or expired. Ask for a new one from your account page."
		} else {
			msg = "This reset link is invalid, used or expired. Ask for a new one."
		}
	case "invalid_profile":
		msg = "That profile is too large."
	case "reauthentication_required":
		msg = "For your security, confirm your password to continue."
	}
	if msg == "" {
		return "", 0, false // no wording for it on a page: a failure
	}
	return msg, e.Status, true
}

// --- Sign-in, registration, sign-out

type loginData struct {
	Next         string
	RememberDays int
}

func (p *Pages) rememberDays() int {
	return int(p.sessions.Policy().RememberMeLifetime.Hours() / 24)
}

func (p *Pages) loginPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	next := safeNext(r.URL.Query().Get("next"))
	if v.signedIn() {
		p.redirect(w, r, or(next, "/account"))
		return
	}
	pv := p.page(w, r, v, "Sign in", "login")
	pv.Data = loginData{Next: next, RememberDays: p.rememberDays()}
	p.render(w, r, http.StatusOK, "login", pv)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (p *Pages) loginSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	next := safeNext(r.URL.Query().Get("next"))
	if !p.checkForm(r, v) {
		p.formExpired(w, r, "/login"+nextQuery(next))
		return
	}
	next = or(safeNext(r.PostFormValue("next")), next)
	email, remember := r.PostFormValue("email"), r.PostFormValue("remember_me") == "on"
	in, err := p.flows.SignIn(r.Context(), p.client(r), flows.SignInParams{Email: email, Password: r.PostFormValue("password"),
		RememberMe: remember, Transport: sessiond.TransportCookie, Replace: v.token})
	if err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		pv := p.page(w, r, v, "Sign in", "login")
		pv.Error, pv.Invalid = msg, "password"
		pv.Form = map[string]string{"email": email}
		if remember {
			pv.Form["remember_me"] = "on"
		}
		pv.Data = loginData{Next: next, RememberDays: p.rememberDays()}
		p.render(w, r, status, "login", pv)
		return
	}
	p.cookie.Set(w, in.Token, in.Session, p.sessions.Now())
	p.redirect(w, r, or(next, "/account"))
}

func nextQuery(next string) string {
	if next == "" {
		return ""
	}
	return "?next=" + url.QueryEscape(next)
}

type registerData struct{ MinLength int }

func (p *Pages) registerPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	if v.signedIn() {
		p.redirect(w, r, "/account")
		return
	}
	pv := p.page(w, r, v, "Create an account", "register")
	pv.Data = registerData{MinLength: p.accounts.Config().PasswordMinLength}
	p.render(w, r, http.StatusOK, "register", pv)
}

func (p *Pages) registerSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	email, name := r.PostFormValue("email"), strings.TrimSpace(r.PostFormValue("name"))
	fail := func(msg, field string, status int) {
		pv := p.page(w, r, v, "Create an account", "register")
		pv.Error, pv.Invalid = msg, field
		pv.Form = map[string]string{"email": email, "name": name}
		pv.Data = registerData{MinLength: p.accounts.Config().PasswordMinLength}
		p.render(w, r, status, "register", pv)
	}
	if utf8.RuneCountInString(name) > maxNameLen {
		fail(fmt.Sprintf("Keep the name to %d characters.", maxNameLen), "name", http.StatusBadRequest)
		return
	}
	var profile []byte
	if name != "" {
		profile, _ = json.Marshal(map[string]string{"name": name})
	}
	u, err := p.accounts.Register(r.Context(), email, r.PostFormValue("password"), profile)
	if err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		field := "password"
		if errors.Is(err, account.ErrInvalidEmail) || errors.Is(err, account.ErrEmailTaken) {
			field = "email"
		}
		fail(msg, field, status)
		return
	}
	p.log.InfoContext(r.Context(), "user registered", "user_id", u.ID)
	in, err := p.flows.StartSession(r.Context(), p.client(r), u, flows.StartParams{Transport: sessiond.TransportCookie, Replace: v.token})
	if err != nil {
		p.fail(w, r, err)
		return
	}
	p.cookie.Set(w, in.Token, in.Session, p.sessions.Now())
	p.setFlash(w, "registered")
	p.redirect(w, r, "/account")
}

func (p *Pages) logoutSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	p.cookie.Clear(w)
	if err := p.flows.SignOut(r.Context(), p.client(r), v.token, false); err != nil {
		p.fail(w, r, err)
		return
	}
	p.setFlash(w, "signed_out")
	p.redirect(w, r, "/login")
}

// --- Password reset

func (p *Pages) resetPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	pv := p.page(w, r, v, "Reset your password", "login")
	pv.Data = int(p.accounts.Config().ResetTokenTTL.Minutes())
	p.render(w, r, http.StatusOK, "reset", pv)
}

func (p *Pages) resetSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	email := r.PostFormValue("email")
	if err := p.flows.StartReset(r.Context(), p.client(r), email); err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		pv := p.page(w, r, v, "Reset your password", "login")
		pv.Error, pv.Invalid, pv.Form = msg, "email", map[string]string{"email": email}
		pv.Data = int(p.accounts.Config().ResetTokenTTL.Minutes())
		p.render(w, r, status, "reset", pv)
		return
	}
	p.setFlash(w, "reset_sent")
	p.redirect(w, r, "/password/reset")
}

type resetConfirmData struct {
	Token     string // from the link's query, when it had one
	MinLength int
}

// resetConfirmPage is where a reset link leads. The link carries the
// token in its fragment (#token=…), which the browser never sends: the
// page's script moves it into the form. A link with ?token=… (an app's
// own mail) works without script; the token goes into a hidden field and
// the page sends no Referer. Without either, the visitor pastes the code.
func (p *Pages) resetConfirmPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	pv := p.page(w, r, v, "Choose a new password", "login")
	pv.Data = resetConfirmData{Token: r.URL.Query().Get("token"), MinLength: p.accounts.Config().PasswordMinLength}
	p.render(w, r, http.StatusOK, "reset_confirm", pv)
}

func (p *Pages) resetConfirmSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	in, err := p.flows.ConfirmReset(r.Context(), p.client(r), flows.ResetParams{Token: token,
		NewPassword: r.PostFormValue("new_password"), Transport: sessiond.TransportCookie, Replace: v.token})
	if err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		pv := p.page(w, r, v, "Choose a new password", "login")
		pv.Error, pv.Invalid = msg, "new_password"
		if errors.Is(err, account.ErrInvalidResetToken) {
			pv.Invalid, token = "token", ""
		}
		pv.Data = resetConfirmData{Token: token, MinLength: p.accounts.Config().PasswordMinLength}
		p.render(w, r, status, "reset_confirm", pv)
		return
	}
	p.cookie.Set(w, in.Token, in.Session, p.sessions.Now())
	p.setFlash(w, "password_reset")
	p.redirect(w, r, "/account")
}

// --- The account page

const maxNameLen = 100

type accountData struct {
	Name      string
	Profile   []profileEntry // other keys, shown as they are
	Others    int            // the user's other active sessions
	MinLength int
	// Fresh: the visitor proved the password recently enough for a change
	// of email; otherwise its form asks for it.
	Fresh bool
}

type profileEntry struct{ Key, Value string }

func (p *Pages) accountPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	p.renderAccount(w, r, v, http.StatusOK, "", "", nil)
}

func (p *Pages) renderAccount(w http.ResponseWriter, r *http.Request, v *visitor, status int, msg, field string, form map[string]string) {
	list, err := p.sessions.List(r.Context(), v.user.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	d := accountData{Others: max(0, len(list)-1), MinLength: p.accounts.Config().PasswordMinLength, Fresh: p.flows.Fresh(v.session)}
	var prof map[string]json.RawMessage
	_ = json.Unmarshal(v.user.Profile, &prof)
	for k, raw := range prof {
		var s string
		if k == "name" && json.Unmarshal(raw, &s) == nil {
			d.Name = s
			continue
		}
		d.Profile = append(d.Profile, profileEntry{k, string(raw)})
	}
	sort.Slice(d.Profile, func(i, j int) bool { return d.Profile[i].Key < d.Profile[j].Key })
	pv := p.page(w, r, v, "Your account", "account")
	pv.Error, pv.Invalid, pv.Form, pv.Data = msg, field, form, d
	p.render(w, r, status, "account", pv)
}

func (p *Pages) profileSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	if utf8.RuneCountInString(name) > maxNameLen {
		p.renderAccount(w, r, v, http.StatusBadRequest, fmt.Sprintf("Keep the name to %d characters.", maxNameLen), "name", map[string]string{"name": name})
		return
	}
	value := json.RawMessage("null") // an empty name deletes the key
	if name != "" {
		value, _ = json.Marshal(name)
	}
	if _, err := p.accounts.UpdateProfile(r.Context(), v.user.ID, map[string]json.RawMessage{"name": value}); err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		p.renderAccount(w, r, v, status, msg, "name", map[string]string{"name": name})
		return
	}
	p.setFlash(w, "profile_saved")
	p.redirect(w, r, "/account")
}

func (p *Pages) passwordSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	rot, err := p.flows.ChangePassword(r.Context(), p.client(r), flows.Caller{Session: v.session, Token: v.token},
		r.PostFormValue("current_password"), r.PostFormValue("new_password"))
	if err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		field := "new_password"
		if errors.Is(err, account.ErrInvalidCredentials) {
			msg, field = "Your current password is wrong.", "current_password"
		}
		p.renderAccount(w, r, v, status, msg, field, nil)
		return
	}
	p.cookie.Set(w, rot.Token, rot.Session, p.sessions.Now())
	p.setFlash(w, "password_changed."+strconv.Itoa(rot.Revoked))
	p.redirect(w, r, "/account")
}

func (p *Pages) deleteSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	password := r.PostFormValue("password") // the proof and the deletion's check: no second field
	_, err := p.sensitive(w, r, v, password, func() error {
		return p.flows.DeleteAccount(r.Context(), p.client(r), v.session, password)
	})
	if err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		if errors.Is(err, account.ErrInvalidCredentials) {
			msg = "The password is wrong; your account was not deleted."
		}
		p.renderAccount(w, r, v, status, msg, "delete_password", nil)
		return
	}
	p.cookie.Clear(w)
	p.setFlash(w, "account_deleted")
	p.redirect(w, r, "/login")
}

// --- Sessions and activity

type sessionRow struct {
	*sessiond.Session
	Current bool
}

type sessionsData struct {
	Rows []sessionRow
	// Fresh: the visitor proved the password recently enough for signing
	// out other devices; otherwise those forms ask for it.
	Fresh bool
}

// sensitive runs action, a sensitive action in v's session. When the flows
// refuse it for want of a recent proof of the password
// (flows.ErrReauthenticationRequired) and the form carried the password,
// the password renews the proof, which gives v's session a new token and
// cookie, and action runs again. A wrong password is
// account.ErrInvalidCredentials and counts toward lockout; fromProof says
// the error came from the proof, not from the action.
func (p *Pages) sensitive(w http.ResponseWriter, r *http.Request, v *visitor, password string, action func() error) (fromProof bool, err error) {
	err = action()
	if !errors.Is(err, flows.ErrReauthenticationRequired) || password == "" {
		return false, err
	}
	rot, err := p.flows.Reauthenticate(r.Context(), p.client(r), flows.Caller{Session: v.session, Token: v.token}, password)
	if err != nil {
		return true, err
	}
	p.cookie.Set(w, rot.Token, rot.Session, p.sessions.Now())
	v.session, v.token = rot.Session, rot.Token
	return false, action()
}

func (p *Pages) sessionsPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	p.renderSessions(w, r, v, http.StatusOK, "", "")
}

// renderSessions renders the devices page, with an error about a field
// ("password", the confirmation) when msg is set.
func (p *Pages) renderSessions(w http.ResponseWriter, r *http.Request, v *visitor, status int, msg, field string) {
	list, err := p.sessions.List(r.Context(), v.user.ID)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	rows := make([]sessionRow, 0, len(list))
	for _, s := range list {
		row := sessionRow{Session: s, Current: s.ID == v.session.ID}
		if row.Current { // this device first
			rows = append([]sessionRow{row}, rows...)
		} else {
			rows = append(rows, row)
		}
	}
	pv := p.page(w, r, v, "Your devices", "sessions")
	pv.Error, pv.Invalid = msg, field
	pv.Data = sessionsData{Rows: rows, Fresh: p.flows.Fresh(v.session)}
	p.render(w, r, status, "sessions", pv)
}

// sensitiveFailed answers a refused or failed sensitive action on the
// devices page.
func (p *Pages) sensitiveFailed(w http.ResponseWriter, r *http.Request, v *visitor, err error) {
	msg, status, ok := p.errorMessage(err)
	if !ok {
		p.fail(w, r, err)
		return
	}
	if errors.Is(err, account.ErrInvalidCredentials) {
		msg = "The password is wrong; nothing was signed out."
	}
	p.renderSessions(w, r, v, status, msg, "password")
}

func (p *Pages) revokeSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	id, current := r.PostFormValue("id"), v.session.ID
	_, err := p.sensitive(w, r, v, r.PostFormValue("password"), func() error {
		return p.flows.RevokeSession(r.Context(), p.client(r), v.session, id)
	})
	if err != nil && !errors.Is(err, flows.ErrNoSuchSession) { // gone already: done
		p.sensitiveFailed(w, r, v, err)
		return
	}
	if id == current {
		p.cookie.Clear(w)
		p.setFlash(w, "signed_out")
		p.redirect(w, r, "/login")
		return
	}
	p.setFlash(w, "session_revoked")
	p.redirect(w, r, "/account/sessions")
}

func (p *Pages) revokeOthersSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	n := 0
	_, err := p.sensitive(w, r, v, r.PostFormValue("password"), func() (err error) {
		n, err = p.flows.RevokeOthers(r.Context(), p.client(r), v.session)
		return err
	})
	if err != nil {
		p.sensitiveFailed(w, r, v, err)
		return
	}
	p.setFlash(w, "others_revoked."+strconv.Itoa(n))
	p.redirect(w, r, "/account/sessions")
}

type activityData struct {
	Enabled bool
	Events  []audit.Event
	Days    int
}

// activityLimit is how many events the activity page shows.
const activityLimit = 50

func (p *Pages) activityPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	d := activityData{Enabled: p.audit != nil}
	if p.audit != nil {
		evs, err := p.audit.List(r.Context(), v.user.ID, audit.Filter{Limit: activityLimit})
		if err != nil {
			p.fail(w, r, err)
			return
		}
		d.Events = evs
	}
	pv := p.page(w, r, v, "Security activity", "activity")
	pv.Data = d
	p.render(w, r, http.StatusOK, "activity", pv)
}

// --- Change of email

func (p *Pages) emailSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	newEmail := r.PostFormValue("new_email")
	fromProof, err := p.sensitive(w, r, v, r.PostFormValue("password"), func() error {
		_, err := p.flows.RequestEmailChange(r.Context(), p.client(r), v.session, newEmail)
		return err
	})
	field := "new_email"
	if fromProof {
		field = "email_password"
	}
	if err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		if errors.Is(err, account.ErrInvalidCredentials) {
			msg, field = "The password is wrong; your email address was not changed.", "email_password"
		}
		if errors.Is(err, flows.ErrReauthenticationRequired) {
			field = "email_password"
		}
		p.renderAccount(w, r, v, status, msg, field, map[string]string{"new_email": newEmail})
		return
	}
	p.setFlash(w, "email_change_sent")
	p.redirect(w, r, "/account")
}

type emailConfirmData struct {
	Token string // from the link's query, when it had one
}

// emailConfirmPage is where the confirmation link of a change of email
// leads: like the reset link, it carries the token in its fragment, which
// the page's script moves into the form; ?token=… works without script.
func (p *Pages) emailConfirmPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	pv := p.page(w, r, v, "Confirm your new email address", "account")
	pv.Data = emailConfirmData{Token: r.URL.Query().Get("token")}
	p.render(w, r, http.StatusOK, "email_confirm", pv)
}

func (p *Pages) emailConfirmSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	done, err := p.flows.ConfirmEmailChange(r.Context(), p.client(r), token, v.session)
	if err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		pv := p.page(w, r, v, "Confirm your new email address", "account")
		pv.Error, pv.Invalid = msg, "token"
		pv.Data = emailConfirmData{}
		p.render(w, r, status, "email_confirm", pv)
		return
	}
	if v.user != nil && v.user.ID == done.User.ID {
		p.setFlash(w, "email_changed")
		p.redirect(w, r, "/account")
		return
	}
	p.setFlash(w, "email_changed_signin")
	p.redirect(w, r, "/login")
}

// emailCancelPage is where the cancellation link of the notice to the
// current address leads: the token comes in the fragment (moved into the
// form by the page's script) or ?token=…, or is pasted.
func (p *Pages) emailCancelPage(w http.ResponseWriter, r *http.Request, v *visitor) {
	pv := p.page(w, r, v, "Cancel the change of your email address", "account")
	pv.Data = emailConfirmData{Token: r.URL.Query().Get("token")}
	p.render(w, r, http.StatusOK, "email_cancel", pv)
}

func (p *Pages) emailCancelSubmit(w http.ResponseWriter, r *http.Request, v *visitor) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	if _, err := p.flows.CancelEmailChange(r.Context(), p.client(r), token); err != nil {
		msg, status, ok := p.errorMessage(err)
		if !ok {
			p.fail(w, r, err)
			return
		}
		if errors.Is(err, account.ErrInvalidEmailChangeToken) {
			msg = "This cancellation link is invalid, used or expired: the change was cancelled, confirmed or has run out already."
		}
		pv := p.page(w, r, v, "Cancel the change of your email address", "account")
		pv.Error, pv.Invalid = msg, "token"
		pv.Data = emailConfirmData{}
		p.render(w, r, status, "email_cancel", pv)
		return
	}
	p.setFlash(w, "email_change_cancelled")
	if v.signedIn() {
		p.redirect(w, r, "/account")
		return
	}
	p.redirect(w, r, "/login")
}
