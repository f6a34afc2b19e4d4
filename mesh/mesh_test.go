package mesh_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// testNode is one node of an in-process mesh: a broker on a loopback port
// with its mesh node and its store.
type testNode struct {
	name   string
	addr   string
	b      *broker.Broker
	n      *mesh.Node
	engine *store.MemoryEngine
	stop   func()
}

var quiet = slog.New(slog.DiscardHandler)

// startNode starts a node with cfg on addr ("" picks a port), on engine
// (nil makes a new one).
func startNode(t *testing.T, cfg mesh.Config, addr string, engine *store.MemoryEngine) *testNode {
	t.Helper()
	return startNodeWith(t, cfg, addr, engine, broker.Options{})
}

// startNodeWith starts a node as startNode does, with broker options opts.
func startNodeWith(t *testing.T, cfg mesh.Config, addr string, engine *store.MemoryEngine, opts broker.Options) *testNode {
	t.Helper()
	return startNodeTuned(t, cfg, addr, engine, opts, nil)
}

// startNodeTuned starts a node as startNodeWith does, and calls tune, if
// given, with its mesh node before the node starts.
func startNodeTuned(t *testing.T, cfg mesh.Config, addr string, engine *store.MemoryEngine, opts broker.Options, tune func(*mesh.Node)) *testNode {
	t.Helper()
	if engine == nil {
		engine = store.NewMemoryEngine()
	}
	st, err := store.Open(engine)
	if err != nil {
		t.Fatal(err)
	}
	cfg.InterestBatch = 5 * time.Millisecond
	n, err := mesh.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(n)
	}
	logger := quiet
	if testing.Verbose() {
		logger = slog.Default()
	}
	opts.Store, opts.NodeName, opts.Mesh, opts.SysInterval, opts.Logger = st, cfg.Node, n.Handler(), -1, logger
	b := broker.New(opts)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for range 50 { // a restarted node takes its old port back
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	if err := n.Start(ctx, b); err != nil {
		t.Fatal(err)
	}
	tn := &testNode{name: cfg.Node, addr: ln.Addr().String(), b: b, n: n, engine: engine}
	var once sync.Once
	tn.stop = func() {
		once.Do(func() {
			cancel()
			n.Stop()
			b.Close()
			<-done
		})
	}
	t.Cleanup(tn.stop)
	return tn
}

func edgeOf(name string, cores ...*testNode) mesh.Config {
	cfg := mesh.Config{Node: name, Role: "edge"}
	for _, c := range cores {
		cfg.Upstream = append(cfg.Upstream, mesh.PeerConfig{Name: c.name, URL: "mqtt://" + c.addr})
	}
	return cfg
}

func coreOf(name string, peers ...*testNode) mesh.Config {
	cfg := mesh.Config{Node: name, Role: "core", Accept: mesh.AcceptConfig{Edges: []string{"*"}}}
	for _, p := range peers {
		cfg.Peers = append(cfg.Peers, mesh.PeerConfig{Name: p.name, URL: "mqtt://" + p.addr})
	}
	return cfg
}

// sub is a subscriber that records what it receives.
type sub struct {
	c        *client.Client
	mu       sync.Mutex
	got      []string
	retained []bool // whether each message came with the Retain flag
	user     [][]mqtt.UserProperty
}

func subscribe(t *testing.T, node *testNode, id string, qos byte, filters ...string) *sub {
	t.Helper()
	return subscribeWith(t, node, client.Options{ClientID: id, CleanStart: true}, qos, filters...)
}

// subscribePersistent subscribes with a persistent session (Clean Start 0,
// an hour's expiry), which keeps what arrives while it is away.
func subscribePersistent(t *testing.T, node *testNode, id string, qos byte, filters ...string) *sub {
	t.Helper()
	return subscribeWith(t, node, client.Options{ClientID: id, SessionExpiry: 3600}, qos, filters...)
}

