package main

import (
	"context"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

func TestHistogram(t *testing.T) {
	var h histogram
	for i := int64(1); i <= 100000; i++ {
		h.add(i * 1000) // 1 µs to 100 ms, uniform
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		got, want := h.quantile(q), q*1e8
		if math.Abs(got-want)/want > 0.04 {
			t.Errorf("p%.0f = %.0f ns, want %.0f ± 4%%", q*100, got, want)
		}
	}
	if h.max != 1e8 || h.n != 100000 {
		t.Errorf("max %d, n %d", h.max, h.n)
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("quantile of an empty histogram")
	}
	for ns := int64(0); ns < 1<<20; ns += 997 {
		if v := bucketValue(bucketOf(ns)); v > float64(ns) || float64(ns)-v > float64(ns)/32+1 {
			t.Fatalf("bucket of %d ns is %f", ns, v)
		}
	}
}

func benchAgainst(t *testing.T, c benchConfig) benchResult {
	t.Helper()
	host, port := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.quiet, c.topics, c.inflight, c.grace = true, 4, 64, 2*time.Second
	if c.size == 0 {
		c.size = 32
	}
	res, err := benchTraffic(ctx, c, net.JoinHostPort(host, port), mqtt.V5)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBenchPatterns(t *testing.T) {
	for _, tc := range []struct {
		c          benchConfig
		pubs, subs int
		expected   int64
	}{
		{benchConfig{pattern: "pairs", pubs: 3, subs: 3, qos: 1, count: 300}, 3, 3, 900},
		{benchConfig{pattern: "pairs", pubs: 2, subs: 2, qos: 2, count: 100}, 2, 2, 200},
		{benchConfig{pattern: "fanout", pubs: 5, subs: 4, qos: 1, count: 100}, 1, 4, 400},
		{benchConfig{pattern: "fanin", pubs: 4, subs: 3, qos: 1, count: 100}, 4, 1, 400},
		{benchConfig{pattern: "wildcard", pubs: 3, subs: 2, qos: 1, count: 100}, 3, 2, 600},
		{benchConfig{pattern: "custom", pubs: 2, subs: 1, qos: 1, count: 50, topic: "x/{i}/{j}", subTopic: "x/#"}, 2, 1, -1},
	} {
		t.Run(tc.c.pattern, func(t *testing.T) {
			r := benchAgainst(t, tc.c)
			if r.Publishers != tc.pubs || r.Subscribers != tc.subs || r.Expected != tc.expected || r.Errors != 0 {
				t.Fatalf("%+v", r)
			}
			want := tc.expected
			if want < 0 {
				want = int64(tc.c.count * tc.pubs)
			}
			if r.Received != want || r.Lost != 0 || r.Duplicates != 0 || r.OutOfOrder != 0 {
				t.Fatalf("received %d of %d, lost %d, dups %d, ooo %d", r.Received, want, r.Lost, r.Duplicates, r.OutOfOrder)
			}
			if r.LatencyP50us <= 0 || r.LatencyMaxus < r.LatencyP99us || r.ConnectSeconds <= 0 {
				t.Fatalf("latency or connect time missing: %+v", r)
			}
		})
	}
}

func TestBenchDurationAndRate(t *testing.T) {
	r := benchAgainst(t, benchConfig{pattern: "pairs", pubs: 2, subs: 2, qos: 0, rate: 200, duration: 500 * time.Millisecond})
	// 2 publishers at 200 msgs/s for 0.5 s: about 200 messages.
	if r.Sent < 150 || r.Sent > 250 || r.Lost != 0 {
		t.Fatalf("sent %d (want about 200), lost %d", r.Sent, r.Lost)
	}
}

func TestBenchIdleConnections(t *testing.T) {
	host, port := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The broker runs in this process, so its RSS is ours.
	res, err := benchIdle(ctx, benchConfig{connections: 50, connectParallel: 8, quiet: true, pid: os.Getpid(), hold: 10 * time.Millisecond},
		net.JoinHostPort(host, port), mqtt.V311)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections != 50 || res.Errors != 0 || res.ConnectPerSec <= 0 {
		t.Fatalf("%+v", res)
	}
}

// Connections that fail in different ways are counted, whatever the types
// of their errors (one error of each of two types made the idle mode panic).
func TestBenchIdleCountsFailedConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for i := 0; ; i++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			if i%2 == 0 {
				nc.Write([]byte{0x20, 2, 0, 5}) // CONNACK: not authorized
			}
			nc.Close() // or no CONNACK at all
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := benchIdle(ctx, benchConfig{connections: 20, connectParallel: 4, quiet: true}, ln.Addr().String(), mqtt.V311)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections != 0 || res.Errors != 20 {
		t.Fatalf("%d connections and %d errors, want 0 and 20", res.Connections, res.Errors)
	}
}

func TestRunBenchFlags(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{{"-size", "8"}, {"-qos", "3"}, {"-pattern", "nonsense", "-count", "1"}, {"-V", "7"}} {
		if err := runBench(ctx, args); err == nil {
			t.Errorf("bench %v accepted", args)
		}
	}
	if got := expand("city/b{i}/energy/m{j}", 3, 7); got != "city/b3/energy/m7" {
		t.Errorf("expand = %q", got)
	}
}

// benchMeshNode starts an in-process mesh node with cfg on a loopback port
// and returns its address.
func benchMeshNode(t *testing.T, cfg mesh.Config) string {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	st, err := store.Open(store.NewMemoryEngine())
	if err != nil {
		t.Fatal(err)
	}
	n, err := mesh.New(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(broker.Options{Store: st, NodeName: cfg.Node, Mesh: n.Handler(), SysInterval: -1, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go b.Serve(ctx, ln)
	if err := n.Start(ctx, b); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); n.Stop(); b.Close() })
	return ln.Addr().String()
}

func TestBenchSubscribersOnAnotherNode(t *testing.T) {
	core := benchMeshNode(t, mesh.Config{Node: "core", Role: "core", Accept: mesh.AcceptConfig{Edges: []string{"*"}}})
	edge := benchMeshNode(t, mesh.Config{Node: "edge", Role: "edge", Upstream: []mesh.PeerConfig{{Name: "core", URL: "mqtt://" + core}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Publishers at the edge, subscribers at the core: bench waits until the
	// subscriptions have crossed the link (the link itself may still be
	// coming up), so no message is published before anyone beyond it wants
	// it.
	c := benchConfig{pattern: "pairs", pubs: 3, subs: 3, qos: 1, count: 200, size: 32, topics: 4, inflight: 64,
		grace: 2 * time.Second, quiet: true, subAddr: core, subWait: 10 * time.Second}
	r, err := benchTraffic(ctx, c, edge, mqtt.V5)
	if err != nil {
		t.Fatal(err)
	}
	if r.Received != 600 || r.Lost != 0 || r.Duplicates != 0 || r.OutOfOrder != 0 || r.Errors != 0 {
		t.Fatalf("across the link: %+v", r)
	}
	if r.PropagateSecs <= 0 {
		t.Fatalf("no propagation time: %+v", r)
	}

	// Two brokers that are not linked: the probes never arrive.
	host, port := testBroker(t)
	c.subAddr, c.subWait = net.JoinHostPort(host, port), 200*time.Millisecond
	if _, err := benchTraffic(ctx, c, edge, mqtt.V5); err == nil || !strings.Contains(err.Error(), "did not reach") {
		t.Fatalf("unlinked brokers: %v", err)
	}
}

func TestBenchSubscriberAddress(t *testing.T) {
	for _, tc := range []struct {
		c    benchConfig
		want string
	}{
		{benchConfig{host: "127.0.0.1", port: 1883}, ""},
		{benchConfig{host: "127.0.0.1", port: 1883, subPort: 1883}, ""}, // the same node
		{benchConfig{host: "127.0.0.1", port: 1883, subPort: 1901}, "127.0.0.1:1901"},
		{benchConfig{host: "127.0.0.1", port: 1883, subHost: "127.0.0.2"}, "127.0.0.2:1883"},
		{benchConfig{host: "127.0.0.1", port: 1883, subURL: "ws://127.0.0.1:8083/mqtt"}, "ws://127.0.0.1:8083/mqtt"},
	} {
		c := tc.c
		if err := c.subscriberAddress("127.0.0.1:1883"); err != nil || c.subAddr != tc.want {
			t.Errorf("%+v: subAddr %q, err %v; want %q", tc.c, c.subAddr, err, tc.want)
		}
	}
	ctx := context.Background()
	for _, args := range [][]string{{"-sub-p", "1901", "-backlog", "1"}, {"-sub-url", "::bad"}, {"-sub-h", "x", "-connections", "1"}} {
		if err := runBench(ctx, args); err == nil {
			t.Errorf("bench %v accepted", args)
		}
	}
}
