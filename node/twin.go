package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin"
	"github.com/citymesh/citymesh/twin/history"
	"github.com/citymesh/citymesh/twin/remotewrite"
)

// TwinConfig is the twin section of a node's configuration (the twin: key
// of citymesh.yaml) and the configuration of `citymesh run twin`: the
// digital twin fed from the node's bus, its history and its remote write
// (docs/twin.md). The zero value runs no twin.
//
// Reload applies none of it: every twin setting needs a restart.
type TwinConfig struct {
	// Enabled runs the twin. Default false.
	Enabled bool `yaml:"enabled"`
	// Campus is the campus file the twin keeps (campus.Load). Default the
	// connectors section's campus, with its copies.
	Campus string `yaml:"campus"`
	// Copies, when more than 1, makes the twin keep that many copies of
	// the campus (campus.Model.Copies), as connectors.copies does. Default
	// connectors.copies when the campus is the connectors', else 1.
	Copies int `yaml:"copies"`
	// Prefix is the first level of the twin's retained topics,
	// {prefix}/{site}/{kind}/{asset}. Default twin.
	Prefix string `yaml:"prefix"`
	// PublishEvery is how often the assets that changed are published
	// retained and their samples handed to the history. Default 1s.
	PublishEvery time.Duration `yaml:"publish_every"`
	// RecoverTimeout bounds the wait for the retained snapshots at the
	// start. Default 30s.
	RecoverTimeout time.Duration `yaml:"recover_timeout"`
	// TenantTopics publishes each asset's snapshot also in its tenant's
	// namespace ($tenant/{tenant}/twin/...), where the tenant's own MQTT
	// clients read it as twin/... (docs/twin.md, Access). Default true.
	TenantTopics *bool `yaml:"tenant_topics"`
	// History is the embedded history of the numeric values, served by
	// the Prometheus HTTP API at /prometheus/. `history: off` turns it
	// off.
	History TwinHistoryConfig `yaml:"history"`
	// RemoteWrite, when set, also sends every sample to a Prometheus
	// remote write receiver through a durable queue (docs/remote-write.md).
	// Its dir defaults to {data}/remote-write.
	RemoteWrite *remotewrite.Config `yaml:"remote_write"`
}

// TwinHistoryConfig is the twin's history (twin.history).
type TwinHistoryConfig struct {
	// Off turns the history off; `history: off` says the same.
	Off bool `yaml:"off"`
	// Dir is the history's directory. Default {data}/history.
	Dir string `yaml:"dir"`
	// Retention is how long samples and events are kept. Default 400 days
	// (history.DefaultRetention).
	Retention time.Duration `yaml:"retention"`
	// KindRetention shortens the retention of some asset kinds
	// (room: 30d is written room: 720h).
	KindRetention map[string]time.Duration `yaml:"kind_retention"`
	// OutOfOrderWindow is how late a sample may arrive behind the newest of
	// its series and still be kept. Default 24h; negative: none.
	OutOfOrderWindow time.Duration `yaml:"out_of_order_window"`
	// SyncWAL fsyncs the history's write-ahead log on every append.
	// Default false (a crash of the machine may lose the last seconds).
	SyncWAL bool `yaml:"sync_wal"`
}

// UnmarshalYAML reads the section, or the scalar off (false, no) that
// turns the history off. Unknown keys are errors, as elsewhere.
func (h *TwinHistoryConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "off", "false", "no":
			*h = TwinHistoryConfig{Off: true}
			return nil
		case "on", "true", "yes", "":
			*h = TwinHistoryConfig{}
			return nil
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: cannot unmarshal !!str `%s` into node.TwinHistoryConfig", n.Line, n.Value)}}
	}
	if n.Kind == yaml.MappingNode {
		known := map[string]bool{}
		for _, f := range yamlFields(reflect.TypeFor[TwinHistoryConfig]()) {
			known[f.key] = true
		}
		var errs []string
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; !known[k.Value] {
				errs = append(errs, fmt.Sprintf("line %d: field %s not found in type node.TwinHistoryConfig", k.Line, k.Value))
			}
		}
		if len(errs) > 0 {
			return &yaml.TypeError{Errors: errs}
		}
	}
	type plain TwinHistoryConfig
	return n.Decode((*plain)(h))
}

// tenantTopics reports whether the twin publishes tenant copies.
func (c *TwinConfig) tenantTopics() bool { return c.TenantTopics == nil || *c.TenantTopics }

// campus returns the campus file and copies the twin keeps.
func (c *TwinConfig) campus(conns *run.Config) (string, int) {
	if c.Campus != "" {
		return c.Campus, max(c.Copies, 1)
	}
	copies := c.Copies
	if copies == 0 {
		copies = conns.Copies
	}
	return conns.Campus, max(copies, 1)
}

// historyDir returns the history's directory under data directory data.
func (c *TwinConfig) historyDir(data string) string {
	if c.History.Dir != "" {
		return c.History.Dir
	}
	return filepath.Join(data, "history")
}

