package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The contract: every request the suite makes to a sessiond listener and
// every answer it gets are checked against api/openapi.yaml with
// kin-openapi, at the transport (validating), so that a client generated
// from the document never meets an answer the document does not describe.
// TestMain fails the run when any request or answer did not match, listing
// them.
//
// What is not checked, on purpose:
//   - the routes in notAPI (pages, metrics, profiles): not API, not in the
//     document;
//   - the request, not its answer, of a request a test marks offContract:
//     malformed JSON, unknown fields, bad content types and the like, sent
//     to see them refused. Its answer is still checked.
//
// contract is set by TestMain before any test runs.
var contract *contractChecker

// contractChecker checks requests and answers against one document and
// keeps what did not match.
type contractChecker struct {
	router routers.Router
	opts   *openapi3filter.Options

	pending   sync.WaitGroup // checks still running
	answers   atomic.Int64   // answers checked against the document
	requests  atomic.Int64   // requests checked against the document
	skipped   atomic.Int64   // requests to notAPI routes
	listeners sync.Map       // host:port of each sessiond listener -> listenerPublic or listenerAdmin

	mu         sync.Mutex
	mismatches map[string]*mismatch // by what did not match
}

// mismatch is one way a request or answer differed from the document,
// with how often it was seen and the first time it was.
type mismatch struct {
	n       int
	example string
}

const (
	listenerPublic = "public"
	listenerAdmin  = "admin"
)

// notAPI are the routes the document does not describe, as ServeMux
// patterns: sessiond's own pages (package web), the Prometheus metrics
// (listed in the document for the route check, its body is not JSON) and
// the profiles of --admin-pprof. Requests to them are not checked.
var notAPI = func() *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range []string{
		"GET /metrics", "/debug/pprof/",
		// Pages (web.Pages.Patterns).
		"/{$}", "/login", "/register", "/logout", "/password/reset", "/password/reset/confirm",
		"/account", "/account/", "/email/change/confirm", "/email/change/cancel", "GET /static/",
	} {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	return mux
}()

func isNotAPI(r *http.Request) bool {
	_, pattern := notAPI.Handler(r)
	return pattern != ""
}

// newContractChecker reads and lints the OpenAPI document at file and
// builds its router.
func newContractChecker(file string) (*contractChecker, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(file)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", file, err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", file, err)
	}
	// The servers name the default listeners; the suite's servers listen
	// on free ports. Without servers the router matches paths on any host.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routing %s: %w", file, err)
	}
	opts := &openapi3filter.Options{
		// Tests send no or bad credentials to see them refused: whether
		// the server authenticates is theirs to check, not the document's.
		AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus:             true, // an undocumented status is a mismatch
		RejectWhenRequestBodyNotSpecified: true,
		MultiError:                        true,
		SkipSettingDefaults:               true,
	}
	opts.WithCustomSchemaErrorFunc(func(e *openapi3.SchemaError) string {
		return fmt.Sprintf("at /%s: %s", strings.Join(e.JSONPointer(), "/"), e.Reason)
	})
	return &contractChecker{router: router, opts: opts, mismatches: map[string]*mismatch{}}, nil
}

// addListener tells the checker that base (a URL) is a sessiond listener
// of kind: only requests to sessiond listeners are checked (not those to a
// test's own servers), and each route only on the listener that serves it.
func (c *contractChecker) addListener(base, kind string) {
	if u, err := url.Parse(base); err == nil {
		c.listeners.Store(u.Host, kind)
	}
}

// removeListener forgets a listener; its port may go to another process.
func (c *contractChecker) removeListener(base string) {
	if u, err := url.Parse(base); err == nil {
		c.listeners.Delete(u.Host)
	}
}

func addListeners(s *Server) {
	contract.addListener(s.Pub, listenerPublic)
	contract.addListener(s.Admin, listenerAdmin)
}

func removeListeners(s *Server) {
	contract.removeListener(s.Pub)
	contract.removeListener(s.Admin)
}

// listenerOf is the listener that serves a documented path: the admin API,
// /readyz and /metrics on the admin listener, /healthz on both (""), the
// rest on the public one.
func listenerOf(path string) string {
	switch {
	case path == "/healthz":
		return ""
	case strings.HasPrefix(path, "/admin/"), path == "/readyz", path == "/metrics":
		return listenerAdmin
	}
	return listenerPublic
}

// report waits for the checks still running and returns what did not
// match, one line each; none when everything did.
func (c *contractChecker) report() []string {
	c.pending.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	lines := make([]string, 0, len(c.mismatches))
	for what, m := range c.mismatches {
		lines = append(lines, fmt.Sprintf("%s (%d×; first %s)", what, m.n, m.example))
	}
	sort.Strings(lines)
	return lines
}

type offContractKey struct{}

type testNameKey struct{}

