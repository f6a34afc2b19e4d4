package run

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/event"
)

// Options are what the program that runs the connectors gives them
// besides their configuration. The zero value is usable.
type Options struct {
	// Logger receives the connectors' logs; nil is slog.Default().
	Logger *slog.Logger
	// Clock is the clock of liveness, deduplication and events without a
	// network server's time; nil is the system clock.
	Clock Clock
	// ClientIDPrefix starts the MQTT client identifiers the connectors
	// choose themselves; default "citymesh".
	ClientIDPrefix string
	// DrainTimeout bounds how long Close waits for received messages to
	// be published; default 10 s.
	DrainTimeout time.Duration
}

// Runtime runs the configured connectors: one MQTT connection per
// application to its network server, workers that turn the network
// server's messages into city events on the bus, the liveness timer, and
// the downlink commands. It sees the bus only through the bus.Bus
// interface, so it runs in-process (bus.Local, in `citymesh serve`) or at
// an edge node against a remote broker (bus.Remote, in `citymesh run
// connector`) unchanged.
//
// Create it with New, start it with Start and stop it with Close.
type Runtime struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	bus    bus.Bus
	model  *campus.Model
	codecs *codec.Registry
	clock  Clock
	dedupe *connector.Deduplicator
	live   *liveness // nil when liveness is off

	ups     []*upstream
	devices []*device // in campus order
	byEUI   map[connector.EUI64]*device
	byID    map[string]*device // by campus id
	workers []chan job
	// codecSlots bounds the codec calls that run at once to the cores:
	// decoding is all CPU, and more calls than cores would only make each
	// take longer, towards its time limit.
	codecSlots chan struct{}
	cmds       *commander
	stats      runtimeStats

	// logEvery lets a few lines a minute of each kind of failure into
	// the log; the counters count every one.
	logEvery [numReasons]*rate.Sometimes

	started   time.Time
	srcCtx    context.Context // the sources and the liveness timer
	srcCancel context.CancelFunc
	workCtx   context.Context // publishing; ends DrainTimeout after Close
	workEnd   context.CancelFunc
	srcWG     sync.WaitGroup // sources, liveness timer
	workWG    sync.WaitGroup // workers
	closeOnce sync.Once
	startOnce atomic.Bool
}

// runtimeStats are the counters that belong to no device.
type runtimeStats struct {
	published [3]atomic.Uint64 // measurement, uplink, status
	retries   atomic.Uint64
}

// job is one unit of a worker's work: a message from a network server,
// or a liveness check of a device.
type job struct {
	up      *upstream
	dev     *device // the device the topic names; nil if none known
	topic   string
	payload []byte
	expired bool // a liveness check of dev, not a message
}

// New loads the campus model and the device codecs the configuration
// names, checks every connector's application against the model, and
// returns a runtime that has not started: it touches no network, so a
// program can refuse a configuration before it connects to anything.
func New(cfg Config, opts Options) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Enabled() {
		return nil, errors.New("connectors: none configured")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Clock == nil {
		opts.Clock = systemClock{}
	}
	if opts.ClientIDPrefix == "" {
		opts.ClientIDPrefix = "citymesh"
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 10 * time.Second
	}
	if cfg.Workers == 0 {
		cfg.Workers = max(64, 32*runtime.GOMAXPROCS(0))
	}
	if cfg.QueueLength == 0 {
		cfg.QueueLength = 128
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin = time.Second
	}
	if cfg.ReconnectMax == 0 {
		cfg.ReconnectMax = time.Minute
	}
	cfg.ReconnectMax = max(cfg.ReconnectMax, cfg.ReconnectMin)
	model, err := campus.Load(cfg.Campus)
	if err != nil {
		return nil, &FieldError{Field: "campus", Err: err}
	}
	if cfg.Copies > 1 {
		if model, err = model.Copies(0, cfg.Copies); err != nil {
			return nil, &FieldError{Field: "copies", Err: err}
		}
	}
	dir := cfg.Codecs
	if dir == "" {
		dir = filepath.Join(filepath.Dir(cfg.Campus), "codecs")
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, &FieldError{Field: "codecs", Err: fmt.Errorf("%s is not a directory of device codecs", dir)}
	}
	codecs, err := codec.LoadDir(dir, cfg.CodecLimits)
	if err != nil {
		return nil, &FieldError{Field: "codecs", Err: err}
	}
	clock := opts.Clock
	dd := cfg.Dedupe
	dd.Now = clock.Now
	r := &Runtime{
		cfg: cfg, opts: opts, log: opts.Logger, model: model, codecs: codecs, clock: clock,
		dedupe:     connector.NewDeduplicator(dd),
		byEUI:      make(map[connector.EUI64]*device),
		byID:       make(map[string]*device),
		codecSlots: make(chan struct{}, runtime.GOMAXPROCS(0)),
	}
	for i := range r.logEvery {
		r.logEvery[i] = &rate.Sometimes{First: 3, Interval: 10 * time.Second}
	}
	if err := r.buildUpstreams(); err != nil {
		codecs.Close()
		return nil, err
	}
	if !cfg.Liveness.Off {
		r.live = newLiveness(clock, r.expire)
	}
	if cfg.commandsOn() {
		r.cmds = newCommander(r)
	}
	return r, nil
}

