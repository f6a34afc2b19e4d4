package live

import (
	"testing"
)

// Helpers of the package's tests for its external tests (mesh_test.go,
// which imports node: package node may import this one).
var (
	LoadCampus  = loadCampus
	Collect     = collect
	RunService  = runService
	TestConfig  = testConfig
	SiteWeather = siteWeather
	Feed        = feed
	PublishAll  = publishAll
	WaitFor     = waitFor
	Marshal     = marshal
	DownyStart  = downyStart
)

// Quiet waits until c and s are quiet.
func (c *collector) Quiet(t testing.TB, s *Service) { c.quiet(t, s) }

// Snapshot returns what c has seen.
func (c *collector) Snapshot() map[string]string { return c.snapshot() }

// CurrentRisk returns the plot's latest risk message, and whether there is one.
func (s *Service) CurrentRisk(plot string) (Risk, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.mu.results[plot]; r != nil {
		return r.risk, true
	}
	return Risk{}, false
}
