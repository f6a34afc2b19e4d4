// Package live is the energy service (kind "energy"): it turns the meter
// readings on the bus into running tenant invoices for the current month,
// final invoices when a month closes, ESG figures per site and month, and
// anomaly alarms (water leak, night base load, deviation from the
// hour-of-week baseline), with package energy's models. docs/services.md
// ("Energy") describes its topics, schemas, configuration and routes.
package live

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/service"
)

// Kind is the service kind the package registers.
const Kind = "energy"

// Defaults of Config.
const (
	DefaultDebounce  = time.Second
	DefaultGrace     = 72 * time.Hour
	DefaultTrainDays = 14
)

// Config is the energy service's configuration (the services section of
// the node configuration, or `citymesh run energy`).
type Config struct {
	// Campus is the campus file whose meters, sub-meters and tenants are
	// billed (SitesFromCampus); Site an energy site file (docs/models/
	// energy.md) for one site, SiteID. Give one of the two.
	Campus string `yaml:"campus"`
	Site   string `yaml:"site"`
	SiteID string `yaml:"site_id"`
	// Tariff is the tariff file (required): prices, bands, VAT, time zone
	// of the billing months.
	Tariff string `yaml:"tariff"`
	// Factors is an emission factor file for ESG; empty: the built-in UBA
	// factors (energy.UBAFactors).
	Factors string `yaml:"factors"`
	// Debounce is how long invoice updates are gathered before they are
	// published (default 1 s).
	Debounce time.Duration `yaml:"debounce"`
	// Grace closes a month this long after its end even if not every
	// meter has read in the next month (default 72 h).
	Grace time.Duration `yaml:"grace"`
	// Interval, MaxGap and FillGaps are energy.Options (defaults: 15 min,
	// one interval, no filling).
	Interval time.Duration `yaml:"interval"`
	MaxGap   time.Duration `yaml:"max_gap"`
	FillGaps bool          `yaml:"fill_gaps"`
	// Anomalies configures the alarms.
	Anomalies AnomalyConfig `yaml:"anomalies"`
	// TenantTopics publishes each tenant's invoices also in its tenant's
	// namespace ($tenant/{tenant}/energy/{site}/tenant/{tenant}/…), where
	// the tenant's own MQTT clients — its dashboard pages among them —
	// read them as energy/{site}/tenant/{tenant}/…; the service's broker
	// user must then be an administrator. Default true.
	TenantTopics *bool `yaml:"tenant_topics"`

	// Tenant, when set, says whom an HTTP request is for: a tenant's user
	// sees only its own invoices (all false), an operator all (all true).
	// Nil: every request sees all. Set by the program, not in the file.
	Tenant func(r *http.Request) (tenant string, all bool) `yaml:"-"`
	// Model and Sites, when set, are used instead of reading Campus or
	// Site (for programs that hold the campus model already). Not in the
	// file.
	Model   *campus.Model          `yaml:"-"`
	Sites   map[string]energy.Site `yaml:"-"`
	Tariffs *energy.Tariffs        `yaml:"-"`
}

// AnomalyConfig sets the anomaly rules (energy.LeakRule, NightRule,
// DeviationRule).
type AnomalyConfig struct {
	// Disabled turns the alarms off.
	Disabled bool `yaml:"disabled"`
	// LeakNights nights in a row whose minimum flow stays above
	// LeakThreshold (m³/h) raise water-leak (default 3 and 0).
	LeakNights    int     `yaml:"leak_nights"`
	LeakThreshold float64 `yaml:"leak_threshold"`
	// TrainDays of hour-of-week baseline (default 14, at least 8); Rel, Abs and
	// MinPeriods the deviation rule (defaults 0.2, 0, 2 hours).
	TrainDays int `yaml:"train_days"`
	// WindowDays is how many days of readings the rules look at, across
	// months (default 35; more than train_days).
	WindowDays int     `yaml:"window_days"`
	Rel        float64 `yaml:"rel"`
	Abs        float64 `yaml:"abs"`
	MinPeriods int     `yaml:"min_periods"`
}

