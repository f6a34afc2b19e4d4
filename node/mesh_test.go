package node_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/node"
)

// TestMeshOfNodesInProcess: a core and an edge node in one process, linked
// over TCP; a reading published at the edge reaches a subscriber at the
// core, /api/mesh reports the link, and closing both leaves no goroutine
// behind (the mesh's dialers included).
func TestMeshOfNodesInProcess(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	coreCfg := testConfig(t)
	coreCfg.WS = "off"
	coreCfg.Mesh = mesh.Config{Node: "core-1", Role: "core", Accept: mesh.AcceptConfig{Edges: []string{"*"}}}
	core, err := node.New(coreCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	sub := pahoV5(t, ctx, core.Addr(node.ListenerMQTT).String(), "core-sub", func(p *paho.Publish) { got <- p.Topic + " " + string(p.Payload) })
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "vineyard/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}

	edgeCfg := testConfig(t)
	edgeCfg.WS, edgeCfg.HTTP = "off", "off"
	edgeCfg.Mesh = mesh.Config{Node: "wartberg", Role: "edge",
		Upstream: []mesh.PeerConfig{{Name: "core-1", URL: "mqtt://" + core.Addr(node.ListenerMQTT).String()}}}
	edge, err := node.New(edgeCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer edge.Close()
	if err := edge.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pub := pahoV5(t, ctx, edge.Addr(node.ListenerMQTT).String(), "gateway", nil)
	// The core's interest reaches the edge a moment after the link is up:
	// publish until a reading arrives.
	deadline := time.Now().Add(20 * time.Second)
	for arrived := false; !arrived; {
		if time.Now().After(deadline) {
			t.Fatal("no reading crossed the link")
		}
		if _, err := pub.Publish(ctx, &paho.Publish{Topic: "vineyard/wartberg/device/soil-7/uplink", QoS: 1, Payload: []byte("21.5")}); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "vineyard/wartberg/device/soil-7/uplink 21.5" {
				t.Fatalf("got %q", m)
			}
			arrived = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The mesh's status, at its old path and under /api/v1/.
	for _, path := range []string{"/api/mesh", "/api/v1/mesh"} {
		if code, body := httpGet(t, "http://"+core.Addr(node.ListenerHTTP).String()+path); code != 200 || !strings.Contains(body, "wartberg") ||
			!strings.Contains(body, `"queued"`) || !strings.Contains(body, `"lag_ns"`) || !strings.Contains(body, `"up": true`) {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}
	pub.Disconnect(&paho.Disconnect{})
	sub.Disconnect(&paho.Disconnect{})
	if err := edge.Close(); err != nil {
		t.Fatal(err)
	}
	if err := core.Close(); err != nil {
		t.Fatal(err)
	}
}
