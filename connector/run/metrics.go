package run

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/citymesh/citymesh/event"
)

// The connectors' metrics. Labels: server (tts or chirpstack),
// application (the campus model's id of the application), device (the
// campus model's id; "" for messages of no device of the model), reason,
// via, event, result, kind, state. Every device label value is a device of
// the campus model, so the number of series is bounded by the model.
var (
	descReceived = prometheus.NewDesc("citymesh_connector_uplinks_received_total",
		"Uplinks received from the network server, copies included.", []string{"server", "application", "device"}, nil)
	descDuplicate = prometheus.NewDesc("citymesh_connector_uplinks_duplicate_total",
		"Uplinks dropped as copies of one already handled (a second gateway, a redelivery).", []string{"server", "application", "device"}, nil)
	descDecoded = prometheus.NewDesc("citymesh_connector_uplinks_decoded_total",
		"Uplinks whose values were published, by where the values came from: server (the network server's decoded payload), codec (the device type's codec, run by the connector), normalized (The Things Stack's normalized payload).",
		[]string{"server", "application", "device", "via"}, nil)
	descFailed = prometheus.NewDesc("citymesh_connector_failures_total",
		"Messages that failed, by reason: parse (not the network server's format), unknown_device (not a device of the application in the campus model), codec (the payload was not decoded), publish (an event could not be published).",
		[]string{"server", "application", "device", "reason"}, nil)
	descMessages = prometheus.NewDesc("citymesh_connector_messages_total",
		"Messages received from the network server, by event (up, join, down/ack, status, ...).", []string{"server", "application", "event"}, nil)
	descDownlinks = prometheus.NewDesc("citymesh_connector_downlinks_total",
		"Downlink commands, by result: queued or refused by the connector; sent, acknowledged, not_acknowledged, failed as the network server reports.",
		[]string{"server", "application", "result"}, nil)
	descConnected = prometheus.NewDesc("citymesh_connector_connected",
		"1 while the connection to the network server is up.", []string{"server", "application"}, nil)
	descConnects = prometheus.NewDesc("citymesh_connector_connections_total",
		"Connections made to the network server.", []string{"server", "application"}, nil)
	descConnectFailures = prometheus.NewDesc("citymesh_connector_connection_failures_total",
		"Connection attempts to the network server that failed.", []string{"server", "application"}, nil)
	descPublished = prometheus.NewDesc("citymesh_connector_events_published_total",
		"Events published on the bus, by kind.", []string{"kind"}, nil)
	descRetries = prometheus.NewDesc("citymesh_connector_publish_retries_total",
		"Publishes retried because the bus refused them (a remote broker away).", nil, nil)
	descDevices = prometheus.NewDesc("citymesh_connector_devices",
		"Devices of the connectors' applications by state: online, offline, unknown (not heard since the connector started).", []string{"state"}, nil)
	descDedupe = prometheus.NewDesc("citymesh_connector_dedupe_devices",
		"Devices the deduplicator remembers uplinks of.", nil, nil)
)

// Collector returns a Prometheus collector of the connectors' metrics.
func (r *Runtime) Collector() prometheus.Collector { return collector{r} }

type collector struct{ r *Runtime }

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReceived, descDuplicate, descDecoded, descFailed, descMessages, descDownlinks,
		descConnected, descConnects, descConnectFailures, descPublished, descRetries, descDevices, descDedupe} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	k := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, u := range r.ups {
		srv, app := string(u.server), u.app.ID
		for _, d := range u.devices {
			id := d.dev.ID
			k(descReceived, d.stats.received.Load(), srv, app, id)
			k(descDuplicate, d.stats.duplicate.Load(), srv, app, id)
			for v := range numVias {
				k(descDecoded, d.stats.decoded[v].Load(), srv, app, id, viaNames[v])
			}
			for reason := range numReasons {
				k(descFailed, d.stats.failed[reason].Load(), srv, app, id, reasonNames[reason])
			}
		}
		for reason := range numReasons {
			k(descFailed, u.stats.failed[reason].Load(), srv, app, "", reasonNames[reason])
		}
		for ev, n := range u.stats.messages {
			k(descMessages, n.Load(), srv, app, ev)
		}
		k(descMessages, u.stats.other.Load(), srv, app, "other")
		for res := range numDownlinkResults {
			k(descDownlinks, u.stats.downlinks[res].Load(), srv, app, resultNames[res])
		}
		up := 0.0
		if u.src.connected.Load() {
			up = 1
		}
		g(descConnected, up, srv, app)
		k(descConnects, u.src.connects.Load(), srv, app)
		k(descConnectFailures, u.src.failures.Load(), srv, app)
	}
	for i, kind := range []event.Kind{event.KindMeasurement, event.KindUplink, event.KindStatus} {
		k(descPublished, r.stats.published[i].Load(), string(kind))
	}
	k(descRetries, r.stats.retries.Load())
	st := r.Stats()
	g(descDevices, float64(st.Online), "online")
	g(descDevices, float64(st.Offline), "offline")
	g(descDevices, float64(st.Unknown), "unknown")
	g(descDedupe, float64(r.dedupe.Stats().Devices))
}

// Stats is a summary of what the connectors did.
type Stats struct {
	// Received, Duplicates, Decoded count uplinks over all devices.
	Received, Duplicates, Decoded uint64
	// Failed counts failed messages by reason: parse, unknown_device,
	// codec, publish.
	Failed map[string]uint64
	// Published counts events published, by kind.
	Published map[event.Kind]uint64
	// Online, Offline and Unknown count the devices by state.
	Online, Offline, Unknown int
	// Connected counts the connections to network servers that are up.
	Connected int
}

// Stats returns the connectors' counters.
func (r *Runtime) Stats() Stats {
	st := Stats{Failed: make(map[string]uint64), Published: make(map[event.Kind]uint64)}
	for _, name := range reasonNames {
		st.Failed[name] = 0
	}
	for _, u := range r.ups {
		for reason := range numReasons {
			st.Failed[reasonNames[reason]] += u.stats.failed[reason].Load()
		}
		if u.src.connected.Load() {
			st.Connected++
		}
	}
	for _, d := range r.devices {
		st.Received += d.stats.received.Load()
		st.Duplicates += d.stats.duplicate.Load()
		for v := range numVias {
			st.Decoded += d.stats.decoded[v].Load()
		}
		for reason := range numReasons {
			st.Failed[reasonNames[reason]] += d.stats.failed[reason].Load()
		}
		d.mu.Lock()
		switch d.mu.state {
		case event.Online:
			st.Online++
		case event.Offline:
			st.Offline++
		default:
			st.Unknown++
		}
		d.mu.Unlock()
	}
	for i, kind := range []event.Kind{event.KindMeasurement, event.KindUplink, event.KindStatus} {
		st.Published[kind] = r.stats.published[i].Load()
	}
	return st
}
