package meshfail_test

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// silentCutBound is how soon, by default (link_keep_alive 2 s: dead after
// 3 s of silence), both ends of a silently cut link must have marked it
// down.
const silentCutBound = 5 * time.Second

// TestSilentCutFoundAtBothEnds black-holes an edge's link to its core under
// load (every packet dropped, both interfaces up, neither node told) with
// the default configuration, and checks that both ends mark the link down
// within silentCutBound; that meanwhile the edge reports the readings it
// queues, none in flight, and as lag the age of the oldest; and that after
// the heal every acknowledged reading arrives once, in order.
func TestSilentCutFoundAtBothEnds(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const cutFor = 15 * time.Second

	coreHost, edgeHost := l.addHost("core"), l.addHost("campus")
	w := l.connect(edgeHost, coreHost)
	core := startNode(ctx, t, coreHost, nodeSpec{name: "core", role: "core"})
	edge := startNode(ctx, t, edgeHost, nodeSpec{name: "campus", role: "edge",
		upstream: []peerAddr{{"core", w.addrOf(coreHost)}}})
	linkUp(ctx, t, edge, "upstream", 15*time.Second)
	linkUp(ctx, t, core, "campus", 15*time.Second)
	sub := startSubscriber(ctx, t, "dashboard", core.mqttAddr(), "campus/#")
	waitInterest(ctx, t, edge, "upstream", 1)
	pub := startPublisher(ctx, t, "meter", edge.mqttAddr(), "campus/b1/meter/el-0042/reading", 200)
	waitFor(ctx, t, 10*time.Second, "the first readings at the core", func() (bool, string) {
		n := sub.distinct(pub.id)
		return n >= 100, fmt.Sprintf("%d arrived", n)
	})

	t.Logf("black-holing %s <-> %s for %v", edgeHost.name, coreHost.name, cutFor)
	cutAt := time.Now()
	l.blackhole(w)
	// When each end marked the link down, as its /api/mesh says (its own
	// clock, the same as this one: one machine).
	var edgeDown, coreDown time.Duration
	var lagPeak time.Duration
	var queuedPeak, inflightDown int
	for time.Since(cutAt) < cutFor {
		est, err := edge.status()
		if err != nil {
			t.Fatalf("edge /api/mesh during the cut: %v", err)
		}
		cst, err := core.status()
		if err != nil {
			t.Fatalf("core /api/mesh during the cut: %v", err)
		}
		if ul, ok := link(est, "upstream"); ok && !ul.Up {
			if edgeDown == 0 {
				edgeDown = ul.Since.Sub(cutAt)
			}
			queuedPeak = max(queuedPeak, ul.Queued)
			inflightDown = max(inflightDown, ul.Inflight)
			lagPeak = max(lagPeak, ul.Lag)
		}
		if cl, ok := link(cst, "campus"); ok && !cl.Up && coreDown == 0 {
			coreDown = cl.Since.Sub(cutAt)
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	outage := time.Since(cutAt)
	l.unblackhole(w)
	healAt := time.Now()
	t.Logf("the edge marked its link down %v after the cut, the core %v (bound %v); during the cut the edge queued up to %d readings, lag up to %v",
		edgeDown.Round(10*time.Millisecond), coreDown.Round(10*time.Millisecond), silentCutBound, queuedPeak, lagPeak.Round(10*time.Millisecond))
	if edgeDown <= 0 || edgeDown > silentCutBound {
		t.Errorf("DETECT: the edge (dialing end) marked the link down %v after the cut (0: not in %v), want within %v", edgeDown, cutFor, silentCutBound)
	}
	if coreDown <= 0 || coreDown > silentCutBound {
		t.Errorf("DETECT: the core (accepting end) marked the link down %v after the cut (0: not in %v), want within %v", coreDown, cutFor, silentCutBound)
	}
	if queuedPeak == 0 || inflightDown != 0 {
		t.Errorf("QUEUE: while down the edge's link showed up to %d queued and %d in flight; want readings queued and none in flight", queuedPeak, inflightDown)
	}
	// The oldest reading waiting was queued at the cut or soon after it;
	// by the end of the cut it had waited about as long as the cut.
	if minLag := cutFor - edgeDown - 2*time.Second; lagPeak < minLag || lagPeak > outage+time.Second {
		t.Errorf("LAG: the down link's lag peaked at %v; want about the age of its oldest reading, %v to %v", lagPeak, minLag, outage+time.Second)
	}

	reconnect := linkUp(ctx, t, edge, "upstream", 60*time.Second)
	linkUp(ctx, t, core, "campus", 60*time.Second)
	time.Sleep(2 * time.Second) // readings on the healed link (workload, not a condition)
	pub.stopAndSettle(ctx, t)
	drain := waitDelivered(ctx, t, 60*time.Second, map[*subscriber][]*publisher{sub: {pub}})
	verify(t, sub, pub, noDuplicates)
	checkSubscriber(t, sub, true)
	t.Logf("link up %v after the heal; every reading delivered %v after publishing stopped (%v after the heal)",
		reconnect.Round(10*time.Millisecond), drain.Round(10*time.Millisecond), time.Since(healAt).Round(10*time.Millisecond))
}
