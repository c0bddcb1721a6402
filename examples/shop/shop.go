package main

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/sessionhttp"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows the shop's own stylesheet and nothing else:
// no script at all, no inline style, forms only to the shop itself.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// shop is the web shop: a catalogue, a cart kept in the session's data,
// and accounts. Sessions (anonymous ones too) come from sessiond's
// middleware; passwords are checked by account.Service.
type shop struct {
	sessions *sessionhttp.Sessions
	accounts *account.Service
	log      *slog.Logger
	pages    map[string]*template.Template
	// attempts limits sign-ins and registrations per client address.
	attempts *addrLimiter
}

// newShop returns the shop over sessions and accounts, with its pages
// parsed and the attempt limit on the wall clock.
func newShop(sessions *sessionhttp.Sessions, accounts *account.Service, log *slog.Logger) (*shop, error) {
	s := &shop{sessions: sessions, accounts: accounts, log: log, pages: map[string]*template.Template{},
		attempts: newAddrLimiter(time.Now)}
	funcs := template.FuncMap{"money": money}
	for _, name := range []string{"catalogue", "signin", "register", "problem"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		s.pages[name] = t
	}
	return s, nil
}

// handler returns the shop's routes behind, from the outside in: the
// security headers, the cross-origin check of state changes, and the
// session middleware.
func (s *shop) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.cataloguePage)
	mux.HandleFunc("POST /cart", s.cartSubmit)
	mux.HandleFunc("GET /signin", s.signInPage)
	mux.HandleFunc("POST /signin", s.signInSubmit)
	mux.HandleFunc("GET /register", s.registerPage)
	mux.HandleFunc("POST /register", s.registerSubmit)
	mux.HandleFunc("POST /signout", s.signOutSubmit)
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.problem(w, r, http.StatusForbidden, "This request came from another site, so it was refused.")
	}))
	return securityHeaders(cop.Handler(s.sessions.Middleware(mux)))
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store") // pages show a cart and a user
		}
		next.ServeHTTP(w, r)
	})
}

// view is what every page template gets.
type view struct {
	Title string
	// Nav names the page for the navigation: "catalogue", "signin" or
	// "register".
	Nav string
	// Email is the signed-in user's, "" for an anonymous visitor.
	Email string
	// FormToken goes into every form as formField.
	FormToken string
	// Error, when set, says what went wrong with the form just posted.
	Error string

	Products []product
	Cart     cartView
	// Fields of a form posted again after an error.
	FormEmail string
	Remember  bool
}

// newView prepares the view of a page: the signed-in user, if any, and a
// form token.
func (s *shop) newView(w http.ResponseWriter, r *http.Request, title, nav string) (*view, error) {
	v := &view{Title: title, Nav: nav, FormToken: formToken(w, r)}
	if id, ok := sessionhttp.UserID(r.Context()); ok {
		u, err := s.accounts.User(r.Context(), id)
		switch {
		case err == nil:
			v.Email = u.Email
		case !errors.Is(err, account.ErrUserNotFound): // a deleted account shows as nobody
			return nil, err
		}
	}
	return v, nil
}

// render writes page with status. The page is rendered in full first, so
// that a template error gives a clean 500 and not half a page.
func (s *shop) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		s.log.ErrorContext(r.Context(), "rendering a page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// problem answers with a page that says what went wrong and changes
// nothing.
func (s *shop) problem(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "problem", &view{Title: http.StatusText(status), Nav: "problem", Error: msg})
}

// fail answers a request that failed below the shop (the database, in
// practice). The details go to the log, never to the visitor.
func (s *shop) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.log.ErrorContext(r.Context(), "request failed", "path", r.URL.Path, "err", err)
	s.problem(w, r, http.StatusServiceUnavailable, "Something went wrong on our side. Please try again in a moment.")
}

// badForm answers a post that failed checkForm.
func (s *shop) badForm(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errFormToken):
		s.problem(w, r, http.StatusForbidden, "This form has expired. Go back, reload the page and try again.")
	case errors.Is(err, errFormTooLarge):
		s.problem(w, r, http.StatusRequestEntityTooLarge, "The form is too large.")
	default:
		s.problem(w, r, http.StatusBadRequest, "The form could not be read.")
	}
}

