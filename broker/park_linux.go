//go:build linux

package broker

import (
	"errors"
	"sync"
	"syscall"
	"time"
)

// poller watches idle connections without a goroutine each. A connection
// whose reader finds nothing to read "parks": its file descriptor joins an
// epoll set and its reader goroutine ends, giving back its stack. When the
// client sends something, when the keep alive deadline passes, or when the
// broker closes the connection, a new reader goroutine takes over where the
// old one stopped. An idle connection then costs only its heap state.
type poller struct {
	b      *Broker
	epfd   int
	wake   [2]int // a pipe whose read end is in the epoll set, to end loop at once
	mu     sync.Mutex
	parked map[int32]*conn
	closed bool
}

func newPoller(b *Broker) *poller {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		b.log.Warn("epoll unavailable; idle connections keep their goroutines", "err", err)
		return nil
	}
	p := &poller{b: b, epfd: epfd, parked: make(map[int32]*conn)}
	if err := syscall.Pipe2(p.wake[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		syscall.Close(epfd)
		b.log.Warn("pipe unavailable; idle connections keep their goroutines", "err", err)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(p.wake[0])
		syscall.Close(p.wake[1])
		return nil
	}
	// The loop counts in the broker's wait group, so that reader goroutines
	// it starts are added while the count is above zero.
	b.wg.Add(1)
	go p.loop()
	return p
}

// loop hands connections that became readable back to reader goroutines.
func (p *poller) loop() {
	defer p.b.wg.Done()
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			syscall.Close(p.epfd)
			syscall.Close(p.wake[0])
			syscall.Close(p.wake[1])
			return
		}
		p.mu.Unlock()
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			p.b.log.Error("epoll wait failed", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, ev := range events[:n] {
			p.mu.Lock()
			c := p.parked[ev.Fd]
			p.mu.Unlock()
			if c != nil {
				p.unpark(c)
			}
		}
	}
}

// park registers c's socket and reports whether it did; the caller's
// goroutine must then end without touching c again. until is when the keep
// alive deadline passes (zero for none).
func (p *poller) park(c *conn, until time.Time) bool {
	if p == nil {
		return false
	}
	sc, ok := c.nc.(syscall.Conn)
	if !ok {
		return false // TLS and WebSocket connections keep their goroutine
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// Register inside Control: the descriptor cannot be closed, and its
	// number taken by a new connection, while the callback runs. A
	// descriptor read out and registered afterwards could already belong
	// to another connection by then.
	parked := false
	err = raw.Control(func(f uintptr) {
		fd := int32(f)
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.closed {
			return
		}
		// An entry under this number is stale: its connection's socket was
		// closed (which also took it out of the epoll set) before the
		// number was reused for c.
		c.parkFd = fd // read by unpark under p.mu
		p.parked[fd] = c
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: fd}
		if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
			delete(p.parked, fd)
			return
		}
		if !until.IsZero() {
			// The timer's unpark waits for p.mu, so it cannot miss the
			// entry. Two ticks of margin let the broker's coarse clock pass
			// until too.
			c.parkTimer = time.AfterFunc(time.Until(until)+2*clockTick, func() { p.unpark(c) })
		}
		parked = true
	})
	return err == nil && parked
}

// unpark starts a reader goroutine for c if c is parked. It is safe to call
// from any goroutine and for connections that are not parked.
func (p *poller) unpark(c *conn) {
	if p == nil {
		return
	}
	p.mu.Lock()
	if p.parked[c.parkFd] != c {
		p.mu.Unlock()
		return
	}
	delete(p.parked, c.parkFd)
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.parkFd), nil)
	if c.parkTimer != nil {
		c.parkTimer.Stop()
		c.parkTimer = nil
	}
	// Added under p.mu: before close marks the poller closed, and so before
	// loop, which holds the wait group above zero, can end.
	c.b.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer c.b.wg.Done()
		c.resume()
	}()
}

// count reports how many connections are parked.
func (p *poller) count() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// close stops the poller and resumes every parked connection, so that each
// ends through its reader goroutine.
func (p *poller) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true // from now on nothing parks
	var cs []*conn
	for _, c := range p.parked {
		cs = append(cs, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		p.unpark(c) // called by Close before it waits, so adding to the wait group is safe
	}
	syscall.Write(p.wake[1], []byte{1}) // wake loop so it sees closed and ends
}
