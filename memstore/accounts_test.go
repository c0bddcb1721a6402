package memstore_test

import (
	"testing"

	"github.com/sessiond/sessiond/accesstoken"
	"github.com/sessiond/sessiond/account"
	"github.com/sessiond/sessiond/memstore"
	"github.com/sessiond/sessiond/storetest"
)

func TestAccountsConformance(t *testing.T) {
	storetest.RunAccounts(t, func(t *testing.T) account.Store { return memstore.NewAccounts() })
}

func TestKeysConformance(t *testing.T) {
	storetest.RunKeys(t, func(t *testing.T) accesstoken.KeyStore { return memstore.NewKeys() })
}
