package client_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// The client batches writes with a mutex around a bufio.Writer and a
// flusher goroutine. BenchmarkWriteScheme compares that with the two other
// schemes considered, writing 80-byte packets to a loopback TCP sink from 1
// and from 8 goroutines:
//
//   - chan: one writer goroutine fed by a channel of encoded packets (each a
//     copy), flushing when the channel is empty;
//   - mutex: the client's scheme;
//   - swap: a mutex around a plain buffer that the flusher swaps for a spare
//     and writes outside the lock.
//
// On the 2-core development machine: chan 105 ns/op and 1 alloc, mutex 45
// ns/op, swap 37 ns/op with one writer but 78 ns/op with eight (contention on
// its condition variable), mutex 49 ns/op with eight. Mutex wins overall.
func BenchmarkWriteScheme(b *testing.B) {
	schemes := []struct {
		name string
		mk   func(net.Conn) packetWriter
	}{{"chan", newChanWriter}, {"mutex", newMutexWriter}, {"swap", newSwapWriter}}
	for _, s := range schemes {
		for _, writers := range []int{1, 8} {
			b.Run(s.name+"/"+string(rune('0'+writers)), func(b *testing.B) {
				c, stop := sinkConn(b)
				defer stop()
				w := s.mk(c)
				pkt := make([]byte, 80)
				b.SetBytes(int64(len(pkt)))
				b.ReportAllocs()
				b.ResetTimer()
				var wg sync.WaitGroup
				for range writers {
					wg.Go(func() {
						for range b.N / writers {
							w.write(pkt)
						}
					})
				}
				wg.Wait()
				w.close()
			})
		}
	}
}

type packetWriter interface {
	write(p []byte) // p may be reused when write returns
	close()
}

type chanWriter struct {
	ch   chan []byte
	done chan struct{}
}

func newChanWriter(c net.Conn) packetWriter {
	w := &chanWriter{ch: make(chan []byte, 1024), done: make(chan struct{})}
	go func() {
		bw := bufio.NewWriterSize(c, 32<<10)
		for b := range w.ch {
			bw.Write(b)
			if len(w.ch) == 0 {
				bw.Flush()
			}
		}
		bw.Flush()
		close(w.done)
	}()
	return w
}

func (w *chanWriter) write(p []byte) { w.ch <- append([]byte(nil), p...) }
func (w *chanWriter) close()         { close(w.ch); <-w.done }

type mutexWriter struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	kick chan struct{}
	done chan struct{}
}

func newMutexWriter(c net.Conn) packetWriter {
	w := &mutexWriter{bw: bufio.NewWriterSize(c, 32<<10), kick: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		for range w.kick {
			w.mu.Lock()
			w.bw.Flush()
			w.mu.Unlock()
		}
		close(w.done)
	}()
	return w
}

func (w *mutexWriter) write(p []byte) {
	w.mu.Lock()
	w.bw.Write(append(w.bw.AvailableBuffer(), p...))
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *mutexWriter) close() {
	close(w.kick)
	<-w.done
	w.bw.Flush()
}

type swapWriter struct {
	mu         sync.Mutex
	cond       *sync.Cond
	buf, spare []byte
	limit      int
	c          net.Conn
	kick, done chan struct{}
}

func newSwapWriter(c net.Conn) packetWriter {
	w := &swapWriter{buf: make([]byte, 0, 32<<10), spare: make([]byte, 0, 32<<10), limit: 64 << 10, c: c,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go func() {
		for range w.kick {
			w.flush()
		}
		close(w.done)
	}()
	return w
}

func (w *swapWriter) flush() {
	w.mu.Lock()
	for len(w.buf) > 0 {
		out := w.buf
		w.buf = w.spare[:0]
		w.mu.Unlock()
		w.c.Write(out)
		w.mu.Lock()
		w.spare = out[:0]
		w.cond.Broadcast()
	}
	w.mu.Unlock()
}

func (w *swapWriter) write(p []byte) {
	w.mu.Lock()
	for len(w.buf) >= w.limit {
		w.cond.Wait()
	}
	w.buf = append(w.buf, p...)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *swapWriter) close() { close(w.kick); <-w.done; w.flush() }

// sinkConn returns a loopback TCP connection whose peer discards all input.
func sinkConn(b *testing.B) (net.Conn, func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	return c, func() { c.Close(); <-done; ln.Close() }
}

// BenchmarkPublishQoS0 measures the client's publish path end to end: encode
// a 64-byte QoS 0 PUBLISH, batch it, write it to a server that discards it.
func BenchmarkPublishQoS0(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := mqtt.NewReader(nc, 4096)
		if _, err := r.ReadPacket(); err != nil {
			return
		}
		ack, _ := (&mqtt.Connack{}).AppendTo(nil, mqtt.V311)
		nc.Write(ack)
		io.Copy(io.Discard, nc)
	}()
	c, err := client.Dial(context.Background(), client.Options{Addr: ln.Addr().String(), CleanStart: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := &mqtt.Publish{Topic: "campus/b12/energy/m3", Payload: make([]byte, 64)}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.PublishAsync(p, nil)
	}
}