// buildUpstreams creates a connector per configured application and the
// state of each of the applications' devices.
func (r *Runtime) buildUpstreams() error {
	var errs []error
	add := func(field, name, appID string, server campus.NetworkServer) *upstream {
		app, ok := r.model.Application(appID)
		if !ok {
			errs = append(errs, &FieldError{Field: field + ".application", Err: fmt.Errorf("%q is not an application of the campus model %s", appID, r.cfg.Campus)})
			return nil
		}
		if app.Server != server {
			errs = append(errs, &FieldError{Field: field + ".application", Err: fmt.Errorf("%q is on %s in the campus model, not %s", appID, app.Server, server)})
			return nil
		}
		return &upstream{rt: r, name: name, server: server, app: app,
			byNetworkID: make(map[string]*device), byEUI: make(map[connector.EUI64]*device)}
	}
	for i, c := range r.cfg.TTS {
		f := fmt.Sprintf("tts[%d]", i)
		u := add(f, c.name(), c.Application, campus.TheThingsStack)
		if u == nil {
			continue
		}
		if err := u.setupTTS(c); err != nil {
			errs = append(errs, &FieldError{Field: f, Err: err})
			continue
		}
		r.ups = append(r.ups, u)
	}
	for i, c := range r.cfg.ChirpStack {
		f := fmt.Sprintf("chirpstack[%d]", i)
		u := add(f, c.name(), c.Application, campus.ChirpStack)
		if u == nil {
			continue
		}
		if err := u.setupChirpStack(c); err != nil {
			errs = append(errs, &FieldError{Field: f, Err: err})
			continue
		}
		r.ups = append(r.ups, u)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	byApp := make(map[string]*upstream)
	for _, u := range r.ups {
		byApp[u.app.ID] = u
	}
	for _, cd := range r.model.Devices {
		u := byApp[cd.Application]
		if u == nil {
			continue
		}
		eui, err := connector.ParseEUI64(cd.DevEUI)
		if err != nil {
			return fmt.Errorf("campus device %s: %w", cd.ID, err)
		}
		d := &device{dev: cd, up: u, eui: eui, offlineAfter: r.cfg.Liveness.OfflineAfter(cd.Interval)}
		d.live.index = -1
		d.codec, _ = r.codecs.Get(cd.Type.ID)
		d.measurementTopic, d.uplinkTopic, d.statusTopic = cd.Topic(event.EventMeasurement), cd.Topic(event.EventUplink), cd.Topic(event.EventStatus)
		d.measurement, d.uplink, d.status = d.measurementTopic.String(), d.uplinkTopic.String(), d.statusTopic.String()
		h := fnv.New32a()
		h.Write(eui[:])
		d.worker = int(h.Sum32() % uint32(r.cfg.Workers))
		r.devices = append(r.devices, d)
		r.byEUI[eui] = d
		r.byID[cd.ID] = d
		u.byNetworkID[cd.NetworkID] = d
		u.byEUI[eui] = d
		u.devices = append(u.devices, d)
	}
	return nil
}

// Model returns the campus model the runtime loaded.
func (r *Runtime) Model() *campus.Model { return r.model }

// Start starts the workers, the liveness timer, the downlink commands'
// subscription on b and the connections to the network servers; the
// events go to b. It returns once the command subscription is in place
// (connections are made in the background and retried); the connectors
// run until ctx ends or Close.
func (r *Runtime) Start(ctx context.Context, b bus.Bus) error {
	if !r.startOnce.CompareAndSwap(false, true) {
		return errors.New("connectors: Start called twice")
	}
	r.bus = b
	r.started = r.clock.Now()
	r.srcCtx, r.srcCancel = context.WithCancel(ctx)
	r.workCtx, r.workEnd = context.WithCancel(context.WithoutCancel(ctx))
	r.workers = make([]chan job, r.cfg.Workers)
	for i := range r.workers {
		ch := make(chan job, r.cfg.QueueLength)
		r.workers[i] = ch
		r.workWG.Go(func() { r.work(ch) })
	}
	for _, d := range r.devices {
		d.mu.Lock()
		d.mu.since = r.started
		d.mu.Unlock()
		if r.live != nil {
			r.live.schedule(d, r.started.Add(d.offlineAfter))
		}
	}
	if r.live != nil {
		r.srcWG.Go(func() { r.live.run(r.srcCtx) })
	}
	if r.cmds != nil {
		if err := r.cmds.start(ctx); err != nil {
			r.Close()
			return err
		}
	}
	for _, u := range r.ups {
		r.srcWG.Go(func() { u.src.run(r.srcCtx) })
	}
	r.log.Info("connectors started", "applications", len(r.ups), "devices", len(r.devices),
		"codecs", len(r.codecs.IDs()), "workers", len(r.workers), "liveness", r.live != nil, "commands", r.cmds != nil)
	return nil
}

// Close stops the connections to the network servers and the liveness
// timer, lets the workers publish what they have received (for at most
// Options.DrainTimeout), and waits for every goroutine the runtime
// started. It may be called more than once.
func (r *Runtime) Close() error {
	r.closeOnce.Do(func() {
		if r.srcCancel == nil { // never started
			r.codecs.Close()
			return
		}
		r.srcCancel()
		if r.cmds != nil {
			r.cmds.stop()
		}
		r.srcWG.Wait()
		for _, ch := range r.workers {
			close(ch)
		}
		drained := make(chan struct{})
		go func() { r.workWG.Wait(); close(drained) }()
		t := time.NewTimer(r.opts.DrainTimeout)
		select {
		case <-drained:
		case <-t.C:
			r.log.Warn("connectors: giving up publishing what is left after the drain timeout", "timeout", r.opts.DrainTimeout)
			r.workEnd()
			<-drained
		}
		t.Stop()
		r.workEnd()
		r.codecs.Close()
		r.log.Info("connectors stopped")
	})
	return nil
}

// submit hands a job to its worker, waiting while the worker's queue is
// full; it gives up when the sources stop.
func (r *Runtime) submit(j job, worker int) {
	select {
	case r.workers[worker] <- j:
	case <-r.srcCtx.Done():
	}
}

// work handles the jobs of one worker until its queue is closed.
func (r *Runtime) work(ch <-chan job) {
	for j := range ch {
		if j.expired {
			r.checkSilent(r.workCtx, j.dev)
			continue
		}
		j.up.proto.handle(r.workCtx, &j)
	}
}

// expire hands a device the liveness timer found silent to its worker.
func (r *Runtime) expire(ctx context.Context, d *device) {
	select {
	case r.workers[d.worker] <- job{dev: d, expired: true}:
	case <-ctx.Done():
	}
}

// fail counts a failure of a message, on its device when it is known,
// and logs it a few times a minute.
func (r *Runtime) fail(u *upstream, d *device, reason int, msg string, args ...any) {
	if d != nil {
		d.stats.failed[reason].Add(1)
	} else {
		u.stats.failed[reason].Add(1)
	}
	r.logEvery[reason].Do(func() {
		args = append([]any{"connector", u.name, "reason", reasonNames[reason]}, args...)
		if d != nil {
			args = append(args, "device", d.dev.ID)
		}
		r.log.Warn("connector: "+msg, args...)
	})
}

// publish publishes an event on the bus, retrying while the bus refuses
// it for a reason that can pass (a remote broker that is away), until ctx
// ends. A broker whose subscribers' queues are all full has stored the
// retained message but queued it for none: that is its slow-consumer
// policy, counted as a publish failure, not retried.
func (r *Runtime) publish(ctx context.Context, u *upstream, d *device, t event.Topic, name string, e event.Event) error {
	m, err := message(t, name, e)
	if err != nil {
		r.fail(u, d, reasonPublish, "event refused", "topic", name, "err", err)
		return err
	}
	return r.publishMessage(ctx, u, d, m, e.Kind())
}

// publishMessage publishes an event's message; see publish.
func (r *Runtime) publishMessage(ctx context.Context, u *upstream, d *device, m bus.Message, k event.Kind) error {
	var err error
	wait := 50 * time.Millisecond
	for {
		err = r.bus.Publish(ctx, m)
		if err == nil {
			r.stats.published[kindIndex(k)].Add(1)
			return nil
		}
		if errors.Is(err, broker.ErrQuotaExceeded) || ctx.Err() != nil {
			r.fail(u, d, reasonPublish, "publish failed", "topic", m.Topic, "err", err)
			return err
		}
		r.stats.retries.Add(1)
		r.logEvery[reasonPublish].Do(func() {
			r.log.Warn("connector: publish failed, retrying", "topic", m.Topic, "err", err)
		})
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func kindIndex(k event.Kind) int {
	switch k {
	case event.KindMeasurement:
		return 0
	case event.KindUplink:
		return 1
	}
	return 2
}

// serviceSource is the source of the statuses the connectors conclude
// themselves (a device gone silent).
var serviceSource = event.Source{Type: event.SourceService, Service: "citymesh-connector"}
