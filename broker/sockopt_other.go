//go:build !linux

package broker

import (
	"net"
	"time"
)

// setUserTimeout does nothing where TCP_USER_TIMEOUT is not known: the
// link's keep alive alone finds a dead connection there.
func setUserTimeout(net.Conn, time.Duration) bool { return false }
