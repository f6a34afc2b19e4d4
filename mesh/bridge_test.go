package mesh_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"
)

// mosquittoBroker is a Mosquitto process of a test: a foreign broker to
// bridge to. It keeps its sessions in a persistence file, so that a restart
// (stop, then start) keeps its clients' queued messages.
type mosquittoBroker struct {
	t    *testing.T
	bin  string
	conf string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

func startMosquitto(t *testing.T) *mosquittoBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("mosquitto is not installed (apt-get install mosquitto; .ci/run does): skipping the bridge test")
	}
	dir := t.TempDir()
	m := &mosquittoBroker{t: t, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), addr: freeAddr(t)}
	_, port, _ := splitAddr(m.addr)
	cfg := fmt.Sprintf("per_listener_settings false\nallow_anonymous true\nlog_dest none\n"+
		"persistence true\npersistence_location %s/\nautosave_interval 0\nmax_queued_messages 0\n"+
		"listener %s 127.0.0.1\n", dir, port)
	if os.Geteuid() == 0 {
		cfg += "user root\n" // keep the rights to its persistence file in the test's directory
	}
	if err := os.WriteFile(m.conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	m.start()
	t.Cleanup(m.stop)
	return m
}

func splitAddr(addr string) (host, port string, err error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return "", "", fmt.Errorf("no port in %q", addr)
}

