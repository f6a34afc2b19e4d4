//go:build linux

package broker

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// sockIO reads and writes a socket as net.Conn does: it waits for data and
// for room, keeps the connection's deadlines, and reports the end of the
// stream and a closed connection the same way.
func TestSockIO(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check func(t *testing.T, s *sockIO, nc, peer *net.TCPConn)
	}{
		{"waits for data", func(t *testing.T, s *sockIO, nc, peer *net.TCPConn) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				peer.Write([]byte("hello"))
			}()
			buf := make([]byte, 16)
			if n, err := s.Read(buf); err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("read %q, %v", buf[:n], err)
			}
		}},
		{"end of stream", func(t *testing.T, s *sockIO, nc, peer *net.TCPConn) {
			peer.Write([]byte("last"))
			peer.Close()
			got, err := io.ReadAll(s)
			if err != nil || string(got) != "last" {
				t.Fatalf("read %q, %v; want \"last\" and the end of the stream", got, err)
			}
		}},
		{"read deadline", func(t *testing.T, s *sockIO, nc, peer *net.TCPConn) {
			nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("read after the deadline: %v, want os.ErrDeadlineExceeded", err)
			}
		}},
		{"closed connection", func(t *testing.T, s *sockIO, nc, peer *net.TCPConn) {
			go func() {
				time.Sleep(20 * time.Millisecond)
				nc.Close()
			}()
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read on a closed connection: %v, want net.ErrClosed", err)
			}
		}},
		{"write waits for room", func(t *testing.T, s *sockIO, nc, peer *net.TCPConn) {
			want := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB, more than the socket buffers
			got := make(chan []byte, 1)
			go func() {
				time.Sleep(50 * time.Millisecond) // the writer finds the socket full
				b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
				got <- b
			}()
			if n, err := s.Write(want); err != nil || n != len(want) {
				t.Fatalf("wrote %d of %d: %v", n, len(want), err)
			}
			if !bytes.Equal(<-got, want) {
				t.Fatal("the peer read something else")
			}
		}},
		{"write deadline", func(t *testing.T, s *sockIO, nc, peer *net.TCPConn) {
			nc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := s.Write(make([]byte, 64<<20)) // the peer reads nothing
			if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n == 64<<20 {
				t.Fatalf("wrote %d, %v; want part and os.ErrDeadlineExceeded", n, err)
			}
		}},
		{"write to a reset connection", func(t *testing.T, s *sockIO, nc, peer *net.TCPConn) {
			peer.SetLinger(0)
			peer.Close() // RST
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, err := s.Write([]byte("x")); err != nil {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("writes to a reset connection keep succeeding")
				}
				time.Sleep(time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, peer := tcpPair(t)
			s := newSockIO(rawSocket(nc))
			if s == nil {
				t.Fatal("no raw socket for a TCP connection")
			}
			tc.check(t, s, nc, peer)
		})
	}
}

// An inline write takes what the socket takes without waiting and stashes
// the rest, in order, behind anything stashed before.
func TestInlineSinkStashes(t *testing.T) {
	nc, peer := tcpPair(t)
	c := &conn{nc: nc, raw: rawSocket(nc)}
	w := writerPool.Get().(*writer)
	defer writerPool.Put(w)
	w.sink.c = c
	defer func() { w.sink.c = nil }()
	chunk := bytes.Repeat([]byte("abcdefgh"), 8<<10) // 64 KiB
	var want []byte
	for i := 0; len(c.stash) == 0; i++ {
		if i > 1<<12 {
			t.Fatal("256 MiB written without the socket filling")
		}
		start := time.Now()
		if n, err := w.sink.Write(chunk); err != nil || n != len(chunk) {
			t.Fatalf("inline write: %d, %v", n, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("an inline write took %v: it waited", d)
		}
		want = append(want, chunk...)
	}
	more := []byte("after the stash")
	w.sink.Write(more)
	want = append(want, more...)
	if !bytes.HasSuffix(c.stash, more) {
		t.Fatal("a write after the socket filled was not stashed behind the rest")
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(peer, int64(len(want))))
		got <- b
	}()
	if _, err := newSockIO(c.raw).Write(c.stash); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(<-got, want) {
		t.Fatal("the peer did not read everything written and stashed, in order")
	}
}
