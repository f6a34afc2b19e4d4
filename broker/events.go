package broker

import (
	"errors"
	"os"

	"github.com/citymesh/citymesh/mqtt"
)

// ClientEvent is a client connection that was accepted, or that ended, as
// reported to Options.OnClient. Every accepted connection is reported once
// with Connected set and once more when it ends.
type ClientEvent struct {
	// Connected is true when the connection was accepted (its CONNACK is on
	// its way) and false when it ended.
	Connected bool
	// ClientID is the client identifier as the client knows it (one the
	// broker assigned, if the client sent none); User and Tenant are its
	// identity's.
	ClientID, User, Tenant string
	// Remote is the client's network address and Listener the listener it
	// came through ("mqtt", "mqtts", "ws", "wss", "link").
	Remote, Listener string
	// Version is the protocol version: 3 (3.1), 4 (3.1.1) or 5.
	Version byte
	// Link is set for the connection of a mesh link.
	Link bool
	// Reason says why the connection ended: "disconnect" (the client
	// sent DISCONNECT), "taken over" (another connection took its
	// session), "keep alive timeout", "closed" (by the peer or by the
	// broker), "write failed: …" (the broker could not write to the
	// client: a write timeout of a client that reads nothing, an error of
	// the network), or the error that ended it.
	Reason string
}

// clientEvent reports connection c to Options.OnClient, if set.
func (b *Broker) clientEvent(c *conn, connected, takenOver bool) {
	if b.opts.OnClient == nil {
		return
	}
	e := ClientEvent{Connected: connected, ClientID: c.clientID, Remote: c.remote, Listener: c.listener,
		Version: c.version, Link: c.kind.IsLink()}
	if c.ident != nil {
		e.User, e.Tenant = c.ident.User, c.ident.Tenant
	}
	if !connected {
		var me *mqtt.Error
		writeErr := c.writeErr.Load()
		switch err := c.endErr; {
		case takenOver:
			e.Reason = "taken over"
		case writeErr != nil:
			e.Reason = "write failed: " + (*writeErr).Error()
		case err == nil:
			e.Reason = "disconnect"
		case errors.Is(err, os.ErrDeadlineExceeded):
			e.Reason = "keep alive timeout"
		case isClosedErr(err):
			e.Reason = "closed"
		case errors.As(err, &me):
			e.Reason = "protocol error: " + err.Error()
		default:
			e.Reason = err.Error()
		}
	}
	b.opts.OnClient(e)
}
