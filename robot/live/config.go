// Package live is the robot service: it follows each patrol robot's
// positions along its route, turns the robot's failed checks and its
// excursions from the route's corridor into incidents that people work on
// (acknowledge, start, resolve, close, cancel), raises each open incident
// as an alarm through package alarm, and keeps the pictures the robot takes,
// content-addressed, behind an HTTP API. docs/services.md, "Robot".
package live

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
)

// Kind is the service kind the package registers.
const Kind = "robot"

// Defaults of Config.
const (
	DefaultMaxPictureBytes   = 8 << 20
	DefaultMaxTotalBytes     = 2 << 30
	DefaultPictureRetention  = 90 * 24 * time.Hour
	DefaultDedupWindow       = 24 * time.Hour
	DefaultIncidentRetention = 90 * 24 * time.Hour
)

// Config is the robot service's configuration (the config section of a
// services entry of kind robot).
type Config struct {
	// Robots are the robots followed, each with its route file.
	Robots []RobotConfig `yaml:"robots"`
	// Owners maps an incident's asset (a check's asset in the route file,
	// or a robot's id) to the tenant whose facility team acts on it; an
	// asset not listed belongs to no tenant (operators only).
	Owners map[string]string `yaml:"owners"`
	// Pictures configures the picture store.
	Pictures PicturesConfig `yaml:"pictures"`
	// PublicURL is prefixed to the picture URLs in events
	// ("https://city.example"); empty gives paths (/api/v1/robot/...).
	PublicURL string `yaml:"public_url"`
	// DedupWindow is how long behind a check's newest event time a
	// redelivery is still recognised (default 24 h).
	DedupWindow time.Duration `yaml:"dedup_window"`
	// MaxPicturesPerIncident bounds the pictures an incident keeps, the
	// latest (default 20).
	MaxPicturesPerIncident int `yaml:"max_pictures_per_incident"`
	// IncidentRetention is how long a closed or cancelled incident stays
	// in the service's state and API after it ended (default 90 days).
	IncidentRetention time.Duration `yaml:"incident_retention"`
	// TenantCommands also takes incident commands published in a
	// tenant's namespace ($tenant/{tenant}/robot/…), for the incidents of
	// assets that tenant owns; the service must then run in-process or as
	// an administrator (docs/security.md).
	TenantCommands bool `yaml:"tenant_commands"`
	// Model, when set, is the campus the robots patrol (given by a
	// program, as citymesh demo does; YAML does not carry it): a robot
	// without a route file takes its route from the campus's robot of
	// its id, and an asset Owners does not list belongs to its tenant in
	// the campus, else, when the campus does not know it, to the tenant
	// of the robot that checks it (the robot's operator).
	Model *campus.Model `yaml:"-"`

	routes map[string]*robot.Route // robot id → route, read by Check
}

// RobotConfig names one robot, its site and its route file.
type RobotConfig struct {
	ID   string `yaml:"id"`
	Site string `yaml:"site"`
	// Route is the route file (package robot's YAML format); a relative
	// path is relative to the working directory. It may be left out when
	// Config.Model has the robot with its route.
	Route string `yaml:"route"`
	// CorridorM overrides the route's corridor half-width when positive.
	CorridorM float64 `yaml:"corridor_m"`
}

// PicturesConfig configures where pictures are kept and how many.
type PicturesConfig struct {
	// Dir is the directory of the picture files, one file per picture
	// named by its SHA-256. Empty: the pictures are kept in the service's
	// state, which suits small pictures and tests (a Pebble value of
	// several megabytes is written whole into the log and compacted more
	// than once; files are not).
	Dir string `yaml:"dir"`
	// MaxBytes bounds one picture (default 8 MiB); MaxTotalBytes all of
	// them (default 2 GiB): an upload beyond either is refused.
	MaxBytes      int64 `yaml:"max_bytes"`
	MaxTotalBytes int64 `yaml:"max_total_bytes"`
	// Retention is how long a picture is kept after its upload (default
	// 90 days); a picture of an incident still open is kept longer.
	Retention time.Duration `yaml:"retention"`
}

