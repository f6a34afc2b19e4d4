package meshfail_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"
)

// TestSubscriptionChurnSettles makes 10,000 subscriptions with distinct
// filters at an edge over several connections, in bursts, then removes a
// random half in bursts while flapping some of the rest (unsubscribe and
// subscribe again at once), and checks that the mesh settles to the right
// routes: the edge advertises and the core's link to it holds exactly the
// remaining filters, and probe messages published at the core reach exactly
// the remaining filters, each once, with nothing else crossing the link.
// Every tenth filter is held by two connections at first, and the one that
// made it first lets go, so that a filter stays wanted while any connection
// holds it.
func TestSubscriptionChurnSettles(t *testing.T) {
	l := newLab(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const (
		nFilters    = 10_000
		nConns      = 8
		burst       = 100 // filters per SUBSCRIBE or UNSUBSCRIBE
		flapPerStep = 10  // held filters unsubscribed and subscribed again after each removal burst
		settleBound = 30 * time.Second
	)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CITYMESH_MESHFAIL_SEED"); v != "" {
		if _, err := fmt.Sscan(v, &seed); err != nil {
			t.Fatalf("CITYMESH_MESHFAIL_SEED=%q: %v", v, err)
		}
	}
	t.Logf("seed %d (CITYMESH_MESHFAIL_SEED=%d repeats the choice of filters removed and flapped)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))

	coreHost, edgeHost := l.addHost("core"), l.addHost("campus")
	w := l.connect(edgeHost, coreHost)
	core := startNode(ctx, t, coreHost, nodeSpec{name: "core", role: "core"})
	edge := startNode(ctx, t, edgeHost, nodeSpec{name: "campus", role: "edge", upstream: []peerAddr{{"core", w.addrOf(coreHost)}}})
	linkUp(ctx, t, edge, "upstream", 15*time.Second)
	linkUp(ctx, t, core, "campus", 15*time.Second)

	// Filter i is made by connection i % nConns and, for every tenth, by
	// the next connection too; a random half stays, each with one holder
	// at the end (for a doubled filter, the second).
	filters := make([]churnFilter, nFilters)
	keep := make([]bool, nFilters)
	for _, i := range rng.Perm(nFilters)[:nFilters/2] {
		keep[i] = true
	}
	for i := range filters {
		filters[i] = newChurnFilter(i, nConns, keep[i])
	}
	conns := make([]*churnConn, nConns)
	for k := range conns {
		conns[k] = dialChurnConn(ctx, t, fmt.Sprintf("churn-%d", k), edge.mqttAddr())
	}

	start := time.Now()
	runConns(t, conns, func(k int, c *churnConn) error {
		if err := c.subscribe(ctx, []string{markerTopic(k)}); err != nil {
			return err
		}
		var mine []string
		for _, f := range filters {
			if slices.Contains(f.holders, k) {
				mine = append(mine, f.filter)
			}
		}
		return inBursts(mine, burst, func(part []string) error { return c.subscribe(ctx, part) })
	})
	created := time.Since(start)
	runConns(t, conns, func(k int, c *churnConn) error {
		crng := rand.New(rand.NewPCG(seed, uint64(k)))
		var drop, held []string
		for _, f := range filters {
			switch {
			case f.final == k:
				held = append(held, f.filter)
			case slices.Contains(f.holders, k):
				drop = append(drop, f.filter)
			}
		}
		return inBursts(drop, burst, func(part []string) error {
			if err := c.unsubscribe(ctx, part); err != nil {
				return err
			}
			flap := make([]string, flapPerStep)
			for j := range flap {
				flap[j] = held[crng.IntN(len(held))]
			}
			slices.Sort(flap)
			flap = slices.Compact(flap)
			if err := c.unsubscribe(ctx, flap); err != nil {
				return err
			}
			return c.subscribe(ctx, flap)
		})
	})
	churnedAt := time.Now()
	t.Logf("%d filters subscribed (%d subscriptions) over %d connections in %v; then %d filters removed, a holder of the doubled ones let go, and filters flapped, in %v",
		nFilters, nFilters+nFilters/10, nConns, created.Round(time.Millisecond), nFilters/2, churnedAt.Sub(start.Add(created)).Round(time.Millisecond))

	// Settling: the edge advertises, and the core's link holds, exactly
	// the remaining filters and the markers.
	want := nFilters/2 + nConns
	settle := waitFor(ctx, t, settleBound, "the core's link to the edge to hold the remaining filters", func() (bool, string) {
		cs, err := core.status()
		if err != nil {
			return false, err.Error()
		}
		es, err := edge.status()
		if err != nil {
			return false, err.Error()
		}
		cl, _ := link(cs, "campus")
		el, _ := link(es, "upstream")
		return cl.Interest == want && el.Advertised == want,
			fmt.Sprintf("the core's link holds %d filters, the edge advertised %d; want %d", cl.Interest, el.Advertised, want)
	})
	t.Logf("settled %v after the last SUBACK or UNSUBACK: %d filters at the core (bound %v)", settle.Round(time.Millisecond), want, settleBound)

	// Probes: one message at the core for every filter ever made, then a
	// marker for every connection. The link and each session keep order,
	// so once every marker has arrived, so has every probe sent to it.
	cs, err := core.status()
	if err != nil {
		t.Fatal(err)
	}
	forwardedBefore := mustLink(t, cs, "campus").Forwarded
	prober := dialChurnConn(ctx, t, "prober", core.mqttAddr())
	var failed atomic.Int64
	var pending sync.WaitGroup
	publish := func(topic string) {
		pending.Add(1)
		prober.c.PublishAsync(&mqtt.Publish{Topic: topic, QoS: 1, Payload: []byte("probe")}, func(err error) {
			if err != nil {
				failed.Add(1)
			}
			pending.Done()
		})
	}
	for _, f := range filters {
		publish(f.probe)
	}
	for k := range conns {
		publish(markerTopic(k))
	}
	pending.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("PROBE: %d probe publishes at the core failed", n)
	}
	waitFor(ctx, t, 30*time.Second, "every connection's marker", func() (bool, string) {
		missing := 0
		for k, c := range conns {
			if c.count(markerTopic(k)) == 0 {
				missing++
			}
		}
		return missing == 0, fmt.Sprintf("%d markers missing", missing)
	})
	var wrong []string
	delivered := 0
	for _, f := range filters {
		for k, c := range conns {
			n := c.count(f.probe)
			delivered += n
			if (k == f.final) != (n == 1) || n > 1 {
				wrong = append(wrong, fmt.Sprintf("%s (kept %v, held by %d at the end) reached connection %d %d times", f.filter, f.final >= 0, f.final, k, n))
			}
		}
	}
	if len(wrong) > 0 {
		t.Errorf("ROUTES: %d probes went wrong, e.g.\n\t%s", len(wrong), strings.Join(wrong[:min(len(wrong), maxExamples)], "\n\t"))
	}
	for k, c := range conns {
		if extra := c.total() - c.count(markerTopic(k)) - c.probesIn(filters); extra != 0 {
			t.Errorf("ROUTES: connection %d received %d messages other than probes and its marker", k, extra)
		}
	}
	cs, err = core.status()
	if err != nil {
		t.Fatal(err)
	}
	cl := mustLink(t, cs, "campus")
	crossed := cl.Forwarded - forwardedBefore
	if crossed != uint64(want) {
		t.Errorf("ROUTES: %d messages crossed the core's link to the edge for %d probes and %d markers, want %d (the remaining filters and the markers)", crossed, nFilters, nConns, want)
	}
	if cl.Interest != want {
		t.Errorf("INTEREST: the core's link to the edge holds %d filters after the probes, want %d", cl.Interest, want)
	}
	t.Logf("%d probes published at the core: %d crossed the link, %d delivered; churn settled in %v", nFilters, crossed, delivered, settle.Round(time.Millisecond))
}

