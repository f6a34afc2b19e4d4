// Package node puts a whole citymesh node together: the broker with its
// store, its listeners (MQTT over TCP and TLS, MQTT over WebSocket with and
// without TLS, HTTP with health, metrics and profiles), authentication,
// access control, the audit log, and the node's place in the event mesh.
// `citymesh serve` is a thin command around it, and a Go program can run a
// whole node in-process:
//
//	cfg := node.Default()
//	cfg.MQTT, cfg.WS, cfg.HTTP, cfg.Store = "127.0.0.1:0", "off", "off", "memory"
//	n, err := node.New(cfg, logger)
//	...
//	err = n.Start(ctx)
//	defer n.Close()
//	fmt.Println(n.Addr(node.ListenerMQTT)) // the port the system chose
//
// Config is the one configuration: its YAML form is the configuration file,
// its defaults come from Default (and, for limits, from the broker), and
// Validate checks it, naming the setting at fault.
package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/citymesh/citymesh/api"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/internal/buildinfo"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/disk"
)

// Node is a running citymesh node. Create it with New, start its listeners
// with Start (or Start and wait with Run), and stop it with Close. Its
// methods are safe for concurrent use.
type Node struct {
	log *slog.Logger
	sec *security
	// access is the HTTP APIs' access check, with the browsers'
	// sessions; see httpAccess.
	access     *TwinAccess
	accessOnce sync.Once
	sessions   *api.Sessions
	// sessionConns are the MQTT over WebSocket connections each browser
	// session logged in, closed when the session ends.
	sessionConns sessionConns
	lock         *dataLock    // the data directory's lock; nil without a disk store
	st           *store.Store // nil with the memory store
	mesh         *mesh.Node   // nil without a mesh configuration
	b            *broker.Broker
	reg          *prometheus.Registry
	// conns runs the LoRaWAN connectors on connBus, the node's in-process
	// bus; both nil without connectors.
	conns   *run.Runtime
	connBus *bus.Local
	// twin runs the digital twin on twinBus; both nil without one.
	twin    *Twin
	twinBus *bus.Local
	// twinEvBus is the twin's event recorder's in-process bus.
	twinEvBus *bus.Local
	// services runs the services section and the alarm board (on
	// alarmBus); both nil without a services section.
	services *Services
	alarmBus *bus.Local

	clients   *clientLog                   // the connect and disconnect lines
	origins   atomic.Pointer[originPolicy] // who may use MQTT over WebSocket
	wsRefused *prometheus.CounterVec       // refused WebSocket upgrades, by reason
	// wsRefusedLog lets a few refusals a minute into the log; the counter
	// counts every one.
	wsRefusedLog rate.Sometimes

	reloadMu sync.Mutex // serializes Reload

	mu struct {
		sync.Mutex
		cfg       Config // the configuration running, with what Reload applied
		started   bool
		closed    bool
		listeners map[string]net.Listener // bound listeners by name
		servers   []*http.Server
		cancel    context.CancelFunc
		handlers  []handler // added by Handle, served on the HTTP listener
	}
	errc chan error     // the first fatal error of a listener
	wg   sync.WaitGroup // every goroutine Start started
}

