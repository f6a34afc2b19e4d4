package main

import (
	"os"
	"testing"

	"github.com/citymesh/citymesh/internal/testproc"
)

// TestMain removes the citymesh binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	testproc.Cleanup()
	os.Exit(code)
}
