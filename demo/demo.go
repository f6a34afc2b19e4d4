// Package demo runs the simulated reference campus through citymesh in one
// process, the way a city runs it in production: a citymesh node (broker,
// embedded store, MQTT, WebSocket and HTTP listeners), a second MQTT
// endpoint on its own port that plays the LoRaWAN network servers (The
// Things Stack and ChirpStack publish their uplinks there), the LoRaWAN
// connectors reading that endpoint over MQTT and publishing city events on
// the node's bus, and the campus simulator (sim.Player) publishing the
// network servers' uplinks to the endpoint and the building gateways' and
// the robot's events over MQTT to the node, as the real sources do.
// `citymesh demo` is a thin command around it.
//
//	d, err := demo.New(demo.Options{Campus: "examples/campus/campus.yaml"})
//	...
//	err = d.Run(ctx) // until ctx ends: Ctrl-C
//
// Later parts of the city (the twin, the services, the dashboard) join the
// same assembly: they are clients of Node's bus, and pages of its HTTP
// listener (node.Node.Handle).
package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/node"
	robotlive "github.com/citymesh/citymesh/robot/live"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
	"github.com/citymesh/citymesh/twin"
	"github.com/citymesh/citymesh/twin/history"
	"github.com/citymesh/citymesh/web"
)

// Defaults of Options.
const (
	DefaultMQTT          = "127.0.0.1:1883"
	DefaultWS            = "127.0.0.1:8083"
	DefaultHTTP          = "127.0.0.1:8080"
	DefaultNetworkServer = "127.0.0.1:1884"
	DefaultData          = "./data"
	DefaultCampus        = "examples/campus/campus.yaml"
	DefaultCodecs        = "examples/campus/codecs"
	DefaultSpeed         = 60
	DefaultStatsEvery    = 10 * time.Second
)

// Options configure a demo. The zero value runs the reference campus from
// examples/campus at 60 times real time from now, on the default ports and
// the disk store in ./data, as `citymesh demo` does without flags.
type Options struct {
	// MQTT, WS and HTTP are the node's listen addresses: MQTT over TCP
	// (default 127.0.0.1:1883), MQTT over WebSocket at /mqtt (default
	// 127.0.0.1:8083) and HTTP with /healthz, /metrics and the robot's
	// pictures at /pictures/ (default 127.0.0.1:8080). "off" disables
	// one; without MQTT the building gateways and the robot publish
	// through the in-process bus instead. Port 0 lets the system choose
	// (Addr says which).
	MQTT, WS, HTTP string
	// NetworkServer is the listen address of the MQTT endpoint that plays
	// The Things Stack's and ChirpStack's MQTT servers (default
	// 127.0.0.1:1884): the simulator publishes the uplinks there, the
	// connectors read them from there.
	NetworkServer string
	// Data is the node's data directory (default ./data) and Store its
	// kind: "disk" (default, the embedded store in Data/store) or
	// "memory".
	Data, Store string
	// Campus is the campus file (default examples/campus/campus.yaml, the
	// reference campus), Codecs the device codecs' directory (default
	// codecs beside the campus file, else examples/campus/codecs).
	Campus, Codecs string
	// Seed and Start make the simulated run (Start default: now, to the
	// second).
	Seed  uint64
	Start time.Time
	// Speed is simulated seconds per wall second (default 60: an hour a
	// minute). Clock, when set, replaces the scaled clock: a
	// sim.VirtualClock plays as fast as possible (give Until then).
	Speed float64
	Clock sim.Clock
	// Until, when set, ends the simulation there; the node keeps serving
	// until the demo ends.
	Until time.Time
	// Copies, LoadRate, DuplicateEvery, DecodedPayload, RobotEvery and
	// Faults are the player's (sim.PlayerConfig): copies of the campus
	// (the connectors know them), every point at LoadRate Hz, every n-th
	// uplink twice, the network servers' decoded payload, the robot's
	// position interval (default 1 s), faults.
	Copies         int
	LoadRate       float64
	DuplicateEvery int
	DecodedPayload bool
	RobotEvery     time.Duration
	Faults         *sim.FaultSet
	// Users makes the demo's users (Users, UsersFile): the HTTP APIs and
	// the dashboard then want a login, each user sees what its role and
	// tenant allow. MQTT clients without credentials (the simulated
	// devices on loopback) still get in. Without Users everything is
	// served to everyone.
	Users bool
	// Dashboard are the dashboard's settings (the node configuration's
	// dashboard section): a tile server under the maps.
	Dashboard web.Options
	// StatsEvery is how often a one-line summary is logged (default
	// 10 s; negative: only at the end).
	StatsEvery time.Duration
	// Logger receives the demo's and its parts' logs (default
	// slog.Default()).
	Logger *slog.Logger
}

// Demo is a running demo: a node, the network servers' endpoint, the
// connectors and the simulator. Create it with New, start it with Start
// (or Run), stop it with Close.
type Demo struct {
	opts  Options
	log   *slog.Logger
	model *campus.Model
	ns    *node.Node // the network servers' MQTT endpoint
	node  *node.Node
	pics  *sim.MemoryPictures
	users []User // with Options.Users

	// Made by Start.
	conns    *run.Runtime
	connBus  *bus.Local
	watchBus *bus.Local
	cityBus  *bus.Local // the building gateways' bus when MQTT is off
	twinBus  *bus.Local // the twin's
	recBus   *bus.Local // the twin's event recorder's
	recorder *twin.Recorder
	twin     *twin.Service
	hist     *history.DB     // the twin's history
	histTmp  string          // its directory when the store is in memory
	nsOut    *sim.MQTTOutput // the network servers' uplinks
	cityOut  sim.Output      // the building gateways and robots
	player   *sim.Player
	clock    sim.Clock
	counts   counts
	// For Stats from any goroutine: the player and the connectors once
	// made.
	playerRef atomic.Pointer[sim.Player]
	connsRef  atomic.Pointer[run.Runtime]

	mu struct {
		sync.Mutex
		started, closed bool
		stop            context.CancelFunc // ends the player and the summaries
		err             error              // the player's error, if it failed
	}
	failed chan struct{} // closed when the player failed
	// twinStop ends the twin's Run (Close calls it after the sources
	// stopped).
	twinStop context.CancelFunc
	twinWG   sync.WaitGroup
	// twinClock holds the clock for the twin's handler, which may run
	// before Start sets d.clock.
	twinClock atomic.Value // of clockBox
	wg        sync.WaitGroup
}

