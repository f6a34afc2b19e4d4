// Package store holds the broker state that must survive a restart, behind
// one small interface: persistent sessions with their subscriptions, the
// messages queued and inflight for them, inbound QoS 2 exchanges, retained
// messages and will messages.
//
// Writes are collected in a Batch and applied atomically by Store.Apply;
// the broker groups the writes of many connections into one Batch so that one
// fsync covers them all (group commit). Reads are for recovery and paging:
// Load returns everything a broker needs to start, and Queue reads a page of
// one session's queue.
//
// A Store encodes records (see format.go) into an Engine, the one small
// interface under it: an ordered key-value engine. Package store/disk
// provides the default, on the embedded Pebble engine; MemoryEngine keeps
// the records in memory, for tests. Both hold the same bytes, so a test
// against memory exercises the encoding that the disk holds.
package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// Subscription is one subscription of a stored session.
type Subscription struct {
	mqtt.Subscription
	// ID is the MQTT 5 subscription identifier, 0 for none.
	ID uint32
}

// Session is the durable part of a persistent session.
type Session struct {
	ClientID string
	// Expiry is the Session Expiry Interval in seconds; 0xFFFFFFFF means it
	// never expires.
	Expiry        uint32
	Subscriptions []Subscription
	// DisconnectedAt is when the client left, zero while it is connected;
	// the expiry interval counts from it, also across a restart.
	DisconnectedAt time.Time
	// Link is the role of a mesh link's session ("core", "edge",
	// "upstream", "bridge"); empty for a client's session.
	Link string `json:",omitempty"`
}

// Message is a stored application message.
type Message struct {
	Topic   string
	Payload []byte
	// QoS is the message's quality of service; in an Entry, the QoS granted
	// to the receiver.
	QoS byte
	// Props are the message's MQTT 5 properties, nil for none.
	Props *mqtt.Properties
	// Expires is when the message expires; zero for never.
	Expires time.Time
}

// Entry is one message in a session's queue: waiting to be sent, or sent and
// not yet acknowledged. Entries of a session are ordered by Seq, which the
// broker assigns in increasing order and from which it derives the packet
// identifier, so an entry keeps its packet identifier across restarts
// [MQTT-4.4.0-1].
type Entry struct {
	Seq uint64
	// Message is the message as it goes to this receiver; empty once
	// Released.
	Message Message
	// Retain is the RETAIN flag to send.
	Retain bool
	// SubIDs are the subscription identifiers to send with it.
	SubIDs []uint32
	// Share is the shared subscription filter it came through, if any.
	Share string
	// Released marks a QoS 2 delivery whose PUBREC has arrived: only PUBREL
	// remains to be sent [MQTT-4.3.3-4], never the PUBLISH again.
	Released bool
	// Queued is when the entry was first queued, zero if unknown (an entry
	// written before the store kept it). A mesh link's lag is the age of
	// its oldest entry.
	Queued time.Time
	// Size is the entry's encoded size, key and value, as Queue read it.
	Size int
}

// Will is a will message the broker must publish if it is not cancelled: the
// will of a connected client (published when the connection is lost, also
// when the broker itself stopped without a clean shutdown) or one whose Will
// Delay Interval is running.
type Will struct {
	ClientID string
	Message  Message
	// Retain is the will's RETAIN flag.
	Retain bool
	// Delay is the Will Delay Interval in seconds.
	Delay uint32
	// At is when the will is due; zero while its client is connected.
	At time.Time
}

// QueueInfo summarises one session's stored queue.
type QueueInfo struct {
	// Count is the number of entries, and Bytes their encoded size (keys
	// and values).
	Count, Bytes int
	// First and Last are the lowest and highest Seq; both 0 when empty.
	First, Last uint64
}

// StoredSession is a session as Load finds it: the record, its inbound QoS 2
// packet identifiers that await PUBREL, and a summary of its queue (the
// entries themselves are read page by page with Queue).
type StoredSession struct {
	Session
	Inbound []uint16
	Queue   QueueInfo
	// LinkSeq is, for a mesh link's session, the sequence number of the
	// last message received from the peer (see Batch.PutLinkSeq).
	LinkSeq uint64
}

// Snapshot is what Load reads: everything a broker needs to start.
type Snapshot struct {
	Sessions []StoredSession
	Retained []Message
	Wills    []Will
	// Orphans counts queue entries and inbound identifiers of sessions that
	// have no session record; Load leaves them in place.
	Orphans int
}

// CorruptError reports a record that does not decode.
type CorruptError struct {
	Key []byte
	Err error
}

// Error describes the record and what is wrong with it.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: record %s is corrupt: %v", describeKey(e.Key), e.Err)
}

// Unwrap returns the decoding error.
func (e *CorruptError) Unwrap() error { return e.Err }

// ErrCorrupt is matched by errors.Is for every *CorruptError.
var ErrCorrupt = errors.New("store: corrupt record")

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }
