//go:build linux

package broker

import (
	"net"
	"syscall"
	"time"
)

// tcpUserTimeout is the TCP_USER_TIMEOUT socket option of Linux (since
// 2.6.37; linux/tcp.h, described in tcp(7)): how long, in milliseconds, data
// written to the socket may remain unacknowledged by the peer before the
// kernel gives up and closes the connection. Its value is the same on every
// architecture; the syscall package does not name it on all of them.
const tcpUserTimeout = 0x12

// setUserTimeout bounds how long data written to nc's TCP connection may stay
// unacknowledged by the peer: after d the kernel closes the connection, so a
// writer blocked on a full socket buffer of a dead link gets an error
// instead of waiting for its write deadline. Connections that are not TCP
// (a test's pipe) are left as they are. It reports whether the option was
// set.
func setUserTimeout(nc net.Conn, d time.Duration) bool {
	for {
		u, ok := nc.(interface{ NetConn() net.Conn }) // TLS
		if !ok {
			break
		}
		nc = u.NetConn()
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	set := false
	raw.Control(func(fd uintptr) {
		set = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds())) == nil
	})
	return set
}
