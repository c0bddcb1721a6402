package web_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoServerDependency: the pages run the flows themselves; they do not
// reach into the JSON API's package (issue 13: no service locator).
func TestNoServerDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/sessiond/sessiond/server" {
			t.Fatal("package web depends on package server")
		}
	}
}
