package server

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
)

// TestOpenAPICoversEveryRoute fails when the server serves a route that
// api/openapi.yaml does not describe, or the file describes one that the
// server does not serve.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	raw, err := os.ReadFile("../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	pathRE := regexp.MustCompile(`^  (/\S*):\s*$`)
	methodRE := regexp.MustCompile(`^    (get|put|post|patch|delete|head|options):\s*$`)
	var path string
	inPaths := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && len(line) > 0 && line[0] != ' ':
			inPaths = false
		case inPaths && pathRE.MatchString(line):
			path = pathRE.FindStringSubmatch(line)[1]
		case inPaths && methodRE.MatchString(line):
			documented[strings.ToUpper(methodRE.FindStringSubmatch(line)[1])+" "+path] = true
		}
	}
	if len(documented) < 20 {
		t.Fatalf("parsed only %d operations from openapi.yaml; the parser is broken", len(documented))
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
