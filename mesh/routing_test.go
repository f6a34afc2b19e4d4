package mesh_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"
)

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// clientOptions are those of a persistent session's reconnection.
func clientOptions(id string) client.Options {
	return client.Options{ClientID: id, SessionExpiry: 3600}
}

// lastError returns what node says of its link to peer.
func lastError(node *testNode, peer string) string {
	for _, l := range node.n.Status().Links {
		if l.Peer == peer {
			return l.LastError
		}
	}
	return ""
}

func TestLoopProbeRefusesMiswiredLinks(t *testing.T) {
	cases := []struct {
		name string
		// build starts the nodes and returns the one whose link is
		// miswired, that link's name and what its error must say.
		build func(t *testing.T) (node *testNode, link, want string)
	}{
		{"a core's peer address is its own", func(t *testing.T) (*testNode, string, string) {
			addr := freeAddr(t)
			cfg := mesh.Config{Node: "core-a", Role: "core", Peers: []mesh.PeerConfig{{Name: "core-b", URL: "mqtt://" + addr}}}
			return startNode(t, cfg, addr, nil), "core-b", "to itself"
		}},
		{"a core's peer address leads to another core", func(t *testing.T) (*testNode, string, string) {
			addrA, addrC := freeAddr(t), freeAddr(t)
			startNode(t, mesh.Config{Node: "core-c", Role: "core", Peers: []mesh.PeerConfig{{Name: "core-a", URL: "mqtt://" + addrA}}}, addrC, nil)
			a := startNode(t, mesh.Config{Node: "core-a", Role: "core", Peers: []mesh.PeerConfig{{Name: "core-b", URL: "mqtt://" + addrC}}}, addrA, nil)
			return a, "core-b", "the link for core-b reached core-c"
		}},
		{"an edge's upstream is another edge", func(t *testing.T) (*testNode, string, string) {
			core := startNode(t, coreOf("core"), "", nil)
			other := startNode(t, edgeOf("campus", core), "", nil)
			return startNode(t, edgeOf("vineyard", other), "", nil), "upstream", "is an edge node: it takes no links"
		}},
		{"an edge the core does not accept", func(t *testing.T) (*testNode, string, string) {
			cfg := coreOf("core")
			cfg.Accept.Edges = []string{"campus"}
			core := startNode(t, cfg, "", nil)
			return startNode(t, edgeOf("vineyard", core), "", nil), "upstream", "edge vineyard may not attach here"
		}},
		{"a core that does not list the peer", func(t *testing.T) (*testNode, string, string) {
			b := startNode(t, mesh.Config{Node: "core-b", Role: "core"}, "", nil)
			a := startNode(t, coreOf("core-a", b), "", nil)
			return a, "core-b", "core core-a is not among this node's peers"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node, link, want := tc.build(t)
			waitFor(t, fmt.Sprintf("%s's link %s to be refused saying %q", node.name, link, want), func() bool {
				return strings.Contains(lastError(node, link), want)
			})
			for _, l := range node.b.Links() {
				if l.Peer == link && l.Up() && strings.Contains(lastError(node, link), want) {
					// It may come up for a moment before the hello is
					// checked; it must not stay up.
					waitFor(t, "the refused link to stay down", func() bool { return !l.Up() })
				}
			}
		})
	}
}

func TestSharedSubscriptionOneMemberMeshWide(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	campus := startNode(t, edgeOf("campus", core), "", nil)
	vineyard := startNode(t, edgeOf("vineyard", core), "", nil)
	upstreamUp(t, campus)
	upstreamUp(t, vineyard)
	// Two workers of one group, on different nodes, and an ordinary
	// subscriber that must see everything.
	w1 := subscribe(t, core, "worker-1", 1, "$share/billing/energy/#")
	w2 := subscribe(t, campus, "worker-2", 1, "$share/billing/energy/#")
	all := subscribe(t, campus, "archive", 1, "energy/#")
	interestAt(t, vineyard, "upstream", "$share/billing/energy/#")
	interestAt(t, vineyard, "upstream", "energy/#")
	interestAt(t, core, "campus", "$share/billing/energy/#")

	p := publisher(t, vineyard, "meter")
	const n = 100
	for k := range n {
		publish(t, p, fmt.Sprintf("energy/m%d", k%7), fmt.Sprint(k), 1)
	}
	waitFor(t, "every reading at the workers and the archive", func() bool {
		return len(w1.messages())+len(w2.messages()) >= n && len(all.messages()) >= n
	})
	time.Sleep(100 * time.Millisecond) // anything delivered twice would arrive now
	seen := map[string]int{}
	for _, m := range append(w1.messages(), w2.messages()...) {
		seen[m]++
	}
	for m, c := range seen {
		if c != 1 {
			t.Fatalf("%q reached the group %d times", m, c)
		}
	}
	if len(seen) != n || len(all.messages()) != n {
		t.Fatalf("the group got %d distinct readings and the archive %d, want %d each", len(seen), len(all.messages()), n)
	}

	// When the core's worker leaves, the campus worker gets the rest.
	sessions := core.b.Stats().Sessions
	w1.c.Close()
	waitFor(t, "the core to end its worker's session", func() bool { return core.b.Stats().Sessions == sessions-1 })
	before := len(w2.messages())
	for k := range 10 {
		publish(t, p, "energy/late", fmt.Sprint(k), 1)
	}
	waitFor(t, "the late readings at the campus worker", func() bool { return len(w2.messages()) == before+10 })
}

