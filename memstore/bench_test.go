package memstore_test

import (
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

func BenchmarkManager(b *testing.B) {
	storetest.Bench(b, func(*testing.B) sessiond.Store { return memstore.New() })
}
