// Package web is sessiond's own browser pages: sign-in with Remember Me,
// registration, password reset, the account page (profile, password,
// deletion, email), the list of signed-in devices and the security
// activity.
//
// The pages are server-rendered with html/template from files embedded in
// the binary, with one stylesheet and one small script (progressive
// enhancement only: every form works without JavaScript). They run on the
// public listener (server.Server.SetPages) and go through the same flows as
// the JSON API (package flows), so the same rules hold: the per-address
// limit, lockout, session fixation defence, Force Logout, the audit trail.
// They use the API's session cookie.
//
// Defences: every form is a POST carrying a synchronizer token (an HMAC of
// the visitor's session token, or of a pre-session cookie before there is
// a session), on top of the server's cross-origin check of Sec-Fetch-Site
// and Origin; every page is Cache-Control: no-store and has a strict
// Content-Security-Policy with no inline script or style.
package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/sessionhttp"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// contentSecurityPolicy of every page: resources from this origin only, no
// inline script or style, forms post only here, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Config is the pages' part of sessiond's configuration.
type Config struct {
	// Cookie is the session cookie, as the API sets it. Default as
	// sessionhttp.Cookie's.
	Cookie sessionhttp.Cookie
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// Deps are the collaborators of the pages.
type Deps struct {
	// Flows, Sessions and Accounts are required.
	Flows    *flows.Flows
	Sessions *sessiond.Manager
	Accounts *account.Service
	// Audit is the security-event trail the activity page lists. Default
	// nil: the page says none is kept.
	Audit audit.Store
	// Logger default slog.Default().
	Logger *slog.Logger
}

// Pages serves the browser pages. It implements server.Pages.
type Pages struct {
	cfg      Config
	flows    *flows.Flows
	sessions *sessiond.Manager
	accounts *account.Service
	audit    audit.Store // may be nil
	cookie   sessionhttp.Cookie
	log      *slog.Logger

	mux      *http.ServeMux
	patterns []string
	pages    map[string]*template.Template
	static   http.Handler
}

// New returns the pages. Mount them with server.Server.SetPages before
// serving.
func New(cfg Config, d Deps) (*Pages, error) {
	if d.Flows == nil || d.Sessions == nil || d.Accounts == nil {
		return nil, errors.New("web: New: Flows, Sessions and Accounts are required")
	}
	cfg.Cookie = cfg.Cookie.WithDefaults()
	p := &Pages{
		cfg:      cfg,
		flows:    d.Flows,
		sessions: d.Sessions,
		accounts: d.Accounts,
		audit:    d.Audit,
		cookie:   cfg.Cookie,
		log:      d.Logger,
		mux:      http.NewServeMux(),
		pages:    map[string]*template.Template{},
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if err := p.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, err
	}
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	for _, rt := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /{$}", p.anyone(p.loginPage)},
		{"GET /login", p.anyone(p.loginPage)},
		{"POST /login", p.anyone(p.loginSubmit)},
		{"GET /register", p.anyone(p.registerPage)},
		{"POST /register", p.anyone(p.form("/register", p.registerSubmit))},
		{"POST /logout", p.anyone(p.form("/account", p.logoutSubmit))},
		{"GET /password/reset", p.anyone(p.resetPage)},
		{"POST /password/reset", p.anyone(p.form("/password/reset", p.resetSubmit))},
		{"GET /password/reset/confirm", p.anyone(p.resetConfirmPage)},
		{"POST /password/reset/confirm", p.anyone(p.form("/password/reset/confirm", p.resetConfirmSubmit))},
		{"GET /account", p.user(p.accountPage)},
		{"POST /account/profile", p.user(p.form("/account", p.profileSubmit))},
		{"POST /account/password", p.user(p.form("/account", p.passwordSubmit))},
		{"POST /account/delete", p.user(p.form("/account", p.deleteSubmit))},
		{"POST /account/email", p.user(p.form("/account", p.emailSubmit))},
		{"GET /email/change/confirm", p.anyone(p.emailConfirmPage)},
		{"POST /email/change/confirm", p.anyone(p.form("/email/change/confirm", p.emailConfirmSubmit))},
		{"GET /email/change/cancel", p.anyone(p.emailCancelPage)},
		{"POST /email/change/cancel", p.anyone(p.form("/email/change/cancel", p.emailCancelSubmit))},
		{"GET /account/sessions", p.user(p.sessionsPage)},
		{"POST /account/sessions/revoke", p.user(p.form("/account/sessions", p.revokeSubmit))},
		{"POST /account/sessions/revoke-others", p.user(p.form("/account/sessions", p.revokeOthersSubmit))},
		{"GET /account/activity", p.user(p.activityPage)},
		{"GET /static/", p.serveStatic},
	} {
		p.mux.HandleFunc(rt.pattern, rt.h)
		p.patterns = append(p.patterns, rt.pattern)
	}
	return p, nil
}