// churnFilter is one filter of TestSubscriptionChurnSettles, the topic of
// its probe, the connections that subscribe to it at first and the one that
// holds it at the end (-1: removed).
type churnFilter struct {
	filter, probe string
	holders       []int
	final         int
}

// newChurnFilter returns filter i of a run with nConns connections. The
// filters take four shapes (a multi-level wildcard, a single-level wildcard
// in the middle or in front, no wildcard), each with its index as a level
// of its own, so that none covers another (the mesh advertises a minimal
// set, so a filter covered by a wider one would not be counted) and no probe
// matches a filter but its own.
func newChurnFilter(i, nConns int, kept bool) churnFilter {
	var f churnFilter
	switch i % 4 {
	case 0:
		f.filter, f.probe = fmt.Sprintf("churn/%d/#", i), fmt.Sprintf("churn/%d/p", i)
	case 1:
		f.filter, f.probe = fmt.Sprintf("churn/%d/+/v", i), fmt.Sprintf("churn/%d/p/v", i)
	case 2:
		f.filter, f.probe = fmt.Sprintf("churn/%d/v", i), fmt.Sprintf("churn/%d/v", i)
	default:
		f.filter, f.probe = fmt.Sprintf("+/churn-front/%d", i), fmt.Sprintf("x/churn-front/%d", i)
	}
	f.holders = []int{i % nConns}
	if i%10 == 0 {
		f.holders = append(f.holders, (i+1)%nConns)
	}
	f.final = -1
	if kept {
		f.final = f.holders[len(f.holders)-1]
	}
	return f
}