// offContract marks a request that breaks the document on purpose (why
// says how): its answer is checked, the request is not.
func offContract(why string) reqOpt {
	return func(r *http.Request) { *r = *r.WithContext(context.WithValue(r.Context(), offContractKey{}, why)) }
}

// validating wraps next so that each request to a sessiond listener and
// its answer are checked against the document. The answer is read whole
// (and handed on as read); the checks run beside the caller, so they add
// nothing to the latencies tests measure.
func validating(next http.RoundTripper) http.RoundTripper {
	return &validatingTransport{next: next}
}

type validatingTransport struct {
	next    http.RoundTripper
	checker *contractChecker // nil: the suite's, contract
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := v.checker
	if c == nil {
		c = contract
	}
	var kind any
	ok := false
	if c != nil {
		kind, ok = c.listeners.Load(req.URL.Host)
	}
	if !ok {
		return v.next.RoundTrip(req) // not sessiond: a test's own server
	}
	if isNotAPI(req) {
		c.skipped.Add(1)
		return v.next.RoundTrip(req)
	}
	// The body as sent, read from a copy: a RoundTripper must not
	// consume what it does not send. A body with no copy (a stream) is
	// not checked.
	var reqBody []byte
	bodyKnown := req.Body == nil || req.Body == http.NoBody
	if !bodyKnown && req.GetBody != nil {
		if rc, err := req.GetBody(); err == nil {
			reqBody, err = io.ReadAll(rc)
			rc.Close()
			bodyKnown = err == nil
		}
	}
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err // cut off: no answer to check
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))

	ex := exchange{
		req: req.Clone(context.Background()), listener: kind.(string), bodyKnown: bodyKnown,
		status: resp.StatusCode, header: resp.Header.Clone(), body: respBody,
	}
	ex.req.Body = io.NopCloser(bytes.NewReader(reqBody))
	ex.offContract, _ = req.Context().Value(offContractKey{}).(string)
	ex.test, _ = req.Context().Value(testNameKey{}).(string)
	c.pending.Add(1)
	go func() {
		defer c.pending.Done()
		c.check(ex)
	}()
	return resp, nil
}

// exchange is one request and its answer.
type exchange struct {
	req         *http.Request // its body as sent
	listener    string        // listenerPublic or listenerAdmin
	bodyKnown   bool          // false: the request body was a stream, not checked
	offContract string        // why the request breaks the document on purpose; "" when it does not
	test        string        // the test that made it, when known
	status      int
	header      http.Header
	body        []byte
}

// check checks one request and its answer against the document and
// records what does not match.
func (c *contractChecker) check(ex exchange) {
	where := ex.req.Method + " " + ex.req.URL.Path
	example := func() string {
		b := randomText.ReplaceAllString(strings.TrimSpace(string(ex.body)), "…")
		if len(b) > 160 {
			b = b[:160] + "…"
		}
		test := ex.test
		if test == "" {
			test = "(no test name)"
		}
		return fmt.Sprintf("%s: %s -> %d %s", test, where, ex.status, b)
	}
	route, params, err := c.router.FindRoute(ex.req)
	if err == nil {
		if l := listenerOf(route.Path); l != "" && l != ex.listener {
			err = fmt.Errorf("served on the %s listener, not the %s one", l, ex.listener)
		}
	}
	if err != nil {
		// A generated client cannot make this request: only a test that
		// means to may.
		if ex.offContract == "" {
			c.record(fmt.Sprintf("%s: not in the document (%v)", where, err), example())
		}
		return
	}
	op := ex.req.Method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{Request: ex.req, PathParams: params, Route: route, Options: c.opts}
	if ex.offContract == "" {
		opts := *c.opts
		opts.ExcludeRequestBody = !ex.bodyKnown
		in.Options = &opts
		c.requests.Add(1)
		for _, e := range flatten(openapi3filter.ValidateRequest(context.Background(), in)) {
			c.record(fmt.Sprintf("%s: request: %s", op, e), example())
		}
		in.Options = c.opts
	}
	c.answers.Add(1)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: ex.status, Header: ex.header, Options: c.opts,
	}
	out.SetBodyBytes(ex.body)
	for _, e := range flatten(openapi3filter.ValidateResponse(context.Background(), out)) {
		c.record(fmt.Sprintf("%s -> %d: %s", op, ex.status, e), example())
	}
}

// flatten splits kin-openapi's multi-errors into one line each.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	var multi openapi3.MultiError
	if errors.As(err, &multi) {
		var out []string
		for _, e := range multi {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []string{strings.Join(strings.Fields(err.Error()), " ")}
}

func (c *contractChecker) record(what, example string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.mismatches[what]
	if m == nil {
		m = &mismatch{example: example}
		c.mismatches[what] = m
	}
	m.n++
}
