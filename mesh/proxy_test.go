package mesh_test

import (
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// proxyMode is what a linkProxy does with the connections it carries.
type proxyMode int

const (
	// forward passes every byte on, both ways.
	forward proxyMode = iota
	// refuse closes each new connection at once, as a node that is down
	// (its port closed) does; connections already carried stay.
	refuse
	// blackhole keeps every connection open and reads what both ends
	// send, but delivers nothing: a pulled cable, or a firewall that drops
	// the packets. Neither end is told anything.
	blackhole
)

// linkProxy stands between a node that dials a link and the node it dials.
// It records when each connection was dialed, and the test switches what it
// does (forward, refuse, blackhole) or closes what it carries (a crash of the
// node behind it).
type linkProxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu     sync.Mutex
	mode   proxyMode
	rate   int // bytes a second each way while forwarding; 0 for no limit
	dials  []time.Time
	conns  []net.Conn // both sides of every connection carried
	closed bool
	wg     sync.WaitGroup
}

// startProxy listens on a loopback port and carries connections to target.
// It is closed, and its goroutines waited for, when the test ends.
func startProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{t: t, ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// addr is where nodes dial the proxy.
func (p *linkProxy) addr() string { return p.ln.Addr().String() }

func (p *linkProxy) accept() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.dials = append(p.dials, time.Now())
		mode := p.mode
		p.mu.Unlock()
		if mode == refuse {
			a.Close()
			continue
		}
		b, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			a.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			a.Close()
			b.Close()
			return
		}
		p.conns = append(p.conns, a, b)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(a, b)
		go p.pipe(b, a)
	}
}

// pipe copies src to dst until src ends, discarding what it reads while the
// proxy black-holes; then it closes dst, as a TCP proxy passes a close on.
func (p *linkProxy) pipe(src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		p.mu.Lock()
		rate := p.rate
		p.mu.Unlock()
		chunk := buf
		if rate > 0 {
			chunk = buf[:min(len(buf), max(1, rate/50))]
		}
		n, err := src.Read(chunk)
		if n > 0 && p.currentMode() != blackhole {
			if _, werr := dst.Write(chunk[:n]); werr != nil {
				src.Close()
				return
			}
			if rate > 0 { // a slow network: pacing, not waiting for anything
				time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
			}
		}
		if err != nil {
			// A black hole passes no close on either; a connection the
			// proxy closed itself (dropAll) ends at both ends.
			if p.currentMode() != blackhole || errors.Is(err, net.ErrClosed) {
				dst.Close()
			}
			return
		}
	}
}

func (p *linkProxy) currentMode() proxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// setMode switches what the proxy does from now on.
func (p *linkProxy) setMode(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

// setRate limits forwarding to rate bytes a second each way (0: no limit).
func (p *linkProxy) setRate(rate int) {
	p.mu.Lock()
	p.rate = rate
	p.mu.Unlock()
}

// dropAll closes every connection the proxy carries, at both ends.
func (p *linkProxy) dropAll() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// dialTimes returns when each connection was dialed, in order.
func (p *linkProxy) dialTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.dials...)
}

func (p *linkProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.dropAll()
	p.wg.Wait()
}
