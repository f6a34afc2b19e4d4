package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// retainedTopic is the topic of retained message i of a million: a district,
// a building and one of a hundred points in it, so that a filter naming a
// building matches a hundred of them.
func retainedTopic(i int) string {
	return fmt.Sprintf("city/d%d/b%d/p%d", i/10000, i/100%100, i%100)
}

// BenchmarkRetainedMatch1M matches a wildcard filter against a million
// retained messages of which 100 match: the cost follows the matches, not
// the store.
func BenchmarkRetainedMatch1M(b *testing.B) {
	var r retainedStore
	r.init()
	payload := []byte(`{"v":21.5}`)
	for i := range 1_000_000 {
		r.set(&Message{Topic: retainedTopic(i), Payload: payload})
	}
	for _, filter := range []string{"city/d42/b7/+", "city/d42/b7/#", "city/+/b7/p3"} {
		b.Run(filter, func(b *testing.B) {
			n := 0
			for b.Loop() {
				n = 0
				r.match(filter, func(*Message) { n++ })
			}
			b.ReportMetric(float64(n), "matches")
		})
	}
}

// BenchmarkRetainedSubscribe1M measures, over a real socket, the time from
// SUBSCRIBE to the last of the 100 matching retained messages, on a broker
// that restored a million retained messages from its store.
func BenchmarkRetainedSubscribe1M(b *testing.B) {
	st, err := store.Open(store.NewMemoryEngine())
	if err != nil {
		b.Fatal(err)
	}
	var bt store.Batch
	for i := range 1_000_000 {
		bt.PutRetained(&store.Message{Topic: retainedTopic(i), Payload: []byte(`{"v":21.5}`), QoS: 1})
	}
	if err := st.Apply(&bt, true); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	br := New(Options{Store: st, SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	b.Logf("restored 1,000,000 retained messages in %v", time.Since(start))
	defer br.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go br.Serve(context.Background(), ln)
	c := dialRaw(b, ln.Addr().String(), "sub", mqtt.V5)
	defer c.nc.Close()
	k := 0
	for b.Loop() {
		filter := fmt.Sprintf("city/d%d/b%d/+", k%100, k/100%100)
		k++
		c.send(b, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: 0}}})
		c.flush(b)
		got := 0
		for got < 100 {
			pkt, err := c.r.ReadPacket()
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := pkt.(*mqtt.Publish); ok {
				got++
			}
		}
		c.send(b, &mqtt.Unsubscribe{PacketID: 2, Filters: []string{filter}})
		c.flush(b)
	}
}
