package web_test

import (
	"log/slog"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/server"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/web"
)

// wire builds the flows, the server and the pages over m and acc as
// cmd/sessiond does, with the pages mounted.
func wire(t testing.TB, m *sessiond.Manager, acc *account.Service, events audit.Store, log *slog.Logger, cookie sessionhttp.Cookie) (*server.Server, *flows.Flows) {
	t.Helper()
	f, err := flows.New(flows.Config{}, flows.Deps{Sessions: m, Accounts: acc, Audit: events, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Cookie: cookie},
		server.Deps{Flows: f, Sessions: m, Accounts: acc, Audit: events, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.New(web.Config{Cookie: cookie}, web.Deps{Flows: f, Sessions: m, Accounts: acc, Audit: events, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetPages(pages)
	return srv, f
}
