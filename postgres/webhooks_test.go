package postgres_test

import (
	"testing"

	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/storetest"
)

func TestWebhookOutboxConformance(t *testing.T) {
	storetest.RunWebhookOutbox(t, func(t *testing.T) storetest.WebhookBackend { return postgres.OpenTest(t) })
}
