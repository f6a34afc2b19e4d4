package mesh_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// linkStatus returns node's link to peer as GET /api/mesh reports it.
func linkStatus(t *testing.T, node *testNode, peer string) mesh.LinkStatus {
	t.Helper()
	rec := httptest.NewRecorder()
	node.n.ServeHTTP(rec, httptest.NewRequest("GET", "/api/mesh", nil))
	var st mesh.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatalf("GET /api/mesh: %v: %s", err, rec.Body.Bytes())
	}
	for _, l := range st.Links {
		if l.Peer == peer {
			return l
		}
	}
	t.Fatalf("GET /api/mesh of %s has no link %s: %s", node.name, peer, rec.Body.Bytes())
	return mesh.LinkStatus{}
}

// linkIsUp reports whether node's link to peer is up.
func linkIsUp(node *testNode, peer string) bool {
	for _, l := range node.b.Links() {
		if l.Peer == peer {
			return l.Up()
		}
	}
	return false
}

// fastRetry gives a node's dialers a back-off of 50 ms to 500 ms.
func fastRetry(n *mesh.Node) { mesh.SetBackoff(n, 50*time.Millisecond, 500*time.Millisecond) }

// TestSilentCutFoundAtBothEnds black-holes a link (its connection stays
// open, nothing crosses it, neither end is told) and checks that both ends
// mark it down within one and a half keep alive periods (plus a second for
// a loaded machine), and not before one period: the edge, which dialed,
// because no PINGRESP comes; the core, which accepted, because no packet
// comes. Under load the edge's inflight window goes back to the queue. After
// the heal the link comes back and every acknowledged reading arrives.
func TestSilentCutFoundAtBothEnds(t *testing.T) {
	cases := []struct {
		name           string
		edgeKA, coreKA time.Duration // 0: the default
		load           bool
		want           time.Duration // the keep alive that applies
		bound          time.Duration // both ends see the link down within it
	}{
		// By default a dead link is found within 3 s (1.5 × 2 s); the
		// bounds leave room for a machine shared with other work.
		{name: "idle, default keep alive", want: 2 * time.Second, bound: 5 * time.Second},
		{name: "under load, 1 s keep alive", edgeKA: time.Second, coreKA: time.Second, load: true, want: time.Second, bound: 3500 * time.Millisecond},
		// The accepting core's shorter keep alive applies to the link
		// (Server Keep Alive), also at the edge that asked for 30 s.
		{name: "the core's shorter keep alive", edgeKA: 30 * time.Second, coreKA: time.Second, want: time.Second, bound: 3500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			coreCfg := coreOf("core")
			coreCfg.LinkKeepAlive = tc.coreKA
			core := startNode(t, coreCfg, "", nil)
			proxy := startProxy(t, core.addr)
			edgeCfg := mesh.Config{Node: "campus", Role: "edge", LinkKeepAlive: tc.edgeKA,
				Upstream: []mesh.PeerConfig{{Name: "core", URL: "mqtt://" + proxy.addr()}}}
			edge := startNodeTuned(t, edgeCfg, "", nil, broker.Options{}, fastRetry)
			upstreamUp(t, edge)
			waitFor(t, "the core's link to the edge", func() bool { return linkIsUp(core, "campus") })
			atCore := subscribePersistent(t, core, "dashboard", 1, "energy/#")
			interestAt(t, edge, "upstream", "energy/#")

			var acked []int
			var mu sync.Mutex
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if tc.load {
				p := publisher(t, edge, "meter")
				wg.Go(func() {
					tick := time.NewTicker(2 * time.Millisecond)
					defer tick.Stop()
					for k := 0; ; k++ {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						p.PublishAsync(&mqtt.Publish{Topic: "energy/m1", Payload: []byte(strconv.Itoa(k)), QoS: 1}, func(err error) {
							if err == nil {
								mu.Lock()
								acked = append(acked, k)
								mu.Unlock()
							}
						})
					}
				})
				waitFor(t, "readings at the core", func() bool { return len(atCore.messages()) >= 50 })
			}

			proxy.setMode(blackhole)
			cutAt := time.Now()
			// When each end marked the link down, as it says itself (so
			// that a slow poll here does not count).
			var edgeDown, coreDown time.Duration
			deadline := cutAt.Add(tc.bound + 10*time.Second)
			for (edgeDown == 0 || coreDown == 0) && time.Now().Before(deadline) {
				if st := linkStatus(t, edge, "upstream"); edgeDown == 0 && !st.Up {
					edgeDown = st.Since.Sub(cutAt)
				}
				if st := linkStatus(t, core, "campus"); coreDown == 0 && !st.Up {
					coreDown = st.Since.Sub(cutAt)
				}
				time.Sleep(5 * time.Millisecond)
			}
			bound := tc.bound
			seen := func(d time.Duration) string {
				if d == 0 {
					return fmt.Sprintf("never (in %v)", tc.bound+10*time.Second)
				}
				return d.Round(time.Millisecond).String()
			}
			t.Logf("keep alive %v: the edge saw the link down after %s, the core after %s (bound %v)", tc.want, seen(edgeDown), seen(coreDown), bound)
			if edgeDown == 0 || edgeDown > bound {
				t.Errorf("the edge (dialing end) saw the cut link down after %s, want within %v", seen(edgeDown), bound)
			}
			if coreDown == 0 || coreDown > bound {
				t.Errorf("the core (accepting end) saw the cut link down after %s, want within %v", seen(coreDown), bound)
			}
			if edgeDown > 0 && coreDown > 0 && (edgeDown < tc.want || coreDown < tc.want) {
				t.Errorf("a link was declared dead %v / %v after the cut, sooner than its keep alive %v allows", edgeDown, coreDown, tc.want)
			}
			if tc.load {
				// What was in flight waits in the queue again, and the lag
				// says how long the oldest reading has waited.
				st := linkStatus(t, edge, "upstream")
				if st.Up || st.Inflight != 0 || st.Queued == 0 || st.Lag <= 0 {
					t.Errorf("the edge's down link reports up %v, inflight %d, queued %d, lag %v; want down, 0 inflight, a queue and its lag",
						st.Up, st.Inflight, st.Queued, st.Lag)
				}
			}

			// The heal: the hanging connections go, new ones pass.
			proxy.setMode(forward)
			proxy.dropAll()
			upstreamUp(t, edge)
			close(stop)
			wg.Wait()
			mu.Lock()
			want := append([]int(nil), acked...)
			mu.Unlock()
			waitFor(t, "every acknowledged reading at the core", func() bool {
				got := map[string]bool{}
				for _, m := range atCore.messages() {
					got[m] = true
				}
				for _, k := range want {
					if !got[fmt.Sprintf("energy/m1 %d", k)] {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestLagOfADownLinkIsItsOldestMessage checks that a down link reports as
// lag the age of the oldest message it holds for its peer, although the
// message waits in the store and not in memory, also after the node
// restarts on its store.
func TestLagOfADownLinkIsItsOldestMessage(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	engine := store.NewMemoryEngine()
	edge := startNode(t, edgeOf("campus", core), "", engine)
	upstreamUp(t, edge)
	subscribePersistent(t, core, "dashboard", 1, "energy/#")
	interestAt(t, edge, "upstream", "energy/#")
	core.stop()
	waitFor(t, "the edge's link down", func() bool { return !linkIsUp(edge, "upstream") })

	p := publisher(t, edge, "meter")
	first := time.Now()
	publish(t, p, "energy/m1", "0", 1)
	queued := time.Now()
	// The scenario: the first reading waits half a second before more come.
	time.Sleep(500 * time.Millisecond)
	for k := 1; k < 100; k++ {
		publish(t, p, "energy/m1", strconv.Itoa(k), 1)
	}
	check := func(node *testNode) {
		t.Helper()
		lo := time.Since(queued)
		st := linkStatus(t, node, "upstream")
		hi := time.Since(first)
		const tick = 100 * time.Millisecond // the broker's coarse clock, late on a busy machine
		if st.Up || st.Queued != 100 || st.Lag < lo-tick || st.Lag > hi+tick {
			t.Fatalf("the down link reports up %v, queued %d, lag %v; want down, 100 queued and a lag of %v to %v (the first reading's age)",
				st.Up, st.Queued, st.Lag, lo, hi)
		}
	}
	check(edge)

	// The age is kept in the store with the message: a restarted node
	// reports it too.
	edge.stop()
	edge = startNode(t, edgeOf("campus", core), "", engine)
	check(edge)
}

// TestLagOfAnUpLinkCountsInflight checks that the lag of a link that is up
// is the age of the oldest message its peer has not acknowledged, also when
// that message is in flight rather than queued.
func TestLagOfAnUpLinkCountsInflight(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	// An edge's end of a link that takes one message at a time and does
	// not acknowledge it until the test ends.
	release := make(chan struct{})
	got := make(chan struct{}, 10)
	ctx := t.Context()
	edge, err := client.Dial(ctx, client.Options{Addr: core.addr, ClientID: "$mesh/campus", Version: mqtt.V5, SessionExpiry: 3600,
		ReceiveMaximum: 1, Logger: quiet,
		UserProperties: []mqtt.UserProperty{{Key: "citymesh-node", Value: "campus"}, {Key: "citymesh-role", Value: "edge"}},
		OnMessage: func(p *mqtt.Publish) {
			if strings.HasPrefix(p.Topic, "$mesh/") {
				return
			}
			got <- struct{}{}
			<-release
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { edge.Close() })
	t.Cleanup(func() { close(release) }) // runs first
	sendControl(t, edge, "$mesh/hello", `{"node":"campus","role":"edge","version":1}`)
	sendControl(t, edge, "$mesh/interest", `{"epoch":1,"full":true,"filters":["energy/#"]}`)
	interestAt(t, core, "campus", "energy/#")

	p := publisher(t, core, "meter")
	first := time.Now()
	publish(t, p, "energy/m1", "0", 1)
	queued := time.Now()
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the first reading did not reach the edge's end of the link")
	}
	// The scenario: the first reading stays unacknowledged half a second
	// before more come.
	time.Sleep(500 * time.Millisecond)
	publish(t, p, "energy/m1", "1", 1)
	publish(t, p, "energy/m1", "2", 1)
	lo := time.Since(queued)
	st := linkStatus(t, core, "campus")
	hi := time.Since(first)
	const tick = 100 * time.Millisecond // the broker's coarse clock, late on a busy machine
	if !st.Up || st.Inflight != 1 || st.Queued != 2 || st.Lag < lo-tick || st.Lag > hi+tick {
		t.Fatalf("the link reports up %v, inflight %d, queued %d, lag %v; want up, 1 inflight, 2 queued and a lag of %v to %v (the unacknowledged reading's age)",
			st.Up, st.Inflight, st.Queued, st.Lag, lo, hi)
	}
}

// TestQuickRetryAfterALinkThatWasUp checks the reconnect back-off: it grows
// over consecutive failed dials, and a link that was up and is lost is
// dialed again at once (after the smallest wait), however long the waits
// were before it came up, so that a core that fails again soon after an
// outage is reached again as soon as it is back.
func TestQuickRetryAfterALinkThatWasUp(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	proxy := startProxy(t, core.addr)
	proxy.setMode(refuse) // the core is away
	const lo, hi = 50 * time.Millisecond, 1600 * time.Millisecond
	edgeCfg := mesh.Config{Node: "campus", Role: "edge", Upstream: []mesh.PeerConfig{{Name: "core", URL: "mqtt://" + proxy.addr()}}}
	edge := startNodeTuned(t, edgeCfg, "", nil, broker.Options{}, func(n *mesh.Node) { mesh.SetBackoff(n, lo, hi) })

	// Failed dials: the waits between them double, up to hi.
	waitFor(t, "seven refused dials", func() bool { return len(proxy.dialTimes()) >= 7 })
	d := proxy.dialTimes()
	var gaps []time.Duration
	for i := 1; i < 7; i++ {
		gaps = append(gaps, d[i].Sub(d[i-1]))
	}
	t.Logf("waits between refused dials: %v", gaps)
	if gaps[0] > hi/4 || gaps[5] < hi/2 {
		t.Fatalf("waits between refused dials %v: want from about %v growing to about %v", gaps, lo, hi)
	}

	// The core is back; the link comes up and stays up a while.
	proxy.setMode(forward)
	upstreamUp(t, edge)
	upAt := time.Now()
	waitFor(t, "the link to stay up for 1.2 s", func() bool { return linkIsUp(edge, "upstream") && time.Since(upAt) > 1200*time.Millisecond })

	// The core crashes: the next dial comes at once, not after the long
	// wait the back-off had grown to.
	before := len(proxy.dialTimes())
	lostAt := time.Now()
	proxy.dropAll()
	waitFor(t, "the edge to dial again", func() bool { return len(proxy.dialTimes()) > before })
	retry := proxy.dialTimes()[before].Sub(lostAt)
	t.Logf("first dial %v after the link was lost (back-off %v to %v)", retry.Round(time.Millisecond), lo, hi)
	// Not reset, the wait would be at least 1.2 s (1.6 s less a quarter);
	// reset, it is about 50 ms, and the rest is a busy machine's delay.
	if retry > hi/2 {
		t.Fatalf("the edge dialed again %v after losing a link that had been up, want within %v (its back-off had grown to %v)", retry, hi/2, hi)
	}
	upstreamUp(t, edge)
}

// TestLargeMessageOnASlowLinkKeepsItUp sends a message that takes twice the
// keep alive to cross a slow link, each way, and checks that the link stays
// up meanwhile and the message arrives once: bytes of a packet still
// arriving are a sign of life, and the accepting end says it is alive to a
// dialing end whose PINGREQ waits behind its own large message.
func TestLargeMessageOnASlowLinkKeepsItUp(t *testing.T) {
	const ka = 2 * time.Second
	const rate = 200 << 10 // bytes a second
	const size = 900 << 10 // 4.5 s on the wire, more than 1.5 keep alive periods
	coreCfg := coreOf("core")
	coreCfg.LinkKeepAlive = ka
	core := startNode(t, coreCfg, "", nil)
	proxy := startProxy(t, core.addr)
	edgeCfg := mesh.Config{Node: "campus", Role: "edge", LinkKeepAlive: ka,
		Upstream: []mesh.PeerConfig{{Name: "core", URL: "mqtt://" + proxy.addr()}}}
	edge := startNodeTuned(t, edgeCfg, "", nil, broker.Options{}, fastRetry)
	upstreamUp(t, edge)
	waitFor(t, "the core's link to the edge", func() bool { return linkIsUp(core, "campus") })
	atCore := subscribePersistent(t, core, "dashboard", 1, "robot/#")
	atEdge := subscribePersistent(t, edge, "robot-base", 1, "command/#")
	interestAt(t, edge, "upstream", "robot/#")
	interestAt(t, core, "campus", "command/#")
	since := linkStatus(t, edge, "upstream").Since
	proxy.setRate(rate)

	picture := strings.Repeat("p", size)
	for _, dir := range []struct {
		name     string
		from     *testNode
		topic    string
		receiver *sub
	}{
		{"edge to core (the dialing end sends)", edge, "robot/loomi/picture", atCore},
		{"core to edge (the accepting end sends)", core, "command/loomi/map", atEdge},
	} {
		start := time.Now()
		publish(t, publisher(t, dir.from, "sender-"+dir.from.name), dir.topic, picture, 1)
		waitFor(t, "the large message, "+dir.name, func() bool { return len(dir.receiver.messages()) > 0 })
		took := time.Since(start)
		t.Logf("%s: %d bytes took %v at %d B/s (keep alive %v)", dir.name, size, took.Round(time.Millisecond), rate, ka)
		if got := dir.receiver.count(dir.topic + " " + picture); got != 1 {
			t.Fatalf("%s: the large message arrived %d times, want once", dir.name, got)
		}
		if took < ka*3/2 {
			t.Fatalf("%s: the message took only %v: the slow link does not test the keep alive", dir.name, took)
		}
	}
	if st := linkStatus(t, edge, "upstream"); !st.Up || !st.Since.Equal(since) || len(proxy.dialTimes()) != 1 {
		t.Fatalf("the link went down while the large messages crossed it: up %v since %v (was %v), %d dials",
			st.Up, st.Since, since, len(proxy.dialTimes()))
	}
}
