package store_test

import (
	"testing"

	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) *store.Store { return store.NewMemory() })
}