// New checks cfg and builds a node from it: it loads certificates and
// credentials, opens the audit log and the store (refusing a store another
// process holds), and creates the broker and the mesh node. It does not
// listen yet: Start does. log receives the node's logs; nil means
// slog.Default(). Close releases what New acquired, whether or not the node
// was started.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	mode, _ := broker.ParseSyncMode(cfg.Sync) // checked by Validate
	bi := buildinfo.Get()
	log.Info("citymesh node", "version", bi.Version, "revision", bi.Revision, "go", bi.GoVersion)
	n := &Node{log: log, reg: prometheus.NewRegistry(), errc: make(chan error, 8), clients: newClientLog(log)}
	n.wsRefusedLog = rate.Sometimes{First: 3, Interval: 10 * time.Second}
	n.mu.cfg = cfg
	ok := false
	defer func() {
		if !ok {
			n.release()
		}
	}()
	var err error
	if n.sec, err = newSecurity(&cfg, log); err != nil {
		return nil, err
	}
	n.log.Info("authentication", append(n.sec.summary(), "acl_rules", len(cfg.ACL.Rules))...)
	if cfg.Store == "disk" {
		if err := n.openStore(cfg.Data, cfg.SyncInterval); err != nil {
			return nil, err
		}
		n.log.Info("store", "kind", "disk", "path", storeDir(cfg.Data), "sync", mode.String(), "sync_interval", cfg.SyncInterval)
	} else {
		log.Warn("store memory: sessions, queued and retained messages do not survive a restart")
	}
	if mode == broker.SyncNone {
		log.Warn("sync mode none: acknowledged messages are not fsynced and may be lost in a crash")
	}
	opts := cfg.Limits // the limits section is the broker's options
	opts.Logger, opts.Store, opts.Sync = log, n.st, mode
	opts.Authenticator, opts.Authorizer, opts.Audit = n.sec.authenticator(), n.sec.authorizer(), n.sec.audit
	opts.SysInterval = time.Duration(cfg.SysIntervalSeconds) * time.Second
	opts.OnClient = n.clients.event
	if cfg.Mesh.Enabled() {
		mc := cfg.meshConfig()
		if n.mesh, err = mesh.New(mc, log); err != nil {
			return nil, fieldError("mesh", err)
		}
		opts.NodeName, opts.Mesh, opts.MaxHops = mc.Node, n.mesh.Handler(), mc.MaxHops
		opts.MaxLinkStoredMessages, opts.MaxLinkStoredBytes = mc.LinkMaxMessages, mc.LinkMaxBytes
	}
	n.b = broker.New(opts)
	n.wsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "citymesh_ws_upgrades_refused_total",
		Help: "WebSocket upgrades refused (403), by reason: a browser origin not allowed, or a loopback listener reached by another host name."},
		[]string{"reason"})
	for _, r := range []string{refusedOrigin, refusedHost} {
		n.wsRefused.WithLabelValues(r)
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{Name: "citymesh_build_info",
		Help:        "The build of citymesh that runs: always 1, with the version, revision and Go release as labels.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion}})
	buildInfo.Set(1)
	n.reg.MustRegister(n.b.Collector(), n.wsRefused, buildInfo)
	if n.mesh != nil {
		n.reg.MustRegister(n.mesh.Collector())
	}
	if cfg.Connectors.Enabled() {
		if n.connBus, err = bus.NewLocal(n.b, "citymesh-connectors"); err != nil {
			return nil, err
		}
		if n.conns, err = run.New(cfg.Connectors, run.Options{Logger: log}); err != nil {
			return nil, errors.Join(connectorErrors(err)...)
		}
		n.reg.MustRegister(n.conns.Collector())
	}
	if cfg.Twin.Enabled {
		if err := n.newTwin(&cfg); err != nil {
			return nil, err
		}
	}
	if cfg.Services != nil {
		if err := n.newServices(&cfg); err != nil {
			return nil, err
		}
	}
	ok = true
	return n, nil
}

// openStore locks the data directory and opens the disk store in it.
func (n *Node) openStore(data string, interval time.Duration) error {
	if err := os.MkdirAll(data, 0o750); err != nil {
		return &FieldError{Field: "data", Err: err}
	}
	dir := storeDir(data)
	lock, err := lockData(data, dir)
	if err != nil {
		return err
	}
	n.lock = lock
	if n.st, err = disk.OpenWith(dir, disk.Options{MinSyncInterval: interval}); err != nil {
		if inUse(err) {
			return &StoreInUseError{Store: dir}
		}
		return err
	}
	return nil
}

// storeDir is the directory of the disk store in data directory data,
// written as the person wrote data ("./data/store").
func storeDir(data string) string {
	dir := filepath.Join(data, "store")
	if strings.HasPrefix(data, "./") && !strings.HasPrefix(dir, "./") {
		dir = "./" + dir
	}
	return dir
}

// newTwin creates the node's twin on its own in-process bus, registers its
// metrics and mounts its HTTP APIs.
func (n *Node) newTwin(cfg *Config) error {
	var err error
	if n.twinBus, err = bus.NewLocal(n.b, "citymesh-twin"); err != nil {
		return err
	}
	if n.twinEvBus, err = bus.NewLocal(n.b, "citymesh-twin-events"); err != nil {
		return err
	}
	data := cfg.Data
	if cfg.Store != "disk" {
		data = ""
	}
	if n.twin, err = NewTwin(cfg.Twin, TwinOptions{Bus: n.twinBus, EventBus: n.twinEvBus, Connectors: cfg.Connectors, Data: data, Logger: n.log}); err != nil {
		return err
	}
	n.reg.MustRegister(n.twin.Collectors()...)
	if !enabled(cfg.HTTP) {
		n.log.Warn("twin: the HTTP listener is off: its APIs are not served")
		return nil
	}
	return n.twin.Mount(n.Handle, n.httpAccess())
}

// Twin returns the node's digital twin, or nil when it has none.
func (n *Node) Twin() *Twin { return n.twin }

// Broker returns the node's broker, for in-process clients (its Local
// sessions, the bus).
func (n *Node) Broker() *broker.Broker { return n.b }

// Mesh returns the node's mesh node, or nil when it has no mesh
// configuration.
func (n *Node) Mesh() *mesh.Node { return n.mesh }

// Config returns the configuration the node runs with: the one it was
// created with, and what Reload has applied since.
func (n *Node) Config() Config {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.cfg
}

// Registry returns the Prometheus registry of the node's metrics, which its
// HTTP listener serves at /metrics.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Addr returns the address listener name ("mqtt", "mqtts", "ws", "wss" or
// "http", see the Listener constants) is bound to once the node has
// started, or nil when that listener is off or not started. Tests that
// configure 127.0.0.1:0 learn their port from it.
func (n *Node) Addr(name string) net.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ln := n.mu.listeners[name]; ln != nil {
		return ln.Addr()
	}
	return nil
}

