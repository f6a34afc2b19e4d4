//go:build linux

package broker

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawSocket returns the socket of a plain TCP connection, which a reader
// goroutine may write to without blocking (see conn.wakeVia); nil for other
// connections.
func rawSocket(nc net.Conn) syscall.RawConn {
	if _, ok := nc.(*net.TCPConn); !ok {
		return nil
	}
	raw, err := nc.(syscall.Conn).SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// sysRead and sysWrite make one read or write system call on a
// non-blocking socket. They bypass the scheduler's bookkeeping for system
// calls that may block: on a busy machine whose system calls are slow (a
// virtual machine, loopback TCP), a call that takes some tens of
// microseconds otherwise makes the runtime hand the goroutine's processor
// to another thread, and wake its monitor thread, for a call that never
// blocks.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), e
}

// sendNow writes as much of k.p as the socket takes without blocking, and
// never asks to wait for it: the socket is non-blocking, so a full one
// answers EAGAIN.
func (k *inlineSink) sendNow(fd uintptr) bool {
	for k.n < len(k.p) {
		m, errno := sysWrite(fd, k.p[k.n:])
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			if errno != syscall.EAGAIN {
				k.err = errno
			}
			break
		}
		if m <= 0 {
			break
		}
		k.n += m
	}
	return true
}

// sockIO reads and writes a plain TCP socket as net.Conn does (waiting in the
// network poller, with its deadlines), but with sysRead and sysWrite.
type sockIO struct {
	raw     syscall.RawConn
	rp      []byte
	rn      int
	rerr    error
	readFn  func(uintptr) bool
	wp      []byte
	wn      int
	werr    error
	writeFn func(uintptr) bool
}

// newSockIO returns the reader and writer of a plain TCP connection's
// socket, or nil for other connections.
func newSockIO(raw syscall.RawConn) *sockIO {
	if raw == nil {
		return nil
	}
	s := &sockIO{raw: raw}
	s.readFn, s.writeFn = s.readNow, s.writeNow
	return s
}

func (s *sockIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rp, s.rn, s.rerr = p, 0, nil
	err := s.raw.Read(s.readFn)
	n := s.rn
	if err == nil {
		err = s.rerr
	}
	s.rp, s.rerr = nil, nil
	return n, err
}

func (s *sockIO) readNow(fd uintptr) bool {
	for {
		n, errno := sysRead(fd, s.rp)
		switch errno {
		case 0:
			if n == 0 {
				s.rerr = io.EOF
			}
			s.rn = n
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait in the network poller
		default:
			s.rerr = errno
			return true
		}
	}
}

func (s *sockIO) Write(p []byte) (int, error) {
	s.wp, s.wn, s.werr = p, 0, nil
	err := s.raw.Write(s.writeFn)
	n := s.wn
	if err == nil {
		err = s.werr
	}
	s.wp, s.werr = nil, nil
	return n, err
}

func (s *sockIO) writeNow(fd uintptr) bool {
	for s.wn < len(s.wp) {
		m, errno := sysWrite(fd, s.wp[s.wn:])
		switch errno {
		case 0:
			if m <= 0 {
				s.werr = io.ErrShortWrite
				return true
			}
			s.wn += m
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait in the network poller
		default:
			s.werr = errno
			return true
		}
	}
	return true
}
