package robot

import (
	"os"
	"testing"
	"time"
)

const exampleDir = "../examples/models/robot/"

func exampleRoute(t testing.TB) *Route {
	t.Helper()
	f, err := os.Open(exampleDir + "route.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rt, err := ReadRoute(f)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}
