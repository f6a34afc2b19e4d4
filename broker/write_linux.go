//go:build linux

package broker

import (
	"net"
	"syscall"
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

// sendNow writes as much of k.p as the socket takes without blocking, and
// never asks to wait for it: the socket is non-blocking, so a full one
// answers EAGAIN.
func (k *inlineSink) sendNow(fd uintptr) bool {
	for k.n < len(k.p) {
		m, err := syscall.Write(int(fd), k.p[k.n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err != syscall.EAGAIN {
				k.err = err
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
