package meshfail_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestCoreTriangleUnderLoad runs three cores in a full mesh, each with a
// publisher and a wildcard subscriber, cuts one core-to-core link under load
// long enough for the keep alive to drop its connection, and heals it: every
// subscriber must see every acknowledged message of all three publishers
// exactly once, in order.
func TestCoreTriangleUnderLoad(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		rate      = 150 // messages per second per publisher
		keepAlive = 2   // seconds: a cut link is noticed within 3 s
		cutFor    = 10 * time.Second
	)
	names := []string{"core-a", "core-b", "core-c"}
	hosts := make(map[string]*host)
	for _, name := range names {
		hosts[name] = l.addHost(name)
	}
	wires := make(map[[2]string]*wire)
	for i, a := range names {
		for _, b := range names[i+1:] {
			wires[[2]string{a, b}] = l.connect(hosts[a], hosts[b])
		}
	}
	wireOf := func(a, b string) *wire {
		if w, ok := wires[[2]string{a, b}]; ok {
			return w
		}
		return wires[[2]string{b, a}]
	}
	nodes := make(map[string]*node)
	for _, name := range names {
		spec := nodeSpec{name: name, role: "core", keepAlive: keepAlive}
		for _, peer := range names {
			if peer != name {
				spec.peers = append(spec.peers, peerAddr{peer, wireOf(name, peer).addrOf(hosts[peer])})
			}
		}
		nodes[name] = startNode(ctx, t, hosts[name], spec)
	}
	for _, name := range names {
		for _, peer := range names {
			if peer != name {
				linkUp(ctx, t, nodes[name], peer, 15*time.Second)
			}
		}
	}
	var subs []*subscriber
	for _, name := range names {
		subs = append(subs, startSubscriber(ctx, t, "sub-"+name, nodes[name].mqttAddr(), "city/#"))
	}
	for _, name := range names {
		for _, peer := range names {
			if peer != name {
				waitInterest(ctx, t, nodes[name], peer, 1)
			}
		}
	}
	var pubs []*publisher
	for _, name := range names {
		pubs = append(pubs, startPublisher(ctx, t, "pub-"+name, nodes[name].mqttAddr(), "city/"+name+"/traffic/counts", rate))
	}
	want := make(map[*subscriber][]*publisher)
	for _, s := range subs {
		want[s] = pubs
	}
	waitFor(ctx, t, 10*time.Second, "traffic between every pair of cores", func() (bool, string) {
		for _, s := range subs {
			for _, p := range pubs {
				if s.distinct(p.id) < 50 {
					return false, fmt.Sprintf("%s has %d of %s", s.id, s.distinct(p.id), p.id)
				}
			}
		}
		return true, ""
	})

	a, b := nodes["core-a"], nodes["core-b"]
	w := wireOf("core-a", "core-b")
	t.Logf("cutting core-a <-> core-b for %v (keep alive %d s)", cutFor, keepAlive)
	cutAt := time.Now()
	l.cut(w)
	queuedAB, queuedBA := 0, 0
	fellA := false
	for time.Since(cutAt) < cutFor {
		for _, x := range []struct {
			n    *node
			peer string
			peak *int
		}{{a, "core-b", &queuedAB}, {b, "core-a", &queuedBA}} {
			st, err := x.n.status()
			if err != nil {
				t.Fatalf("%s /api/mesh: %v", x.n.spec.name, err)
			}
			if ln, ok := link(st, x.peer); ok {
				*x.peak = max(*x.peak, ln.Queued+ln.Inflight)
				if x.n == a && !ln.Up {
					fellA = true
				}
			}
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	l.heal(w)
	healAt := time.Now()
	if !fellA {
		t.Errorf("KEEP ALIVE: core-a never saw its link to core-b down during a %v cut with a %d s keep alive", cutFor, keepAlive)
	}
	if queuedAB == 0 || queuedBA == 0 {
		t.Errorf("QUEUE: during the cut core-a held %d messages for core-b and core-b %d for core-a; want both > 0", queuedAB, queuedBA)
	}
	reA := linkUp(ctx, t, a, "core-b", 60*time.Second)
	linkUp(ctx, t, b, "core-a", 60*time.Second)
	time.Sleep(2 * time.Second) // load on the healed link (workload, not a condition)
	for _, p := range pubs {
		p.stopAndSettle(ctx, t)
	}
	drain := waitDelivered(ctx, t, 60*time.Second, want)
	for _, s := range subs {
		for _, p := range pubs {
			verify(t, s, p, noDuplicates)
		}
		checkSubscriber(t, s, true)
	}
	total := 0
	for _, p := range pubs {
		total += p.ackedCount()
	}
	t.Logf("cut %v; %d messages acknowledged in all; held for the cut link: core-a %d, core-b %d (queued+inflight peaks); link up %v after the heal; all delivered %v after publishing stopped (%v after the heal)",
		cutFor, total, queuedAB, queuedBA, reA.Round(10*time.Millisecond), drain.Round(10*time.Millisecond), time.Since(healAt).Round(10*time.Millisecond))
}
