package live

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/vineyard"
)

// Kind is the service kind the package registers.
const Kind = "vineyard"

func init() {
	service.Register(Kind, "vineyard plots: hourly weather, disease risk with alarms, soil maps", func(name string, c Config) (service.Service, error) {
		return New(name, c)
	})
	service.RegisterDemo(Kind, DemoConfig)
}

// DemoDebounce is the debounce of the demo's vineyard service: short, so
// that the risk follows the simulated hours as they come.
const DemoDebounce = 200 * time.Millisecond

// DemoConfig is the configuration of citymesh demo's vineyard service:
// every plot of the demo's campus m, with the defaults but a short
// debounce (DemoDebounce).
func DemoConfig(m *campus.Model) any {
	return Config{Model: m, Debounce: DemoDebounce}
}

// Defaults of Config.
const (
	DefaultAlarmDays   = 2
	DefaultPublishDays = 7
	DefaultDebounce    = 2 * time.Second
	DefaultSoilCellM   = 2.0
	DefaultLateDays    = 7
)

// Config configures the vineyard service. Campus (or Model) is required;
// the zero value of every other field takes its default.
type Config struct {
	// Campus is the campus file (examples/campus/campus.yaml): the plots,
	// their outlines, tenants and devices.
	Campus string `yaml:"campus"`
	// Site, when set, limits the service to the plots of this site; Plots,
	// when set, to these plots.
	Site  string   `yaml:"site"`
	Plots []string `yaml:"plots"`
	// Stations names the weather station (a device id) whose air
	// temperature, humidity and rain a plot uses, by plot id. A plot not
	// named uses the station on the plot, else the nearest station of its
	// site.
	Stations map[string]string `yaml:"stations"`
	// WetRH is the relative humidity (%) at or above which an hour without
	// a leaf-wetness reading counts as wet (vineyard.DefaultWetRH).
	WetRH float64 `yaml:"wet_rh"`
	// ShootCM is the shoot length (cm) for the 3-10 rule; 0: not known.
	ShootCM float64 `yaml:"shoot_cm"`
	// PriorDegreeDays are the oospore degree-days (> 8 °C) from 1 January
	// to the first hour the service has.
	PriorDegreeDays float64 `yaml:"prior_degree_days"`
	// Budbreak is the season's first day, MM-DD: the day-by-day risk and
	// the Gubler-Thomas index start on it each year. Empty: 1 January.
	Budbreak string `yaml:"budbreak"`
	// AlarmLevel is the lowest risk level that raises an alarm: low,
	// moderate (default) or high.
	AlarmLevel string `yaml:"alarm_level"`
	// AlarmDays is how many days, the latest day of data and those before
	// it, an alarm looks at: the alarm is active while the highest level
	// of these days is at least AlarmLevel (default 2).
	AlarmDays int `yaml:"alarm_days"`
	// PublishDays is how many days of risk the retained risk message holds
	// (default 7); the HTTP API has the whole season.
	PublishDays int `yaml:"publish_days"`
	// Debounce is how long the service gathers changes of a plot before it
	// computes and publishes its risk again (default 2 s); SoilDebounce the
	// same for its soil maps (default Debounce).
	Debounce     time.Duration `yaml:"debounce"`
	SoilDebounce time.Duration `yaml:"soil_debounce"`
	// LateDays is how long, in days behind the latest hour of data, a
	// device's raw values are kept (default 7): a value that late still
	// recomputes its hour; one later than that is dropped, and the
	// values of older hours are deleted (their hours stay).
	LateDays int `yaml:"late_days"`
	// SoilCellM is the cell edge of the soil maps in metres (default 2).
	SoilCellM float64 `yaml:"soil_cell_m"`
	// SoilType is the soil type the P and K classes are read for: light,
	// medium (default) or heavy.
	SoilType string `yaml:"soil_type"`
	// TenantTopics publishes each plot's weather, risk and soil messages
	// also in its tenant's namespace ($tenant/{tenant}/vineyard/…), where
	// the tenant's own MQTT clients read them as vineyard/…; the service's
	// broker user must then be an administrator. Default true.
	TenantTopics *bool `yaml:"tenant_topics"`

	// Model is the campus, for embedding: used instead of reading Campus.
	Model *campus.Model `yaml:"-"`
	// Tenant, when set, says whom an HTTP request is for: a tenant's user
	// sees only the plots of its tenant (all false), an operator every
	// plot (all true). Nil: every request sees all. The same contract as
	// twin.HandlerOptions.Tenant.
	Tenant func(r *http.Request) (tenant string, all bool) `yaml:"-"`
}

// Check checks the configuration's values.
func (c *Config) Check() error {
	var errs []error
	if c.Campus == "" && c.Model == nil {
		errs = append(errs, errors.New("campus: the campus file is required"))
	}
	if c.WetRH < 0 || c.WetRH > 100 {
		errs = append(errs, fmt.Errorf("wet_rh: %g outside 0 to 100", c.WetRH))
	}
	if c.ShootCM < 0 || c.PriorDegreeDays < 0 {
		errs = append(errs, errors.New("shoot_cm and prior_degree_days must not be negative"))
	}
	if c.Budbreak != "" {
		if _, err := time.Parse("01-02", c.Budbreak); err != nil {
			errs = append(errs, fmt.Errorf("budbreak: %q is not MM-DD", c.Budbreak))
		}
	}
	if c.AlarmLevel != "" {
		var l vineyard.Level
		if err := l.UnmarshalText([]byte(c.AlarmLevel)); err != nil || l == vineyard.None {
			errs = append(errs, fmt.Errorf("alarm_level: %q: want low, moderate or high", c.AlarmLevel))
		}
	}
	if c.AlarmDays < 0 || c.PublishDays < 0 || c.LateDays < 0 || c.Debounce < 0 || c.SoilDebounce < 0 || c.SoilCellM < 0 {
		errs = append(errs, errors.New("alarm_days, publish_days, late_days, debounce, soil_debounce and soil_cell_m must not be negative"))
	}
	if c.SoilCellM != 0 && c.SoilCellM < 0.5 {
		errs = append(errs, fmt.Errorf("soil_cell_m: %g below 0.5 m", c.SoilCellM))
	}
	switch c.SoilType {
	case "", "light", "medium", "heavy":
	default:
		errs = append(errs, fmt.Errorf("soil_type: %q: want light, medium or heavy", c.SoilType))
	}
	return errors.Join(errs...)
}