// client describes the client of r for the flows.
func (p *Pages) client(r *http.Request) flows.Client {
	return flows.Client{Addr: sessionhttp.ClientAddr(r, p.cfg.TrustedProxies), UserAgent: r.UserAgent()}
}

// Patterns implements server.Pages.
func (p *Pages) Patterns() []string { return p.patterns }

// ServeHTTP implements http.Handler.
func (p *Pages) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.mux.ServeHTTP(w, r) }

func (p *Pages) serveStatic(w http.ResponseWriter, r *http.Request) {
	// Nothing personal in here; an hour's caching spares repeat loads.
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Header().Set("Content-Security-Policy", contentSecurityPolicy)
	p.static.ServeHTTP(w, r)
}

// visitor is who is asking: the request's active session (nil for none)
// and its user (nil for an anonymous session or none).
type visitor struct {
	session *sessiond.Session
	token   string
	user    *account.User
}

func (v *visitor) signedIn() bool { return v.user != nil }

// visit loads the visitor of r. A cookie that signs no one in is cleared;
// a store failure is returned.
func (p *Pages) visit(w http.ResponseWriter, r *http.Request) (*visitor, error) {
	v := &visitor{}
	tok, _ := p.cookie.Token(r, false)
	if tok == "" {
		return v, nil
	}
	sess, err := p.sessions.Validate(r.Context(), tok)
	if err == nil {
		err = p.flows.CheckClient(r.Context(), p.client(r), sess) // another browser: the session ends
	}
	switch {
	case sessiond.IsRejection(err):
		p.cookie.Clear(w)
		return v, nil
	case err != nil:
		return nil, err
	}
	v.session, v.token = sess, tok
	if sess.Anonymous() {
		return v, nil
	}
	u, err := p.accounts.User(r.Context(), sess.UserID)
	switch {
	case errors.Is(err, account.ErrUserNotFound):
		v.session, v.token = nil, "" // the account is gone
		p.cookie.Clear(w)
		return v, nil
	case err != nil:
		return nil, err
	}
	v.user = u
	return v, nil
}

// A page is a handler that knows its visitor.
type page func(w http.ResponseWriter, r *http.Request, v *visitor)

// anyone serves h to every visitor, signed in or not.
func (p *Pages) anyone(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := p.visit(w, r)
		if err != nil {
			p.fail(w, r, err)
			return
		}
		h(w, r, v)
	}
}

// user serves h to signed-in visitors and sends the others to sign in.
func (p *Pages) user(h page) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if v := p.requireUser(w, r); v != nil {
			h(w, r, v)
		}
	}
}

// form lets a form submission through to h only with a valid form token;
// otherwise the visitor is sent back to the form's page, back.
func (p *Pages) form(back string, h page) page {
	return func(w http.ResponseWriter, r *http.Request, v *visitor) {
		if !p.checkForm(r, v) {
			p.formExpired(w, r, back)
			return
		}
		h(w, r, v)
	}
}

// requireUser loads a signed-in visitor, or redirects to the sign-in page
// (which comes back here afterwards) and returns nil.
func (p *Pages) requireUser(w http.ResponseWriter, r *http.Request) *visitor {
	v, err := p.visit(w, r)
	if err != nil {
		p.fail(w, r, err)
		return nil
	}
	if !v.signedIn() {
		target := "/login"
		if next := safeNext(r.URL.Path); next != "" {
			target += "?next=" + next
		}
		p.redirect(w, r, target)
		return nil
	}
	return v
}

// nextPages are where a sign-in may send the visitor back to.
var nextPages = map[string]bool{"/account": true, "/account/sessions": true, "/account/activity": true}

// safeNext returns next when it is one of our own pages, else "": a
// sign-in never redirects to another site.
func safeNext(next string) string {
	if nextPages[next] {
		return next
	}
	return ""
}

func (p *Pages) redirect(w http.ResponseWriter, r *http.Request, target string) {
	setPageHeaders(w)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
}

// fail answers a request that failed below the pages: a store that is
// down, in practice. Details go to the log only.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	p.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
	p.render(w, r, http.StatusServiceUnavailable, "error", &view{Title: "Something went wrong"})
}

// CSRF tokens. A form carries a token that only this browser's cookies
// can produce: the HMAC of its session token, or, before it has a
// session, of a random pre-session cookie. Both cookies are HttpOnly, so
// neither another site nor a script of this one can read them.

const csrfField = "csrf"

func csrfToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("sessiond web form v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// preSessionCookie is the name of the cookie that keys the tokens of
// visitors without a session.
func (p *Pages) preSessionCookie() string {
	if p.cookie.Insecure {
		return "sessiond-csrf"
	}
	return "__Host-sessiond-csrf"
}

// formToken returns the token for the forms of a page for v, setting the
// pre-session cookie when it needs one.
func (p *Pages) formToken(w http.ResponseWriter, r *http.Request, v *visitor) string {
	if v.token != "" {
		return csrfToken(v.token)
	}
	if c, err := r.Cookie(p.preSessionCookie()); err == nil && len(c.Value) >= 32 {
		return csrfToken(c.Value)
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	val := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: p.preSessionCookie(), Value: val, Path: "/",
		Secure: !p.cookie.Insecure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	r.AddCookie(&http.Cookie{Name: p.preSessionCookie(), Value: val}) // for a second call in this request
	return csrfToken(val)
}

// checkForm parses the form and checks its token against the visitor's
// session and pre-session cookie: either may have made the page (a cart
// started in another tab gives the visitor a session between the page and
// the post).
func (p *Pages) checkForm(r *http.Request, v *visitor) bool {
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return false
	}
	got := []byte(r.PostFormValue(csrfField))
	if len(got) == 0 {
		return false
	}
	ok := false
	if v.token != "" && subtle.ConstantTimeCompare(got, []byte(csrfToken(v.token))) == 1 {
		ok = true
	}
	if c, err := r.Cookie(p.preSessionCookie()); err == nil && len(c.Value) >= 32 &&
		subtle.ConstantTimeCompare(got, []byte(csrfToken(c.Value))) == 1 {
		ok = true
	}
	return ok
}

// Flash messages: a short code in a cookie, read once by the next page
// (POST, redirect, GET).

func (p *Pages) flashCookie() string {
	if p.cookie.Insecure {
		return "sessiond-flash"
	}
	return "__Host-sessiond-flash"
}

func (p *Pages) setFlash(w http.ResponseWriter, code string) {
	http.SetCookie(w, &http.Cookie{Name: p.flashCookie(), Value: code, Path: "/", MaxAge: 60,
		Secure: !p.cookie.Insecure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// takeFlash returns the message of the flash cookie and clears it.
func (p *Pages) takeFlash(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(p.flashCookie())
	if err != nil {
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: p.flashCookie(), Path: "/", MaxAge: -1,
		Secure: !p.cookie.Insecure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return flashText(c.Value)
}

// flashText turns a flash code ("password_changed.2") into its message;
// unknown codes say nothing.
func flashText(code string) string {
	name, arg, _ := strings.Cut(code, ".")
	switch name {
	case "signed_out":
		return "You are signed out."
	case "signed_in":
		return "You are signed in."
	case "registered":
		return "Welcome! Your account is ready and you are signed in."
	case "profile_saved":
		return "Your profile was saved."
	case "password_changed":
		n := atoi(arg)
		return fmt.Sprintf("Your password was changed. %s signed out.", countWere(n, "other session"))
	case "password_reset":
		return "Your password was reset and you are signed in. Every other session was signed out."
	case "session_revoked":
		return "That session was signed out."
	case "others_revoked":
		return fmt.Sprintf("%s signed out.", countWere(atoi(arg), "other session"))
	case "account_deleted":
		return "Your account was deleted."
	case "email_change_sent":
		return "A confirmation link is on its way to your new address. Your email address changes when you open it."
	case "email_changed":
		return "Your email address was changed. Every other session was signed out."
	case "email_change_cancelled":
		return "The change of your email address was cancelled. If you did not ask for it, change your password now."
	case "email_changed_signin":
		return "Your email address was changed. Sign in with the new one."
	case "reset_sent":
		return "If an account exists for that email address, a link to reset its password is on its way."
	case "form_expired":
		return "That form had expired. Please try again."
	}
	return ""
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' || n > 1e6 {
			return n
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// countWere is "1 other session was" / "3 other sessions were" / "No
// other sessions were".
func countWere(n int, noun string) string {
	switch n {
	case 0:
		return "No " + noun + "s were"
	case 1:
		return "1 " + noun + " was"
	}
	return fmt.Sprintf("%d %ss were", n, noun)
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string // the current section, for aria-current
	User    *account.User
	CSRF    string
	Flash   string
	Error   string
	Now     time.Time
	Data    any
	Form    map[string]string // values to put back into a form after an error
	Invalid string            // the name of the field the error is about
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	t := p.pages[name]
	if t == nil {
		panic("web: no template " + name)
	}
	if v.Now.IsZero() {
		v.Now = p.sessions.Now()
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.ErrorContext(r.Context(), "rendering a page", "page", name, "err", err)
		setPageHeaders(w)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(buf.String()))
}

// page prepares the view of a page for v: the CSRF token, the flash.
func (p *Pages) page(w http.ResponseWriter, r *http.Request, v *visitor, title, nav string) *view {
	return &view{Title: title, Nav: nav, User: v.user, CSRF: p.formToken(w, r, v), Flash: p.takeFlash(w, r)}
}
