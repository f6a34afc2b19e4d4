// Package mesh links citymesh nodes into an event mesh: edge nodes (a
// building, a vineyard) attach to core nodes, core nodes form a full mesh,
// and each node tells its peers what its clients want, so that a message
// crosses a link only if someone beyond it listens. Links are MQTT 5
// connections whose queues are durable sessions of the broker (store and
// forward); the broker's forwarding rules (see broker.Kind) make loops
// impossible. Bridges link a node to foreign MQTT brokers with static topic
// mappings. docs/mesh.md explains the design, its guarantees and its limits.
package mesh

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/citymesh/citymesh/topic"
)

// Config is the mesh part of a node's YAML configuration:
//
//	mesh:
//	  node: vineyard-wartberg
//	  role: edge
//	  upstream:                   # the cores to attach to, in failover order
//	    - {name: core-1, url: "mqtts://core-1.city.example:8883", username: wartberg, password: ...}
//	    - {name: core-2, url: "mqtts://core-2.city.example:8883", username: wartberg, password: ...}
//
//	mesh:
//	  node: core-1
//	  role: core
//	  peers:                      # the other cores: a full mesh
//	    - {name: core-2, url: "mqtts://core-2.city.example:8883"}
//	  accept:
//	    edges: ["*"]              # which edge nodes may attach
type Config struct {
	// Node is this node's name, unique in the mesh.
	Node string `yaml:"node"`
	// Role is "core" or "edge".
	Role string `yaml:"role"`
	// Peers are the other core nodes of a core (list each link on both
	// sides: the node whose name sorts first dials it, the other accepts).
	Peers []PeerConfig `yaml:"peers"`
	// Upstream are the core nodes an edge attaches to, in the order it
	// tries them; it is linked to one at a time.
	Upstream []PeerConfig `yaml:"upstream"`
	// Accept says which nodes may link to a core.
	Accept AcceptConfig `yaml:"accept"`
	// Bridges link this node to foreign MQTT brokers.
	Bridges []BridgeConfig `yaml:"bridges"`
	// MaxHops caps the links a message may cross (default 8).
	MaxHops int `yaml:"max_hops"`
	// LinkMaxMessages and LinkMaxBytes bound each link's store-and-forward
	// queue (defaults 10,000,000 messages and 4 GiB); beyond them a link
	// refuses new messages and counts them as queue_full.
	LinkMaxMessages int `yaml:"link_max_messages"`
	LinkMaxBytes    int `yaml:"link_max_bytes"`
	// InterestBatch is how long interest changes are collected before they
	// are sent to the peers (default 20 ms).
	InterestBatch time.Duration `yaml:"interest_batch"`
	// LinkKeepAlive is the MQTT keep alive of this node's links to other
	// citymesh nodes, in whole seconds (default 2 s, at most 65,535 s): a
	// link silent for one and a half times it is declared dead at either
	// end, its queue takes what it would carry, and an edge fails over.
	// The dialing end sends it in its CONNECT and a PINGREQ every half of
	// it; an accepting core lowers a longer one to its own (Server Keep
	// Alive). Written data the peer's TCP leaves unacknowledged as long
	// ends the connection too (TCP_USER_TIMEOUT). Shorter finds a cut
	// sooner; longer tolerates a congested or lossy network, and a large
	// message on a slow one, without false alarms (docs/mesh.md, "Dead
	// links"). Bridges keep the 30 s of a client.
	LinkKeepAlive time.Duration `yaml:"link_keep_alive"`
}

// DefaultLinkKeepAlive is the keep alive of links when the configuration
// sets none: a silent cut is found within 3 s.
const DefaultLinkKeepAlive = 2 * time.Second

// PeerConfig is a node this node dials.
type PeerConfig struct {
	// Name is the peer's node name, checked against what it says of itself.
	Name string `yaml:"name"`
	// URL is mqtt://host:port or mqtts://host:port (default ports 1883 and
	// 8883).
	URL string `yaml:"url"`
	// Username and Password authenticate this node at the peer; the peer
	// must grant it mesh links (its group "mesh").
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CAFile, Cert and Key configure TLS for mqtts: the CA of the peer's
	// certificate, and this node's client certificate and key.
	CAFile string `yaml:"cafile"`
	Cert   string `yaml:"cert"`
	Key    string `yaml:"key"`
	// Export and Import limit what crosses the link: filters of the topics
	// this node sends and takes in; none means everything.
	Export []string `yaml:"export"`
	Import []string `yaml:"import"`
}

// AcceptConfig says which nodes may link to this core.
type AcceptConfig struct {
	// Edges are the names of the edge nodes that may attach; "*" allows
	// every edge.
	Edges []string `yaml:"edges"`
	// Group is the identity group a linking node must belong to when the
	// node authenticates its clients (default "mesh"; administrators may
	// always link).
	Group string `yaml:"group"`
	// Export and Import limit what crosses the links of accepted edges.
	Export []string `yaml:"export"`
	Import []string `yaml:"import"`
}