// start runs Mosquitto and waits until it listens.
func (m *mosquittoBroker) start() {
	m.t.Helper()
	cmd := exec.Command(m.bin, "-c", m.conf)
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	m.cmd = cmd
	m.mu.Unlock()
	waitFor(m.t, "mosquitto to listen on "+m.addr, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		c, err := client.Dial(ctx, client.Options{Addr: m.addr, ClientID: "probe", CleanStart: true, Version: mqtt.V5, Logger: quiet})
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// stop ends Mosquitto with SIGTERM, which saves its persistence file.
func (m *mosquittoBroker) stop() {
	m.mu.Lock()
	cmd := m.cmd
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// mosquittoSub subscribes at the foreign broker with a persistent session.
func mosquittoSub(t *testing.T, m *mosquittoBroker, id string, filters ...string) *sub {
	t.Helper()
	return subscribeWith(t, &testNode{name: "mosquitto", addr: m.addr}, client.Options{ClientID: id, SessionExpiry: 3600}, 1, filters...)
}

func bridgeNode(t *testing.T, name string, bridges ...mesh.BridgeConfig) *testNode {
	t.Helper()
	return startNode(t, mesh.Config{Node: name, Role: "core", Bridges: bridges}, "", nil)
}

func bridgeUp(t *testing.T, node *testNode, bridge string) {
	t.Helper()
	waitFor(t, node.name+"'s bridge "+bridge, func() bool {
		for _, l := range node.b.Links() {
			if l.Peer == "bridge."+bridge && l.Up() {
				return true
			}
		}
		return false
	})
}

func TestBridgeToMosquitto(t *testing.T) {
	m := startMosquitto(t)
	// The vineyard's LoRaWAN readings come from the foreign broker (as a
	// network server publishes them), and the node's own vineyard topics go
	// out to it under another prefix.
	node := bridgeNode(t, "campus", mesh.BridgeConfig{Name: "lns", URL: "mqtt://" + m.addr, Topics: []mesh.BridgeTopic{
		{Filter: "#", Direction: "in", QoS: 1, Local: "lora/", Remote: "v3/vineyard@ttn/devices/"},
		{Filter: "#", Direction: "out", QoS: 1, Local: "vineyard/", Remote: "citymesh/vineyard/"},
	}})
	bridgeUp(t, node, "lns")
	atNode := subscribe(t, node, "twin", 1, "lora/#", "citymesh/#")
	atForeign := mosquittoSub(t, m, "foreign-app", "citymesh/#", "building/#")

	// In: a foreign publish arrives under the local prefix.
	foreign := publisherAt(t, m.addr, "network-server")
	publish(t, foreign, "v3/vineyard@ttn/devices/probe-7/up", "moisture 31", 1)
	waitFor(t, "the uplink on the node", func() bool { return atNode.count("lora/probe-7/up moisture 31") == 1 })

	// Out: a local publish leaves under the remote prefix; an unmapped one
	// stays.
	local := publisher(t, node, "controller")
	publish(t, local, "vineyard/row-3/valve", "open", 1)
	publish(t, local, "building/b1/door", "locked", 1)
	waitFor(t, "the valve command at the foreign broker", func() bool {
		return atForeign.count("citymesh/vineyard/row-3/valve open") == 1
	})

	// Outage: the foreign broker goes away; what the node publishes waits in
	// the bridge's queue and leaves, in order, when it is back. The foreign
	// subscriber leaves first, once Mosquitto has its acknowledgement of the
	// valve command: otherwise Mosquitto keeps that message in flight for
	// the persistent session "foreign-app", saves it at shutdown and sends it
	// again (DUP set) to the next connection, a duplicate of Mosquitto's own
	// that would hide whether the bridge sends anything twice.
	ackedAll(t, atForeign)
	if err := atForeign.c.Disconnect(context.Background(), mqtt.NormalDisconnection); err != nil {
		t.Fatal(err)
	}
	m.stop()
	waitFor(t, "the bridge to see the outage", func() bool {
		for _, l := range node.b.Links() {
			if l.Peer == "bridge.lns" && !l.Up() {
				return true
			}
		}
		return false
	})
	for k := range 20 {
		publish(t, local, "vineyard/row-3/valve", fmt.Sprint("step-", k), 1)
	}
	m.start()
	bridgeUp(t, node, "lns")
	back := subscribeWith(t, &testNode{addr: m.addr}, client.Options{ClientID: "foreign-app", SessionExpiry: 3600}, 1)
	waitFor(t, "the queued commands at the foreign broker", func() bool { return len(back.messages()) >= 20 })
	time.Sleep(100 * time.Millisecond)
	got := back.messages()
	if len(got) != 20 {
		t.Fatalf("the foreign broker's subscriber got %d messages after the outage, want 20: %q", len(got), got)
	}
	for k, msg := range got {
		if msg != fmt.Sprintf("citymesh/vineyard/row-3/valve step-%d", k) {
			t.Fatalf("message %d after the outage is %q: lost, duplicated or out of order", k, msg)
		}
	}
	for _, msg := range append(atForeign.messages(), atNode.messages()...) {
		if msg == "building/b1/door locked" {
			t.Fatal("an unmapped topic crossed the bridge")
		}
	}
	// Nothing the node sent came back to it.
	if n := atNode.count("citymesh/vineyard/row-3/valve open"); n != 0 {
		t.Fatal("the node's own publish came back over the bridge")
	}
}

func TestBridgeLoopThroughForeignBrokersIsCut(t *testing.T) {
	// A ring through two foreign brokers: node A sends city/# to M1, node B
	// takes it from M1 and sends city/# on to M2, and A takes city/# from
	// M2. Without the origin tag that travels as a user property, a message
	// would circle for ever.
	m1, m2 := startMosquitto(t), startMosquitto(t)
	a := bridgeNode(t, "node-a",
		mesh.BridgeConfig{Name: "m1", URL: "mqtt://" + m1.addr, Topics: []mesh.BridgeTopic{{Filter: "city/#", Direction: "out", QoS: 1}}},
		mesh.BridgeConfig{Name: "m2", URL: "mqtt://" + m2.addr, Topics: []mesh.BridgeTopic{{Filter: "city/#", Direction: "in", QoS: 1}}})
	b := bridgeNode(t, "node-b",
		mesh.BridgeConfig{Name: "m1", URL: "mqtt://" + m1.addr, Topics: []mesh.BridgeTopic{{Filter: "city/#", Direction: "in", QoS: 1}}},
		mesh.BridgeConfig{Name: "m2", URL: "mqtt://" + m2.addr, Topics: []mesh.BridgeTopic{{Filter: "city/#", Direction: "out", QoS: 1}}})
	for _, n := range []*testNode{a, b} {
		bridgeUp(t, n, "m1")
		bridgeUp(t, n, "m2")
	}
	atA := subscribe(t, a, "a-sub", 1, "city/#")
	atB := subscribe(t, b, "b-sub", 1, "city/#")
	publish(t, publisher(t, a, "a-pub"), "city/traffic/light-4", "green", 1)
	want := "city/traffic/light-4 green"
	waitFor(t, "the message at both nodes", func() bool { return atA.count(want) == 1 && atB.count(want) == 1 })
	waitFor(t, "the message to come back to node A and be dropped there", func() bool {
		for _, l := range a.b.Links() {
			if l.Peer == "bridge.m2" && l.Stats().Dropped["loop"] == 1 {
				return true
			}
		}
		return false
	})
	time.Sleep(200 * time.Millisecond)
	if atA.count(want) != 1 || atB.count(want) != 1 {
		t.Fatalf("node A saw it %d times, node B %d, want once each", atA.count(want), atB.count(want))
	}
}

func TestTaggedClientPublishes(t *testing.T) {
	// A foreign broker's own bridge connects as an ordinary client: what it
	// brings back that started here is recognised by its origin tag.
	node := startNode(t, mesh.Config{Node: "core", Role: "core"}, "", nil)
	s := subscribe(t, node, "s", 1, "city/#")
	p := publisher(t, node, "foreign-bridge")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tagged := func(topic, origin string) *mqtt.Publish {
		return &mqtt.Publish{Topic: topic, Payload: []byte("x"), QoS: 1, Props: mqtt.Properties{User: []mqtt.UserProperty{
			{Key: "app", Value: "kept"}, {Key: "citymesh-origin", Value: origin}, {Key: "citymesh-hops", Value: "1"}}}}
	}
	if err := p.Publish(ctx, tagged("city/came-back", "core")); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, tagged("city/from-elsewhere", "edge-9")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message from elsewhere", func() bool { return s.count("city/from-elsewhere x") == 1 })
	s.mu.Lock()
	user := s.user[0]
	s.mu.Unlock()
	if len(user) != 1 || user[0] != (mqtt.UserProperty{Key: "app", Value: "kept"}) {
		t.Fatalf("the subscriber got user properties %v, want only the publisher's own", user)
	}
	if s.count("city/came-back x") != 0 {
		t.Fatal("a message that started at this node was delivered again")
	}
	if n := node.b.Stats().Dropped["mesh_loop"]; n != 1 {
		t.Fatalf("mesh_loop counts %d, want 1", n)
	}
}

// ackedAll returns once the broker has read the acknowledgements of every
// message s has received so far. The client acknowledges a QoS 1 message
// on its reading goroutine after OnMessage returns, so a test can see a
// message before its PUBACK is even queued, and Close drops a queued PUBACK
// that is not written yet. The first PINGRESP is read after the messages,
// so once it is in their PUBACKs are queued; the second PINGREQ is queued
// behind them, and a broker handles a connection's packets in order, so its
// PINGRESP means the broker has read them.
func ackedAll(t *testing.T, s *sub) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for range 2 {
		if err := s.c.Ping(ctx); err != nil {
			t.Fatalf("waiting for the broker to read the acknowledgements: %v", err)
		}
	}
}

// publisherAt connects a publisher to any broker's address.
func publisherAt(t *testing.T, addr, id string) *client.Client {
	t.Helper()
	return publisher(t, &testNode{addr: addr}, id)
}
