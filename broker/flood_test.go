package broker_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/citymesh/citymesh/broker"
)

// A connected persistent session's stored queue must drain: publishers
// flood persistent subscribers (MQTT 3.1.1, QoS 1, Paho for Go) that stall
// now and then, so that their queues spill to the store and are paged back
// in while new messages arrive, and every acknowledged message must reach
// its subscriber, once. A lost wake-up between paging the queue in from the
// store and the writer going idle used to leave messages in the store while
// the subscriber stayed connected, until another message came: with a
// window of 256 messages in flight end to end, none came, and the
// publisher's window stayed stuck. The scenario runs several times on fresh
// nodes, with both kinds of window.
func TestPersistentQueuesDrainUnderFlood(t *testing.T) {
	rounds, pairs, flood := 4, 10, time.Second
	if testing.Short() {
		rounds, pairs = 2, 4
	}
	for _, endToEnd := range []bool{false, true} {
		name := "publisher window"
		if endToEnd {
			name = "end-to-end window"
		}
		t.Run(name, func(t *testing.T) {
			for round := range rounds {
				floodRound(t, round, pairs, flood, endToEnd)
			}
		})
	}
}

// floodReceiver counts the distinct sequence numbers one subscriber got.
type floodReceiver struct {
	mu   sync.Mutex
	seen map[uint64]bool
	dups int
}

// got records seq, reports whether it is new, and returns how many distinct
// numbers arrived so far.
func (r *floodReceiver) got(seq uint64) (bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[seq] {
		r.dups++ // QoS 1 allows redelivery after a reconnect; none happens here
		return false, len(r.seen)
	}
	r.seen[seq] = true
	return true, len(r.seen)
}

func (r *floodReceiver) count() (n, dups int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen), r.dups
}

// floodWindow is how many messages a publisher has in flight: a slot is
// taken per message sent and given back when its PUBACK arrives (a
// publisher window) or when the subscriber has it (end to end).
const floodWindow = 256

func floodRound(t *testing.T, round, pairs int, flood time.Duration, endToEnd bool) {
	b, addr := startBroker(t, broker.Options{Store: diskStore(t)})
	recv := make([]*floodReceiver, pairs)
	slots := make([]chan struct{}, pairs)
	for i := range pairs {
		r := &floodReceiver{seen: make(map[uint64]bool)}
		recv[i], slots[i] = r, make(chan struct{}, floodWindow)
		sub := dialV3(t, addr, fmt.Sprintf("flood-sub-%d-%d", round, i), false, func(o *pahov3.ClientOptions) {
			// In order: a slow handler holds the client's reading back.
			o.SetOrderMatters(true)
			o.SetDefaultPublishHandler(func(_ pahov3.Client, m pahov3.Message) {
				fresh, n := r.got(binary.BigEndian.Uint64(m.Payload()))
				if fresh && endToEnd {
					<-slots[i]
				}
				if n%300 == 0 {
					// A consumer that stalls now and then.
					time.Sleep(20 * time.Millisecond)
				}
			})
		})
		sub.subscribe(t, fmt.Sprintf("flood/%d", i), 1)
	}
	acked := make([]atomic.Uint64, pairs)
	var wg sync.WaitGroup
	stop := time.Now().Add(flood)
	for i := range pairs {
		pub := dialBurst(t, addr, fmt.Sprintf("flood-pub-%d-%d", round, i))
		wg.Go(func() {
			pub.readAcks(func() {
				acked[i].Add(1)
				if !endToEnd {
					<-slots[i]
				}
			})
		})
		wg.Go(func() {
			defer pub.finish()
			// The publisher sends as many messages as its window has room
			// for, in one burst. A queue that stops moving stops it.
			var seq uint64
			for time.Now().Before(stop) {
				select {
				case slots[i] <- struct{}{}:
				case <-time.After(wait):
					st := b.Stats()
					t.Errorf("round %d: publisher %d: window full for %v (queued %d, stored %d, inflight %d)",
						round, i, wait, st.Queued, st.Stored, st.Inflight)
					return
				}
				n := 1
			more:
				for n < floodWindow {
					select {
					case slots[i] <- struct{}{}:
						n++
					default:
						break more
					}
				}
				if err := pub.burst(fmt.Sprintf("flood/%d", i), seq, n); err != nil {
					t.Errorf("publisher %d: %v", i, err)
					return
				}
				seq += uint64(n)
			}
			deadline := time.Now().Add(wait)
			for acked[i].Load() < seq && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond) // the last PUBACKs
			}
		})
	}
	wg.Wait()
	var total uint64
	for i := range acked {
		total += acked[i].Load()
	}
	t.Logf("round %d: %d messages acknowledged, %d queued when the publishers stopped", round, total, b.Stats().Queued)
	deadline := time.Now().Add(15 * time.Second)
	for i := range pairs {
		for {
			n, dups := recv[i].count()
			want := int(acked[i].Load())
			if dups > 0 {
				t.Fatalf("round %d: subscriber %d got %d duplicates", round, i, dups)
			}
			if n >= want {
				break
			}
			if time.Now().After(deadline) {
				st := b.Stats()
				t.Fatalf("round %d: subscriber %d got %d of %d acknowledged messages while connected (queued %d, stored %d, inflight %d)",
					round, i, n, want, st.Queued, st.Stored, st.Inflight)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// burstPublisher is an MQTT 5 publisher that writes many QoS 1 PUBLISH
// packets at once, as load generators do; its packets are Paho's
// (paho.golang/packets).
type burstPublisher struct {
	nc  net.Conn
	buf bytes.Buffer
	id  uint16
}

func dialBurst(t *testing.T, addr, id string) *burstPublisher {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.CleanStart, c.KeepAlive = "MQTT", 5, id, true, 60
	if _, err := cp.WriteTo(nc); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(wait))
	ack, err := packets.ReadPacket(nc)
	if err != nil || ack.Type != packets.CONNACK || ack.Content.(*packets.Connack).ReasonCode != 0 {
		t.Fatalf("connect %s: %v %v", id, ack, err)
	}
	nc.SetReadDeadline(time.Time{})
	return &burstPublisher{nc: nc}
}

// burst publishes n messages numbered from seq on topic in one write.
func (p *burstPublisher) burst(topic string, seq uint64, n int) error {
	p.buf.Reset()
	for k := range n {
		p.id = p.id%65535 + 1
		cp := packets.NewControlPacket(packets.PUBLISH)
		pub := cp.Content.(*packets.Publish)
		pub.Topic, pub.QoS, pub.PacketID, pub.Properties = topic, 1, p.id, &packets.Properties{}
		pub.Payload = binary.BigEndian.AppendUint64(make([]byte, 0, 64), seq+uint64(k))
		pub.Payload = pub.Payload[:64]
		if _, err := cp.WriteTo(&p.buf); err != nil {
			return err
		}
	}
	_, err := p.nc.Write(p.buf.Bytes())
	return err
}

// readAcks calls acked for every PUBACK until the connection ends.
func (p *burstPublisher) readAcks(acked func()) {
	for {
		cp, err := packets.ReadPacket(p.nc)
		if err != nil {
			return
		}
		if cp.Type == packets.PUBACK {
			acked()
		}
	}
}

// finish disconnects.
func (p *burstPublisher) finish() {
	d := packets.NewControlPacket(packets.DISCONNECT)
	d.WriteTo(p.nc)
}
