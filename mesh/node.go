package mesh

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/topic"
)

// The control messages between the two ends of a link (topics under
// broker.ControlPrefix, JSON payloads).
const (
	topicHello    = broker.ControlPrefix + "hello"
	topicInterest = broker.ControlPrefix + "interest"
)

// hello is what each end says of itself when a link comes up.
type hello struct {
	Node    string `json:"node"`
	Role    string `json:"role"`
	Version int    `json:"version"`
}

// interestMsg carries interest: the whole set (Full) when a link comes up,
// changes afterwards. Seq numbers the messages of one Epoch (one connection).
type interestMsg struct {
	Epoch   uint64   `json:"epoch"`
	Seq     uint64   `json:"seq"`
	Full    bool     `json:"full,omitempty"`
	Filters []string `json:"filters,omitempty"`
	Add     []string `json:"add,omitempty"`
	Remove  []string `json:"remove,omitempty"`
}

const protocolVersion = 1

// upstreamLink names an edge's link to its core, whichever core of the
// upstream list answers: its queue carries on across a failover.
const upstreamLink = "upstream"

// Node is a node of the event mesh: it keeps the links of a broker,
// advertises interest over them and dials the peers it is configured to.
// Create it with New and start it with Start.
type Node struct {
	cfg  Config
	b    *broker.Broker
	log  *slog.Logger
	core bool

	mu     sync.Mutex
	local  map[string]struct{}   // this node's clients' filters
	links  map[string]*linkState // by broker link peer name
	dirty  bool
	kick   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	backoff backoff // the reconnect back-off each dialer starts from
}

// linkState is what the node keeps for one link.
type linkState struct {
	l          *broker.Link
	remote     string              // the node at the other end, from its hello
	remoteRole string              // and its role
	url        string              // the address dialed, for dialed links
	lastErr    string              // why the last attempt failed or the link fell
	refused    string              // why this node closed the link's connection (its hello), until the dialer reports it
	advertised map[string]struct{} // what the peer was last told
	epoch, seq uint64
	synced     bool // the full set was sent on this connection
}

// New returns a mesh node for broker b. b must have been created with the
// node as its MeshHandler (see Handler) and cfg.Node as its NodeName.
func New(cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Node{cfg: cfg, log: log.With("mesh", cfg.Node), core: cfg.Role == "core",
		local: make(map[string]struct{}), links: make(map[string]*linkState), kick: make(chan struct{}, 1)}, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Node }

// Start attaches the node to broker b (which must have been created with
// Options.Mesh = n and Options.NodeName = n.Name()), starts its dialers and
// its interest batcher, and runs until ctx ends or Stop is called.
func (n *Node) Start(ctx context.Context, b *broker.Broker) error {
	n.mu.Lock()
	n.b = b
	ctx, n.cancel = context.WithCancel(ctx)
	for _, l := range b.Links() { // links restored from the store keep their interest
		n.linkLocked(l)
		if l.Kind == broker.KindEdge { // and may have messages routed to them at once
			l.SetGrants(n.acceptGrants())
		}
	}
	n.mu.Unlock()
	for _, f := range b.WatchInterest(n.localChanged) {
		n.mu.Lock()
		n.local[f] = struct{}{}
		n.mu.Unlock()
	}
	var dials []dialPlan
	if n.core {
		for i := range n.cfg.Peers {
			p := &n.cfg.Peers[i]
			l, err := b.Link(p.Name, broker.KindCore)
			if err != nil {
				return err
			}
			l.SetGrants(broker.Grants{Export: p.Export, Import: p.Import})
			n.mu.Lock()
			n.linkLocked(l)
			n.mu.Unlock()
			if n.cfg.Node < p.Name { // the node whose name sorts first dials
				dials = append(dials, dialPlan{link: l, peers: []PeerConfig{*p}})
			}
		}
	} else if len(n.cfg.Upstream) > 0 {
		l, err := b.Link(upstreamLink, broker.KindUpstream)
		if err != nil {
			return err
		}
		// Until a core answers, the first one's grants apply; each dial
		// sets those of the core it reaches.
		l.SetGrants(broker.Grants{Export: n.cfg.Upstream[0].Export, Import: n.cfg.Upstream[0].Import})
		n.mu.Lock()
		n.linkLocked(l)
		n.mu.Unlock()
		dials = append(dials, dialPlan{link: l, peers: n.cfg.Upstream})
	}
	for i := range n.cfg.Bridges {
		br, err := newBridge(n, &n.cfg.Bridges[i])
		if err != nil {
			return err
		}
		n.wg.Go(func() { br.run(ctx) })
	}
	for _, d := range dials {
		n.wg.Go(func() { n.dialLoop(ctx, d) })
	}
	n.wg.Go(func() { n.batchLoop(ctx) })
	n.markDirty()
	return nil
}

