package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// The contract: every request the suite makes and every answer it gets
// are checked against api/openapi.yaml with kin-openapi, at the transport
// (validating), so that a client generated from the document never meets
// an answer the document does not describe. TestMain fails the run when
// any request or answer did not match, listing them.
//
// What is not checked, on purpose:
//   - the routes in notAPI (pages, metrics, profiles): not API, not in the
//     document;
//   - the request, not its answer, of a request a test marks offContract:
//     malformed JSON, unknown fields, bad content types and the like, sent
//     to see them refused. Its answer is still checked.
var contract struct {
	router routers.Router
	opts   *openapi3filter.Options

	pending   sync.WaitGroup // checks still running
	validated atomic.Int64   // answers checked against the document
	requests  atomic.Int64   // requests checked against the document
	skipped   atomic.Int64   // requests to notAPI routes

	listeners sync.Map // host:port of each sessiond listener -> listenerPublic or listenerAdmin

	mu         sync.Mutex
	mismatches map[string]*mismatch // by what did not match
}

const (
	listenerPublic = "public"
	listenerAdmin  = "admin"
)

// addListeners tells the checks where s listens: only requests to a
// sessiond listener are checked (not those to a test's own servers), and
// each route only on the listener that serves it.
func addListeners(s *Server) {
	for base, kind := range map[string]string{s.Pub: listenerPublic, s.Admin: listenerAdmin} {
		if u, err := url.Parse(base); err == nil {
			contract.listeners.Store(u.Host, kind)
		}
	}
}

// removeListeners forgets the listeners of a stopped server.
func removeListeners(s *Server) {
	for _, base := range []string{s.Pub, s.Admin} {
		if u, err := url.Parse(base); err == nil {
			contract.listeners.Delete(u.Host)
		}
	}
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

// mismatch is one way a request or answer differed from the document,
// with how often it was seen and the first time it was.
type mismatch struct {
	n       int
	example string
}

// notAPI are the routes the document does not describe, as ServeMux
// patterns: sessiond's own pages (package web), the Prometheus metrics and
// the profiles of --admin-pprof. Requests to them are not checked.
var notAPI = func() *http.ServeMux {
	mux := http.NewServeMux()
	for _, p := range []string{
		"GET /metrics", "/debug/pprof/",
		// Pages (web.Pages.Patterns).
		"/{$}", "/login", "/register", "/logout", "/password/reset", "/password/reset/confirm",
		"/account", "/account/", "/email/change/confirm", "/shop", "/shop/", "GET /static/",
	} {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	return mux
}()

func isNotAPI(r *http.Request) bool {
	_, pattern := notAPI.Handler(r)
	return pattern != ""
}

// loadContract reads and lints the document and builds its router.
func loadContract(root string) error {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(filepath.Join(root, "api", "openapi.yaml"))
	if err != nil {
		return fmt.Errorf("loading api/openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return fmt.Errorf("api/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	// The servers name the default listeners; the suite's servers listen
	// on free ports. Without servers the router matches paths on any host.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return fmt.Errorf("routing api/openapi.yaml: %w", err)
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
	contract.router, contract.opts = router, opts
	contract.mismatches = map[string]*mismatch{}
	return nil
}

// contractReport waits for the checks still running and returns what
// did not match, one line each; none when everything did.
func contractReport() []string {
	contract.pending.Wait()
	contract.mu.Lock()
	defer contract.mu.Unlock()
	lines := make([]string, 0, len(contract.mismatches))
	for what, m := range contract.mismatches {
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
	return func(r *http.Request) { *r = *r.WithContext(offContractContext(r.Context(), why)) }
}

// offContractContext is offContract for requests made without do.
func offContractContext(ctx context.Context, why string) context.Context {
	return context.WithValue(ctx, offContractKey{}, why)
}

// validating wraps next so that each request and its answer are checked
// against the document. The answer is read whole (and handed on as read);
// the checks run beside the caller, so they add nothing to the latency
// tests measure.
func validating(next http.RoundTripper) http.RoundTripper {
	return &validatingTransport{next: next}
}

type validatingTransport struct{ next http.RoundTripper }

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	kind, ok := contract.listeners.Load(req.URL.Host)
	if contract.router == nil || !ok {
		return v.next.RoundTrip(req) // not sessiond: a test's own server
	}
	if isNotAPI(req) {
		contract.skipped.Add(1)
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

	check := req.Clone(context.Background())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	why, _ := req.Context().Value(offContractKey{}).(string)
	test, _ := req.Context().Value(testNameKey{}).(string)
	status, header := resp.StatusCode, resp.Header.Clone()
	contract.pending.Add(1)
	go func() {
		defer contract.pending.Done()
		checkExchange(check, kind.(string), bodyKnown, why, test, status, header, respBody)
	}()
	return resp, nil
}

// checkExchange checks one request and its answer against the document
// and records what does not match.
func checkExchange(req *http.Request, listener string, bodyKnown bool, offContractWhy, test string, status int, header http.Header, body []byte) {
	where := req.Method + " " + req.URL.Path
	example := func() string {
		b := randomText.ReplaceAllString(strings.TrimSpace(string(body)), "…")
		if len(b) > 160 {
			b = b[:160] + "…"
		}
		if test == "" {
			test = "(no test name)"
		}
		return fmt.Sprintf("%s: %s -> %d %s", test, where, status, b)
	}
	route, params, err := contract.router.FindRoute(req)
	if err == nil {
		if l := listenerOf(route.Path); l != "" && l != listener {
			err = fmt.Errorf("served on the %s listener, not the %s one", l, listener)
		}
	}
	if err != nil {
		// A generated client cannot make this request: only a test that
		// means to may.
		if offContractWhy == "" {
			record(fmt.Sprintf("%s: not in the document (%v)", where, err), example())
		}
		return
	}
	op := req.Method + " " + route.Path
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: contract.opts}
	if offContractWhy == "" {
		opts := *contract.opts
		opts.ExcludeRequestBody = !bodyKnown
		in.Options = &opts
		contract.requests.Add(1)
		for _, e := range flatten(openapi3filter.ValidateRequest(context.Background(), in)) {
			record(fmt.Sprintf("%s: request: %s", op, e), example())
		}
		in.Options = contract.opts
	}
	contract.validated.Add(1)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header, Options: contract.opts,
	}
	out.SetBodyBytes(body)
	for _, e := range flatten(openapi3filter.ValidateResponse(context.Background(), out)) {
		record(fmt.Sprintf("%s -> %d: %s", op, status, e), example())
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

func record(what, example string) {
	contract.mu.Lock()
	defer contract.mu.Unlock()
	m := contract.mismatches[what]
	if m == nil {
		m = &mismatch{example: example}
		contract.mismatches[what] = m
	}
	m.n++
}
