package live_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/vineyard/live"
)

// cuttable is a TCP proxy whose connections the test can cut: while cut it
// closes the connections it has and every new one at once, as a broken
// link does.
type cuttable struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	isCut  bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newCuttable(t *testing.T, target string) *cuttable {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cuttable{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() { ln.Close(); p.cut(); p.wg.Wait() })
	return p
}

func (p *cuttable) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.isCut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		p.wg.Go(func() { pipe(up, c) })
		p.wg.Go(func() { pipe(c, up) })
	}
}

func (p *cuttable) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.isCut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *cuttable) heal() {
	p.mu.Lock()
	p.isCut = false
	p.mu.Unlock()
}

func nodeConfig(t *testing.T) node.Config {
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP = "127.0.0.1:0", "off", "off"
	cfg.Data = t.TempDir()
	cfg.SysIntervalSeconds = -1
	return cfg
}

// TestEdgeNode: the service runs at the vineyard's edge node over the edge
// broker's local bus; an independent MQTT subscriber at the core sees its
// results through the mesh; while the link is down the service keeps
// computing, and what it published meanwhile reaches the core when the
// link is back.
func TestEdgeNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	coreCfg := nodeConfig(t)
	coreCfg.Mesh = mesh.Config{Node: "core", Role: "core", Accept: mesh.AcceptConfig{Edges: []string{"vineyard-wartberg"}}}
	core, err := node.New(coreCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	if err := core.Start(ctx); err != nil {
		t.Fatal(err)
	}
	link := newCuttable(t, core.Addr(node.ListenerMQTT).String())

	edgeCfg := nodeConfig(t)
	edgeCfg.Mesh = mesh.Config{Node: "vineyard-wartberg", Role: "edge", Upstream: []mesh.PeerConfig{{Name: "core", URL: "mqtt://" + link.ln.Addr().String()}}}
	edge, err := node.New(edgeCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer edge.Close()
	if err := edge.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// The dashboard at the core.
	coreURL := "mqtt://" + core.Addr(node.ListenerMQTT).String()
	c := live.Collect(t, coreURL)

	m := live.LoadCampus(t)
	s, err := live.New("vineyard", live.TestConfig(m, "wartberg-01"))
	if err != nil {
		t.Fatal(err)
	}
	live.RunService(t, edge.Broker(), s, service.NewMemoryStore())

	w := live.SiteWeather(t)
	from := live.DownyStart.Add(-2 * 24 * time.Hour)
	msgs := live.Feed(t, m, w, []string{"wartberg-01"}, from, from.Add(4*24*time.Hour))
	half := len(msgs) / 2
	edgeURL := "mqtt://" + edge.Addr(node.ListenerMQTT).String()
	riskTopic := "vineyard/wartberg/plot/wartberg-01/risk"
	riskTime := func() time.Time {
		var r live.Risk
		json.Unmarshal([]byte(c.Snapshot()[riskTopic]), &r)
		return r.Time
	}
	serviceTime := func() time.Time {
		r, _ := s.CurrentRisk("wartberg-01")
		return r.Time
	}
	// The core's interest reaches the edge a moment after the link is up:
	// feed the first half until its risk arrives at the core.
	live.PublishAll(t, edgeURL, msgs[:half])
	live.WaitFor(t, 30*time.Second, "the first half's risk at the core", func() bool {
		st := serviceTime()
		return !st.IsZero() && riskTime().Equal(st)
	})
	firstAtCore := riskTime()

	link.cut()
	live.PublishAll(t, edgeURL, msgs[half:])
	lastHour := from.Add(4*24*time.Hour - time.Hour)
	live.WaitFor(t, 30*time.Second, "the service to compute the second half while the link is down", func() bool {
		return serviceTime().Equal(lastHour)
	})
	if got := riskTime(); !got.Equal(firstAtCore) {
		t.Fatalf("the core saw risk of %s while the link was down", got)
	}
	c.Quiet(t, s)
	link.heal()
	live.WaitFor(t, 60*time.Second, "the second half's risk at the core after the link is back", func() bool { return riskTime().Equal(lastHour) })
	// The core holds what the edge computed, alarms included.
	want, _ := s.CurrentRisk("wartberg-01")
	got := c.Snapshot()
	if got[riskTopic] != string(live.Marshal(want)) {
		t.Errorf("risk at the core differs from the edge's")
	}
	if got["alarm/wartberg/plot/wartberg-01/downy-mildew-risk"] == "" {
		t.Errorf("no downy-mildew alarm at the core; have %d topics", len(got))
	}
}
