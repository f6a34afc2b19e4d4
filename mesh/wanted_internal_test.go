package mesh

import (
	"log/slog"
	"slices"
	"testing"

	"github.com/citymesh/citymesh/broker"
)

// What a node advertises to each peer follows the broker's forwarding rule:
// the peer is told a filter of another link exactly when a message from the
// peer could be forwarded on to that link (broker.Forwards), and always the
// local clients' filters; a bridge is told nothing. Interest and forwarding
// share one rule, so they cannot disagree.
func TestWantedFollowsForwards(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	defer b.Close()
	n := &Node{local: map[string]struct{}{"local/#": {}}, links: map[string]*linkState{}}
	kinds := []broker.Kind{broker.KindCore, broker.KindEdge, broker.KindUpstream, broker.KindBridge}
	for _, k := range kinds {
		l, err := b.Link("peer-"+k.String(), k)
		if err != nil {
			t.Fatal(err)
		}
		l.SetInterest([]broker.Interest{{Filter: "wants/" + k.String() + "/#", QoS: 1}})
		n.links[l.Peer] = &linkState{l: l}
	}
	for _, from := range kinds {
		ls := n.links["peer-"+from.String()]
		got := keys(n.wanted(ls))
		var want []string
		if from != broker.KindBridge {
			want = append(want, "local/#")
			for _, to := range kinds {
				if to != from && broker.Forwards(from, to) {
					want = append(want, "wants/"+to.String()+"/#")
				}
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("advertised to a %s peer: %v, want %v", from, got, want)
		}
	}
}
