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

// examplePatrol tracks the example patrol (examples/models/robot/track.csv)
// against the example route.
func examplePatrol(t testing.TB) (*Route, TrackReport) {
	t.Helper()
	rt := exampleRoute(t)
	f, err := os.Open(exampleDir + "track.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fixes, err := ReadTrackCSV(f)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Track(rt, fixes, TrackerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return rt, rep
}

// must fails the test on a setup error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// record files an anomaly and returns the incident id, failing the test
// if the book refuses it.
func record(t testing.TB, b *Book, a Anomaly) string {
	t.Helper()
	id, _, err := b.Record(a)
	must(t, err)
	return id
}
