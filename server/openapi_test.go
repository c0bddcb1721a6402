package server

import (
	"sort"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
)

// TestOpenAPIIsValid lints api/openapi.yaml: kin-openapi's loader reads
// it and validates it against the OpenAPI 3.0 rules, which also catches
// YAML that parses into something else than was meant (an unquoted
// description with a comma in a flow mapping becomes a stray key).
func TestOpenAPIIsValid(t *testing.T) {
	loadOpenAPI(t)
}

// loadOpenAPI reads api/openapi.yaml and fails the test unless it is a
// valid OpenAPI document.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("api/openapi.yaml: %v", err)
	}
	return doc
}

// TestOpenAPICoversEveryRoute fails when the server serves a route that
// api/openapi.yaml does not describe, or the file describes one that the
// server does not serve.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	documented := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	if len(documented) < 20 {
		t.Fatalf("read only %d operations from openapi.yaml; the reading is broken", len(documented))
	}
	s := newTestServer(t)
	public, admin := s.Routes()
	served := map[string]bool{}
	for _, r := range append(public, admin...) {
		served[r] = true
	}
	var missing, extra []string
	for r := range served {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for r := range documented {
		if !served[r] {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("served but not in api/openapi.yaml: %v", missing)
	}
	if len(extra) > 0 {
		t.Errorf("in api/openapi.yaml but not served: %v", extra)
	}
}

func newTestServer(t *testing.T) *Server {
	t.Helper()
	m, err := sessiond.NewManager(memstore.New(), sessiond.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := account.NewService(memstore.NewAccounts(), account.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := newServerWith(Config{}, testDeps{Sessions: m, Accounts: a})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
