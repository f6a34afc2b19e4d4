package broker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store/disk"
)

// rawClient is a minimal MQTT client over a real socket for benchmarks: it
// encodes with package mqtt and keeps no state beyond what a benchmark needs.
type rawClient struct {
	nc net.Conn
	r  *mqtt.Reader
	w  *bufio.Writer
	v  byte
}

func dialRaw(tb testing.TB, addr, id string, v byte) *rawClient {
	tb.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	c := &rawClient{nc: nc, r: mqtt.NewReader(nc, 64<<10), w: bufio.NewWriterSize(nc, 64<<10), v: v}
	c.send(tb, &mqtt.Connect{Version: v, CleanStart: true, ClientID: id, KeepAlive: 60})
	c.flush(tb)
	c.r.Version = v
	pkt, err := c.r.ReadPacket()
	if err != nil {
		tb.Fatal(err)
	}
	if ack, ok := pkt.(*mqtt.Connack); !ok || ack.ReasonCode != 0 {
		tb.Fatalf("connect: %v", pkt)
	}
	return c
}

func (c *rawClient) send(tb testing.TB, p mqtt.Packet) {
	buf, err := p.AppendTo(nil, c.v)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.w.Write(buf); err != nil {
		tb.Fatal(err)
	}
}

func (c *rawClient) flush(tb testing.TB) {
	if err := c.w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

func (c *rawClient) subscribe(tb testing.TB, filter string, qos byte) {
	c.send(tb, &mqtt.Subscribe{PacketID: 1, Subscriptions: []mqtt.Subscription{{Filter: filter, QoS: qos}}})
	c.flush(tb)
	for {
		pkt, err := c.r.ReadPacket()
		if err != nil {
			tb.Fatal(err)
		}
		if _, ok := pkt.(*mqtt.Suback); ok {
			return
		}
	}
}

func startBenchBroker(tb testing.TB) string { return startBenchBrokerWith(tb, Options{}) }

// startBenchBrokerWith starts a benchmark broker with opts and large queues.
func startBenchBrokerWith(tb testing.TB, opts Options) string {
	opts.SysInterval, opts.MaxQueuedMessages, opts.MaxQueuedBytes = -1, 1<<20, 1<<30
	b := New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go b.Serve(ctx, ln)
	tb.Cleanup(func() { cancel(); b.Close() })
	return ln.Addr().String()
}

// BenchmarkThroughputPairs measures end-to-end messages per second through
// the broker over loopback TCP: pairs of one publisher and one subscriber on
// their own topic, 64-byte payloads, at QoS 0 and QoS 1. Each op is one
// message delivered.
func BenchmarkThroughputPairs(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		for _, pairs := range []int{1, 10} {
			b.Run(fmt.Sprintf("qos%d/pairs%d", qos, pairs), func(b *testing.B) {
				benchPairs(b, startBenchBroker(b), qos, pairs)
			})
		}
	}
}

// BenchmarkThroughputWildcard measures many publishers feeding few
// subscribers: 20 publishers on city/b{i}/energy/m{j}, 5 subscribers on
// city/+/energy/#, QoS 0, 64-byte payloads, as fast as they go; each
// subscriber gets every message. Each op is one message delivered.
func BenchmarkThroughputWildcard(b *testing.B) {
	const pubs, subs = 20, 5
	addr := startBenchBroker(b)
	per := max(b.N/(pubs*subs), 1)
	var sc, pc []*rawClient
	for i := range subs {
		s := dialRaw(b, addr, fmt.Sprintf("s%d", i), mqtt.V5)
		s.subscribe(b, "city/+/energy/#", 0)
		sc = append(sc, s)
	}
	for i := range pubs {
		pc = append(pc, dialRaw(b, addr, fmt.Sprintf("p%d", i), mqtt.V5))
	}
	payload := make([]byte, 64)
	b.SetBytes(64)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range subs {
		wg.Go(func() { receiveN(b, sc[i], per*pubs) })
	}
	for i := range pubs {
		wg.Go(func() {
			publishN(b, pc[i], fmt.Sprintf("city/b%d/energy/m%d", i, i%10), 0, payload, per)
		})
	}
	wg.Wait()
	b.ReportMetric(float64(per*pubs*subs)/time.Since(start).Seconds(), "msgs/s")
	for _, c := range append(sc, pc...) {
		c.nc.Close()
	}
}