// remoteWrite returns the remote write configuration with its defaults
// under data directory data, or nil.
func (c *TwinConfig) remoteWrite(data string) *remotewrite.Config {
	if c.RemoteWrite == nil {
		return nil
	}
	rw := *c.RemoteWrite
	if rw.Dir == "" {
		rw.Dir = filepath.Join(data, "remote-write")
	}
	return &rw
}

// validate returns the section's mistakes as FieldErrors under twin.
func (c *TwinConfig) validate(conns *run.Config, data string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: "twin." + field, Err: fmt.Errorf(format, args...)})
	}
	if !c.Enabled {
		if !reflect.ValueOf(*c).IsZero() {
			bad("enabled", "the twin section has settings but enabled is not true")
		}
		return errs
	}
	if file, _ := c.campus(conns); file == "" {
		bad("campus", "required: the campus file the twin keeps (or connectors.campus)")
	}
	if c.Copies < 0 || c.Copies >= campus.MaxCopies {
		bad("copies", "%d: want 1 to %d (0 is the default)", c.Copies, campus.MaxCopies-1)
	}
	if c.Prefix != "" {
		if err := event.ValidID(c.Prefix); err != nil {
			bad("prefix", "%v", err)
		}
	}
	duration := func(field string, d, least time.Duration) {
		if d < 0 || d > 0 && d < least {
			bad(field, "%v: want at least %v (0 is the default)", d, least)
		}
	}
	duration("publish_every", c.PublishEvery, 10*time.Millisecond)
	duration("recover_timeout", c.RecoverTimeout, 100*time.Millisecond)
	h := &c.History
	if !h.Off {
		if h.Dir == "" && data == "" {
			bad("history.dir", "required when the node has no data directory")
		}
		duration("history.retention", h.Retention, time.Minute)
		for k, d := range h.KindRetention {
			if err := event.ValidID(k); err != nil {
				bad("history.kind_retention."+k, "not an asset kind: %v", err)
			} else if d < time.Minute {
				bad("history.kind_retention."+k, "%v: want at least 1m", d)
			}
		}
	}
	if c.RemoteWrite != nil && c.RemoteWrite.Dir == "" && data == "" {
		bad("remote_write.dir", "required when the node has no data directory")
	} else if rw := c.remoteWrite(data); rw != nil {
		if err := rw.Validate(); err != nil {
			msg := strings.TrimPrefix(err.Error(), "remotewrite: ")
			key, rest, _ := strings.Cut(msg, " ")
			key = strings.TrimSuffix(key, ":")
			field := "remote_write"
			for _, f := range yamlFields(reflect.TypeFor[remotewrite.Config]()) {
				if f.key == key {
					field, msg = "remote_write."+key, rest
					break
				}
			}
			bad(field, "%s", msg)
		}
	}
	return errs
}

// Twin is a running digital twin: the twin.Service on a bus, its history
// and remote write queue, and its HTTP APIs. A node runs one when its
// configuration has a twin section (Node.Twin); `citymesh run twin` runs one
// against a remote broker. Create it with NewTwin, start it with Start and
// stop it with Close.
type Twin struct {
	cfg  TwinConfig
	log  *slog.Logger
	svc  *twin.Service
	hist *history.DB         // nil with history off
	rw   *remotewrite.Writer // nil without remote write
	rec  *twin.Recorder      // the event log's feed; nil with history off

	bus    *laterBus // the bus, given to NewTwin or to Start
	recBus *laterBus // the recorder's: TwinOptions.EventBus, else bus

	mu     sync.Mutex
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
}

// TwinOptions are what NewTwin takes besides the section.
type TwinOptions struct {
	// Bus is where the city events are and the snapshots go; nil: the
	// one given to Start.
	Bus bus.Bus
	// EventBus, when set, is where the recorder of the history's event
	// log reads the non-numeric events (a client of its own, so that its
	// subscriptions do not overlap the twin's on one client); nil: Bus,
	// or the one given to Start.
	EventBus bus.Bus
	// Connectors is the connectors section, whose campus the twin keeps
	// when its own names none.
	Connectors run.Config
	// Data is the data directory: the history's and remote write queue's
	// directories default to under it.
	Data string
	// Logger receives the twin's logs (default slog.Default()).
	Logger *slog.Logger
}

