package memstore_test

import (
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessiond.Store { return memstore.New() })
}

func TestConformanceCached(t *testing.T) {
	storetest.RunCached(t, func(t *testing.T) sessiond.Store { return memstore.New() })
}