// Check checks the configuration and fills in defaults.
func (c *Config) Check() error {
	if c.Model == nil && c.Sites == nil {
		if (c.Campus == "") == (c.Site == "") {
			return errors.New("energy: give one of campus and site")
		}
		if c.Site != "" && c.SiteID == "" {
			return errors.New("energy: site_id is required with site")
		}
	}
	if c.Tariff == "" && c.Tariffs == nil {
		return errors.New("energy: tariff is required")
	}
	if c.Debounce < 0 || c.Grace < 0 || c.Interval < 0 || c.MaxGap < 0 {
		return errors.New("energy: debounce, grace, interval and max_gap must not be negative")
	}
	if c.Debounce == 0 {
		c.Debounce = DefaultDebounce
	}
	if c.Grace == 0 {
		c.Grace = DefaultGrace
	}
	a := &c.Anomalies
	if a.LeakNights < 0 || a.TrainDays < 0 || a.WindowDays < 0 || a.MinPeriods < 0 || !(a.LeakThreshold >= 0) || !(a.Rel >= 0) || !(a.Abs >= 0) {
		return errors.New("energy: anomalies: leak_nights, train_days, window_days, min_periods, leak_threshold, rel and abs must not be negative")
	}
	if a.LeakNights == 0 {
		a.LeakNights = 3
	}
	if a.TrainDays == 0 {
		a.TrainDays = DefaultTrainDays
	}
	if a.WindowDays == 0 {
		a.WindowDays = max(35, a.TrainDays+7)
	}
	if a.WindowDays <= a.TrainDays {
		return fmt.Errorf("energy: anomalies: window_days %d must exceed train_days %d", a.WindowDays, a.TrainDays)
	}
	if a.TrainDays < 8 {
		// One sample per hour of the week fits perfectly and says nothing.
		return fmt.Errorf("energy: anomalies: train_days %d: want at least 8 (more than a week)", a.TrainDays)
	}
	if a.MinPeriods == 0 {
		a.MinPeriods = 2
	}
	return nil
}

// load reads the files the configuration names; the campus model is nil
// when the sites come from Sites or a site file.
func (c *Config) load() (map[string]energy.Site, *campus.Model, energy.Tariffs, energy.FactorSet, error) {
	var tf energy.Tariffs
	if c.Tariffs != nil {
		// A checked copy of the service's own: the caller's Tariffs may be
		// shared with other services, and Check writes into it.
		tf = c.Tariffs.Clone()
		if err := tf.Check(); err != nil {
			return nil, nil, tf, energy.FactorSet{}, err
		}
	} else {
		t, err := readFile(c.Tariff, energy.ReadTariffYAML)
		if err != nil {
			return nil, nil, tf, energy.FactorSet{}, err
		}
		tf = t
	}
	factors := energy.UBAFactors()
	if c.Factors != "" {
		f, err := readFile(c.Factors, energy.ReadFactorsYAML)
		if err != nil {
			return nil, nil, tf, factors, err
		}
		factors = f
	}
	sites, model := c.Sites, c.Model
	switch {
	case sites != nil:
	case c.Model != nil:
		s, err := SitesFromCampus(c.Model)
		if err != nil {
			return nil, nil, tf, factors, err
		}
		sites = s
	case c.Campus != "":
		m, err := campus.Load(c.Campus)
		if err != nil {
			return nil, nil, tf, factors, fmt.Errorf("energy: %w", err)
		}
		model = m
		s, err := SitesFromCampus(m)
		if err != nil {
			return nil, nil, tf, factors, err
		}
		sites = s
	default:
		s, err := readFile(c.Site, energy.ReadSiteYAML)
		if err != nil {
			return nil, nil, tf, factors, err
		}
		sites = map[string]energy.Site{c.SiteID: s}
	}
	if len(sites) == 0 {
		return nil, nil, tf, factors, errors.New("energy: no site with meters")
	}
	return sites, model, tf, factors, nil
}

func readFile[T any](path string, read func(io.Reader) (T, error)) (T, error) {
	var zero T
	f, err := os.Open(path)
	if err != nil {
		return zero, fmt.Errorf("energy: %w", err)
	}
	defer f.Close()
	v, err := read(f)
	if err != nil {
		return zero, fmt.Errorf("energy: %s: %w", path, err)
	}
	return v, nil
}

// campusTariff is the synthetic tariff of the reference campus
// (campus-tariff.yaml), the demo configuration's.
//
//go:embed campus-tariff.yaml
var campusTariff []byte

// demoGrace is the demo configuration's grace: the demo's simulated time
// is not the wall clock the services run on (it runs ahead of it, or
// starts in the past), so its months close when every meter has read past
// their end, never by the wall clock.
const demoGrace = 100 * 365 * 24 * time.Hour

// DemoConfig is the service's configuration in citymesh demo: the campus
// model m with the reference campus's tariff (campus-tariff.yaml), months
// closed by the readings only.
func DemoConfig(m *campus.Model) Config {
	c := Config{Model: m, Grace: demoGrace}
	if tf, err := energy.ReadTariffYAML(bytes.NewReader(campusTariff)); err == nil {
		c.Tariffs = &tf
	}
	return c
}

func init() {
	service.Register(Kind, "energy: meter readings to running and final tenant invoices, ESG per site and month, anomaly alarms",
		func(name string, c Config) (service.Service, error) { return New(name, c) })
	service.RegisterDemo(Kind, func(m *campus.Model) any { return DemoConfig(m) })
}