func seeOther(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// loadCart returns the visitor's cart: empty for a visitor without a
// session.
func (s *shop) loadCart(r *http.Request) (cart, error) {
	raw, _, err := s.sessions.Get(r, cartKey)
	if errors.Is(err, sessiond.ErrNotFound) { // the session ended since the middleware saw it
		return cart{}, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeCart(raw), nil
}

func (s *shop) cataloguePage(w http.ResponseWriter, r *http.Request) {
	c, err := s.loadCart(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.newView(w, r, "Shop", "catalogue")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.Products, v.Cart = catalogue, c.view()
	s.render(w, r, http.StatusOK, "catalogue", v)
}

// cartSubmit changes the cart: action "add" or "remove" with a product,
// or "empty". A visitor without a session gets an anonymous one with the
// first thing they add.
func (s *shop) cartSubmit(w http.ResponseWriter, r *http.Request) {
	if err := checkForm(w, r); err != nil {
		s.badForm(w, r, err)
		return
	}
	action, id := r.PostFormValue("action"), r.PostFormValue("product")
	if action != "add" && action != "remove" && action != "empty" {
		s.problem(w, r, http.StatusBadRequest, "That is not something a cart can do.")
		return
	}
	if _, ok := productByID(id); !ok && action != "empty" {
		s.problem(w, r, http.StatusBadRequest, "The shop has no product "+strconv.Quote(id)+".")
		return
	}
	c, err := s.loadCart(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	switch action {
	case "add":
		c[id] = min(c[id]+1, maxQuantity)
	case "remove":
		delete(c, id)
	case "empty":
		clear(c)
	}
	if len(c) == 0 {
		err = s.sessions.Delete(r, cartKey) // no session: nothing to do, and none is started
	} else {
		err = s.sessions.Put(w, r, cartKey, c.encode())
	}
	if err != nil && !errors.Is(err, sessiond.ErrNotFound) {
		s.fail(w, r, err)
		return
	}
	seeOther(w, r, "/")
}

func (s *shop) signInPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := sessionhttp.UserID(r.Context()); ok {
		seeOther(w, r, "/")
		return
	}
	s.showForm(w, r, http.StatusOK, "signin", "", "")
}

func (s *shop) registerPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := sessionhttp.UserID(r.Context()); ok {
		seeOther(w, r, "/")
		return
	}
	s.showForm(w, r, http.StatusOK, "register", "", "")
}

// showForm renders the sign-in or registration page, after a failed post
// with its message and the email and Remember Me as they were posted (the
// password is never sent back).
func (s *shop) showForm(w http.ResponseWriter, r *http.Request, status int, page, email, msg string) {
	title := map[string]string{"signin": "Sign in", "register": "Create an account"}[page]
	v, err := s.newView(w, r, title, page)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v.FormEmail, v.Remember, v.Error = email, r.PostFormValue("remember") != "", msg
	s.render(w, r, status, page, v)
}

func (s *shop) signInSubmit(w http.ResponseWriter, r *http.Request) {
	if err := checkForm(w, r); err != nil {
		s.badForm(w, r, err)
		return
	}
	email := r.PostFormValue("email")
	if !s.allowAttempt(w, r, "signin", email) {
		return
	}
	u, err := s.accounts.Authenticate(r.Context(), email, r.PostFormValue("password"))
	var locked *account.LockedError
	switch {
	case errors.Is(err, account.ErrInvalidCredentials):
		s.showForm(w, r, http.StatusUnauthorized, "signin", email, "The email address or the password is wrong.")
		return
	case errors.As(err, &locked):
		wait := locked.RetryAfter(s.accounts.Now())
		setRetryAfter(w, wait)
		s.showForm(w, r, http.StatusTooManyRequests, "signin", email,
			"Too many wrong passwords: this account is locked for "+roughly(wait)+".")
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.signIn(w, r, u.ID)
}

func (s *shop) registerSubmit(w http.ResponseWriter, r *http.Request) {
	if err := checkForm(w, r); err != nil {
		s.badForm(w, r, err)
		return
	}
	email := r.PostFormValue("email")
	if !s.allowAttempt(w, r, "register", email) {
		return
	}
	u, err := s.accounts.Register(r.Context(), email, r.PostFormValue("password"), nil)
	switch {
	case errors.Is(err, account.ErrInvalidEmail):
		s.showForm(w, r, http.StatusBadRequest, "register", email, "That does not look like an email address.")
		return
	case errors.Is(err, account.ErrWeakPassword):
		reason := strings.TrimPrefix(err.Error(), account.ErrWeakPassword.Error()+": ")
		s.showForm(w, r, http.StatusBadRequest, "register", email, "Please choose another password: "+reason+".")
		return
	case errors.Is(err, account.ErrEmailTaken):
		s.showForm(w, r, http.StatusConflict, "register", email, "There is an account with that email address already: sign in instead.")
		return
	case err != nil:
		s.fail(w, r, err)
		return
	}
	s.signIn(w, r, u.ID)
}

// allowAttempt takes a sign-in or registration attempt from the request's
// address, or answers 429 with the form page and says false.
func (s *shop) allowAttempt(w http.ResponseWriter, r *http.Request, page, email string) bool {
	ok, wait := s.attempts.allow(clientAddr(r))
	if !ok {
		setRetryAfter(w, wait)
		s.showForm(w, r, http.StatusTooManyRequests, page, email,
			"Too many attempts from your network: please try again in "+roughly(wait)+".")
	}
	return ok
}

// setRetryAfter sets Retry-After to d in whole seconds, rounded up, at
// least 1.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((d+time.Second-1)/time.Second))))
}

// signIn starts a session for the user who just proved their password.
// sessiond ends the visitor's anonymous session, if any, and moves its
// data (the cart) to the new one, which has a new token: a token planted
// before the sign-in (session fixation) is worth nothing after it.
func (s *shop) signIn(w http.ResponseWriter, r *http.Request, userID string) {
	if _, err := s.sessions.Login(w, r, userID, r.PostFormValue("remember") != ""); err != nil {
		s.fail(w, r, err)
		return
	}
	newFormCookie(w)
	seeOther(w, r, "/")
}

// signOutSubmit ends the session, and with it the cart.
func (s *shop) signOutSubmit(w http.ResponseWriter, r *http.Request) {
	if err := checkForm(w, r); err != nil {
		s.badForm(w, r, err)
		return
	}
	if err := s.sessions.Logout(w, r); err != nil {
		s.fail(w, r, err)
		return
	}
	newFormCookie(w)
	seeOther(w, r, "/")
}

// roughly says d for people: "40 seconds", "2 minutes" (rounded up).
func roughly(d time.Duration) string {
	if d <= time.Minute {
		return strconv.Itoa(int((d+time.Second-1)/time.Second)) + " seconds"
	}
	return strconv.Itoa(int((d+time.Minute-1)/time.Minute)) + " minutes"
}