// Stop stops the dialers and the batcher and waits for them.
func (n *Node) Stop() {
	n.mu.Lock()
	cancel := n.cancel
	n.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	n.wg.Wait()
}

// acceptGrants are the grants of the links of accepted edges.
func (n *Node) acceptGrants() broker.Grants {
	return broker.Grants{Export: n.cfg.Accept.Export, Import: n.cfg.Accept.Import}
}

// linkLocked returns the state of link l, adding it. Called with n.mu held.
func (n *Node) linkLocked(l *broker.Link) *linkState {
	ls := n.links[l.Peer]
	if ls == nil || ls.l != l {
		ls = &linkState{l: l, advertised: make(map[string]struct{})}
		n.links[l.Peer] = ls
	}
	return ls
}

// localChanged is the broker's interest watcher.
func (n *Node) localChanged(filter string, present bool) {
	if !advertisable(filter) {
		return
	}
	n.mu.Lock()
	if present {
		n.local[filter] = struct{}{}
	} else {
		delete(n.local, filter)
	}
	n.mu.Unlock()
	n.markDirty()
}

// advertisable reports whether a local filter concerns the mesh: $SYS/ and
// the mesh's own topics stay on their node.
func advertisable(f string) bool {
	inner := f
	if _, in, ok := topic.ParseShared(f); ok {
		inner = in
	}
	return !strings.HasPrefix(inner, "$SYS") && !strings.HasPrefix(inner, broker.ControlPrefix)
}

func (n *Node) markDirty() {
	n.mu.Lock()
	n.dirty = true
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// batchLoop sends interest changes to the peers, collected over
// InterestBatch, so that a burst of subscriptions makes one message.
func (n *Node) batchLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.cfg.InterestBatch):
		}
		n.advertise()
	}
}

// wanted returns what this node wants from the peer of link ls: the filters
// for which a message from that peer would be delivered here or forwarded
// on, under the broker's forwarding rule (broker.Forwards): the local
// clients' filters, and the interest of every other link the rule lets such
// a message go out on. Bridges are sent nothing: their interest is static.
// Called with n.mu held.
func (n *Node) wanted(ls *linkState) map[string]struct{} {
	want := make(map[string]struct{}, len(n.local))
	from := ls.l.Kind
	if from == broker.KindBridge {
		return want
	}
	for f := range n.local {
		want[f] = struct{}{} // broker.Forwards(from, broker.KindClient)
	}
	for _, other := range n.links {
		if other == ls || !broker.Forwards(from, other.l.Kind) {
			continue
		}
		for _, in := range other.l.Interest() {
			want[in.Filter] = struct{}{}
		}
	}
	return minimal(want)
}

// minimal removes the filters that a filter ending in '#' of the same set
// covers: the peer needs only the wider one.
func minimal(set map[string]struct{}) map[string]struct{} {
	var wide []string
	for f := range set {
		if strings.HasSuffix(f, "#") && !strings.HasPrefix(f, "$share/") {
			wide = append(wide, f)
		}
	}
	if len(wide) == 0 {
		return set
	}
	for f := range set {
		if strings.HasPrefix(f, "$share/") {
			continue
		}
		for _, w := range wide {
			if w != f && topic.Covers(w, f) {
				delete(set, f)
				break
			}
		}
	}
	return set
}

