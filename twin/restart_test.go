package twin_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/twin"
)

// startTwin starts a node on cfg (its disk store in cfg.Data) and a twin
// service connected to it over MQTT; stop stops the twin (publishing its last
// snapshots) and then closes the node (committing its store).
func startTwin(t *testing.T, cfg node.Config, m *campus.Model) (n *node.Node, svc *twin.Service, nodeStart time.Duration, stop func()) {
	t.Helper()
	began := time.Now()
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		n.Close()
		t.Fatal(err)
	}
	nodeStart = time.Since(began)
	// The twin is an MQTT 5 client of the node over TCP, as in a process
	// of its own.
	dctx, cancelDial := context.WithTimeout(context.Background(), 10*time.Second)
	tb, err := bus.DialRemote(dctx, bus.RemoteOptions{URL: "mqtt://" + n.Addr(node.ListenerMQTT).String(), ClientID: "citymesh-twin",
		Logger: slog.New(slog.DiscardHandler)})
	cancelDial()
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	svc, err = twin.NewService(twin.Options{Model: m, Bus: tb, PublishEvery: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("the twin was not ready within 60 s")
	}
	return n, svc, nodeStart, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		tb.Close()
		if err := n.Close(); err != nil {
			t.Error(err)
		}
	}
}

// TestRestartKeepsState runs the twin of the whole reference campus
// (35,666 points) as an MQTT client of a node with its disk store, gives
// every numeric point a value (one event per asset) and an asset a status,
// stops the twin at once (it publishes every changed asset's snapshot as it
// stops) and the node, starts both again on the same data directory, and
// finds the same state: every point's value, text, position, observed time
// and source, every asset's liveness (the received times are those of the
// retained city events, which arrive again after the restart). It reports
// how long the node's start (the store's retained messages) and the twin's
// recovery took.
func TestRestartKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole reference campus: not in -short")
	}
	m, err := campus.Load("../examples/campus/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP = "127.0.0.1:0", "off", "off"
	cfg.Data = t.TempDir()
	cfg.SysIntervalSeconds = -1
	cfg.Store = "disk"

	n, svc, _, stop := startTwin(t, cfg, m)
	pub, err := bus.NewLocal(n.Broker(), "publisher")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 12, 9, 30, 0, 0, time.UTC)
	src := event.Source{Type: event.SourceSimulator, Service: "restart-test"}
	// Every asset: those with points, in file order, then the others.
	var assets []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			assets = append(assets, id)
		}
	}
	for _, p := range m.Points {
		add(p.Asset)
	}
	for _, g := range m.Gateways {
		add(g.ID)
	}
	for _, b := range m.Buildings {
		add(b.ID)
	}
	for _, p := range m.Plots {
		add(p.ID)
	}
	values, events := 0, 0
	changed := 0 // assets with a value: each gets a snapshot
	// The events are published 64 at a time, as many devices' would
	// arrive: a burst that changes every asset within a second or two.
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int32
	fed := time.Now()
	for _, id := range assets {
		var vals []event.Value
		var topic event.Topic
		for _, p := range m.PointsOf(id) {
			if p.Topic.Event != event.EventMeasurement && p.Topic.Event != event.EventReading {
				continue
			}
			topic = p.Topic
			vals = append(vals, event.Value{Point: p.ID, Value: float64(values%977) + 0.25, Unit: p.Unit})
			values++
		}
		if len(vals) > 0 {
			changed++
		}
		for len(vals) > 0 {
			k := min(len(vals), 1000)
			// Times differ by asset, so that a mix-up would show.
			msg, err := event.NewMessage(topic, event.NewMeasurement(id, at.Add(time.Duration(events)*time.Millisecond), src, vals[:k]...))
			if err != nil {
				t.Fatal(err)
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := pub.Publish(context.Background(), msg); err != nil {
					failed.Add(1)
				}
			})
			vals = vals[k:]
			events++
		}
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d events not published", failed.Load())
	}
	gw := m.Gateways[0]
	msg, err := event.NewMessage(gw.Topic(event.EventStatus), event.NewStatus(gw.ID, at, src, event.Offline, event.ReasonMaintenance))
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	pub.Close()
	feeding := time.Since(fed)
	deadline := time.Now().Add(60 * time.Second)
	for c := svc.State().Counts(); c.Applied < uint64(values); c = svc.State().Counts() {
		if time.Now().After(deadline) {
			t.Fatalf("the twin applied %d of %d values", c.Applied, values)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Stopped at once: the last snapshots are published as the twin
	// stops, within the 5 s it gives them.
	applied := time.Now()
	stop()
	stopping := time.Since(applied)
	if s := svc.Stats(); s.Published != uint64(changed+1) || s.PublishErrors != 0 {
		t.Fatalf("stats %+v: want every changed asset's snapshot (%d) published as the twin stopped", s, changed+1)
	}
	before := svc.State()
	if s := svc.Stats(); s.Rejected != 0 {
		t.Fatalf("stats %+v", s)
	}

	_, again, nodeStart, stop2 := startTwin(t, cfg, m)
	defer stop2()
	rec := again.Recovered()
	if rec == nil || !rec.Complete || rec.Points != values {
		t.Fatalf("recovery %+v, want %d points", rec, values)
	}
	after := again.State()
	for _, p := range m.Points {
		a, _ := before.Point(p.ID)
		b, _ := after.Point(p.ID)
		// As JSON: times to the nanosecond, without a monotonic reading.
		// Received is left out: the retained city events arrive again
		// after the restart, and are received again.
		a.Received, b.Received = time.Time{}, time.Time{}
		if ja, jb := jsonOf(t, a), jsonOf(t, b); ja != jb {
			t.Fatalf("point %s: before %s, after the restart %s", p.ID, ja, jb)
		}
	}
	now := at.Add(time.Hour)
	for _, id := range assets {
		x, _ := before.Asset(id, now)
		y, _ := after.Asset(id, now)
		x.Liveness.LastReceived, y.Liveness.LastReceived = time.Time{}, time.Time{}
		if jsonOf(t, x.Liveness) != jsonOf(t, y.Liveness) {
			t.Fatalf("asset %s: liveness before %+v, after the restart %+v", id, x.Liveness, y.Liveness)
		}
	}
	if l, _ := after.Asset(gw.ID, now); l.Liveness.Status != "offline" {
		t.Errorf("gateway %s after the restart: %+v", gw.ID, l.Liveness)
	}
	t.Logf("%d points (%d with a value), %d assets: %d events published in %s, the twin and the node stopped in %s; after the restart the node started in %s, the twin recovered %d snapshots in %s",
		len(m.Points), rec.Points, len(assets), events+1, feeding.Round(time.Millisecond), stopping.Round(time.Millisecond),
		nodeStart.Round(time.Millisecond), rec.Assets, rec.Duration.Round(time.Millisecond))
}

// testWriter writes a logger's lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

func jsonOf(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
