package sqlite_test

import (
	"testing"

	"github.com/sessiond/sessiond/storetest"
)

func TestWebhookOutboxConformance(t *testing.T) {
	storetest.RunWebhookOutbox(t, func(t *testing.T) storetest.WebhookBackend { return openTest(t) })
}
