package sqlite_test

import (
	"testing"

	"github.com/sessiond/sessiond/audit"
	"github.com/sessiond/sessiond/storetest"
)

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) audit.Store { return openTest(t).Audit() })
}