// New checks the options, loads the campus, and creates the node (opening
// its store) and the network servers' endpoint. Nothing listens before
// Start. Close releases what New acquired.
func New(opts Options) (*Demo, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&opts.MQTT, DefaultMQTT)
	def(&opts.WS, DefaultWS)
	def(&opts.HTTP, DefaultHTTP)
	def(&opts.NetworkServer, DefaultNetworkServer)
	def(&opts.Data, DefaultData)
	def(&opts.Store, "disk")
	def(&opts.Campus, DefaultCampus)
	if opts.Codecs == "" {
		opts.Codecs = filepath.Join(filepath.Dir(opts.Campus), "codecs")
		if st, err := os.Stat(opts.Codecs); err != nil || !st.IsDir() {
			opts.Codecs = DefaultCodecs
		}
	}
	if opts.Speed == 0 {
		opts.Speed = DefaultSpeed
	}
	if opts.Copies == 0 {
		opts.Copies = 1
	}
	if opts.StatsEvery == 0 {
		opts.StatsEvery = DefaultStatsEvery
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Start.IsZero() {
		opts.Start = time.Now().Truncate(time.Second)
	}
	switch {
	case opts.Speed < 0 || opts.Speed != opts.Speed || opts.Speed > 1e6:
		return nil, fmt.Errorf("demo: speed %v: want a factor from 0 to 1e6", opts.Speed)
	case opts.Copies < 1:
		return nil, fmt.Errorf("demo: copies %d: want at least 1", opts.Copies)
	case !opts.Until.IsZero() && !opts.Until.After(opts.Start):
		return nil, fmt.Errorf("demo: until %s is not after the start %s", opts.Until.Format(time.RFC3339), opts.Start.Format(time.RFC3339))
	case !enabled(opts.NetworkServer):
		return nil, errors.New("demo: the network servers' endpoint cannot be off: the connectors read the uplinks there")
	}
	if _, ok := opts.Clock.(*sim.VirtualClock); ok && opts.Until.IsZero() {
		return nil, errors.New("demo: a virtual clock plays as fast as possible: give Until")
	}
	m, err := campus.Load(opts.Campus)
	if err != nil {
		return nil, fmt.Errorf("demo: campus: %w", err)
	}
	if st, err := os.Stat(opts.Codecs); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("demo: codecs: %s is not a directory of device codecs", opts.Codecs)
	}
	d := &Demo{opts: opts, log: opts.Logger, model: m, failed: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			d.closeHistory()
			d.release()
		}
	}()

	// The network servers' endpoint: a citymesh broker of its own, on its
	// own port, in memory, as a stand-in for The Things Stack's MQTT
	// server and the broker ChirpStack's integration publishes to. Its
	// routine lines are left out of the log.
	nsCfg := node.Config{MQTT: opts.NetworkServer, SysIntervalSeconds: -1}
	if d.ns, err = node.New(nsCfg, slog.New(minLevel{opts.Logger.With("node", "network-server").Handler(), slog.LevelError})); err != nil {
		return nil, fmt.Errorf("demo: network server endpoint: %w", err)
	}
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP, cfg.Data, cfg.Store = opts.MQTT, opts.WS, opts.HTTP, opts.Data, opts.Store
	cfg.Dashboard = opts.Dashboard
	cfg.Services = map[string]service.Section{} // the alarm API, and the services below
	if opts.Users {
		path, users, err := makeUsers(m, opts.Data)
		if err != nil {
			return nil, err
		}
		d.users = users
		cfg.Auth = auth.Config{PasswordFile: path, AllowAnonymous: true}
	}
	if d.node, err = node.New(cfg, opts.Logger); err != nil {
		return nil, err
	}
	if err := d.addServices(); err != nil {
		return nil, err
	}
	d.pics = &sim.MemoryPictures{}
	if enabled(opts.HTTP) {
		if err := d.node.Handle("GET /pictures/", http.StripPrefix("/pictures/", d.pics)); err != nil {
			return nil, err
		}
	}
	// The twin: a client of the node's bus, its API on the HTTP listener.
	// Its clock is the simulation's, set in Start.
	if d.twinBus, err = bus.NewLocal(d.node.Broker(), "citymesh-twin"); err != nil {
		return nil, err
	}
	// Its history: in DATA/history beside the store, or in a temporary
	// directory removed by Close when the store is in memory.
	histDir := filepath.Join(opts.Data, "history")
	if opts.Store == "memory" {
		if d.histTmp, err = os.MkdirTemp("", "citymesh-demo-history-"); err != nil {
			return nil, fmt.Errorf("demo: history: %w", err)
		}
		histDir = d.histTmp
	}
	if d.hist, err = history.Open(histDir, history.Options{Logger: opts.Logger}); err != nil {
		return nil, fmt.Errorf("demo: history: %w", err)
	}
	if d.twin, err = twin.NewService(twin.Options{Model: m, Bus: d.twinBus, Logger: opts.Logger, Now: d.twinNow, Sink: d.hist}); err != nil {
		return nil, err
	}
	// The events that are not numbers go to the history's event log.
	if d.recBus, err = bus.NewLocal(d.node.Broker(), "citymesh-twin-events"); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if d.recorder, err = twin.NewRecorder(twin.RecorderOptions{Model: m, Bus: d.recBus, Log: d.hist.Events(), Logger: opts.Logger}); err != nil {
		return nil, err
	}
	if enabled(opts.HTTP) {
		// The twin API, NGSI-LD and the history's Prometheus API, behind
		// the node's access: with Users, each user sees its tenant's.
		if err := d.node.MountTwin(d.twin, d.hist, d.twinNow); err != nil {
			return nil, err
		}
	}
	ok = true
	return d, nil
}

