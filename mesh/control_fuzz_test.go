package mesh

import (
	"log/slog"
	"testing"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/topic"
)

// FuzzControl feeds arbitrary control messages from a peer to a node: they
// must never crash it, and the link's interest must hold valid filters only.
// The seed corpus is in testdata/fuzz/FuzzControl.
func FuzzControl(f *testing.F) {
	f.Add(true, []byte(`{"node":"edge-1","role":"edge","version":1}`))
	f.Add(false, []byte(`{"epoch":1,"full":true,"filters":["a/#","b/+/c","$share/g/x"]}`))
	f.Add(false, []byte(`{"epoch":1,"seq":2,"add":["x/#"],"remove":["a/#","nope"]}`))
	f.Add(false, []byte(`{"epoch":1,"full":true,"filters":["a/#/b","",null,"\u0000"]}`))
	f.Add(true, []byte(`{"node":"core","role":"edge","version":1}`))
	f.Add(false, []byte(`[`))
	quiet := slog.New(slog.DiscardHandler)
	n, err := New(Config{Node: "core", Role: "core", Accept: AcceptConfig{Edges: []string{"*"}}}, quiet)
	if err != nil {
		f.Fatal(err)
	}
	b := broker.New(broker.Options{Store: store.NewMemory(), NodeName: "core", Mesh: n.Handler(), SysInterval: -1, Logger: quiet})
	f.Cleanup(func() { b.Close() })
	n.b = b
	l, err := b.Link("edge-1", broker.KindEdge)
	if err != nil {
		f.Fatal(err)
	}
	n.mu.Lock()
	n.linkLocked(l)
	n.mu.Unlock()
	h := n.Handler()
	f.Fuzz(func(t *testing.T, hello bool, payload []byte) {
		tp := topicInterest
		if hello {
			tp = topicHello
		}
		h.Control(l, tp, payload)
		for _, in := range l.Interest() {
			if err := topic.ValidFilter(in.Filter); err != nil {
				t.Fatalf("invalid filter %q in the link's interest: %v", in.Filter, err)
			}
		}
	})
}
