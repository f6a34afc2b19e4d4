package live

import (
	"fmt"
	"github.com/citymesh/citymesh/vineyard"
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

// StartBroker runs a broker for the test.
var StartBroker = startBroker

// Hours returns the plot's hourly weather.
func (s *Service) Hours(plot string) []vineyard.Hour {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.mu.results[plot]; r != nil {
		return append([]vineyard.Hour(nil), r.hours...)
	}
	return nil
}

// RiskDays returns every day of a disease's risk of the plot.
func (s *Service) RiskDays(plot, disease string) ([]vineyard.DayRisk, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.mu.results[plot]; r != nil {
		for _, d := range r.assessment.Risk {
			if d.Disease == disease {
				return d.Days, nil
			}
		}
	}
	return nil, fmt.Errorf("no %s risk for %s", disease, plot)
}