// Start binds the node's listeners, starts the mesh node, and serves
// clients until ctx ends or Close is called. It returns once every listener
// is bound, or the first error; after an error, call Close. Start may be
// called once.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.mu.closed || n.mu.started {
		n.mu.Unlock()
		return errors.New("node: Start called twice or after Close")
	}
	n.mu.started = true
	cfg := n.mu.cfg
	n.mu.Unlock()

	bound := make(map[string]net.Listener)
	for _, l := range cfg.listeners() {
		if !enabled(l.addr) {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, b := range bound {
				b.Close()
			}
			return &FieldError{Field: l.name, Err: err}
		}
		bound[l.name] = ln
	}
	ctx, cancel := context.WithCancel(ctx)
	n.mu.Lock()
	n.mu.listeners, n.mu.cancel = bound, cancel
	n.origins.Store(newOriginPolicy(n.ownOrigins(&cfg), cfg.WSAllowedOrigins))
	n.mu.Unlock()

	if n.mesh != nil {
		// Before serving: the grants of links restored from the store must
		// be in place before anything is routed to them.
		if err := n.mesh.Start(ctx, n.b); err != nil {
			return fieldError("mesh", err)
		}
		mc := cfg.meshConfig()
		n.log.Info("mesh node started", "node", mc.Node, "role", mc.Role,
			"peers", len(mc.Peers), "upstream", len(mc.Upstream), "bridges", len(mc.Bridges))
	}
	for _, l := range cfg.listeners() {
		ln := bound[l.name]
		if ln == nil {
			continue
		}
		n.serve(ctx, l.name, ln)
	}
	if n.twin != nil {
		// Before the connectors: recovered and subscribed before they
		// publish.
		if err := n.twin.Start(ctx, nil, nil); err != nil {
			return fieldError("twin", err)
		}
	}
	if n.conns != nil {
		if err := n.conns.Start(ctx, n.connBus); err != nil {
			return fieldError("connectors", err)
		}
	}
	if n.services != nil {
		if err := n.services.Start(ctx); err != nil {
			return fieldError("services", err)
		}
	}
	n.wg.Go(func() { n.clients.run(ctx) })
	// Servers of HTTP listeners stop with ctx, also when it is the
	// caller's that ends.
	n.wg.Go(func() {
		<-ctx.Done()
		n.stopServers()
	})
	return nil
}