// BenchmarkThroughputACL is BenchmarkThroughputPairs (10 pairs)
// without access control and with 1,000 ACL rules, where the rule that
// allows the benchmark's traffic is the last: every publish and every
// delivery is checked. Compare the msgs/s of the two.
func BenchmarkThroughputACL(b *testing.B) {
	var rules []auth.Rule
	for i := range 999 {
		rules = append(rules, auth.Rule{Allow: i%3 != 0, Actions: auth.Publish | auth.Receive | auth.Subscribe,
			Filter: fmt.Sprintf("city/b%d/+/meter/%%u/#", i), Users: []string{fmt.Sprint("user-", i)}})
	}
	rules = append(rules, auth.Rule{Allow: true, Actions: auth.Publish | auth.Subscribe | auth.Receive, Filter: "bench/#"})
	acl, err := auth.NewACL(rules, false)
	if err != nil {
		b.Fatal(err)
	}
	for _, qos := range []byte{0, 1} {
		for _, tc := range []struct {
			name string
			az   auth.Authorizer
		}{{"none", nil}, {"rules1000", acl}} {
			b.Run(fmt.Sprintf("qos%d/%s", qos, tc.name), func(b *testing.B) {
				benchPairs(b, startBenchBrokerWith(b, Options{Authorizer: tc.az}), qos, 10)
			})
		}
	}
}

// benchPairs runs pairs of publisher and subscriber on their own topics.
func benchPairs(b *testing.B, addr string, qos byte, pairs int) {
	payload := make([]byte, 64)
	per := max(b.N/pairs, 1)
	var subs, pubs []*rawClient
	for i := range pairs {
		s := dialRaw(b, addr, fmt.Sprintf("s%d", i), mqtt.V5)
		s.subscribe(b, fmt.Sprintf("bench/%d", i), qos)
		subs = append(subs, s)
		pubs = append(pubs, dialRaw(b, addr, fmt.Sprintf("p%d", i), mqtt.V5))
	}
	b.SetBytes(64)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Go(func() { receiveN(b, subs[i], per) })
		wg.Go(func() { publishN(b, pubs[i], fmt.Sprintf("bench/%d", i), qos, payload, per) })
	}
	wg.Wait()
	b.ReportMetric(float64(per*pairs)/time.Since(start).Seconds(), "msgs/s")
	for i := range pairs {
		subs[i].nc.Close()
		pubs[i].nc.Close()
	}
}

// publishN publishes n messages, keeping up to 512 QoS 1 messages inflight.
func publishN(tb testing.TB, c *rawClient, topic string, qos byte, payload []byte, n int) {
	const window = 512
	acks := make(chan struct{}, window)
	done := make(chan struct{})
	if qos > 0 {
		go func() {
			defer close(done)
			for range n {
				if _, err := c.r.ReadPacket(); err != nil {
					return
				}
				<-acks
			}
		}()
	}
	p := &mqtt.Publish{Topic: topic, QoS: qos, Payload: payload}
	var buf []byte
	for i := range n {
		if qos > 0 {
			select {
			case acks <- struct{}{}:
			default:
				c.w.Flush()
				acks <- struct{}{}
			}
			p.PacketID = uint16(i%65000) + 1
		}
		buf, _ = p.AppendTo(buf[:0], c.v)
		c.w.Write(buf)
	}
	c.w.Flush()
	if qos > 0 {
		<-done
	}
}

// receiveN reads n PUBLISH packets, acknowledging QoS 1.
func receiveN(tb testing.TB, c *rawClient, n int) {
	c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	var buf []byte
	for got := 0; got < n; {
		pkt, err := c.r.ReadPacket()
		if err != nil {
			tb.Errorf("receive after %d of %d: %v", got, n, err)
			return
		}
		p, ok := pkt.(*mqtt.Publish)
		if !ok {
			continue
		}
		got++
		if p.QoS == 1 {
			a := mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID}
			buf, _ = a.AppendTo(buf[:0], c.v)
			c.w.Write(buf)
			if c.r.Buffered() == 0 {
				c.w.Flush()
			}
		}
	}
	c.w.Flush()
}

// BenchmarkLatency measures end-to-end latency through the broker over
// loopback TCP at a moderate, fixed rate: 10 pairs of one publisher and one
// clean-session subscriber, each publisher sending 1,000 64-byte messages a
// second (10,000 msgs/s in all), at QoS 0 and QoS 1, on a broker without a
// store and on one with a Pebble store and the default SyncBatch (a default
// `citymesh serve`; its clean-session subscribers need no store writes).
// Each op is one message delivered; p50-us, p99-us and max-us are the
// latency percentiles in microseconds, from the publisher's write to the
// subscriber's read. Run it with a fixed count, e.g. -benchtime 20000x.
func BenchmarkLatency(b *testing.B) {
	for _, qos := range []byte{0, 1} {
		for _, st := range []string{"memory", "disk"} {
			b.Run(fmt.Sprintf("qos%d/%s", qos, st), func(b *testing.B) {
				var opts Options
				if st == "disk" {
					s, err := disk.Open(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { s.Close() }) // after the broker's Close
					opts.Store = s
				}
				benchLatency(b, startBenchBrokerWith(b, opts), qos, 10, 1000)
			})
		}
	}
}