// BridgeConfig links this node to a foreign MQTT broker (Mosquitto, EMQX,
// The Things Stack) with static topic mappings.
type BridgeConfig struct {
	// Name names the bridge (its link's name).
	Name string `yaml:"name"`
	// URL, credentials and TLS of the foreign broker, as for a peer.
	URL      string `yaml:"url"`
	ClientID string `yaml:"client_id"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	CAFile   string `yaml:"cafile"`
	Cert     string `yaml:"cert"`
	Key      string `yaml:"key"`
	// Topics are the mappings.
	Topics []BridgeTopic `yaml:"topics"`
}

// BridgeTopic is one mapping of a bridge: messages on Filter go out to the
// foreign broker ("out"), come in from it ("in"), or both; a topic's Local
// prefix is replaced by the Remote prefix on the way out and the other way
// on the way in.
type BridgeTopic struct {
	Filter    string `yaml:"filter"`    // as the local side sees it (after Local)
	Direction string `yaml:"direction"` // in, out or both
	QoS       byte   `yaml:"qos"`
	Local     string `yaml:"local"`  // local prefix, e.g. "vineyard/"
	Remote    string `yaml:"remote"` // remote prefix, e.g. "v3/app@ttn/devices/"
}

// Enabled reports whether the mesh is configured.
func (c *Config) Enabled() bool { return c.Node != "" || len(c.Bridges) > 0 }

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Node == "" {
		return errors.New("mesh: node: a name is needed")
	}
	if strings.ContainsAny(c.Node, "/+#\x00 ") {
		return fmt.Errorf("mesh: node %q: no '/', '+', '#' or spaces", c.Node)
	}
	switch c.Role {
	case "core":
		if len(c.Upstream) > 0 {
			return errors.New("mesh: a core has peers, not upstream nodes")
		}
	case "edge":
		if len(c.Peers) > 0 || len(c.Accept.Edges) > 0 {
			return errors.New("mesh: an edge attaches to upstream cores; it has no peers and accepts no links")
		}
	default:
		return fmt.Errorf("mesh: role %q: want core or edge", c.Role)
	}
	for _, p := range append(append([]PeerConfig(nil), c.Peers...), c.Upstream...) {
		if p.Name == "" || p.Name == c.Node {
			return fmt.Errorf("mesh: peer %q: a peer needs a name other than this node's", p.Name)
		}
		if _, err := dialAddress(p.URL); err != nil {
			return fmt.Errorf("mesh: peer %s: %w", p.Name, err)
		}
		if err := validFilters(p.Export, p.Import); err != nil {
			return fmt.Errorf("mesh: peer %s: %w", p.Name, err)
		}
	}
	if err := validFilters(c.Accept.Export, c.Accept.Import); err != nil {
		return fmt.Errorf("mesh: accept: %w", err)
	}
	for _, br := range c.Bridges {
		if br.Name == "" || strings.ContainsAny(br.Name, "/+#\x00 ") {
			return fmt.Errorf("mesh: bridge %q: a bridge needs a name without '/', '+', '#' or spaces", br.Name)
		}
		if _, err := dialAddress(br.URL); err != nil {
			return fmt.Errorf("mesh: bridge %s: %w", br.Name, err)
		}
		if len(br.Topics) == 0 {
			return fmt.Errorf("mesh: bridge %s: no topics", br.Name)
		}
		for _, t := range br.Topics {
			if err := topic.ValidFilter(t.Filter); err != nil {
				return fmt.Errorf("mesh: bridge %s: filter %q: %w", br.Name, t.Filter, err)
			}
			switch t.Direction {
			case "in", "out", "both":
			default:
				return fmt.Errorf("mesh: bridge %s: direction %q: want in, out or both", br.Name, t.Direction)
			}
			if t.QoS > 2 {
				return fmt.Errorf("mesh: bridge %s: qos %d", br.Name, t.QoS)
			}
		}
	}
	if c.LinkMaxMessages < 0 || c.LinkMaxBytes < 0 || c.MaxHops < 0 {
		return errors.New("mesh: link_max_messages, link_max_bytes and max_hops cannot be negative")
	}
	switch ka := c.LinkKeepAlive; {
	case ka == 0:
		c.LinkKeepAlive = DefaultLinkKeepAlive
	case ka < time.Second || ka > 65535*time.Second || ka%time.Second != 0:
		return fmt.Errorf("mesh: link_keep_alive %v: whole seconds from 1s to 65535s (MQTT's keep alive)", ka)
	}
	if c.MaxHops == 0 {
		c.MaxHops = 8
	}
	if c.InterestBatch == 0 {
		c.InterestBatch = 20 * time.Millisecond
	}
	if c.Accept.Group == "" {
		c.Accept.Group = "mesh"
	}
	return nil
}

func validFilters(lists ...[]string) error {
	for _, l := range lists {
		for _, f := range l {
			if err := topic.ValidFilter(f); err != nil {
				return fmt.Errorf("filter %q: %w", f, err)
			}
		}
	}
	return nil
}

// dialAddress returns the scheme and host:port of an mqtt:// or mqtts://
// URL.
func dialAddress(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		if u.Port() == "" {
			u.Host += ":1883"
		}
	case "mqtts", "tls", "ssl":
		if u.Port() == "" {
			u.Host += ":8883"
		}
	default:
		return nil, fmt.Errorf("url %q: want mqtt:// or mqtts://", raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("url %q: no host", raw)
	}
	return u, nil
}
