package server

import (
	"log/slog"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/flows"
	"github.com/sessiond/sessiond/notify"
)

// testDeps are what the tests build a Server from: the collaborators of
// the flows and of the server, and the flows' settings.
type testDeps struct {
	Sessions   *sessiond.Manager
	Accounts   *account.Service
	Audit      audit.Store
	Notifier   notify.Notifier
	Logger     *slog.Logger
	ClientSide *flows.ClientSide
	Flows      flows.Config
}

// newServerWith wires the flows and a Server as cmd/sessiond does.
func newServerWith(cfg Config, d testDeps) (*Server, error) {
	f, err := flows.New(d.Flows, flows.Deps{Sessions: d.Sessions, Accounts: d.Accounts, Notifier: d.Notifier,
		Audit: d.Audit, Logger: d.Logger, ClientSide: d.ClientSide})
	if err != nil {
		return nil, err
	}
	return New(cfg, Deps{Flows: f, Sessions: d.Sessions, Accounts: d.Accounts, Audit: d.Audit, Logger: d.Logger})
}
