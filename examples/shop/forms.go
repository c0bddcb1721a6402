package main

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
)

// Form tokens, the second defence against cross-site request forgery
// (the first is http.CrossOriginProtection, which refuses a cross-origin
// POST by its Sec-Fetch-Site or Origin header).
//
// Every form carries a token that only this browser's cookies can
// produce: the HMAC of a random value kept in its own cookie, which is
// HttpOnly (no script reads it), SameSite=Strict, and __Host- (no sibling
// subdomain can set it). The form cookie is separate from the session
// cookie because a visitor needs a token before there is any session (the
// first "Add to cart", the sign-in form), and it is replaced at sign-in
// and sign-out, so that a token of one visitor is not a token of the next.

const (
	formCookie = "__Host-shop-form"
	formField  = "form_token"
	// maxFormBytes caps the body of a form post; the shop's largest form
	// (registration) needs a few hundred bytes.
	maxFormBytes = 16 << 10
)

func formTokenOf(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("sessiond shop example, form token v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// formToken returns the token for the forms of the page being answered,
// first giving the browser a form cookie if it has none.
func formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(formCookie); err == nil && len(c.Value) >= 32 {
		return formTokenOf(c.Value)
	}
	return formTokenOf(newFormCookie(w))
}

// newFormCookie sets a fresh form cookie and returns its value. Tokens
// made from the old one stop working.
func newFormCookie(w http.ResponseWriter) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: v, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode})
	return v
}

// Errors of checkForm.
var (
	errBadForm      = errors.New("shop: the form could not be read")
	errFormTooLarge = errors.New("shop: the form is too large")
	errFormToken    = errors.New("shop: the form token is missing or does not match")
)

// checkForm parses a posted form of at most maxFormBytes and checks its
// token against the browser's form cookie: errFormTooLarge, errBadForm
// for a malformed body, errFormToken for a missing or wrong token.
func checkForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return errFormTooLarge
		}
		return errBadForm
	}
	got := r.PostFormValue(formField)
	c, err := r.Cookie(formCookie)
	if got == "" || err != nil || len(c.Value) < 32 ||
		subtle.ConstantTimeCompare([]byte(got), []byte(formTokenOf(c.Value))) != 1 {
		return errFormToken
	}
	return nil
}
