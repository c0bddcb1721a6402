package postgres_test

import (
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/storetest"
)

// The conformance suites, each subtest on a store in a schema of its own
// (dropped when it ends), on the server of SESSIOND_TEST_POSTGRES_URL
// (default postgres://root@127.0.0.1:5432/test?sslmode=disable). Without a
// server they are skipped, unless SESSIOND_REQUIRE_BACKENDS=1.

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessiond.Store { return postgres.OpenTest(t) })
}

func TestAccountsConformance(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) account.Store { return postgres.OpenTest(t) })
}

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) audit.Store { return postgres.OpenTest(t).Audit() })
}

func TestKeysConformance(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) accesstoken.KeyStore { return postgres.OpenTest(t).Keys() })
}
