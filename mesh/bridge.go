package mesh

import (
	"context"
	"strings"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
)

// bridge links the node to a foreign MQTT broker. What goes out waits in
// the link's durable session on this node while the foreign broker is away;
// what comes in waits in this node's persistent session at the foreign
// broker (Clean Start 0, a day's expiry), so both directions survive an
// outage. The bridge subscribes with No Local, so that what it publishes
// does not come back to it.
type bridge struct {
	n   *Node
	cfg *BridgeConfig
	l   *broker.Link
}

func bridgePeer(name string) string { return "bridge." + name }

func newBridge(n *Node, cfg *BridgeConfig) (*bridge, error) {
	l, err := n.b.Link(bridgePeer(cfg.Name), broker.KindBridge)
	if err != nil {
		return nil, err
	}
	br := &bridge{n: n, cfg: cfg, l: l}
	var out []broker.Interest
	for _, t := range cfg.Topics {
		if t.Direction == "out" || t.Direction == "both" {
			out = append(out, broker.Interest{Filter: t.Local + t.Filter, QoS: t.QoS})
		}
	}
	l.OutTopic = br.outTopic
	l.InTopic = br.inTopic
	l.SetInterest(out)
	n.mu.Lock()
	n.linkLocked(l)
	n.mu.Unlock()
	return br, nil
}

// outTopic maps a local topic to the foreign broker's: the first out
// mapping whose local prefix it has.
func (br *bridge) outTopic(local string) string {
	for _, t := range br.cfg.Topics {
		if (t.Direction == "out" || t.Direction == "both") && strings.HasPrefix(local, t.Local) {
			return t.Remote + local[len(t.Local):]
		}
	}
	return local
}

// inTopic maps a foreign broker's topic to the local one.
func (br *bridge) inTopic(remote string) (string, bool) {
	for _, t := range br.cfg.Topics {
		if (t.Direction == "in" || t.Direction == "both") && strings.HasPrefix(remote, t.Remote) {
			return t.Local + remote[len(t.Remote):], true
		}
	}
	return "", false
}

// run keeps the bridge connected until ctx ends.
func (br *bridge) run(ctx context.Context) {
	retry := br.n.backoff
	for ctx.Err() == nil {
		up, err := br.once(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			br.n.mu.Lock()
			if ls := br.n.links[br.l.Peer]; ls != nil {
				ls.lastErr = err.Error()
			}
			br.n.mu.Unlock()
			br.n.log.Warn("mesh: bridge failed", "bridge", br.cfg.Name, "url", br.cfg.URL, "err", err)
		}
		if up >= stableAfter {
			retry.reset()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry.wait()):
		}
	}
}

// once connects to the foreign broker and serves the bridge until the
// connection ends; it returns how long the bridge was up and why it ended.
func (br *bridge) once(ctx context.Context) (time.Duration, error) {
	nc, err := dialPeer(ctx, br.cfg.URL, br.cfg.CAFile, br.cfg.Cert, br.cfg.Key)
	if err != nil {
		return 0, err
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	id := br.cfg.ClientID
	if id == "" {
		id = "citymesh-bridge-" + br.n.cfg.Node + "-" + br.cfg.Name
	}
	cp := &mqtt.Connect{Version: mqtt.V5, ClientID: id, KeepAlive: 30,
		Props: mqtt.Properties{SessionExpiry: 86400, ReceiveMaximum: 1024}}
	if br.cfg.Username != "" {
		cp.Username, cp.HasUsername = br.cfg.Username, true
	}
	if br.cfg.Password != "" {
		cp.Password, cp.HasPassword = []byte(br.cfg.Password), true
	}
	var subs []mqtt.Subscription
	for _, t := range br.cfg.Topics {
		if t.Direction == "in" || t.Direction == "both" {
			subs = append(subs, mqtt.Subscription{Filter: t.Remote + t.Filter, QoS: t.QoS, NoLocal: true, RetainAsPublished: true})
		}
	}
	br.n.mu.Lock()
	if ls := br.n.links[br.l.Peer]; ls != nil {
		ls.url, ls.remote = br.cfg.URL, br.cfg.Name
	}
	br.n.mu.Unlock()
	return serveTimed(br.l, nc, cp, subs...)
}