// NewTwin loads the campus, opens the history and the remote write queue,
// and creates the twin service. cfg must have been validated.
func NewTwin(cfg TwinConfig, o TwinOptions) (_ *Twin, err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	t := &Twin{cfg: cfg, log: o.Logger, done: make(chan struct{}), bus: &laterBus{Bus: o.Bus}, recBus: &laterBus{Bus: o.EventBus}}
	defer func() {
		if err != nil {
			t.release()
		}
	}()
	file, copies := cfg.campus(&o.Connectors)
	m, err := campus.Load(file)
	if err != nil {
		return nil, fieldError("twin.campus", err)
	}
	if copies > 1 {
		if m, err = m.Copies(0, copies); err != nil {
			return nil, fieldError("twin.copies", err)
		}
	}
	var sinks []history.Sink
	if !cfg.History.Off {
		dir := cfg.historyDir(o.Data)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fieldError("twin.history.dir", err)
		}
		t.hist, err = history.Open(dir, history.Options{Retention: cfg.History.Retention, KindRetention: cfg.History.KindRetention,
			OutOfOrderWindow: cfg.History.OutOfOrderWindow, SyncWAL: cfg.History.SyncWAL, Logger: o.Logger})
		if err != nil {
			return nil, fieldError("twin.history", err)
		}
		sinks = append(sinks, t.hist)
	}
	if rc := cfg.remoteWrite(o.Data); rc != nil {
		rc.Logger = o.Logger
		if t.rw, err = remotewrite.Open(*rc); err != nil {
			return nil, fieldError("twin.remote_write", err)
		}
		sinks = append(sinks, t.rw)
	}
	opts := twin.Options{Model: m, Bus: t.bus, Prefix: cfg.Prefix, PublishEvery: cfg.PublishEvery,
		RecoverTimeout: cfg.RecoverTimeout, Logger: o.Logger, TenantTopics: cfg.tenantTopics()}
	if len(sinks) > 0 {
		opts.Sink = history.Tee(sinks...)
	}
	if t.svc, err = twin.NewService(opts); err != nil {
		return nil, fieldError("twin", err)
	}
	if t.hist != nil {
		if t.rec, err = twin.NewRecorder(twin.RecorderOptions{Model: m, Bus: t.recBus, Log: t.hist.Events(), Logger: o.Logger}); err != nil {
			return nil, fieldError("twin", err)
		}
	}
	return t, nil
}

// Service returns the twin service.
func (t *Twin) Service() *twin.Service { return t.svc }

// History returns the twin's history, nil when it is off.
func (t *Twin) History() *history.DB { return t.hist }

// Start runs the twin on b (nil: the bus given to NewTwin), and the
// recorder of the history's event log on events (nil: TwinOptions.EventBus,
// else the twin's bus; give it a client of its own, see bus.Bus): it
// recovers the state from the retained snapshots and subscribes to the
// city events, and returns once that is done (or failed). The twin runs
// until Close. Start may be called once.
func (t *Twin) Start(ctx context.Context, b, events bus.Bus) error {
	if b != nil {
		t.bus.Bus = b
	}
	if events != nil {
		t.recBus.Bus = events
	}
	if t.bus.Bus == nil {
		return errors.New("twin: no bus")
	}
	if t.recBus.Bus == nil {
		t.recBus.Bus = t.bus.Bus
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.mu.Lock()
	t.cancel = cancel
	t.mu.Unlock()
	t.wg.Go(func() {
		defer close(t.done)
		t.err = t.svc.Run(ctx)
	})
	select {
	case <-t.svc.Ready():
	case <-t.done:
		return fmt.Errorf("twin: %w", t.err)
	}
	if t.rec != nil {
		recDone := make(chan error, 1)
		t.wg.Go(func() { recDone <- t.rec.Run(ctx) })
		select {
		case <-t.rec.Ready():
		case err := <-recDone:
			return fmt.Errorf("twin: event recorder: %w", err)
		}
	}
	rec := t.svc.Recovered()
	t.log.Info("twin running", "points", len(t.svc.State().Model().Points), "recovered_assets", rec.Assets,
		"recovered_points", rec.Points, "history", t.hist != nil, "remote_write", t.rw != nil)
	return nil
}

// Collectors returns the twin's metrics: the service's, the history's and
// the remote write queue's.
func (t *Twin) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{t.svc.Collector()}
	if t.hist != nil {
		h := t.hist
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "citymesh_twin_history_dropped_total",
			Help: "Samples the history left out (out of order beyond its window, or refused)."},
			func() float64 { return float64(h.Dropped()) }))
	}
	if t.rw != nil {
		cs = append(cs, t.rw)
	}
	return cs
}

// Close stops the twin (it publishes and hands on what is left), waits for
// it, and closes the remote write queue and the history.
func (t *Twin) Close() error {
	t.mu.Lock()
	cancel := t.cancel
	t.cancel = nil
	t.mu.Unlock()
	if cancel != nil {
		cancel()
		t.wg.Wait()
	}
	return t.release()
}

// laterBus is a bus.Bus given after the twin service was created (it is
// set before the service runs, and not changed afterwards): `citymesh run
// twin` checks the configuration, loads the campus and opens the history
// before it connects to the broker.
type laterBus struct{ bus.Bus }

func (t *Twin) release() error {
	var errs []error
	if t.rw != nil {
		errs = append(errs, t.rw.Close())
		t.rw = nil
	}
	if t.hist != nil {
		errs = append(errs, t.hist.Close())
		t.hist = nil
	}
	return errors.Join(errs...)
}
