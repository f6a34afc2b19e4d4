// Package dashboardtest_test holds the dashboard's browser tests: headless
// Chromium (Debian's chromium package) driven by chromedp against a real
// demo. They are a package of their own so that their shared demo and
// browser, running across tests, do not meet the demo package's checks
// for leaked goroutines.
package dashboardtest_test

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/sim"
)

// waitDemo polls cond until it holds, failing the test after 30 s with
// explain's account.
func waitDemo(t *testing.T, what string, cond func() bool, explain func() string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s)", what, explain())
		}
	}
}

var (
	smallCampus = filepath.Join("..", "..", "examples", "campus", "small", "campus.yaml")
	codecs      = filepath.Join("..", "..", "examples", "campus", "codecs")
	start       = time.Date(2026, 5, 12, 7, 0, 0, 0, sim.Berlin)
)

// options are a demo of the small campus on ports the system chooses, at
// half an hour a second, with its users.
func options(t *testing.T) demo.Options {
	return demo.Options{MQTT: "127.0.0.1:0", WS: "127.0.0.1:0", HTTP: "127.0.0.1:0", NetworkServer: "127.0.0.1:0",
		Data: t.TempDir(), Campus: smallCampus, Codecs: codecs, Seed: 3, Start: start, Speed: 1800, RobotEvery: 30 * time.Second,
		StatsEvery: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler), Users: true}
}