// benchLatency runs pairs publishers at rate messages per second each,
// b.N messages in all, and reports the latency percentiles the subscribers
// saw.
func benchLatency(b *testing.B, addr string, qos byte, pairs int, rate float64) {
	per := max(b.N/pairs, 1)
	var subs, pubs []*rawClient
	for i := range pairs {
		s := dialRaw(b, addr, fmt.Sprintf("s%d", i), mqtt.V311)
		s.subscribe(b, fmt.Sprintf("bench/%d", i), qos)
		subs = append(subs, s)
		pubs = append(pubs, dialRaw(b, addr, fmt.Sprintf("p%d", i), mqtt.V311))
	}
	lat := make([][]int64, pairs)
	b.ResetTimer()
	var wg sync.WaitGroup
	for i := range pairs {
		wg.Go(func() { lat[i] = receiveTimed(b, subs[i], per) })
		wg.Go(func() { publishPaced(b, pubs[i], fmt.Sprintf("bench/%d", i), qos, rate, per) })
	}
	wg.Wait()
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		q := func(f float64) float64 { return float64(all[int(f*float64(len(all)-1))]) / 1e3 }
		b.ReportMetric(q(0.50), "p50-us")
		b.ReportMetric(q(0.99), "p99-us")
		b.ReportMetric(q(1), "max-us")
	}
	for i := range pairs {
		subs[i].nc.Close()
		pubs[i].nc.Close()
	}
}

// publishPaced publishes n 64-byte messages at rate messages per second,
// each written at once; the first 8 bytes carry the time it was written.
func publishPaced(tb testing.TB, c *rawClient, topic string, qos byte, rate float64, n int) {
	done := make(chan struct{})
	if qos > 0 {
		go func() {
			defer close(done)
			for range n {
				if _, err := c.r.ReadPacket(); err != nil {
					return
				}
			}
		}()
	}
	p := &mqtt.Publish{Topic: topic, QoS: qos, Payload: make([]byte, 64)}
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	t := time.NewTimer(0)
	<-t.C
	var buf []byte
	for i := range n {
		if d := time.Until(next); d > 0 {
			t.Reset(d)
			<-t.C
		}
		next = next.Add(interval)
		if qos > 0 {
			p.PacketID = uint16(i%65000) + 1
		}
		binary.BigEndian.PutUint64(p.Payload, uint64(time.Now().UnixNano()))
		buf, _ = p.AppendTo(buf[:0], c.v)
		c.w.Write(buf)
		c.w.Flush()
	}
	if qos > 0 {
		<-done
	}
}

// receiveTimed reads n PUBLISH packets, acknowledging QoS 1, and returns
// their latencies in nanoseconds.
func receiveTimed(tb testing.TB, c *rawClient, n int) []int64 {
	c.nc.SetReadDeadline(time.Now().Add(60 * time.Second))
	lat := make([]int64, 0, n)
	var buf []byte
	for len(lat) < n {
		pkt, err := c.r.ReadPacket()
		if err != nil {
			tb.Errorf("receive after %d of %d: %v", len(lat), n, err)
			return lat
		}
		p, ok := pkt.(*mqtt.Publish)
		if !ok {
			continue
		}
		lat = append(lat, time.Now().UnixNano()-int64(binary.BigEndian.Uint64(p.Payload)))
		if p.QoS == 1 {
			a := mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID}
			buf, _ = a.AppendTo(buf[:0], c.v)
			c.w.Write(buf)
			if c.r.Buffered() == 0 {
				c.w.Flush()
			}
		}
	}
	c.w.Flush()
	return lat
}

// BenchmarkConnect measures how fast the broker accepts MQTT 3.1.1
// connections over loopback TCP: 64 dialers connect clean sessions (CONNECT,
// then CONNACK) and keep them open, idle, until the end. Each op is one
// connection; conns/s is the rate.
func BenchmarkConnect(b *testing.B) {
	addr := startBenchBroker(b)
	connect, _ := (&mqtt.Connect{Version: mqtt.V311, CleanStart: true, KeepAlive: 300, ClientID: "c-0000000"}).AppendTo(nil, mqtt.V311)
	idAt := bytes.Index(connect, []byte("c-0000000"))
	conns := make([]net.Conn, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			pkt := bytes.Clone(connect)
			ack := make([]byte, 4)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				copy(pkt[idAt:], fmt.Sprintf("c-%07d", i))
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				conns[i] = nc
				if _, err := nc.Write(pkt); err != nil {
					b.Error(err)
					return
				}
				if _, err := io.ReadFull(nc, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
					b.Errorf("CONNACK %x, %v", ack, err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
	b.StopTimer()
	for _, nc := range conns {
		if nc != nil {
			nc.Close()
		}
	}
}
