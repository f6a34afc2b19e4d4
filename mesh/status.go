package mesh

import (
	"encoding/json"
	"net/http"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citymesh/citymesh/broker"
)

// Status is the truth about a node's links: GET /api/mesh serves it and
// `citymesh mesh status` prints it.
type Status struct {
	Node string `json:"node"`
	Role string `json:"role"`
	// Nodes are this node and the nodes its links lead to, as their hellos
	// named them.
	Nodes []NodeStatus `json:"nodes"`
	Links []LinkStatus `json:"links"`
}

// NodeStatus is a node of the mesh as this node sees it.
type NodeStatus struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Link is the link of this node that leads to it ("" for this node),
	// and Up whether that link is up.
	Link string `json:"link,omitempty"`
	Up   bool   `json:"up"`
}

// LinkStatus is one link's state.
type LinkStatus struct {
	broker.LinkStats
	// Remote is the node at the other end, as its hello named it (for an
	// edge's upstream link, the core it reached).
	Remote string `json:"remote,omitempty"`
	// URL is the address this node dials, for links it dials.
	URL string `json:"url,omitempty"`
	// LastError says why the link last failed or was refused.
	LastError string `json:"last_error,omitempty"`
	// Advertised is how many filters this node asked the peer for.
	Advertised int `json:"advertised"`
}

// Status returns the node's links and their state.
func (n *Node) Status() Status {
	n.mu.Lock()
	st := Status{Node: n.cfg.Node, Role: n.cfg.Role}
	states := make([]*linkState, 0, len(n.links))
	for _, ls := range n.links {
		states = append(states, ls)
	}
	var extra []LinkStatus
	st.Nodes = []NodeStatus{{Name: n.cfg.Node, Role: n.cfg.Role, Up: true}}
	for _, ls := range states {
		extra = append(extra, LinkStatus{Remote: ls.remote, URL: ls.url, LastError: ls.lastErr, Advertised: len(ls.advertised)})
		if ls.remote != "" && ls.l.Kind != broker.KindBridge {
			st.Nodes = append(st.Nodes, NodeStatus{Name: ls.remote, Role: ls.remoteRole, Link: ls.l.Peer, Up: ls.l.Up()})
		}
	}
	n.mu.Unlock()
	for i, ls := range states {
		extra[i].LinkStats = ls.l.Stats()
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Peer < extra[j].Peer })
	sort.Slice(st.Nodes[1:], func(i, j int) bool { return st.Nodes[1+i].Name < st.Nodes[1+j].Name })
	st.Links = extra
	return st
}

// ServeHTTP serves Status as JSON (GET /api/mesh).
func (n *Node) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(n.Status())
}

// Collector returns a Prometheus collector of the node's per-link metrics.
func (n *Node) Collector() prometheus.Collector { return collector{n} }

type collector struct{ n *Node }

var (
	descUp        = prometheus.NewDesc("citymesh_mesh_link_up", "Whether the mesh link is connected.", []string{"peer", "role"}, nil)
	descQueued    = prometheus.NewDesc("citymesh_mesh_link_queued_messages", "Messages waiting for the peer of the link.", []string{"peer"}, nil)
	descInflight  = prometheus.NewDesc("citymesh_mesh_link_inflight_messages", "Messages sent on the link and not yet acknowledged.", []string{"peer"}, nil)
	descLag       = prometheus.NewDesc("citymesh_mesh_link_lag_seconds", "Age of the oldest message the peer has not acknowledged (queued or in flight), also while the link is down.", []string{"peer"}, nil)
	descForwarded = prometheus.NewDesc("citymesh_mesh_link_forwarded_total", "Messages sent to the peer of the link.", []string{"peer"}, nil)
	descReceived  = prometheus.NewDesc("citymesh_mesh_link_received_total", "Messages taken in from the peer of the link.", []string{"peer"}, nil)
	descDropped   = prometheus.NewDesc("citymesh_mesh_link_dropped_total", "Messages a link refused, by reason.", []string{"peer", "reason"}, nil)
	descInterest  = prometheus.NewDesc("citymesh_mesh_link_interest_filters", "Filters the peer asked this node for.", []string{"peer"}, nil)
)

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descQueued, descInflight, descLag, descForwarded, descReceived, descDropped, descInterest} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range c.n.Status().Links {
		up := 0.0
		if l.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, l.Peer, l.Role)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(l.Queued), l.Peer)
		ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(l.Inflight), l.Peer)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, l.Lag.Seconds(), l.Peer)
		ch <- prometheus.MustNewConstMetric(descForwarded, prometheus.CounterValue, float64(l.Forwarded), l.Peer)
		ch <- prometheus.MustNewConstMetric(descReceived, prometheus.CounterValue, float64(l.Received), l.Peer)
		ch <- prometheus.MustNewConstMetric(descInterest, prometheus.GaugeValue, float64(l.Interest), l.Peer)
		for reason, v := range l.Dropped {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(v), l.Peer, reason)
		}
	}
}
