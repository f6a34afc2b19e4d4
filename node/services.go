package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/service"
)

// ServicesPrefix is where the health of a node's services is served.
const ServicesPrefix = "/api/v1/services"

// validateServices returns the services section's mistakes as FieldErrors
// under services: names that are not ids and kinds no package registered.
// The services' own configurations are decoded and checked when the node is
// created (buildServices), where a service may read its files.
func validateServices(sections map[string]service.Section) []error {
	var errs []error
	for _, name := range sortedNames(sections) {
		sec := sections[name]
		kind := sec.Kind
		if kind == "" {
			kind = name
		}
		if err := service.CheckName(name); err != nil {
			errs = append(errs, &FieldError{Field: "services." + name, Err: err})
			continue
		}
		if !slices.Contains(service.Kinds(), kind) {
			field := "services." + name + ".kind"
			if sec.Kind == "" {
				field = "services." + name
			}
			errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf("unknown kind of service %q (known: %s)", kind, knownKinds())})
		}
	}
	return errs
}

// knownKinds lists the registered kinds for error messages.
func knownKinds() string {
	if ks := service.Kinds(); len(ks) > 0 {
		return strings.Join(ks, ", ")
	}
	return "none in this build"
}

func sortedNames(sections map[string]service.Section) []string {
	names := make([]string, 0, len(sections))
	for n := range sections {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BuildServices builds the services of a services section, in name order,
// each error a FieldError naming the service (services.NAME.config for a
// mistake in its configuration).
func BuildServices(sections map[string]service.Section) ([]service.Service, error) {
	var out []service.Service
	var errs []error
	for _, name := range sortedNames(sections) {
		sec := sections[name]
		kind := sec.Kind
		if kind == "" {
			kind = name
		}
		s, err := service.Build(kind, name, &sec.Config)
		if err != nil {
			field := "services." + name
			var ce *service.ConfigError
			if errors.As(err, &ce) {
				field += ".config"
				err = ce.Err
			}
			errs = append(errs, &FieldError{Field: field, Err: err})
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}

// changedServices returns the services.NAME keys whose kind or
// configuration differ between a and b (formatting aside).
func changedServices(a, b map[string]service.Section) []string {
	var out []string
	names := sortedNames(a)
	for n := range b {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		sa, okA := a[n]
		sb, okB := b[n]
		if okA != okB || sa.Kind != sb.Kind || !sameYAML(&sa.Config, &sb.Config) {
			out = append(out, "services."+n)
		}
	}
	return out
}

// sameYAML reports whether two YAML nodes hold the same value.
func sameYAML(a, b *yaml.Node) bool {
	var va, vb any
	ea, eb := a.Decode(&va), b.Decode(&vb)
	if a.Kind == 0 || b.Kind == 0 {
		return a.Kind == b.Kind
	}
	return ea == nil && eb == nil && reflect.DeepEqual(va, vb)
}

// Services are a node's services: a service.Runner with their states, and
// the alarm board of every alarm on the node's bus. A node runs them when
// its configuration has a services section (even an empty one, for the
// alarm API of services that run elsewhere); `citymesh run KIND` runs
// them for one service.
type Services struct {
	log    *slog.Logger
	runner *service.Runner
	store  *service.Store
	list   []service.Service
	kinds  map[string]string // by name
	board  *alarm.Board
	// clock is the services' clock, set by SetClock before they run; nil:
	// time.Now.
	clock atomic.Pointer[func() time.Time]

	// handle and access are Mount's, kept to mount the APIs of services
	// added afterwards; mounted are the kinds whose API is mounted.
	handle  func(pattern string, h http.Handler) error
	access  *TwinAccess
	mounted map[string]string

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ServicesOptions are what NewServices takes besides the services.
type ServicesOptions struct {
	// Dial returns a bus client for one run of the service called name
	// (service.RunnerOptions.Dial). Required.
	Dial func(ctx context.Context, name string) (bus.Bus, error)
	// Kinds are the services' kinds by name (default the name).
	Kinds map[string]string
	// Bus is the bus of the alarm board; nil: no board.
	Bus bus.Bus
	// StateDir is the directory of the services' durable state; "":
	// in memory.
	StateDir string
	// TenantOf is the alarm board's tenant of an alarm that names none.
	TenantOf func(alarm.Key) string
	// Logger receives the logs (default slog.Default()).
	Logger *slog.Logger
}

// NewServices opens the services' state and creates their runner and the
// alarm board.
func NewServices(list []service.Service, o ServicesOptions) (*Services, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Services{log: o.Logger, list: list, kinds: map[string]string{}, mounted: map[string]string{}}
	for n, k := range o.Kinds {
		s.kinds[n] = k
	}
	if o.StateDir != "" {
		if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
			return nil, fmt.Errorf("services state: %w", err)
		}
		st, err := service.OpenStore(o.StateDir)
		if err != nil {
			return nil, err
		}
		s.store = st
	} else {
		s.store = service.NewMemoryStore()
	}
	var err error
	s.runner, err = service.NewRunner(service.RunnerOptions{Dial: o.Dial, Store: s.store, Logger: o.Logger, Now: s.now})
	if err == nil {
		for _, svc := range list {
			if err = s.runner.Add(svc); err != nil {
				break
			}
		}
	}
	if err == nil && o.Bus != nil {
		s.board, err = alarm.NewBoard(alarm.BoardOptions{Bus: o.Bus, TenantOf: o.TenantOf, Logger: o.Logger})
	}
	if err != nil {
		s.store.Close()
		return nil, err
	}
	return s, nil
}

// Runner returns the services' runner.
func (s *Services) Runner() *service.Runner { return s.runner }

// Board returns the alarm board, nil when there is none.
func (s *Services) Board() *alarm.Board { return s.board }

// Collector returns the runner's metrics.
func (s *Services) Collector() prometheus.Collector { return s.runner.Collector() }

// Mount adds the HTTP APIs through handle: the services' health at
// /api/v1/services, the alarm API at /api/v1/alarms and the API of every
// service that has one (service.HTTPService) at /api/v1/{kind}/, all behind
// access. A service that takes no access hooks (service.AccessSetter) is
// served to administrators only. A second service of a kind whose API is
// mounted already is not mounted (a warning says so).
func (s *Services) Mount(handle func(pattern string, h http.Handler) error, access *TwinAccess) error {
	rh := s.runner.Handler()
	if err := handle(ServicesPrefix, describe(access.wrapProblem(rh, false), rh, service.OpenAPI())); err != nil {
		return err
	}
	if s.board != nil {
		bh := s.board.Handler(access.ServiceAccess())
		h := describe(access.wrapProblem(bh, false), bh, alarm.OpenAPI())
		if err := handle(alarm.APIPrefix, h); err != nil {
			return err
		}
		if err := handle(alarm.APIPrefix+"/", h); err != nil {
			return err
		}
	}
	s.handle, s.access = handle, access
	for _, svc := range s.list {
		if err := s.mount(svc); err != nil {
			return err
		}
	}
	return nil
}

// mount mounts the API of svc, if it has one.
func (s *Services) mount(svc service.Service) error {
	hs, ok := svc.(service.HTTPService)
	if !ok || s.handle == nil {
		return nil
	}
	kind := cmp.Or(s.kinds[svc.Name()], svc.Name())
	if other, dup := s.mounted[kind]; dup {
		s.log.Warn("service's HTTP API not mounted: another service of its kind serves "+service.APIPrefix+kind+"/",
			"service", svc.Name(), "other", other)
		return nil
	}
	adminOnly := true
	if as, ok := svc.(service.AccessSetter); ok {
		as.SetAccess(s.access.ServiceAccess())
		adminOnly = false
	}
	h := hs.HTTPHandler()
	if h == nil {
		return nil
	}
	var doc []byte
	if d, ok := svc.(service.Documented); ok {
		doc = d.OpenAPI()
	}
	if err := s.handle(service.APIPrefix+kind+"/", describe(s.access.wrapProblem(h, adminOnly), h, doc)); err != nil {
		return fmt.Errorf("service %s: %w", svc.Name(), err)
	}
	s.mounted[kind] = svc.Name()
	return nil
}

// Add adds svc, of kind kind, to the services, and mounts its API when
// Mount was called; it must be called before Start.
func (s *Services) Add(kind string, svc service.Service) error {
	if err := s.runner.Add(svc); err != nil {
		return err
	}
	s.list = append(s.list, svc)
	s.kinds[svc.Name()] = kind
	return s.mount(svc)
}

// Start runs the alarm board (subscribed when Start returns) and the
// services, until Close.
func (s *Services) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.cancel = cancel
	s.mu.Unlock()
	if s.board != nil {
		errc := make(chan error, 1)
		s.wg.Go(func() {
			if err := s.board.Run(ctx); err != nil {
				errc <- err
			}
		})
		select {
		case <-s.board.Ready():
		case err := <-errc:
			return err
		}
	}
	s.wg.Go(func() { s.runner.Run(ctx) })
	s.log.Info("services running", "services", len(s.list), "alarms", s.board != nil)
	return nil
}

// Close stops the services and the board, waits for them, and closes the
// state.
func (s *Services) Close() error {
	s.mu.Lock()
	cancel := s.cancel
	s.cancel = nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	s.wg.Wait()
	if s.store == nil {
		return nil
	}
	err := s.store.Close()
	s.store = nil
	return err
}

// campusTenants returns the tenant of an alarm's asset in the campus file
// (with copies), or nil when there is no campus to read.
func campusTenants(file string, copies int) (func(alarm.Key) string, error) {
	if file == "" {
		return nil, nil
	}
	m, err := campus.Load(file)
	if err != nil {
		return nil, err
	}
	if copies > 1 {
		if m, err = m.Copies(0, copies); err != nil {
			return nil, err
		}
	}
	return modelTenants(m), nil
}

// modelTenants returns the tenant of an alarm's asset in m.
func modelTenants(m *campus.Model) func(alarm.Key) string {
	return func(k alarm.Key) string {
		if a, ok := m.Asset(k.Asset); ok && a.Site == k.Site {
			return a.Tenant
		}
		return ""
	}
}

// newServices builds the node's services, each on its own in-process bus
// client svc-NAME, their state in data/services (in memory without a disk
// store), the alarm board on the client citymesh-alarms; it registers their
// metrics and mounts their HTTP APIs.
func (n *Node) newServices(cfg *Config) error {
	list, err := BuildServices(cfg.Services)
	if err != nil {
		return err
	}
	stateDir := ""
	if cfg.Store == "disk" {
		stateDir = filepath.Join(cfg.Data, "services")
	}
	if n.alarmBus, err = bus.NewLocal(n.b, "citymesh-alarms"); err != nil {
		return err
	}
	// The alarms' tenants are their assets' in the campus the node knows:
	// the twin's, else the connectors'.
	var tenantOf func(alarm.Key) string
	if n.twin != nil {
		tenantOf = modelTenants(n.twin.Service().State().Model())
	} else if tenantOf, err = campusTenants(cfg.Connectors.Campus, cfg.Connectors.Copies); err != nil {
		return fieldError("services", fmt.Errorf("the campus of the alarms' tenants: %w", err))
	}
	b := n.b
	n.services, err = NewServices(list, ServicesOptions{
		Dial:     func(ctx context.Context, name string) (bus.Bus, error) { return bus.NewLocal(b, "svc-"+name) },
		Kinds:    kindsOf(cfg.Services),
		Bus:      n.alarmBus,
		StateDir: stateDir,
		TenantOf: tenantOf,
		Logger:   n.log,
	})
	if err != nil {
		return fieldError("services", err)
	}
	n.reg.MustRegister(n.services.Collector())
	if !enabled(cfg.HTTP) {
		if len(list) > 0 {
			n.log.Warn("services: the HTTP listener is off: their APIs and the alarm API are not served")
		}
		return nil
	}
	return n.services.Mount(n.Handle, n.httpAccess())
}

// AddService adds a service the program built itself (service.BuildFrom, or
// its own constructor) to the node's services, of kind kind: it runs with
// those of the services section, and its API is mounted at
// /api/v1/{kind}/. The node needs a services section (an empty one will
// do); AddService must be called before Start.
func (n *Node) AddService(kind string, s service.Service) error {
	return n.beforeServices("AddService "+s.Name(), func() error { return n.services.Add(kind, s) })
}

// SetServicesClock makes now the clock of the node's services (Env.Now),
// for a simulation that runs faster than the wall clock (citymesh demo);
// before Start, on a node with a services section.
func (n *Node) SetServicesClock(now func() time.Time) error {
	return n.beforeServices("SetServicesClock", func() error { n.services.clock.Store(&now); return nil })
}

// now is the services' clock.
func (s *Services) now() time.Time {
	if f := s.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// beforeServices runs fn if the node has services and has not started.
func (n *Node) beforeServices(what string, fn func() error) error {
	if n.services == nil {
		return errors.New("node: " + what + " on a node without a services section (set Config.Services, even to an empty map)")
	}
	n.mu.Lock()
	started := n.mu.started || n.mu.closed
	n.mu.Unlock()
	if started {
		return fmt.Errorf("node: %s after Start", what)
	}
	return fn()
}

// Services returns the node's services, or nil when it has no services
// section.
func (n *Node) Services() *Services { return n.services }

// kindsOf returns the kind of each service of a services section.
func kindsOf(sections map[string]service.Section) map[string]string {
	out := make(map[string]string, len(sections))
	for n, sec := range sections {
		out[n] = cmp.Or(sec.Kind, n)
	}
	return out
}