// advertise sends each up link's peer the changes of what this node wants
// from it (or the whole set on a new connection).
func (n *Node) advertise() {
	type send struct {
		l   *broker.Link
		msg interestMsg
	}
	var out []send
	n.mu.Lock()
	if !n.dirty {
		n.mu.Unlock()
		return
	}
	n.dirty = false
	for _, ls := range n.links {
		if !ls.l.Up() || ls.l.Kind == broker.KindBridge {
			continue
		}
		want := n.wanted(ls)
		if !ls.synced {
			ls.epoch, ls.seq, ls.synced = newEpoch(), 0, true
			m := interestMsg{Epoch: ls.epoch, Full: true, Filters: keys(want)}
			ls.advertised = want
			out = append(out, send{ls.l, m})
			continue
		}
		var add, remove []string
		for f := range want {
			if _, ok := ls.advertised[f]; !ok {
				add = append(add, f)
			}
		}
		for f := range ls.advertised {
			if _, ok := want[f]; !ok {
				remove = append(remove, f)
			}
		}
		if len(add)+len(remove) == 0 {
			continue
		}
		ls.seq++
		sort.Strings(add)
		sort.Strings(remove)
		ls.advertised = want
		out = append(out, send{ls.l, interestMsg{Epoch: ls.epoch, Seq: ls.seq, Add: add, Remove: remove}})
	}
	n.mu.Unlock()
	for _, s := range out {
		payload, _ := json.Marshal(s.msg)
		if err := s.l.SendControl(topicInterest, payload); err != nil {
			// The link went down: it resyncs when it comes back.
			n.mu.Lock()
			if ls := n.links[s.l.Peer]; ls != nil {
				ls.synced = false
			}
			n.mu.Unlock()
		}
	}
}

func newEpoch() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

func keys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Handler returns the node as the broker's MeshHandler.
func (n *Node) Handler() broker.MeshHandler { return handler{n} }

type handler struct{ n *Node }

// AcceptLink implements broker.MeshHandler.
func (h handler) AcceptLink(id *auth.Identity, peer string, props []mqtt.UserProperty) (broker.Kind, error) {
	n := h.n
	if !n.core {
		return 0, fmt.Errorf("%s is an edge node: it takes no links", n.cfg.Node)
	}
	if peer == n.cfg.Node {
		return 0, fmt.Errorf("a link from %s to itself: check the peer addresses", peer)
	}
	if id != nil && id.Method != "anonymous" && !id.Admin && !slices.Contains(id.Groups, n.cfg.Accept.Group) {
		return 0, fmt.Errorf("user %q is not in the group %q that may link", id.User, n.cfg.Accept.Group)
	}
	role := ""
	for _, u := range props {
		if u.Key == "citymesh-role" {
			role = u.Value
		}
	}
	switch role {
	case "core":
		for _, p := range n.cfg.Peers {
			if p.Name == peer {
				return broker.KindCore, nil
			}
		}
		return 0, fmt.Errorf("core %s is not among this node's peers", peer)
	case "edge":
		if slices.Contains(n.cfg.Accept.Edges, "*") || slices.Contains(n.cfg.Accept.Edges, peer) {
			return broker.KindEdge, nil
		}
		return 0, fmt.Errorf("edge %s may not attach here (accept.edges)", peer)
	}
	return 0, fmt.Errorf("link from %s without a role (citymesh-role core or edge)", peer)
}

// LinkUp implements broker.MeshHandler: it says hello and sends the full
// interest.
func (h handler) LinkUp(l *broker.Link) {
	n := h.n
	n.mu.Lock()
	ls := n.linkLocked(l)
	ls.synced = false
	if l.Kind == broker.KindEdge {
		l.SetGrants(n.acceptGrants())
	}
	n.dirty = true
	n.mu.Unlock()
	if l.Kind != broker.KindBridge {
		payload, _ := json.Marshal(hello{Node: n.cfg.Node, Role: n.cfg.Role, Version: protocolVersion})
		l.SendControl(topicHello, payload)
	}
	n.log.Info("mesh: link up", "peer", l.Peer, "role", l.Kind.String())
	n.markDirty()
}