// ownOrigins returns the origins of the node's HTTP listener, once bound.
// n.mu is held.
func (n *Node) ownOrigins(cfg *Config) []string {
	ln := n.mu.listeners[ListenerHTTP]
	if ln == nil {
		return nil
	}
	host, _, _ := net.SplitHostPort(cfg.HTTP)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return ownOrigins(host, port)
}

// serve starts serving listener name on ln.
func (n *Node) serve(ctx context.Context, name string, ln net.Listener) {
	addr := ln.Addr().String()
	switch name {
	case ListenerMQTT:
		n.log.Info("MQTT listening", "addr", addr)
		n.wg.Go(func() { n.fail(n.b.ServeListener(ctx, ln, broker.ConnInfo{Listener: name})) })
	case ListenerMQTTS:
		n.log.Info("MQTT over TLS listening", "addr", addr)
		tln := tls.NewListener(ln, n.sec.tls.Config())
		n.wg.Go(func() { n.fail(n.b.ServeListener(ctx, tln, broker.ConnInfo{Listener: name})) })
	case ListenerWS:
		n.log.Info("MQTT over WebSocket listening", "addr", addr, "path", "/mqtt")
		n.serveHTTP(newHTTPServer(n.wsHandler(ctx, name, ln.Addr())), ln)
	case ListenerWSS:
		n.log.Info("MQTT over WebSocket over TLS listening", "addr", addr, "path", "/mqtt")
		srv := newHTTPServer(n.wsHandler(ctx, name, ln.Addr()))
		srv.TLSConfig = n.sec.tls.Config()
		n.serveHTTP(srv, tls.NewListener(ln, srv.TLSConfig))
	case ListenerHTTP:
		n.log.Info("HTTP listening", "addr", addr)
		n.serveHTTP(newHTTPServer(n.httpHandler(ctx, ln.Addr())), ln)
	}
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
}

// serveHTTP serves srv on ln until stopServers.
func (n *Node) serveHTTP(srv *http.Server, ln net.Listener) {
	n.mu.Lock()
	n.mu.servers = append(n.mu.servers, srv)
	n.mu.Unlock()
	n.wg.Go(func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			n.fail(err)
		}
	})
}

// stopServers shuts the HTTP servers down, giving requests in progress two
// seconds.
func (n *Node) stopServers() {
	n.mu.Lock()
	servers := n.mu.servers
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range servers {
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
	}
}

// fail records the error that ended a listener, if any.
func (n *Node) fail(err error) {
	if err == nil {
		return
	}
	select {
	case n.errc <- err:
	default:
	}
}

// Run starts the node and serves until ctx ends or a listener fails, then
// closes the node. It returns the listener's error, or nil when ctx ended.
func (n *Node) Run(ctx context.Context) error {
	if err := n.Start(ctx); err != nil {
		n.Close()
		return err
	}
	var err error
	select {
	case <-ctx.Done():
		n.log.Info("shutting down")
	case err = <-n.errc:
	}
	if cerr := n.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close stops the listeners and the mesh node, disconnects every client
// (MQTT 5 clients get DISCONNECT 0x8B Server shutting down), commits the
// last writes to the store, closes it and releases the data directory. It
// waits for every goroutine the node started. Close may be called more than
// once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.mu.closed {
		n.mu.Unlock()
		return nil
	}
	n.mu.closed = true
	cancel := n.mu.cancel
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if n.services != nil {
		// Before the broker: the services publish their last results
		// (debounced values, alarms) as they stop.
		n.services.Close()
	}
	if n.conns != nil {
		n.conns.Close() // publishes what it received before the broker goes
	}
	if n.mesh != nil {
		n.mesh.Stop()
	}
	n.stopServers()
	n.wg.Wait()
	return n.release()
}