// addServices adds one service of every registered kind to the node, named
// as its kind, built from the kind's demo configuration over the campus
// (service.RegisterDemo), or from its zero one. A kind whose configuration
// does not build is left out, with a warning. The services run on the
// simulation's clock, as the twin does.
func (d *Demo) addServices() error {
	if err := d.node.SetServicesClock(d.twinNow); err != nil {
		return err
	}
	for _, kind := range service.Kinds() {
		v, _ := service.DemoConfig(kind, d.model)
		s, err := service.BuildFrom(kind, kind, v)
		if err != nil {
			d.log.Warn("demo: not running a service", "kind", kind, "err", err)
			continue
		}
		if err := d.node.AddService(kind, s); err != nil {
			return err
		}
	}
	return nil
}

// enabled reports whether a listen address turns its listener on.
func enabled(addr string) bool { return addr != "" && addr != "off" }

// Start binds the listeners, starts the connectors and waits until they
// read the network servers' endpoint (an uplink published before would be
// lost, as at a real server), then starts the simulator. It returns once
// everything runs; the demo runs until ctx ends, Close, or the simulator
// fails (Failed). Start may be called once.
func (d *Demo) Start(ctx context.Context) (err error) {
	d.mu.Lock()
	if d.mu.started || d.mu.closed {
		d.mu.Unlock()
		return errors.New("demo: Start called twice or after Close")
	}
	d.mu.started = true
	d.mu.Unlock()
	// The parts run on a context of the demo's own: when ctx ends, the
	// simulator stops first, and Close stops the rest in order, so that
	// the building gateways disconnect cleanly (no wills) and the
	// connectors publish what they received before the node closes.
	caller := ctx
	ctx = context.WithoutCancel(ctx)
	if err := d.ns.Start(ctx); err != nil {
		return fmt.Errorf("demo: network server endpoint: %w", err)
	}
	if err := d.node.Start(ctx); err != nil {
		return err
	}
	if a := d.node.Addr(node.ListenerHTTP); a != nil {
		d.pics.BaseURL = "http://" + a.String() + "/pictures/"
	}
	// What arrives on the bus, counted by event.
	if d.watchBus, err = bus.NewLocal(d.node.Broker(), "citymesh-demo-watch"); err != nil {
		return err
	}
	if err := d.watchBus.Subscribe(ctx, "+/+/+/+/+", 0, d.counts.count); err != nil {
		return err
	}

	// The clock: scaled (the connectors' liveness and deduplication then
	// run on simulated time too), or the one given.
	d.clock = d.opts.Clock
	var connClock run.Clock
	if d.clock == nil {
		sc, err := sim.NewScaledClock(d.opts.Start, d.opts.Speed)
		if err != nil {
			return err
		}
		d.clock, connClock = sc, scaledClock{sc}
	}
	d.twinClock.Store(clockBox{d.clock})

	// The twin, recovered and subscribed before anything publishes.
	tctx, tstop := context.WithCancel(ctx)
	d.twinStop = tstop
	twinErr := make(chan error, 1)
	d.twinWG.Go(func() { twinErr <- d.twin.Run(tctx) })
	select {
	case <-d.twin.Ready():
	case err := <-twinErr:
		return fmt.Errorf("demo: twin: %w", err)
	case <-caller.Done():
		return caller.Err()
	}
	recErr := make(chan error, 1)
	d.twinWG.Go(func() { recErr <- d.recorder.Run(tctx) })
	select {
	case <-d.recorder.Ready():
	case err := <-recErr:
		return fmt.Errorf("demo: twin: events: %w", err)
	case <-caller.Done():
		return caller.Err()
	}

	// The connectors, on the node's bus, reading the endpoint.
	nsURL := "tcp://" + d.ns.Addr(node.ListenerMQTT).String()
	rc := run.Config{Campus: d.opts.Campus, Codecs: d.opts.Codecs, Copies: d.opts.Copies,
		ReconnectMin: 100 * time.Millisecond, ReconnectMax: 5 * time.Second}
	for _, a := range d.model.Applications {
		switch a.Server {
		case campus.TheThingsStack:
			rc.TTS = append(rc.TTS, run.TTSConfig{Application: a.ID, URL: nsURL, APIKey: "NNSXS.CITYMESH-DEMO"})
		case campus.ChirpStack:
			rc.ChirpStack = append(rc.ChirpStack, run.ChirpStackConfig{Application: a.ID, URL: nsURL})
		}
	}
	if rc.Enabled() {
		if d.conns, err = run.New(rc, run.Options{Logger: d.log, Clock: connClock, ClientIDPrefix: "citymesh-demo"}); err != nil {
			return fmt.Errorf("demo: connectors: %w", err)
		}
		d.connsRef.Store(d.conns)
		if err := d.node.Registry().Register(d.conns.Collector()); err != nil {
			return err
		}
		if d.connBus, err = bus.NewLocal(d.node.Broker(), "citymesh-connectors"); err != nil {
			return err
		}
		if err := d.conns.Start(ctx, d.connBus); err != nil {
			return fmt.Errorf("demo: connectors: %w", err)
		}
		if err := d.waitConnected(caller, len(rc.TTS)+len(rc.ChirpStack)); err != nil {
			return err
		}
	}

	// The simulator: the network servers' uplinks to the endpoint (MQTT
	// 3.1.1, QoS 0, as they publish), building gateways and the robot to
	// the node, one MQTT 5 connection each with its will and a persistent
	// session, as docs/events.md asks of them.
	nsOut, err := sim.NewMQTTOutput(sim.MQTTOptions{URL: "mqtt://" + d.ns.Addr(node.ListenerMQTT).String(), Version: mqtt.V311,
		ClientID: "citymesh-demo-network-server", Logger: d.log})
	if err != nil {
		return err
	}
	d.nsOut = nsOut
	var cityOut sim.Output
	if a := d.node.Addr(node.ListenerMQTT); a != nil {
		o, err := sim.NewMQTTOutput(sim.MQTTOptions{URL: "mqtt://" + a.String(), Version: mqtt.V5, PerPublisher: true,
			ClientID: "citymesh-demo-sim", SessionExpiry: 3600, Logger: d.log})
		if err != nil {
			return err
		}
		cityOut = o
	} else {
		if d.cityBus, err = bus.NewLocal(d.node.Broker(), "citymesh-demo-sim"); err != nil {
			return err
		}
		cityOut = sim.NewBusOutput(d.cityBus)
	}
	d.cityOut = cityOut
	for _, o := range []sim.Output{nsOut, cityOut} {
		if p, ok := o.(interface{ Probe(context.Context) error }); ok {
			pctx, cancel := context.WithTimeout(caller, 10*time.Second)
			err := p.Probe(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
		}
	}
	d.player, err = sim.NewPlayer(sim.PlayerConfig{Campus: d.model, Seed: d.opts.Seed, Start: d.opts.Start, Clock: d.clock,
		Until: d.opts.Until, Faults: d.opts.Faults, Pictures: d.robotPictures(), RobotEvery: d.opts.RobotEvery,
		DecodedPayload: d.opts.DecodedPayload, DuplicateEvery: d.opts.DuplicateEvery, LoadRate: d.opts.LoadRate, Copies: d.opts.Copies,
		Outputs: sim.Outputs{TTS: nsOut, ChirpStack: nsOut, Building: cityOut, Robot: cityOut}, Logger: d.log})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	d.playerRef.Store(d.player)
	rctx, stop := context.WithCancel(ctx)
	// The player and the summaries end with the caller's context.
	unhook := context.AfterFunc(caller, stop)
	d.mu.Lock()
	closed := d.mu.closed
	if !closed {
		d.mu.stop = func() { unhook(); stop() }
	}
	d.mu.Unlock()
	if closed {
		unhook()
		stop()
		return errors.New("demo: closed while starting")
	}
	d.wg.Go(func() { d.play(rctx) })
	if d.opts.StatsEvery > 0 {
		d.wg.Go(func() { d.summaries(rctx) })
	}
	d.log.Info("demo started", "campus", d.model.ID, "points", len(d.model.Points)*d.opts.Copies, "start", d.opts.Start.Format(time.RFC3339),
		"speed", d.speedName(), "network_server", d.ns.Addr(node.ListenerMQTT).String())
	return nil
}

// waitConnected waits (up to 10 s) until n connectors read the endpoint.
func (d *Demo) waitConnected(ctx context.Context, n int) error {
	deadline := time.Now().Add(10 * time.Second)
	for d.conns.Stats().Connected < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: the connectors did not connect to the network server endpoint %s within 10 s", d.ns.Addr(node.ListenerMQTT))
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// play runs the simulator until ctx ends or Until.
func (d *Demo) play(ctx context.Context) {
	err := d.player.Run(ctx)
	switch {
	case err == nil:
		d.log.Info("demo: the simulation reached its end; the node keeps serving until the demo stops", "sim", d.player.Stats().SimTime.Format(time.RFC3339))
	case ctx.Err() != nil:
	default:
		d.log.Error("demo: the simulator failed", "err", err)
		d.mu.Lock()
		d.mu.err = err
		d.mu.Unlock()
		close(d.failed)
	}
}

// summaries logs a summary every StatsEvery until ctx ends.
func (d *Demo) summaries(ctx context.Context) {
	t := time.NewTicker(d.opts.StatsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.logSummary("demo")
		}
	}
}

// Failed is closed when the simulator failed; Err says why.
func (d *Demo) Failed() <-chan struct{} { return d.failed }

// Err returns the simulator's error, if it failed.
func (d *Demo) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.err
}

