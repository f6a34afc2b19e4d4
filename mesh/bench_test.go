package mesh_test

// Benchmarks of the event mesh with in-process nodes on loopback ports:
// how long a new subscription takes to reach the node where messages enter
// the mesh, and what a link costs in throughput against one node.
//
//	go test -run '^$' -bench . -benchmem ./mesh/
//	go test -run '^$' -bench SubscriptionPropagation -benchtime 20x ./mesh/

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store/disk"
)

// benchNode starts a mesh node for a benchmark, with cfg as given: unlike
// startNode it keeps cfg.InterestBatch (zero is the default, 20 ms), since
// the batching is part of what the benchmarks measure. Its store is the
// one `citymesh serve` uses, Pebble, in a temporary directory: a link's
// durable queue is part of what a message across it costs.
func benchNode(b *testing.B, cfg mesh.Config) *testNode {
	b.Helper()
	st, err := disk.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	n, err := mesh.New(cfg, quiet)
	if err != nil {
		b.Fatal(err)
	}
	br := broker.New(broker.Options{Store: st, NodeName: cfg.Node, Mesh: n.Handler(), SysInterval: -1, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { br.Serve(ctx, ln); close(done) }()
	if err := n.Start(ctx, br); err != nil {
		b.Fatal(err)
	}
	tn := &testNode{name: cfg.Node, addr: ln.Addr().String(), b: br, n: n}
	var once sync.Once
	tn.stop = func() {
		once.Do(func() {
			cancel()
			n.Stop()
			br.Close()
			<-done
			st.Close()
		})
	}
	b.Cleanup(tn.stop)
	return tn
}

// benchWait polls cond every 100 µs for up to 10 s.
func benchWait(b *testing.B, what string, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// benchLinkUp waits until node's link to peer is up.
func benchLinkUp(b *testing.B, node *testNode, peer string) {
	b.Helper()
	benchWait(b, node.name+"'s link to "+peer, func() bool {
		for _, l := range node.b.Links() {
			if l.Peer == peer && l.Up() {
				return true
			}
		}
		return false
	})
}

// benchClient connects a client to node.
func benchClient(b *testing.B, node *testNode, id string, onMessage func(*mqtt.Publish)) *client.Client {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Addr: node.addr, ClientID: id, Version: mqtt.V5, CleanStart: true,
		Logger: quiet, ReuseMessages: true, OnMessage: onMessage})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkSubscriptionPropagation measures how long a new subscription
// takes to take effect across the mesh: from its SUBACK at one edge until
// a message published at another node reaches it. The publisher publishes a
// probe on the new topic every 100 µs, so the figure is the time the
// interest took to arrive there, to within that. Besides ns/op (the mean)
// it reports the median and the maximum. "edge-core-edge" crosses two links
// (the subscriber's edge tells the core, the core tells the publisher's
// edge), each node collecting interest changes for its InterestBatch before
// it sends them; "edge-core" crosses one. Each subscription is made in a
// quiet mesh, after five batch windows without interest changes.
func BenchmarkSubscriptionPropagation(b *testing.B) {
	for _, hops := range []string{"edge-core", "edge-core-edge"} {
		for _, batch := range []time.Duration{0, 5 * time.Millisecond, time.Millisecond} {
			name := fmt.Sprintf("%s/batch=%s", hops, batch)
			if batch == 0 {
				name = hops + "/batch=default"
			}
			b.Run(name, func(b *testing.B) { benchPropagation(b, hops == "edge-core-edge", batch) })
		}
	}
}

func benchPropagation(b *testing.B, twoHops bool, batch time.Duration) {
	core := benchNode(b, mesh.Config{Node: "core", Role: "core", Accept: mesh.AcceptConfig{Edges: []string{"*"}}, InterestBatch: batch})
	edge := func(name string) *testNode {
		return benchNode(b, mesh.Config{Node: name, Role: "edge", InterestBatch: batch,
			Upstream: []mesh.PeerConfig{{Name: "core", URL: "mqtt://" + core.addr}}})
	}
	subNode := core
	pubNode := edge("edge-a")
	benchLinkUp(b, pubNode, "upstream")
	if twoHops {
		subNode = edge("edge-b")
		benchLinkUp(b, subNode, "upstream")
	}
	var got atomic.Value // the topic of the last probe received
	sub := benchClient(b, subNode, "subscriber", func(p *mqtt.Publish) { got.Store(p.Topic) })
	pub := benchClient(b, pubNode, "publisher", nil)

	var current atomic.Pointer[string] // the topic being probed, nil for none
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		p := &mqtt.Publish{Payload: []byte("probe")}
		t := time.NewTicker(100 * time.Microsecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if tp := current.Load(); tp != nil {
				p.Topic = *tp
				pub.PublishAsync(p, nil)
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()

	// Each subscription starts in a quiet mesh: a node that has just sent or
	// received interest is still within its batch window for a while, and a
	// subscription made then would wait for less than a whole window.
	quietFor := 5 * time.Millisecond
	if batch == 0 {
		quietFor += 5 * 20 * time.Millisecond
	} else {
		quietFor += 5 * batch
	}
	ctx := context.Background()
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		time.Sleep(quietFor)
		b.StartTimer()
		tp := fmt.Sprintf("bench/propagation/%d", i)
		if _, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: tp}); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		current.Store(&tp)
		benchWait(b, "the probe on "+tp, func() bool { v, _ := got.Load().(string); return v == tp })
		times = append(times, time.Since(start))
		current.Store(nil)
	}
	b.StopTimer()
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(times[len(times)-1])/1e6, "max-ms")
}

