package e2e_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestContractChecker holds the checker itself to account: against a stand-
// in server whose answers are known, it reports the undocumented status,
// the answer of the wrong shape, the request the document forbids and the
// route on the wrong listener, and nothing for a documented exchange, an
// offContract request with a documented answer, the pages and the metrics,
// or a server that is not sessiond.
func TestContractChecker(t *testing.T) {
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	c, err := newContractChecker(filepath.Join(root, "api", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	answer := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
	const badField = `{"error":{"code":"unknown_field","message":"m"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("answer") {
		case "teapot":
			answer(w, http.StatusTeapot, `{"error":{"code":"teapot","message":"m"}}`)
		case "shapeless":
			answer(w, http.StatusOK, `{"nope":1}`)
		case "400":
			answer(w, http.StatusBadRequest, badField)
		default:
			answer(w, http.StatusOK, `{"status":"ok"}`)
		}
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusTeapot, `{}`)
	}))
	defer other.Close()
	c.addListener(srv.URL, listenerPublic)
	client := &http.Client{Transport: &validatingTransport{next: http.DefaultTransport, checker: c}}
	send := func(method, path, body string, opts ...reqOpt) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for _, o := range opts {
			o(req)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}

	send("GET", srv.URL+"/healthz", "")                                                         // documented
	send("GET", srv.URL+"/healthz?answer=teapot", "")                                           // 418: not documented
	send("GET", srv.URL+"/v1/session?answer=shapeless", "")                                     // no session, no user
	send("POST", srv.URL+"/v1/password/reset?answer=400", `{"email":"a@example.com","x":1}`)    // unknown field
	send("POST", srv.URL+"/v1/password/reset?answer=400", `{"x":1}`, offContract("on purpose")) // marked: answer only
	send("GET", srv.URL+"/admin/v1/users/x?answer=400", "")                                     // admin route, public listener
	send("GET", srv.URL+"/metrics?answer=teapot", "")                                           // not API
	send("GET", srv.URL+"/account?answer=teapot", "")                                           // a page
	send("GET", other.URL+"/healthz", "")                                                       // not sessiond

	got := strings.Join(c.report(), "\n")
	for _, want := range []string{
		"GET /healthz -> 418: status is not supported",
		`GET /v1/session -> 200: at /session: property "session" is missing`,
		`POST /v1/password/reset: request: at /: property "x" is unsupported`,
		"GET /admin/v1/users/x: not in the document (served on the admin listener, not the public one)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no mismatch %q; got:\n%s", want, got)
		}
	}
	if n := len(c.report()); n != 5 { // the four above, and /v1/session's missing user
		t.Errorf("%d mismatches, want 5:\n%s", n, got)
	}
	if a, r, s := c.answers.Load(), c.requests.Load(), c.skipped.Load(); a != 5 || r != 4 || s != 2 {
		t.Errorf("%d answers, %d requests checked and %d skipped, want 5, 4 and 2", a, r, s)
	}
}