func subscribeWith(t *testing.T, node *testNode, opts client.Options, qos byte, filters ...string) *sub {
	t.Helper()
	s := &sub{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts.Addr, opts.Version, opts.Logger = node.addr, mqtt.V5, quiet
	opts.OnMessage = func(p *mqtt.Publish) {
		s.mu.Lock()
		s.got = append(s.got, p.Topic+" "+string(p.Payload))
		s.retained = append(s.retained, p.Retain)
		s.user = append(s.user, p.Props.User)
		s.mu.Unlock()
	}
	c, err := client.Dial(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var subs []mqtt.Subscription
	for _, f := range filters {
		subs = append(subs, mqtt.Subscription{Filter: f, QoS: qos})
	}
	if len(subs) > 0 {
		if _, err := c.Subscribe(ctx, mqtt.Properties{}, subs...); err != nil {
			t.Fatal(err)
		}
	}
	s.c = c
	return s
}

func (s *sub) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *sub) count(want string) int {
	n := 0
	for _, m := range s.messages() {
		if m == want {
			n++
		}
	}
	return n
}

func publisher(t *testing.T, node *testNode, id string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Addr: node.addr, ClientID: id, Version: mqtt.V5, CleanStart: true, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func publish(t *testing.T, c *client.Client, topic, payload string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(ctx, &mqtt.Publish{Topic: topic, Payload: []byte(payload), QoS: qos}); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// linkUp waits until node has its link to peer up and the peer's interest
// in filter has arrived.
func interestAt(t *testing.T, node *testNode, peer, filter string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to learn that %s wants %s", node.name, peer, filter), func() bool {
		for _, l := range node.b.Links() {
			if l.Peer != peer || !l.Up() {
				continue
			}
			for _, in := range l.Interest() {
				if in.Filter == filter {
					return true
				}
			}
		}
		return false
	})
}

func upstreamUp(t *testing.T, edge *testNode) {
	t.Helper()
	waitFor(t, edge.name+"'s link to its core", func() bool {
		for _, l := range edge.b.Links() {
			if l.Peer == "upstream" && l.Up() {
				return true
			}
		}
		return false
	})
}

func TestEdgeToCoreToEdge(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	campus := startNode(t, edgeOf("campus", core), "", nil)
	vineyard := startNode(t, edgeOf("vineyard", core), "", nil)
	upstreamUp(t, campus)
	upstreamUp(t, vineyard)

	atCore := subscribe(t, core, "dashboard", 1, "vineyard/#")
	atCampus := subscribe(t, campus, "twin", 1, "vineyard/+/device/#")
	// The vineyard edge learns, through the core, that the campus and the
	// core want its readings.
	interestAt(t, vineyard, "upstream", "vineyard/#")
	interestAt(t, core, "campus", "vineyard/+/device/#")

	p := publisher(t, vineyard, "soil-probe")
	publish(t, p, "vineyard/wartberg/device/probe-7/uplink", "moisture 31%", 1)
	publish(t, p, "nobody/listens", "x", 1)
	want := "vineyard/wartberg/device/probe-7/uplink moisture 31%"
	waitFor(t, "the reading at the core and on the campus", func() bool {
		return atCore.count(want) == 1 && atCampus.count(want) == 1
	})
	// Only what someone wants crosses a link.
	for _, l := range vineyard.b.Links() {
		if st := l.Stats(); st.Forwarded != 1 {
			t.Fatalf("the vineyard forwarded %d messages, want 1 (nobody listens to the other)", st.Forwarded)
		}
	}
	// Messages go the other way too, and the mesh's own user properties do
	// not reach clients.
	atVineyard := subscribe(t, vineyard, "irrigation", 1, "campus/weather/#")
	interestAt(t, campus, "upstream", "campus/weather/#")
	publish(t, publisher(t, campus, "station"), "campus/weather/rain", "0.4 mm", 1)
	waitFor(t, "the weather at the vineyard", func() bool { return atVineyard.count("campus/weather/rain 0.4 mm") == 1 })
	for _, s := range []*sub{atCore, atCampus, atVineyard} {
		s.mu.Lock()
		for _, u := range s.user {
			if len(u) != 0 {
				t.Errorf("a client got the mesh's user properties %v", u)
			}
		}
		s.mu.Unlock()
	}
	time.Sleep(100 * time.Millisecond)
	if n := atCore.count(want) + atCampus.count(want); n != 2 {
		t.Fatalf("the reading arrived %d times in all, want 2", n)
	}
}

func TestCoreTriangleDeliversOnce(t *testing.T) {
	// Three cores in a full mesh: each listens where it can, so that every
	// node sends to both others.
	lns := make([]net.Listener, 3)
	addrs := make([]string, 3)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		ln.Close()
	}
	names := []string{"core-a", "core-b", "core-c"}
	var nodes []*testNode
	for i, name := range names {
		cfg := mesh.Config{Node: name, Role: "core"}
		for j, other := range names {
			if j != i {
				cfg.Peers = append(cfg.Peers, mesh.PeerConfig{Name: other, URL: "mqtt://" + addrs[j]})
			}
		}
		nodes = append(nodes, startNode(t, cfg, addrs[i], nil))
	}
	var subs []*sub
	for i, n := range nodes {
		subs = append(subs, subscribe(t, n, fmt.Sprint("s", i), 1, "city/#"))
	}
	for _, n := range nodes {
		for _, peer := range names {
			if peer != n.name {
				interestAt(t, n, peer, "city/#")
			}
		}
	}
	for i, n := range nodes {
		p := publisher(t, n, fmt.Sprint("p", i))
		for k := range 20 {
			publish(t, p, fmt.Sprintf("city/%d", i), fmt.Sprint(k), 1)
		}
	}
	waitFor(t, "every message at every node", func() bool {
		for _, s := range subs {
			if len(s.messages()) < 60 {
				return false
			}
		}
		return true
	})
	time.Sleep(200 * time.Millisecond)
	for i, s := range subs {
		seen := map[string]int{}
		for _, m := range s.messages() {
			seen[m]++
		}
		for m, c := range seen {
			if c != 1 {
				t.Fatalf("node %d saw %q %d times", i, m, c)
			}
		}
		if len(seen) != 60 {
			t.Fatalf("node %d saw %d distinct messages, want 60", i, len(seen))
		}
	}
}