// BenchmarkLinkThroughput moves b.N QoS 0 or 1 messages of 64 bytes from
// one publisher to one subscriber, both on one node ("one-node") or with the
// publisher at an edge and the subscriber at its core ("edge-to-core", one
// link, whose durable queue takes every QoS 1 message into the edge's store
// before it is forwarded). The publisher keeps at most 4,096 messages on
// their way end to end, below every queue bound, so nothing is dropped and
// the rate is what the path sustains. It reports msgs/s; the allocations
// are those of the whole process (clients and nodes) per message.
func BenchmarkLinkThroughput(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		for _, path := range []string{"one-node", "edge-to-core"} {
			b.Run(fmt.Sprintf("qos=%d/%s", qos, path), func(b *testing.B) { benchThroughput(b, qos, path == "edge-to-core") })
		}
	}
}

func benchThroughput(b *testing.B, qos byte, viaLink bool) {
	core := benchNode(b, mesh.Config{Node: "core", Role: "core", Accept: mesh.AcceptConfig{Edges: []string{"*"}}})
	pubNode := core
	if viaLink {
		pubNode = benchNode(b, mesh.Config{Node: "edge", Role: "edge", Upstream: []mesh.PeerConfig{{Name: "core", URL: "mqtt://" + core.addr}}})
		benchLinkUp(b, pubNode, "upstream")
	}
	const window = 4096
	var received atomic.Int64
	credit := make(chan struct{}, window)
	sub := benchClient(b, core, "subscriber", func(p *mqtt.Publish) {
		if len(p.Payload) == 64 {
			received.Add(1)
			<-credit
		}
	})
	ctx := context.Background()
	if _, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "bench/throughput", QoS: qos}); err != nil {
		b.Fatal(err)
	}
	pub := benchClient(b, pubNode, "publisher", nil)
	if viaLink {
		// The subscription must have reached the edge: probe until one
		// arrives (the probe's payload is shorter than the benchmark's).
		var probed atomic.Bool
		probeSub := benchClient(b, core, "probe-subscriber", func(*mqtt.Publish) { probed.Store(true) })
		if _, err := probeSub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "bench/throughput"}); err != nil {
			b.Fatal(err)
		}
		benchWait(b, "the subscription to reach the edge", func() bool {
			pub.PublishAsync(&mqtt.Publish{Topic: "bench/throughput", Payload: []byte("probe")}, nil)
			return probed.Load()
		})
		probeSub.Close()
	}
	payload := make([]byte, 64)
	p := &mqtt.Publish{Topic: "bench/throughput", QoS: qos, Payload: payload}
	b.ReportAllocs()
	before := pubNode.b.Stats()
	b.ResetTimer()
	start := time.Now()
	stall := time.NewTimer(time.Hour)
	defer stall.Stop()
	for i := range b.N {
		select {
		case credit <- struct{}{}:
		default:
			stall.Reset(10 * time.Second)
			select {
			case credit <- struct{}{}:
			case <-stall.C:
				b.Fatalf("no message arrived for 10 s: %d of %d received", received.Load(), i)
			}
		}
		binary.BigEndian.PutUint64(payload, uint64(i))
		pub.PublishAsync(p, nil)
	}
	benchWait(b, "every message at the subscriber", func() bool { return received.Load() >= int64(b.N) })
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	if viaLink && qos > 0 {
		// What the edge's durable link queue cost: writes that reached its
		// store, and entries acknowledged by the core while still in the
		// open batch (never written), per message.
		after := pubNode.b.Stats()
		b.ReportMetric(float64(after.StoreWrites-before.StoreWrites)/float64(b.N), "edge-writes/msg")
		b.ReportMetric(float64(after.StoreCancelled-before.StoreCancelled)/float64(b.N), "edge-cancelled/msg")
	}
}
