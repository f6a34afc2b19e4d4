package broker_test

import (
	"testing"

	"github.com/citymesh/citymesh/broker"
)

// The mesh's forwarding rule, for every pair of kinds: what came in from a
// client, an edge or a bridge goes anywhere; what came from a core peer goes
// on only to edges (one core-to-core hop); what came from the upstream core
// stays on this edge; local clients and bridges take anything.
func TestForwards(t *testing.T) {
	kinds := []broker.Kind{broker.KindClient, broker.KindCore, broker.KindEdge, broker.KindUpstream, broker.KindBridge}
	// want[from][to], in the order of kinds.
	want := [][]bool{
		/* from client   */ {true, true, true, true, true},
		/* from core     */ {true, false, true, false, true},
		/* from edge     */ {true, true, true, true, true},
		/* from upstream */ {true, false, false, false, true},
		/* from bridge   */ {true, true, true, true, true},
	}
	for i, from := range kinds {
		for j, to := range kinds {
			if got := broker.Forwards(from, to); got != want[i][j] {
				t.Errorf("Forwards(%s, %s) = %v, want %v", from, to, got, want[i][j])
			}
		}
	}
}

func TestKindNames(t *testing.T) {
	for _, k := range []broker.Kind{broker.KindCore, broker.KindEdge, broker.KindUpstream, broker.KindBridge} {
		got, err := broker.ParseKind(k.String())
		if err != nil || got != k {
			t.Errorf("ParseKind(%q) = %v, %v", k.String(), got, err)
		}
	}
	for _, bad := range []string{"", "client", "Core", "peer"} {
		if _, err := broker.ParseKind(bad); err == nil {
			t.Errorf("ParseKind(%q) accepted", bad)
		}
	}
}
