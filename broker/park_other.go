//go:build !linux

package broker

import "time"

// poller parks idle connections on Linux only; elsewhere every connection
// keeps its reader goroutine.
type poller struct{}

func newPoller(*Broker) *poller            { return nil }
func (*poller) park(*conn, time.Time) bool { return false }
func (*poller) unpark(*conn)               {}
func (*poller) close()                     {}
func (*poller) count() int                 { return 0 }