func TestStoreAndForwardAcrossAnOutage(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	engine := store.NewMemoryEngine()
	edge := startNode(t, edgeOf("campus", core), "", engine)
	upstreamUp(t, edge)
	atCore := subscribePersistent(t, core, "dashboard", 1, "energy/#")
	interestAt(t, edge, "upstream", "energy/#")
	p := publisher(t, edge, "meter")
	publish(t, p, "energy/m1", "before", 1)
	waitFor(t, "the first reading, acknowledged", func() bool {
		return atCore.count("energy/m1 before") == 1 && core.b.Stats().Inflight == 0
	})

	// The core goes away; the edge keeps taking readings, which wait in its
	// link's queue.
	coreAddr, coreEngine := core.addr, core.engine
	core.stop()
	waitFor(t, "the edge to see its link down", func() bool {
		for _, l := range edge.b.Links() {
			if l.Peer == "upstream" && !l.Up() {
				return true
			}
		}
		return false
	})
	for k := range 50 {
		publish(t, p, "energy/m1", fmt.Sprint("during-", k), 1)
	}
	for _, l := range edge.b.Links() {
		if st := l.Stats(); st.Peer == "upstream" && st.Queued+st.Inflight != 50 {
			t.Fatalf("the edge's link holds %d queued and %d inflight messages, want 50 in all", st.Queued, st.Inflight)
		}
	}
	// The core comes back on its store, with the dashboard's persistent
	// session; the backlog drains into it in order, and the dashboard finds
	// it when it reconnects.
	core2 := startNode(t, coreOf("core"), coreAddr, coreEngine)
	waitFor(t, "the edge's backlog to drain", func() bool {
		for _, l := range edge.b.Links() {
			if st := l.Stats(); st.Peer == "upstream" && st.Up && st.Queued+st.Inflight == 0 {
				return true
			}
		}
		return false
	})
	atCore2 := subscribeWith(t, core2, client.Options{ClientID: "dashboard", SessionExpiry: 3600}, 1)
	waitFor(t, "the backlog at the dashboard", func() bool { return len(atCore2.messages()) >= 50 })
	time.Sleep(50 * time.Millisecond)
	got := atCore2.messages()
	if len(got) != 50 {
		t.Fatalf("the dashboard got %d messages after the outage, want 50: %q", len(got), got)
	}
	for k := range 50 {
		if got[k] != fmt.Sprintf("energy/m1 during-%d", k) {
			t.Fatalf("message %d is %q: the backlog did not drain in order", k, got[k])
		}
	}
}