func TestRetainedReachesLateSubscribersOnOtherNodes(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	campus := startNode(t, edgeOf("campus", core), "", nil)
	vineyard := startNode(t, edgeOf("vineyard", core), "", nil)
	upstreamUp(t, campus)
	upstreamUp(t, vineyard)

	// The vineyard's weather station keeps its last reading retained,
	// before anybody anywhere listens.
	p := publisher(t, vineyard, "station")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Publish(ctx, &mqtt.Publish{Topic: "vineyard/weather/temp", Payload: []byte("14.2"), QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	// A subscriber on the campus edge asks: its interest reaches the
	// vineyard through the core, the vineyard sends what is retained, and
	// the core and the campus keep a copy as they pass it on.
	first := subscribe(t, campus, "twin", 1, "vineyard/weather/#")
	waitFor(t, "the retained reading on the campus", func() bool { return first.count("vineyard/weather/temp 14.2") == 1 })
	// A second late subscriber on the campus finds the copy there at once,
	// flagged as retained.
	second := subscribe(t, campus, "dashboard", 1, "vineyard/weather/temp")
	waitFor(t, "the campus's copy", func() bool { return second.count("vineyard/weather/temp 14.2") == 1 })
	if !second.retained[0] {
		t.Fatal("the campus's copy came without the Retain flag")
	}
	atCore := subscribe(t, core, "ops", 1, "vineyard/weather/temp")
	waitFor(t, "the core's copy", func() bool { return atCore.count("vineyard/weather/temp 14.2") == 1 })

	// Clearing it at the source clears the copies that are still wanted.
	if err := p.Publish(ctx, &mqtt.Publish{Topic: "vineyard/weather/temp", QoS: 1, Retain: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the clear to reach the campus", func() bool { return first.count("vineyard/weather/temp ") == 1 })
	third := subscribe(t, campus, "late", 1, "vineyard/weather/#")
	time.Sleep(100 * time.Millisecond)
	for _, m := range third.messages() {
		t.Fatalf("after the clear, a new subscriber on the campus got %q", m)
	}
}

func TestQoS2ExactlyOnceAcrossReconnectsAndRestart(t *testing.T) {
	coreAddr := freeAddr(t)
	core := startNode(t, coreOf("core"), coreAddr, nil)
	edge := startNode(t, edgeOf("campus", core), "", nil)
	upstreamUp(t, edge)
	atCore := subscribePersistent(t, core, "billing", 2, "energy/#")
	interestAt(t, edge, "upstream", "energy/#")

	p := publisher(t, edge, "meter")
	const n = 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		for k := range n {
			if err := p.Publish(context.Background(), &mqtt.Publish{Topic: "energy/m1", Payload: fmt.Appendf(nil, "%04d", k), QoS: 2}); err != nil {
				t.Errorf("publish %d: %v", k, err)
				return
			}
			switch k {
			case 60, 120, 180:
				// Break the link at the core's end in the middle of the
				// stream: exchanges in flight resume on the next connection.
				for _, l := range core.b.Links() {
					if l.Peer == "campus" {
						l.Disconnect(mqtt.UnspecifiedError)
					}
				}
			}
		}
	}()
	<-done
	if t.Failed() {
		return
	}
	// Restart the core on its store while QoS 2 exchanges may still be in
	// flight, then let the subscriber reconnect to its session.
	engine := core.engine
	core.stop()
	core = startNode(t, coreOf("core"), coreAddr, engine)
	waitFor(t, "the edge's link to drain", func() bool {
		for _, l := range edge.b.Links() {
			if st := l.Stats(); st.Peer == "upstream" && st.Up && st.Queued+st.Inflight == 0 {
				return true
			}
		}
		return false
	})
	again := subscribeWith(t, core, clientOptions("billing"), 2)
	waitFor(t, "every reading", func() bool { return len(atCore.messages())+len(again.messages()) >= n })
	time.Sleep(100 * time.Millisecond)
	got := append(atCore.messages(), again.messages()...)
	if len(got) != n {
		t.Fatalf("the subscriber got %d messages, want exactly %d", len(got), n)
	}
	for k, m := range got {
		if m != fmt.Sprintf("energy/m1 %04d", k) {
			t.Fatalf("message %d is %q: lost, duplicated or out of order", k, m)
		}
	}
}

func TestGrantsLimitWhatCrossesALink(t *testing.T) {
	cfg := coreOf("core")
	cfg.Accept.Import = []string{"vineyard/#"}
	cfg.Accept.Export = []string{"weather/#"}
	core := startNode(t, cfg, "", nil)
	edge := startNode(t, edgeOf("vineyard", core), "", nil)
	upstreamUp(t, edge)
	atCore := subscribe(t, core, "ops", 1, "#")
	atEdge := subscribe(t, edge, "irrigation", 1, "#")
	interestAt(t, edge, "upstream", "#")
	interestAt(t, core, "vineyard", "#")

	publish(t, publisher(t, edge, "probe"), "building/b1/door", "open", 1)
	publish(t, publisher(t, edge, "probe-2"), "vineyard/soil", "31", 1)
	publish(t, publisher(t, core, "station"), "secret/plan", "x", 1)
	publish(t, publisher(t, core, "station-2"), "weather/rain", "0.4", 1)
	waitFor(t, "what the grants allow", func() bool {
		return atCore.count("vineyard/soil 31") == 1 && atEdge.count("weather/rain 0.4") == 1
	})
	time.Sleep(100 * time.Millisecond)
	if atCore.count("building/b1/door open") != 0 || atEdge.count("secret/plan x") != 0 {
		t.Fatalf("a message outside the grants crossed: core %q, edge %q", atCore.messages(), atEdge.messages())
	}
	for _, l := range core.b.Links() {
		if l.Peer == "vineyard" && l.Stats().Dropped["import"] != 1 {
			t.Fatalf("the core's link counts %d messages refused by its import grant, want 1", l.Stats().Dropped["import"])
		}
	}
}

func TestLinkQueueQuotaAndExpiry(t *testing.T) {
	coreAddr := freeAddr(t)
	core := startNode(t, coreOf("core"), coreAddr, nil)
	edge := startNodeWith(t, edgeOf("campus", core), "", nil, broker.Options{MaxLinkStoredMessages: 5})
	upstreamUp(t, edge)
	atCore := subscribePersistent(t, core, "dashboard", 1, "energy/#")
	interestAt(t, edge, "upstream", "energy/#")
	engine := core.engine
	core.stop()
	waitFor(t, "the link down", func() bool { return !edge.b.Links()[0].Up() })

	p := publisher(t, edge, "meter")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for k := range 3 {
		publish(t, p, "energy/m1", fmt.Sprint("kept-", k), 1)
	}
	for k := range 2 {
		m := &mqtt.Publish{Topic: "energy/m1", Payload: fmt.Appendf(nil, "stale-%d", k), QoS: 1,
			Props: mqtt.Properties{MessageExpiry: 1}}
		m.Props.Set(mqtt.PropMessageExpiry)
		if err := p.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	// The link's queue is full: the sixth is refused, and the publisher is
	// told (MQTT 5: 0x97 Quota exceeded, as nobody else took it).
	err := p.Publish(ctx, &mqtt.Publish{Topic: "energy/m1", Payload: []byte("over"), QoS: 1})
	if err == nil || !strings.Contains(err.Error(), "Quota") {
		t.Fatalf("a publish beyond the link's quota returned %v, want Quota exceeded", err)
	}
	time.Sleep(1100 * time.Millisecond) // the two stale ones expire while queued

	core = startNode(t, coreOf("core"), coreAddr, engine)
	again := subscribeWith(t, core, clientOptions("dashboard"), 1)
	waitFor(t, "the kept readings", func() bool { return len(again.messages()) >= 3 })
	waitFor(t, "the link's queue to drain", func() bool {
		st := edge.b.Links()[0].Stats()
		return st.Up && st.Queued+st.Inflight == 0
	})
	if got := append(atCore.messages(), again.messages()...); strings.Join(got, ",") != "energy/m1 kept-0,energy/m1 kept-1,energy/m1 kept-2" {
		t.Fatalf("after the outage the dashboard got %q", got)
	}
	st := edge.b.Links()[0].Stats()
	if st.Dropped["queue_full"] != 1 || st.Dropped["expired"] != 2 {
		t.Fatalf("the link counts %v dropped, want queue_full 1 and expired 2", st.Dropped)
	}
}

func TestHopLimit(t *testing.T) {
	// With a limit of one link, what crosses from an edge to the core goes
	// no further: the core's clients get it, the other edge does not.
	core := startNodeWith(t, coreOf("core"), "", nil, broker.Options{MaxHops: 1})
	campus := startNode(t, edgeOf("campus", core), "", nil)
	vineyard := startNode(t, edgeOf("vineyard", core), "", nil)
	upstreamUp(t, campus)
	upstreamUp(t, vineyard)
	atCore := subscribe(t, core, "ops", 1, "vineyard/#")
	atCampus := subscribe(t, campus, "twin", 1, "vineyard/#")
	interestAt(t, core, "campus", "vineyard/#")
	interestAt(t, vineyard, "upstream", "vineyard/#")
	publish(t, publisher(t, vineyard, "probe"), "vineyard/soil", "31", 1)
	waitFor(t, "the reading at the core", func() bool { return atCore.count("vineyard/soil 31") == 1 })
	waitFor(t, "the hop limit to be counted", func() bool {
		for _, l := range core.b.Links() {
			if l.Peer == "campus" && l.Stats().Dropped["hops"] == 1 {
				return true
			}
		}
		return false
	})
	if len(atCampus.messages()) != 0 {
		t.Fatalf("the campus got %q beyond the hop limit", atCampus.messages())
	}
}

func TestQoS1NoDuplicatesAcrossReconnects(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)
	edge := startNode(t, edgeOf("campus", core), "", nil)
	upstreamUp(t, edge)
	atCore := subscribePersistent(t, core, "billing", 1, "energy/#")
	interestAt(t, edge, "upstream", "energy/#")

	p := publisher(t, edge, "meter")
	const n = 3000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for k := range n {
		wg.Add(1)
		p.PublishAsync(&mqtt.Publish{Topic: "energy/m1", Payload: fmt.Appendf(nil, "%05d", k), QoS: 1}, func(err error) {
			if err != nil {
				errs <- err
			}
			wg.Done()
		})
		if k%500 == 250 {
			// Break the link at the core's end while hundreds of messages
			// are in flight: those the core took in but did not
			// acknowledge come again, marked DUP.
			for _, l := range core.b.Links() {
				if l.Peer == "campus" {
					l.Disconnect(mqtt.UnspecifiedError)
				}
			}
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "every reading", func() bool { return len(atCore.messages()) >= n })
	time.Sleep(100 * time.Millisecond)
	got := atCore.messages()
	if len(got) != n {
		t.Fatalf("the subscriber got %d messages, want exactly %d", len(got), n)
	}
	for k, m := range got {
		if m != fmt.Sprintf("energy/m1 %05d", k) {
			t.Fatalf("message %d is %q: lost, duplicated or out of order", k, m)
		}
	}
	for _, l := range core.b.Links() {
		t.Logf("link %s: %v", l.Peer, l.Stats().Dropped)
	}
}

// interestOf returns the filters link peer at node was asked for.
func interestOf(node *testNode, peer string) []string {
	var out []string
	for _, l := range node.b.Links() {
		if l.Peer == peer {
			for _, in := range l.Interest() {
				out = append(out, in.Filter)
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestInterestFollowsSubscriptions(t *testing.T) {
	coreAddr := freeAddr(t)
	core := startNode(t, coreOf("core"), coreAddr, nil)
	edge := startNode(t, edgeOf("campus", core), "", nil)
	upstreamUp(t, edge)
	settle := func(what string, want ...string) {
		t.Helper()
		waitFor(t, what, func() bool { return slices.Equal(interestOf(core, "campus"), want) })
	}
	s := subscribe(t, edge, "twin", 1, "energy/b1/+/reading", "energy/b2/#")
	settle("the first filters", "energy/b1/+/reading", "energy/b2/#")
	// A wider filter makes the narrower ones unnecessary, at the peer too.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.c.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "energy/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	settle("the covering filter alone", "energy/#")
	// Two clients with the same filter: it stays until the last one goes.
	other := subscribe(t, edge, "billing", 1, "energy/#")
	if _, err := s.c.Unsubscribe(ctx, "energy/#"); err != nil {
		t.Fatal(err)
	}
	settle("the narrower filters back, beside the other client's", "energy/#")
	if _, err := other.c.Unsubscribe(ctx, "energy/#"); err != nil {
		t.Fatal(err)
	}
	settle("the first client's filters", "energy/b1/+/reading", "energy/b2/#")

	// While the link is down the subscriptions change; the full resync
	// when it is back leaves nothing stale at the core.
	engine := core.engine
	core.stop()
	waitFor(t, "the link down", func() bool { return !edge.b.Links()[0].Up() })
	if _, err := s.c.Unsubscribe(ctx, "energy/b2/#"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "water/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	core = startNode(t, coreOf("core"), coreAddr, engine)
	settle("the interest after the resync", "energy/b1/+/reading", "water/#")
}