// markerTopic is connection k's marker topic, and its filter.
func markerTopic(k int) string { return fmt.Sprintf("churn-marker/%d", k) }

// inBursts calls fn with successive parts of list of at most n elements.
func inBursts(list []string, n int, fn func(part []string) error) error {
	for len(list) > 0 {
		m := min(n, len(list))
		if err := fn(list[:m]); err != nil {
			return err
		}
		list = list[m:]
	}
	return nil
}

// mustLink returns the link to peer of a status, failing the test if there
// is none.
func mustLink(t *testing.T, st mesh.Status, peer string) mesh.LinkStatus {
	t.Helper()
	l, ok := link(st, peer)
	if !ok {
		t.Fatalf("%s has no link %s", st.Node, peer)
	}
	return l
}

// churnConn is one client connection of TestSubscriptionChurnSettles: it
// subscribes and unsubscribes in bursts and counts what arrives, by topic.
type churnConn struct {
	id string
	c  *client.Client

	mu  sync.Mutex
	got map[string]int
	n   int
}

// dialChurnConn connects client id to addr with a clean session.
func dialChurnConn(ctx context.Context, t *testing.T, id, addr string) *churnConn {
	t.Helper()
	cc := &churnConn{id: id, got: make(map[string]int)}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := client.Dial(dctx, client.Options{Addr: addr, ClientID: id, Version: mqtt.V5, CleanStart: true, Logger: quiet,
		OnMessage: func(p *mqtt.Publish) {
			cc.mu.Lock()
			cc.got[p.Topic]++
			cc.n++
			cc.mu.Unlock()
		}})
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	t.Cleanup(func() { c.Close() })
	cc.c = c
	return cc
}

// subscribe subscribes to filters at QoS 1 in one SUBSCRIBE and checks that
// every one was granted.
func (c *churnConn) subscribe(ctx context.Context, filters []string) error {
	subs := make([]mqtt.Subscription, len(filters))
	for i, f := range filters {
		subs[i] = mqtt.Subscription{Filter: f, QoS: 1}
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := c.c.Subscribe(rctx, mqtt.Properties{}, subs...)
	if err != nil {
		return fmt.Errorf("%s: subscribe %d filters: %w", c.id, len(filters), err)
	}
	for i, code := range ack.ReasonCodes {
		if code.IsError() {
			return fmt.Errorf("%s: subscription %q refused: %v", c.id, filters[i], code)
		}
	}
	return nil
}

// unsubscribe removes filters in one UNSUBSCRIBE and checks that each one
// existed.
func (c *churnConn) unsubscribe(ctx context.Context, filters []string) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := c.c.Unsubscribe(rctx, filters...)
	if err != nil {
		return fmt.Errorf("%s: unsubscribe %d filters: %w", c.id, len(filters), err)
	}
	for i, code := range ack.ReasonCodes {
		if code != mqtt.Success {
			return fmt.Errorf("%s: unsubscribe %q: %v", c.id, filters[i], code)
		}
	}
	return nil
}

// count returns how many messages arrived on topic.
func (c *churnConn) count(topic string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[topic]
}

// total returns how many messages arrived.
func (c *churnConn) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// probesIn returns how many of the messages that arrived were probes of
// filters.
func (c *churnConn) probesIn(filters []churnFilter) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, f := range filters {
		n += c.got[f.probe]
	}
	return n
}

// runConns runs fn for every connection at once and fails the test with the
// first error.
func runConns(t *testing.T, conns []*churnConn, fn func(k int, c *churnConn) error) {
	t.Helper()
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for k, c := range conns {
		wg.Go(func() { errs[k] = fn(k, c) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
