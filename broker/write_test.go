package broker_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// A publisher's reader writes to its subscribers' sockets itself, but never
// waits on one: a subscriber that reads nothing fills its socket, the rest
// of what it is owed waits in the broker, and meanwhile the publisher's
// PUBACKs and another subscriber's messages keep flowing. When the slow
// subscriber reads at last, it gets every message whole and in order: what
// a write left over goes out before anything newer.
func TestWritesNeverWaitOnASubscriber(t *testing.T) {
	for _, v := range []byte{mqtt.V311, mqtt.V5} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			_, addr := startBroker(t, broker.Options{MaxQueuedBytes: 256 << 20})
			slow := dialRaw(t, addr)
			slow.nc.(*net.TCPConn).SetReadBuffer(64 << 10) // the broker's socket to it fills soon
			slow.connect(&mqtt.Connect{Version: v, ClientID: "slow", CleanStart: true})
			slow.subscribe(mqtt.Subscription{Filter: "big/#"})
			fast := dialRaw(t, addr)
			fast.connect(&mqtt.Connect{Version: v, ClientID: "fast", CleanStart: true})
			fast.subscribe(mqtt.Subscription{Filter: "big/#"})
			pub := dialRaw(t, addr)
			pub.connect(&mqtt.Connect{Version: v, ClientID: "pub", CleanStart: true})

			// 24 MiB, far more than the slow subscriber's socket holds.
			const n, size = 384, 64 << 10
			payload := func(i int) []byte {
				p := bytes.Repeat([]byte{byte(i)}, size)
				binary.BigEndian.PutUint32(p, uint32(i))
				return p
			}
			got := make(chan error, 1)
			go func() {
				for i := range n {
					fast.nc.SetReadDeadline(time.Now().Add(wait))
					pkt, err := fast.r.ReadPacket()
					if err != nil {
						got <- fmt.Errorf("fast subscriber, message %d: %v", i, err)
						return
					}
					if p, ok := pkt.(*mqtt.Publish); !ok || !bytes.Equal(p.Payload, payload(i)) {
						got <- fmt.Errorf("fast subscriber, message %d: not the message published", i)
						return
					}
				}
				got <- nil
			}()
			for i := range n {
				pub.send(&mqtt.Publish{Topic: "big/x", Payload: payload(i)})
			}
			// The publisher's reader is not stuck on the slow socket: a QoS 1
			// message is acknowledged.
			pub.send(&mqtt.Publish{Topic: "other", QoS: 1, PacketID: 1, Payload: []byte("alive")})
			if a, ok := pub.read().(*mqtt.Ack); !ok || a.Kind != mqtt.PUBACK || a.PacketID != 1 {
				t.Fatal("no PUBACK while a subscriber does not read")
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
			for i := range n {
				if p := slow.readPublish(); !bytes.Equal(p.Payload, payload(i)) {
					t.Fatalf("slow subscriber, message %d: got %d bytes starting %x, want message %d",
						i, len(p.Payload), p.Payload[:min(8, len(p.Payload))], i)
				}
			}
		})
	}
}

// exhaustedListener fails its first Accepts as a process out of file
// descriptors does.
type exhaustedListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *exhaustedListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// A broker out of file descriptors goes on accepting once some are free
// again, as it does after a timeout; it used to stop its listener for good.
func TestAcceptGoesOnWhenOutOfFiles(t *testing.T) {
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &exhaustedListener{Listener: inner}
	ln.fails.Store(3)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- b.Serve(ctx, ln) }()
	defer func() {
		cancel()
		b.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	c := dialRaw(t, inner.Addr().String())
	if ack := c.connect(&mqtt.Connect{ClientID: "after-emfile", CleanStart: true}); ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %s", ack.ReasonCode)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v", err)
	default:
	}
	c.nc.Close()
}

// slowEngine takes a long time over every durable write, as a slow disk
// does.
type slowEngine struct {
	store.Engine
	delay  time.Duration
	writes atomic.Int64
}

func (e *slowEngine) Apply(b *store.Batch, durable bool) error {
	e.writes.Add(1)
	if durable {
		time.Sleep(e.delay)
	}
	return e.Engine.Apply(b, durable)
}

// On a broker with a store, QoS 1 traffic between clean sessions writes
// nothing to it, and its PUBACKs do not wait for the store: only messages
// queued in durable sessions are acknowledged after an fsync.
func TestCleanSessionsNeverWaitForTheStore(t *testing.T) {
	e := &slowEngine{Engine: store.NewMemoryEngine(), delay: 300 * time.Millisecond}
	st, err := store.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	b, addr := startBroker(t, broker.Options{Store: st})
	sub := dialRaw(t, addr)
	sub.connect(&mqtt.Connect{Version: mqtt.V311, ClientID: "sub", CleanStart: true})
	sub.subscribe(mqtt.Subscription{Filter: "t", QoS: 1})
	pub := dialRaw(t, addr)
	pub.connect(&mqtt.Connect{Version: mqtt.V311, ClientID: "pub", CleanStart: true})
	before := e.writes.Load()
	for i := range 10 {
		start := time.Now()
		pub.send(&mqtt.Publish{Topic: "t", QoS: 1, PacketID: uint16(i + 1), Payload: []byte("x")})
		if a, ok := pub.read().(*mqtt.Ack); !ok || a.PacketID != uint16(i+1) {
			t.Fatalf("message %d: no PUBACK", i)
		}
		if d := time.Since(start); d >= e.delay {
			t.Fatalf("message %d: PUBACK after %v, as long as a store write", i, d)
		}
		p := sub.readPublish()
		sub.send(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID})
	}
	if n := e.writes.Load() - before; n != 0 || b.Stats().StoreWrites != 0 {
		t.Fatalf("%d store writes (%d counted) for traffic between clean sessions", n, b.Stats().StoreWrites)
	}
}
