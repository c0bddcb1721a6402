package sqlite_test

import (
	"testing"

	"github.com/sessiond/sessiond/storetest"
	"github.com/sessiond/sessiond/webhook"
)

func TestWebhookOutboxConformance(t *testing.T) {
	storetest.RunWebhookOutbox(t, func(t *testing.T) storetest.WebhookBackend { return openTest(t) })
}

func TestNotificationQueueConformance(t *testing.T) {
	storetest.RunQueue(t, func(t *testing.T) webhook.Queue { return openTest(t).Notifications() })
}