// Check fills the defaults, reads the route files and checks the values.
func (c *Config) Check() error {
	if len(c.Robots) == 0 {
		return errors.New("robots: at least one robot with its route is required")
	}
	if c.Pictures.MaxBytes == 0 {
		c.Pictures.MaxBytes = DefaultMaxPictureBytes
	}
	if c.Pictures.MaxTotalBytes == 0 {
		c.Pictures.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if c.Pictures.Retention == 0 {
		c.Pictures.Retention = DefaultPictureRetention
	}
	if c.DedupWindow == 0 {
		c.DedupWindow = DefaultDedupWindow
	}
	if c.IncidentRetention == 0 {
		c.IncidentRetention = DefaultIncidentRetention
	}
	if c.MaxPicturesPerIncident == 0 {
		c.MaxPicturesPerIncident = robot.DefaultMaxPictures
	}
	if c.Pictures.MaxBytes < 0 || c.Pictures.MaxTotalBytes < c.Pictures.MaxBytes || c.Pictures.Retention < 0 || c.DedupWindow < 0 || c.MaxPicturesPerIncident < 0 || c.IncidentRetention < 0 {
		return fmt.Errorf("pictures: max_bytes %d, max_total_bytes %d (≥ max_bytes), retention %v, dedup_window %v, max_pictures_per_incident %d: none may be negative",
			c.Pictures.MaxBytes, c.Pictures.MaxTotalBytes, c.Pictures.Retention, c.DedupWindow, c.MaxPicturesPerIncident)
	}
	c.routes = make(map[string]*robot.Route)
	for i, r := range c.Robots {
		if !isID(r.ID) || !isID(r.Site) {
			return fmt.Errorf("robots[%d]: id %q and site %q must be ids (letters, digits, '.', '_', '-')", i, r.ID, r.Site)
		}
		if _, dup := c.routes[r.ID]; dup {
			return fmt.Errorf("robots[%d]: robot %s listed twice", i, r.ID)
		}
		if r.Route == "" {
			if cr, ok := c.modelRobot(r.ID); ok && cr.Route != nil {
				c.routes[r.ID] = cr.Route
				continue
			}
			return fmt.Errorf("robots[%d] (%s): route file is required", i, r.ID)
		}
		f, err := os.Open(filepath.Clean(r.Route))
		if err != nil {
			return fmt.Errorf("robots[%d] (%s): %w", i, r.ID, err)
		}
		rt, err := robot.ReadRoute(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("robots[%d] (%s): route %s: %w", i, r.ID, r.Route, err)
		}
		c.routes[r.ID] = rt
	}
	for asset, tenant := range c.Owners {
		if asset == "" || !isID(tenant) {
			return fmt.Errorf("owners: asset %q → tenant %q: want an asset and a tenant id", asset, tenant)
		}
	}
	if c.Model != nil {
		c.Owners = c.modelOwners()
	}
	return nil
}

// modelRobot returns the robot id of Model, when there is a model.
func (c *Config) modelRobot(id string) (*campus.Robot, bool) {
	if c.Model == nil {
		return nil, false
	}
	return c.Model.Robot(id)
}

// modelOwners returns Owners completed from Model: each robot, and each
// asset its route checks, that Owners does not list belongs to its tenant
// in the campus; a checked asset the campus does not know (or gives no
// tenant) to the robot's tenant. Owners itself is not modified.
func (c *Config) modelOwners() map[string]string {
	out := make(map[string]string, len(c.Owners))
	for a, t := range c.Owners {
		out[a] = t
	}
	set := func(asset, tenant string) {
		if _, listed := out[asset]; !listed && tenant != "" {
			out[asset] = tenant
		}
	}
	for _, rc := range c.Robots {
		operator := ""
		if cr, ok := c.Model.Robot(rc.ID); ok {
			operator = cr.Tenant
		}
		set(rc.ID, operator)
		for _, w := range c.routes[rc.ID].Waypoints {
			for _, ck := range w.Checks {
				if a, ok := c.Model.Asset(ck.Asset); ok && a.Tenant != "" {
					set(ck.Asset, a.Tenant)
				} else {
					set(ck.Asset, operator)
				}
			}
		}
	}
	return out
}

// DemoConfig is the robot service's configuration for citymesh demo over
// the campus m: every robot of the campus with its route, the owners of
// the checked assets from the campus (Config.Model).
func DemoConfig(m *campus.Model) Config {
	c := Config{Model: m}
	for _, r := range m.Robots {
		c.Robots = append(c.Robots, RobotConfig{ID: r.ID, Site: r.Site})
	}
	return c
}

// isID reports whether s is a topic-level id: 1 to 64 ASCII letters,
// digits, '.', '_' and '-', starting with a letter or digit.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func init() {
	service.Register(Kind, "robot patrols: progress, incidents from failed checks and corridor excursions, pictures",
		func(name string, c Config) (service.Service, error) { return New(name, c, Options{}) })
	service.RegisterDemo(Kind, func(m *campus.Model) any { return DemoConfig(m) })
}
