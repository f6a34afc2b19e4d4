package run

import (
	"context"
	"hash/fnv"
	"sync/atomic"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/mqtt"
)

// upstream is one connector: one application on one network server, its
// connection, and its devices.
type upstream struct {
	rt     *Runtime
	name   string
	server campus.NetworkServer
	app    *campus.Application
	src    *source
	proto  protocol

	devices     []*device
	byNetworkID map[string]*device // by the device's id on the network server
	byEUI       map[connector.EUI64]*device

	stats upstreamStats
}

// upstreamStats are an upstream's counters that belong to no device.
type upstreamStats struct {
	failed [numReasons]atomic.Uint64 // messages of no known device
	// messages counts the messages received by event (up, join, ...).
	messages map[string]*atomic.Uint64
	other    atomic.Uint64 // messages of an event not in the map
	// downlinks counts downlink commands by result.
	downlinks [numDownlinkResults]atomic.Uint64
}

// protocol is what differs between network servers.
type protocol interface {
	// route returns the device a topic names, nil when none is known.
	route(topic string) *device
	// handle handles one message from the server.
	handle(ctx context.Context, j *job)
	// send sends a downlink to the server.
	send(ctx context.Context, d *device, dl *downlink) error
}

// countEvent counts a message of event ev.
func (u *upstream) countEvent(ev string) {
	if c := u.stats.messages[ev]; c != nil {
		c.Add(1)
	} else {
		u.stats.other.Add(1)
	}
}

// onMessage routes a message from the server to the worker of its device
// (so that each device's messages are handled in order), on the client's
// read goroutine.
func (u *upstream) onMessage(p *mqtt.Publish) {
	d := u.proto.route(p.Topic)
	var w int
	if d != nil {
		w = d.worker
	} else {
		h := fnv.New32a()
		h.Write([]byte(p.Topic))
		w = int(h.Sum32() % uint32(len(u.rt.workers)))
	}
	u.rt.submit(job{up: u, dev: d, topic: p.Topic, payload: p.Payload}, w)
}

// topicLevel returns level n (from 0) of a topic name without allocating.
func topicLevel(topic string, n int) string {
	start := 0
	for i := 0; i < len(topic); i++ {
		if topic[i] == '/' {
			if n == 0 {
				return topic[start:i]
			}
			n--
			start = i + 1
		}
	}
	if n == 0 {
		return topic[start:]
	}
	return ""
}