// Run starts the demo and runs it until ctx ends (returning nil) or the
// simulator fails (returning its error), then closes it.
func (d *Demo) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		d.Close()
		return err
	}
	var err error
	select {
	case <-ctx.Done():
		d.log.Info("demo: stopping")
	case <-d.failed:
		err = d.Err()
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the simulator, closes its connections (waiting for what
// they published to be acknowledged), stops the connectors (publishing
// what they received), and closes the node (committing and closing the
// store) and the endpoint. It waits for every goroutine the demo started
// and logs a last summary. It may be called more than once, but not while
// Start runs.
func (d *Demo) Close() error {
	d.mu.Lock()
	if d.mu.closed {
		d.mu.Unlock()
		return nil
	}
	d.mu.closed = true
	stop, started := d.mu.stop, d.mu.started
	d.mu.Unlock()
	if stop != nil {
		stop()
	}
	d.wg.Wait()
	// The building gateways and robots disconnect, and the node must have
	// read their DISCONNECTs before it closes: a connection it closes
	// itself publishes its will (the gateway "offline").
	leaving, before := 0, uint64(0)
	if mo, ok := d.cityOut.(*sim.MQTTOutput); ok {
		leaving = mo.Connections()
		before = d.node.Broker().Stats().Disconnects
	}
	var errs []error
	if d.cityOut != nil {
		errs = append(errs, d.cityOut.Close())
	}
	if d.nsOut != nil {
		errs = append(errs, d.nsOut.Close())
	}
	for deadline := time.Now().Add(5 * time.Second); leaving > 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if d.node.Broker().Stats().Disconnects >= before+uint64(leaving) {
			break
		}
	}
	if d.conns != nil {
		errs = append(errs, d.conns.Close())
	}
	if d.twinStop != nil {
		d.twinStop()
		d.twinWG.Wait()
	}
	errs = append(errs, d.closeHistory())
	if started && d.playerRef.Load() != nil {
		d.logSummary("demo stopped")
	}
	return errors.Join(append(errs, d.release())...)
}

// release closes the buses, the node and the endpoint.
func (d *Demo) release() error {
	var errs []error
	for _, b := range []*bus.Local{d.connBus, d.watchBus, d.cityBus, d.twinBus, d.recBus} {
		if b != nil {
			errs = append(errs, b.Close())
		}
	}
	if d.node != nil {
		errs = append(errs, d.node.Close())
	}
	if d.ns != nil {
		errs = append(errs, d.ns.Close())
	}
	return errors.Join(errs...)
}

// HistoryPrefix is where the twin's history answers the Prometheus HTTP
// API on the HTTP listener: HistoryPrefix+"/api/v1/query" and so on, and the
// URL of a Grafana data source.
const HistoryPrefix = "/prometheus"

// closeHistory closes the twin's history, once the twin no longer feeds
// it, and removes its directory if it was a temporary one.
func (d *Demo) closeHistory() error {
	if d.hist == nil {
		return nil
	}
	err := d.hist.Close()
	d.hist = nil
	if d.histTmp != "" {
		err = errors.Join(err, os.RemoveAll(d.histTmp))
	}
	return err
}

// twinNow is the twin's clock: the simulation's once it runs.
func (d *Demo) twinNow() time.Time {
	if c, ok := d.twinClock.Load().(clockBox); ok {
		return c.c.Now()
	}
	return time.Now()
}

// clockBox holds a sim.Clock in an atomic.Value.
type clockBox struct{ c sim.Clock }

// Twin returns the digital twin the demo runs on the node's bus; its API
// is at /api/v1/twin/ on the HTTP listener.
func (d *Demo) Twin() *twin.Service { return d.twin }

// Node returns the citymesh node: its broker (bus.NewLocal), registry and
// listeners.
func (d *Demo) Node() *node.Node { return d.node }

// NetworkServer returns the node that plays the network servers' MQTT
// endpoint.
func (d *Demo) NetworkServer() *node.Node { return d.ns }

// Users returns the demo's users with their passwords (Options.Users).
func (d *Demo) Users() []User { return append([]User(nil), d.users...) }

// Model returns the campus model played (copy 0; the connectors know
// Options.Copies copies of it: campus.Model.Copies).
func (d *Demo) Model() *campus.Model { return d.model }

// Pictures returns the store of the robot's pictures, served at
// /pictures/ on the node's HTTP listener.
func (d *Demo) Pictures() *sim.MemoryPictures { return d.pics }

// robotPictures is where the simulated robot puts its pictures: in
// Pictures (the URL its picture events carry) and, when the node runs the
// robot service with its API, also in the robot service, uploaded as a
// robot does (robot/live.Uploader), so that an incident's picture URL
// (/api/v1/robot/pictures/sha256:…) is served by the robot service.
func (d *Demo) robotPictures() sim.PictureStore {
	a := d.node.Addr(node.ListenerHTTP)
	if a == nil {
		return d.pics
	}
	for _, h := range d.node.Services().Runner().Health() {
		if h.Name == robotlive.Kind { // services are named by kind
			up := &robotlive.Uploader{BaseURL: "http://" + a.String(), Client: &http.Client{Timeout: 10 * time.Second}}
			return uploadedPictures{up: up, kept: d.pics, log: d.log}
		}
	}
	return d.pics
}

// uploadedPictures uploads each picture to the robot service and keeps it
// in kept, whose URL it returns; a failed upload is logged (the robot
// service then redirects to kept's URL, from the picture event).
type uploadedPictures struct {
	up   *robotlive.Uploader
	kept *sim.MemoryPictures
	log  *slog.Logger
}

func (p uploadedPictures) Put(ctx context.Context, ref, contentType string, data []byte) (string, error) {
	if _, err := p.up.Put(ctx, ref, contentType, data); err != nil {
		p.log.Warn("demo: the robot service did not take a picture", "picture", ref, "err", err)
	}
	return p.kept.Put(ctx, ref, contentType, data)
}

// Addr returns the address of the node's listener name (node.ListenerMQTT,
// ListenerWS, ListenerHTTP), or of the network servers' endpoint for
// "network-server"; nil before Start or when off.
func (d *Demo) Addr(name string) net.Addr {
	if name == ListenerNetworkServer {
		return d.ns.Addr(node.ListenerMQTT)
	}
	return d.node.Addr(name)
}

// ListenerNetworkServer names the network servers' endpoint for Addr.
const ListenerNetworkServer = "network-server"

// Stats is what the demo did so far.
type Stats struct {
	// SimTime is the simulated time reached.
	SimTime time.Time
	// Events counts the city events that arrived on the node's bus, by the
	// topic's event level (reading, measurement, status, uplink, position,
	// check, picture); retained messages delivered again are not counted.
	Events map[string]int64
	// Sim is the simulator's count, Connectors the connectors'.
	Sim        sim.Stats
	Connectors run.Stats
}

// Stats returns what the demo did so far; safe from any goroutine.
func (d *Demo) Stats() Stats {
	st := Stats{Events: d.counts.snapshot()}
	if p := d.playerRef.Load(); p != nil {
		st.Sim = p.Stats()
		st.SimTime = st.Sim.SimTime
	}
	if c := d.connsRef.Load(); c != nil {
		st.Connectors = c.Stats()
	}
	return st
}

// logSummary logs one line of Stats.
func (d *Demo) logSummary(msg string) {
	st := d.Stats()
	args := []any{"sim", st.SimTime.In(d.location()).Format(time.RFC3339)}
	for i, name := range eventNames {
		args = append(args, eventPlurals[i], st.Events[name])
	}
	c := st.Connectors
	failed := uint64(0)
	for _, n := range c.Failed {
		failed += n
	}
	args = append(args, "uplinks_decoded", c.Decoded, "duplicates", c.Duplicates, "failures", failed,
		"devices_online", c.Online, "devices_offline", c.Offline, "devices_unheard", c.Unknown)
	if st.Sim.PublishErrors > 0 {
		args = append(args, "sim_publish_errors", st.Sim.PublishErrors)
	}
	d.log.Info(msg, args...)
}

func (d *Demo) location() *time.Location {
	if d.model.Location != nil {
		return d.model.Location
	}
	return time.UTC
}

func (d *Demo) speedName() string {
	switch d.clock.(type) {
	case *sim.ScaledClock:
		return fmt.Sprintf("%g× real time", d.opts.Speed)
	case *sim.VirtualClock:
		return "as fast as possible"
	}
	return fmt.Sprintf("%T", d.clock)
}

// eventNames are the topic event levels of city events, in the order the
// summary lists them.
var eventNames = []string{event.EventReading, event.EventMeasurement, event.EventUplink, event.EventStatus,
	event.EventPosition, event.EventCheck, event.EventPicture}

// eventPlurals name the counts of eventNames in the summary.
var eventPlurals = []string{"readings", "measurements", "uplinks", "statuses", "positions", "checks", "pictures"}

// counts counts the city events on the bus by event name.
type counts struct {
	n [7]atomic.Int64 // by eventNames
}

func (c *counts) count(_ context.Context, m bus.Message) {
	if m.Retain { // delivered from the store on subscribing, not new
		return
	}
	name := m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]
	for i, e := range eventNames {
		if e == name {
			c.n[i].Add(1)
			return
		}
	}
}

func (c *counts) snapshot() map[string]int64 {
	out := make(map[string]int64, len(eventNames))
	for i, e := range eventNames {
		out[e] = c.n[i].Load()
	}
	return out
}

// scaledClock is the simulator's scaled clock as the connectors' clock:
// their timers run speed times as fast as wall time.
type scaledClock struct{ c *sim.ScaledClock }

func (s scaledClock) Now() time.Time { return s.c.Now() }

func (s scaledClock) NewTimer(d time.Duration) run.Timer {
	return wallTimer{time.NewTimer(time.Duration(float64(d) / s.c.Speed()))}
}

type wallTimer struct{ t *time.Timer }

func (t wallTimer) C() <-chan time.Time { return t.t.C }
func (t wallTimer) Stop() bool          { return t.t.Stop() }

// minLevel drops records below a level.
type minLevel struct {
	slog.Handler
	level slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.level}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.level}
}