// LinkKeepAlive implements broker.MeshHandler: the links this node accepts
// keep alive at most as long as the links it dials.
func (h handler) LinkKeepAlive() time.Duration { return h.n.cfg.LinkKeepAlive }

// LinkDown implements broker.MeshHandler.
func (h handler) LinkDown(l *broker.Link) {
	n := h.n
	n.mu.Lock()
	if ls := n.links[l.Peer]; ls != nil {
		ls.synced = false
	}
	n.mu.Unlock()
	n.log.Info("mesh: link down", "peer", l.Peer)
}

// Control implements broker.MeshHandler.
func (h handler) Control(l *broker.Link, t string, payload []byte) {
	n := h.n
	switch t {
	case topicHello:
		var m hello
		if err := json.Unmarshal(payload, &m); err != nil {
			n.linkError(l, fmt.Errorf("bad hello: %w", err), true)
			return
		}
		if err := n.checkHello(l, &m); err != nil {
			n.linkError(l, err, true)
			return
		}
		n.mu.Lock()
		if ls := n.links[l.Peer]; ls != nil {
			ls.remote, ls.remoteRole, ls.lastErr = m.Node, m.Role, ""
		}
		n.mu.Unlock()
	case broker.ControlAlive:
		// The peer is receiving a long message from this node: a sign of
		// life, which the broker has counted already.
	case topicInterest:
		var m interestMsg
		if err := json.Unmarshal(payload, &m); err != nil {
			n.linkError(l, fmt.Errorf("bad interest: %w", err), false)
			return
		}
		if m.Full {
			l.SetInterest(interests(m.Filters))
		} else {
			l.ChangeInterest(interests(m.Add), m.Remove)
		}
		n.markDirty() // what this link's peer wants changes what others are told
	}
}

// checkHello is the loop probe: it refuses a link to this node itself, a
// second link to a node already linked, and a peer whose role does not fit
// the link.
func (n *Node) checkHello(l *broker.Link, m *hello) error {
	if m.Version != protocolVersion {
		return fmt.Errorf("peer %s speaks mesh protocol %d, this node %d", m.Node, m.Version, protocolVersion)
	}
	if m.Node == n.cfg.Node {
		return fmt.Errorf("the link leads back to this node (%s): a miswired address", m.Node)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, other := range n.links {
		if other.l != l && other.remote == m.Node && other.l.Up() {
			return fmt.Errorf("%s is linked already, through link %s: refusing a second link, which could deliver twice", m.Node, other.l.Peer)
		}
	}
	want := "core"
	if l.Kind == broker.KindEdge {
		want = "edge"
	}
	if m.Role != want {
		return fmt.Errorf("%s says it is a %s node, but this link is for a %s", m.Node, m.Role, want)
	}
	if l.Kind != broker.KindUpstream && l.Peer != m.Node {
		return fmt.Errorf("the link for %s reached %s", l.Peer, m.Node)
	}
	return nil
}

// linkError records a link's problem, logs it and, if fatal, closes the
// link.
func (n *Node) linkError(l *broker.Link, err error, fatal bool) {
	n.mu.Lock()
	if ls := n.links[l.Peer]; ls != nil {
		ls.lastErr = err.Error()
		if fatal {
			ls.refused = ls.lastErr
		}
	}
	n.mu.Unlock()
	n.log.Error("mesh: link "+l.Peer, "err", err)
	if fatal {
		l.Disconnect(mqtt.NotAuthorized)
	}
}

func interests(filters []string) []broker.Interest {
	out := make([]broker.Interest, 0, len(filters))
	for _, f := range filters {
		out = append(out, broker.Interest{Filter: f, QoS: 2})
	}
	return out
}
