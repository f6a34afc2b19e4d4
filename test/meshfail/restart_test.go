package meshfail_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestCoreRestartWhileEdgesQueue kills a core with SIGKILL, twice, while
// two edges publish to subscribers at the core and at the other edge, and
// starts it again on the same data directory each time: everything
// acknowledged must arrive, in order, and exactly once, except for QoS 1
// redeliveries across a restart (see the package comment). The second time,
// edge-2's wire is cut as well and healed only once edge-1's backlog waits
// at the restarted core for edge-2, so that the core's link to edge-2 starts
// its new run with a queue read back from the store.
func TestCoreRestartWhileEdgesQueue(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		rate   = 200 // messages per second per publisher
		kills  = 2
		upFor  = 3 * time.Second // publishing with the core up, before each kill and at the end
		downOf = 3 * time.Second // the core stays down this long
	)
	coreHost, e1Host, e2Host := l.addHost("core"), l.addHost("edge-1"), l.addHost("edge-2")
	w1, w2 := l.connect(e1Host, coreHost), l.connect(e2Host, coreHost)
	core := startNode(ctx, t, coreHost, nodeSpec{name: "core", role: "core"})
	e1 := startNode(ctx, t, e1Host, nodeSpec{name: "edge-1", role: "edge", upstream: []peerAddr{{"core", w1.addrOf(coreHost)}}})
	e2 := startNode(ctx, t, e2Host, nodeSpec{name: "edge-2", role: "edge", upstream: []peerAddr{{"core", w2.addrOf(coreHost)}}})
	for _, e := range []*node{e1, e2} {
		linkUp(ctx, t, e, "upstream", 15*time.Second)
		linkUp(ctx, t, core, e.spec.name, 15*time.Second)
	}
	atCore := startSubscriber(ctx, t, "control-room", core.mqttAddr(), "fleet/#")
	atEdge2 := startSubscriber(ctx, t, "depot-2", e2.mqttAddr(), "fleet/#")
	waitInterest(ctx, t, e1, "upstream", 1)
	waitInterest(ctx, t, e2, "upstream", 1)
	waitInterest(ctx, t, core, "edge-2", 1)
	p1 := startPublisher(ctx, t, "bus-1", e1.mqttAddr(), "fleet/edge-1/bus/17/position", rate)
	p2 := startPublisher(ctx, t, "bus-2", e2.mqttAddr(), "fleet/edge-2/bus/42/position", rate)
	want := map[*subscriber][]*publisher{atCore: {p1, p2}, atEdge2: {p1, p2}}
	waitFor(ctx, t, 10*time.Second, "the first positions everywhere", func() (bool, string) {
		n := min(atCore.distinct(p1.id), atCore.distinct(p2.id), atEdge2.distinct(p1.id))
		return n >= 50, fmt.Sprintf("%d", n)
	})

	var restarts []time.Time // when each new core process was started
	queuedPeak := 0
	for k := 1; k <= kills; k++ {
		time.Sleep(upFor) // workload with the core up
		acked := p1.ackedCount() + p2.ackedCount()
		if err := core.kill(); err != nil {
			t.Fatal(err)
		}
		killedAt := time.Now()
		late := k == kills // edge-2 comes back after edge-1
		if late {
			l.cut(w2)
		}
		for time.Since(killedAt) < downOf {
			for _, e := range []*node{e1, e2} {
				if st, err := e.status(); err == nil {
					if ul, ok := link(st, "upstream"); ok {
						queuedPeak = max(queuedPeak, ul.Queued)
					}
				}
			}
			time.Sleep(200 * time.Millisecond) // polling while the core is down
		}
		restarts = append(restarts, time.Now())
		if err := core.start(ctx); err != nil {
			t.Fatalf("restart %d: %v", k, err)
		}
		up := time.Since(restarts[k-1])
		re1 := linkUp(ctx, t, e1, "upstream", 60*time.Second)
		held := 0
		if late {
			waitFor(ctx, t, 30*time.Second, "edge-1's backlog to wait at the core for edge-2", func() (bool, string) {
				st, err := core.status()
				if err != nil {
					return false, err.Error()
				}
				toEdge2, _ := link(st, "edge-2")
				held = toEdge2.Queued
				return held >= 200 && !toEdge2.Up, fmt.Sprintf("queued %d, up %v", held, toEdge2.Up)
			})
			l.heal(w2)
		}
		re2 := linkUp(ctx, t, e2, "upstream", 60*time.Second)
		t.Logf("kill %d: SIGKILL at %s with %d messages acknowledged so far; restarted at %s, ready in %v; edge-1 linked again %v later, edge-2 %v after that (%d messages waiting for it at the core)",
			k, clock(killedAt), acked, clock(restarts[k-1]), up.Round(time.Millisecond), re1.Round(10*time.Millisecond), re2.Round(10*time.Millisecond), held)
	}
	time.Sleep(upFor) // workload after the last restart
	p1.stopAndSettle(ctx, t)
	p2.stopAndSettle(ctx, t)
	drain := waitDelivered(ctx, t, 60*time.Second, want)

	// A copy is allowed only across a restart: the earlier one arrived
	// before a new core process started, the later one after.
	acrossRestart := func(earlier, later arrival) bool {
		for _, r := range restarts {
			if earlier.at.Before(r) && !later.at.Before(r) {
				return true
			}
		}
		return false
	}
	redelivered := 0
	for _, s := range []*subscriber{atCore, atEdge2} {
		for _, p := range want[s] {
			redelivered += verify(t, s, p, acrossRestart).allowedDups
		}
		checkSubscriber(t, s, s == atEdge2)
	}
	if queuedPeak == 0 {
		t.Errorf("QUEUE: no edge showed queued > 0 while the core was down")
	}
	t.Logf("%d kills; %d messages acknowledged; edge queue peak %d while the core was down; %d QoS 1 redeliveries across restarts; all delivered %v after publishing stopped",
		kills, p1.ackedCount()+p2.ackedCount(), queuedPeak, redelivered, drain.Round(10*time.Millisecond))
}
