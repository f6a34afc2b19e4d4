package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// closedCheckEngine reports any use of the store after its owner closed it.
// Its scans are slow, so that a writer paging a queue in is likely to be
// reading when the broker closes.
type closedCheckEngine struct {
	store.Engine
	mu        sync.Mutex
	closed    bool
	misuse    []string
	scanDelay time.Duration
	scanning  chan struct{} // closed when a scan starts after scanDelay was set long
}

func (e *closedCheckEngine) check(op string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.misuse = append(e.misuse, op)
	}
}

func (e *closedCheckEngine) Apply(b *store.Batch, durable bool) error {
	e.check("Apply")
	return e.Engine.Apply(b, durable)
}

func (e *closedCheckEngine) Scan(lo, hi []byte, fn func(k, v []byte) error) error {
	e.check("Scan")
	e.mu.Lock()
	delay, started := e.scanDelay, e.scanning
	e.scanning = nil
	e.mu.Unlock()
	if started != nil {
		close(started)
	}
	time.Sleep(delay)
	defer e.check("Scan")
	return e.Engine.Scan(lo, hi, fn)
}

func (e *closedCheckEngine) Get(k []byte) ([]byte, bool, error) {
	e.check("Get")
	return e.Engine.Get(k)
}

func (e *closedCheckEngine) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	return nil
}

// Close waits for every goroutine the broker started — readers, writers
// (one blocked on a client that reads nothing, one paging a long queue in
// from the store), in-process deliveries, the poller, timers' work — and
// after it the broker does not touch its store.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	e := &closedCheckEngine{Engine: store.NewMemoryEngine()}
	st := openStore(t, e)
	b := broker.New(broker.Options{Store: st, SysInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	e.mu.Lock()
	e.scanDelay = 20 * time.Millisecond // (set after New: loading is not slowed)
	e.mu.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan struct{})
	go func() { b.Serve(context.Background(), ln); close(served) }()

	// A persistent subscriber with a long queue in the store, back online
	// and reading slowly: its writer pages from the store.
	slow := dialRaw(t, addr)
	slow.connect(persistentConnect("slow"))
	slow.subscribe(mqtt.Subscription{Filter: "leak/slow", QoS: 1})
	slow.send(&mqtt.Disconnect{})
	waitClients(t, b, 0)
	pub := dialRaw(t, addr)
	pub.connect(&mqtt.Connect{ClientID: "pub", CleanStart: true})
	for i := range 2000 {
		pub.send(&mqtt.Publish{Topic: "leak/slow", QoS: 1, PacketID: uint16(i%60000 + 1), Payload: make([]byte, 512)})
	}
	// A subscriber that reads nothing while a publisher floods it: its
	// writer blocks on a full socket.
	stuck := dialRaw(t, addr)
	stuck.connect(&mqtt.Connect{ClientID: "stuck", CleanStart: true})
	stuck.subscribe(mqtt.Subscription{Filter: "leak/stuck", QoS: 0})
	for range 4000 {
		pub.send(&mqtt.Publish{Topic: "leak/stuck", Payload: make([]byte, 4096)})
	}

	// An idle connection, parked; a session with an expiry timer and a
	// delayed will; an in-process client with a handler that is busy.
	idle := dialRaw(t, addr)
	idle.connect(&mqtt.Connect{ClientID: "idle", CleanStart: true, KeepAlive: 60})
	gone := dialRaw(t, addr)
	gone.connect(&mqtt.Connect{ClientID: "gone", CleanStart: true, Props: mqtt.Properties{SessionExpiry: 60},
		Will: &mqtt.Will{Topic: "leak/will", Payload: []byte("w"), Props: mqtt.Properties{WillDelay: 30}}})
	gone.nc.Close()
	local, err := b.NewLocal("local")
	if err != nil {
		t.Fatal(err)
	}
	busy := make(chan struct{})
	var once sync.Once
	if err := local.Subscribe("leak/local", mqtt.Subscription{QoS: 1}, func(*broker.Message, bool) {
		once.Do(func() { close(busy) })
		time.Sleep(10 * time.Millisecond)
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := local.Publish(&broker.Message{Topic: "leak/local", QoS: 1, Payload: fmt.Appendf(nil, "%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	<-busy

	// The slow subscriber comes back and takes its queue, which its
	// writer pages in from the store while the broker closes.
	slow = dialRaw(t, addr)
	slow.connect(persistentConnect("slow"))
	acked := make(chan int, 1)
	go func() {
		n := 0
		for {
			p, err := slow.r.ReadPacket()
			if err != nil {
				return
			}
			if pp, ok := p.(*mqtt.Publish); ok {
				buf, _ := (&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: pp.PacketID}).AppendTo(nil, mqtt.V5)
				if _, err := slow.nc.Write(buf); err != nil {
					return
				}
				if n++; n == 300 {
					acked <- n
				}
			}
		}
	}()
	<-acked
	// The next page takes long to read; meanwhile the client leaves.
	scanning := make(chan struct{})
	e.mu.Lock()
	e.scanDelay, e.scanning = 2*time.Second, scanning
	e.mu.Unlock()
	<-scanning
	slow.nc.Close()

	b.Close()
	// Whatever is still running now was not waited for: look at once. A
	// goroutine that was waited for may still be leaving its last deferred
	// call (wg.Done itself) for some microseconds, so look again for up to
	// 100 ms; one that was not waited for is held by the 2 s store scan.
	running := brokerGoroutines()
	for deadline := time.Now().Add(100 * time.Millisecond); len(running) > 0 && time.Now().Before(deadline); {
		runtime.Gosched()
		running = brokerGoroutines()
	}
	<-served
	st.Close()
	time.Sleep(50 * time.Millisecond) // anything still running would touch the store now
	for _, c := range []*raw{slow, stuck, idle, pub} {
		c.nc.Close()
	}
	e.mu.Lock()
	misuse := e.misuse
	e.mu.Unlock()
	if len(misuse) > 0 {
		t.Fatalf("the store was used after Close: %v", misuse)
	}
	if len(running) > 0 {
		t.Fatalf("%d goroutines of the broker still running when Close returned:\n\n%s", len(running), strings.Join(running, "\n\n"))
	}
	goleak.VerifyNone(t, before)
}

// brokerGoroutines returns the stacks of the goroutines running the
// broker's code, other than the test's own.
func brokerGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "citymesh/broker.") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}
