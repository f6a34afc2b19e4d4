package node_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/run"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/lorawantest"
	"github.com/citymesh/citymesh/node"
)

// TestNodeRunsConnectors: a node with a connectors section connects to The
// Things Stack (here a stand-in MQTT server on loopback), and a subscriber
// over TCP gets each uplink's events, valid and with the values the
// devices sent; /metrics counts them; Close leaves no goroutine behind.
func TestNodeRunsConnectors(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The stand-in for The Things Stack's MQTT server.
	tts := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { tts.Serve(sctx, ln); close(served) }()
	defer func() { scancel(); tts.Close(); <-served }()

	campusFile := filepath.Join("..", "examples", "campus", "small", "campus.yaml")
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.Connectors = run.Config{Campus: campusFile, Codecs: filepath.Join("..", "examples", "campus", "codecs"),
		TTS:          []run.TTSConfig{{Application: "wartberg-ttn", URL: "tcp://" + ln.Addr().String(), APIKey: "NNSXS.TEST"}},
		ReconnectMin: 50 * time.Millisecond}
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			n.Close()
		}
	}()

	var mu sync.Mutex
	got := make(map[string][]byte)
	sub := pahoV5(t, ctx, n.Addr(node.ListenerMQTT).String(), "dashboard", func(p *paho.Publish) {
		mu.Lock()
		got[p.Topic] = append([]byte(nil), p.Payload...)
		mu.Unlock()
	})
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "vineyard/+/device/+/measurement", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(&paho.Disconnect{})

	// Wait for the connector's connection, then play the network server.
	waitMetric(t, n, "citymesh_connector_connected", 1)
	model, err := campus.Load(campusFile)
	if err != nil {
		t.Fatal(err)
	}
	app, _ := model.Application("wartberg-ttn")
	pub, _ := bus.NewLocal(tts, "the-things-stack")
	defer pub.Close()
	rng := rand.New(rand.NewPCG(4, 4))
	sent := make(map[string]map[string]float64)
	for _, d := range model.Devices {
		if d.Application != app.ID {
			continue
		}
		vals := lorawantest.RandomValues(rng, d.Type)
		sent[d.ID] = vals
		topic, body, err := (&lorawantest.Uplink{App: app, Device: d, FCnt: 1, Values: vals}).TTS()
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, bus.Message{Topic: topic, Payload: body}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == len(sent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d measurements of %d devices", k, len(sent))
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	for id, vals := range sent {
		d, _ := model.Device(id)
		body := got[d.Topic(event.EventMeasurement).String()]
		if err := event.ValidateJSON(event.KindMeasurement, body); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		e, err := event.Decode(event.KindMeasurement, body)
		if err != nil {
			t.Fatal(err)
		}
		want, tol := lorawantest.Expected(d, vals)
		for _, v := range e.(*event.Measurement).Values {
			if math.Abs(v.Value-want[v.Point]) > tol[v.Point] {
				t.Errorf("%s = %v, want %v", v.Point, v.Value, want[v.Point])
			}
		}
	}
	mu.Unlock()
	waitMetric(t, n, "citymesh_connector_uplinks_received_total", float64(len(sent)))

	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
}

// waitMetric waits until the sum of a metric's series is want.
func waitMetric(t *testing.T, n *node.Node, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, err := n.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		sum := 0.0
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				if c := m.GetCounter(); c != nil {
					sum += c.GetValue()
				} else if g := m.GetGauge(); g != nil {
					sum += g.GetValue()
				}
			}
		}
		if sum == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, sum, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNodeConnectorErrors: a connectors section the campus model does not
// agree with fails New with the setting named.
func TestNodeConnectorErrors(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.Connectors = run.Config{Campus: filepath.Join("..", "examples", "campus", "small", "campus.yaml"),
		Codecs: filepath.Join("..", "examples", "campus", "codecs"),
		TTS:    []run.TTSConfig{{Application: "soil-twin", URL: "tcp://127.0.0.1:1", APIKey: "k"}}}
	_, err := node.New(cfg, slog.New(slog.DiscardHandler))
	var fe *node.FieldError
	if err == nil || !strings.HasPrefix(err.Error(), "connectors.tts[0].application: ") || !errors.As(err, &fe) {
		t.Fatalf("New = %v", err)
	}
}
