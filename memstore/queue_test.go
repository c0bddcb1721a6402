package memstore_test

import (
	"testing"

	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
	"github.com/sessiond/sessiond/webhook"
)

func TestQueueConformance(t *testing.T) {
	storetest.RunQueue(t, func(*testing.T) webhook.Queue { return &memstore.Queue{} })
}
