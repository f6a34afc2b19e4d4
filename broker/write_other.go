//go:build !linux

package broker

import (
	"io"
	"net"
	"syscall"
)

// rawSocket returns nil: outside Linux every connection's writer runs on a
// goroutine of its own.
func rawSocket(net.Conn) syscall.RawConn { return nil }

// sendNow is never called without a raw socket.
func (k *inlineSink) sendNow(uintptr) bool { k.err = syscall.EINVAL; return true }

// sockIO is used on Linux only.
type sockIO struct{ io.ReadWriter }

func newSockIO(syscall.RawConn) *sockIO { return nil }