// release closes the broker (before the store: it commits the last
// writes), the store, the data directory's lock and the audit log.
func (n *Node) release() error {
	var errs []error
	if n.conns != nil {
		n.conns.Close()
	}
	if n.connBus != nil {
		n.connBus.Close()
	}
	if n.services != nil {
		errs = append(errs, n.services.Close())
	}
	if n.alarmBus != nil {
		n.alarmBus.Close()
	}
	if n.twin != nil {
		// After the HTTP servers (no request reads a closed history), before
		// the broker (the last snapshots are published).
		errs = append(errs, n.twin.Close())
	}
	if n.twinBus != nil {
		n.twinBus.Close()
	}
	if n.twinEvBus != nil {
		n.twinEvBus.Close()
	}
	if n.b != nil {
		errs = append(errs, n.b.Close())
		n.clients.report() // the lines held back until the last client went
	}
	if n.st != nil {
		errs = append(errs, n.st.Close())
	}
	if n.lock != nil {
		n.lock.release()
	}
	if n.sec != nil {
		n.sec.close()
	}
	return errors.Join(errs...)
}

// Reload applies what can change while the node runs. It reads the TLS
// certificates, the password file and the JWT keys again, and takes the
// ACL rules and ws_allowed_origins from cfg (nil: the configuration
// running); connections made
// afterwards see the result, established ones keep what they had. It
// returns the settings of cfg that differ from the running ones but need a
// restart, as YAML key paths ("mqtt", "limits.max_inflight"), and logs them
// in a warning; and the errors of the parts that failed, which keep their
// previous state. A cfg that does not validate changes nothing.
func (n *Node) Reload(cfg *Config) (notApplied []string, err error) {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	running := n.Config()
	next := running
	if cfg != nil {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		next = *cfg
	}
	aclApplied, err := n.sec.reload(&next)
	applied := running
	if aclApplied {
		applied.ACL = next.ACL
	}
	applied.WSAllowedOrigins = next.WSAllowedOrigins
	n.mu.Lock()
	n.mu.cfg = applied
	if n.mu.started {
		n.origins.Store(newOriginPolicy(n.ownOrigins(&applied), applied.WSAllowedOrigins))
	}
	n.mu.Unlock()
	notApplied = changedKeys(reflect.ValueOf(applied), reflect.ValueOf(next), "", nil)
	// The services section is a map of YAML nodes: compared by value, each
	// service that changed named.
	if i := slices.Index(notApplied, "services"); i >= 0 {
		notApplied = slices.Insert(slices.Delete(notApplied, i, i+1), i, changedServices(applied.Services, next.Services)...)
	}
	if len(notApplied) > 0 {
		n.log.Warn("not applied until restart: " + strings.Join(notApplied, ", "))
	}
	return notApplied, err
}

// StoreInUseError is New's error when another process holds the store.
type StoreInUseError struct {
	// Store is the store's directory, DATA/store.
	Store string
	// PID is the process that holds it, 0 when unknown.
	PID int
	// Advice says what to do; "" is "stop it or use another data
	// directory".
	Advice string
}

func (e *StoreInUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("another citymesh process (pid %d)", e.PID)
	}
	advice := e.Advice
	if advice == "" {
		advice = "stop it or use another data directory"
	}
	return fmt.Sprintf("%s is in use by %s; %s", e.Store, who, advice)
}
