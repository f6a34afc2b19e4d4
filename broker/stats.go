package broker

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats holds the broker's counters. They are updated with atomic operations
// on the message path and read by $SYS and the Prometheus collector.
type Stats struct {
	connects, disconnects atomic.Uint64
	msgsIn, msgsOut       atomic.Uint64
	bytesIn, bytesOut     atomic.Uint64
	protocolErrors        atomic.Uint64
	dropQueueFull         atomic.Uint64
	dropOffline           atomic.Uint64
	dropExpired           atomic.Uint64
	dropTooLarge          atomic.Uint64
	dropNoShareMember     atomic.Uint64
	willsPublished        atomic.Uint64
	sessionsExpired       atomic.Uint64
	storeErrors           atomic.Uint64
	storeCorrupt          atomic.Uint64
	storeCommits          atomic.Uint64
	storeWrites           atomic.Uint64
	storeCancelled        atomic.Uint64
	dropNotAuthorized     atomic.Uint64
	meshLoops             atomic.Uint64 // messages that came back through a bridge to their origin
	refused               refusals
	denied                [3]atomic.Uint64 // ACL denials: publish, subscribe, receive
	throttled             atomic.Uint64
}

// refusals counts refused connections by reason.
type refusals struct {
	badCredentials, notAuthorized, quota, quotaPerAddress, rate, backoff atomic.Uint64
}

// count records a refusal by the limit's name (see guard.admit).
func (r *refusals) count(reason string) {
	switch reason {
	case "bad_credentials":
		r.badCredentials.Add(1)
	case "not_authorized":
		r.notAuthorized.Add(1)
	case "connections":
		r.quota.Add(1)
	case "connections_per_address":
		r.quotaPerAddress.Add(1)
	case "connect_rate":
		r.rate.Add(1)
	case "login_backoff":
		r.backoff.Add(1)
	}
}

// StatsSnapshot is a point-in-time copy of the broker's counters and gauges.
type StatsSnapshot struct {
	Uptime          time.Duration
	Clients         int // connected clients
	Parked          int // connected clients idle in the poller, without a goroutine
	Sessions        int // sessions, connected or not
	Subscriptions   int
	Retained        int
	Queued          int // messages waiting in session queues, in memory or in the store
	Inflight        int // messages sent and not yet acknowledged
	Stored          int // QoS 1 and 2 messages of durable sessions in the store (queued and inflight)
	Connects        uint64
	Disconnects     uint64
	MessagesIn      uint64
	MessagesOut     uint64
	BytesIn         uint64
	BytesOut        uint64
	ProtocolErrors  uint64
	Dropped         map[string]uint64 // by reason
	WillsPublished  uint64
	SessionsExpired uint64
	StoreErrors     uint64
	StoreCorrupt    uint64 // records found unreadable
	StoreCommits    uint64 // batches committed (each one fsync in the default sync mode)
	StoreWrites     uint64 // writes in those batches
	// StoreCancelled counts queue entries written and withdrawn again in
	// the same open batch, before they reached the store: their receiver
	// acknowledged them first (its store entry and the deletion both
	// skipped).
	StoreCancelled uint64
	// Refused counts refused connections by reason: bad_credentials,
	// not_authorized, connections, connections_per_address, connect_rate,
	// login_backoff.
	Refused map[string]uint64
	// Denied counts what the access control refused, by action: publish,
	// subscribe, receive.
	Denied map[string]uint64
	// Throttled counts the times a client was slowed to its publish limits.
	Throttled uint64
}

func (st *Stats) snapshot(b *Broker) StatsSnapshot {
	s := StatsSnapshot{
		Uptime:          time.Since(b.start),
		Subscriptions:   b.index.Len(),
		Retained:        b.ret.len(),
		Connects:        st.connects.Load(),
		Disconnects:     st.disconnects.Load(),
		MessagesIn:      st.msgsIn.Load(),
		MessagesOut:     st.msgsOut.Load(),
		BytesIn:         st.bytesIn.Load(),
		BytesOut:        st.bytesOut.Load(),
		ProtocolErrors:  st.protocolErrors.Load(),
		WillsPublished:  st.willsPublished.Load(),
		SessionsExpired: st.sessionsExpired.Load(),
		StoreErrors:     st.storeErrors.Load(),
		StoreCorrupt:    st.storeCorrupt.Load(),
		StoreCommits:    st.storeCommits.Load(),
		StoreWrites:     st.storeWrites.Load(),
		StoreCancelled:  st.storeCancelled.Load(),
		Dropped: map[string]uint64{
			"queue_full":       st.dropQueueFull.Load(),
			"offline_qos0":     st.dropOffline.Load(),
			"expired":          st.dropExpired.Load(),
			"too_large":        st.dropTooLarge.Load(),
			"no_shared_member": st.dropNoShareMember.Load(),
			"not_authorized":   st.dropNotAuthorized.Load(),
			"mesh_loop":        st.meshLoops.Load(),
		},
		Refused: map[string]uint64{
			"bad_credentials":         st.refused.badCredentials.Load(),
			"not_authorized":          st.refused.notAuthorized.Load(),
			"connections":             st.refused.quota.Load(),
			"connections_per_address": st.refused.quotaPerAddress.Load(),
			"connect_rate":            st.refused.rate.Load(),
			"login_backoff":           st.refused.backoff.Load(),
		},
		Denied: map[string]uint64{
			"publish":   st.denied[0].Load(),
			"subscribe": st.denied[1].Load(),
			"receive":   st.denied[2].Load(),
		},
		Throttled: st.throttled.Load(),
	}
	s.Parked = b.poller.count()
	b.mu.Lock()
	sessions := make([]*session, 0, len(b.sessions))
	for _, x := range b.sessions {
		sessions = append(sessions, x)
	}
	s.Sessions = len(sessions)
	b.mu.Unlock()
	for _, x := range sessions {
		x.mu.Lock()
		if x.out != nil {
			s.Clients++
		}
		s.Queued += x.queue.n
		s.Inflight += len(x.inflight)
		if x.persist {
			s.Stored += x.storedN
			if x.spilled {
				// Entries in the store only: not in memory, not inflight.
				s.Queued += max(0, x.storedN-x.queue.n-len(x.inflight))
			}
		}
		x.mu.Unlock()
	}
	return s
}

// sysLoop publishes $SYS/broker/... statistics as retained messages every
// SysInterval. Topics starting with '$' are not matched by wildcards at the
// first level [MQTT-4.7.2-1], so only clients that ask for $SYS/# get them.
func (b *Broker) sysLoop() {
	t := time.NewTicker(b.opts.SysInterval)
	defer t.Stop()
	b.publishSys()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.publishSys()
		}
	}
}

func (b *Broker) publishSys() {
	s := b.Stats()
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int) string { return strconv.Itoa(v) }
	var dropped uint64
	for _, v := range s.Dropped {
		dropped += v
	}
	values := []struct{ topic, value string }{
		{"$SYS/broker/version", "citymesh " + Version},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(s.Uptime/time.Second), 10) + " seconds"},
		{"$SYS/broker/clients/connected", i(s.Clients)},
		{"$SYS/broker/clients/total", i(s.Sessions)},
		{"$SYS/broker/subscriptions/count", i(s.Subscriptions)},
		{"$SYS/broker/retained messages/count", i(s.Retained)},
		{"$SYS/broker/messages/received", u(s.MessagesIn)},
		{"$SYS/broker/messages/sent", u(s.MessagesOut)},
		{"$SYS/broker/messages/dropped", u(dropped)},
		{"$SYS/broker/messages/queued", i(s.Queued)},
		{"$SYS/broker/messages/inflight", i(s.Inflight)},
		{"$SYS/broker/bytes/received", u(s.BytesIn)},
		{"$SYS/broker/bytes/sent", u(s.BytesOut)},
	}
	for _, v := range values {
		b.publishInternal(&Message{Topic: v.topic, Payload: []byte(v.value), Retain: true})
	}
}

// publishInternal publishes a message the broker makes itself.
func (b *Broker) publishInternal(m *Message) { b.publish(m) }

// Collector returns a Prometheus collector of the broker's metrics.
func (b *Broker) Collector() prometheus.Collector { return &collector{b: b} }

type collector struct{ b *Broker }

var (
	descClients     = prometheus.NewDesc("citymesh_clients_connected", "Connected MQTT clients.", nil, nil)
	descParked      = prometheus.NewDesc("citymesh_clients_parked", "Connected clients idle without a reader goroutine.", nil, nil)
	descSessions    = prometheus.NewDesc("citymesh_sessions", "Sessions held by the broker, connected or not.", nil, nil)
	descSubs        = prometheus.NewDesc("citymesh_subscriptions", "Subscriptions in the index.", nil, nil)
	descRetained    = prometheus.NewDesc("citymesh_retained_messages", "Retained messages.", nil, nil)
	descQueued      = prometheus.NewDesc("citymesh_queued_messages", "Messages waiting in session queues.", nil, nil)
	descInflight    = prometheus.NewDesc("citymesh_inflight_messages", "Messages sent and not yet acknowledged.", nil, nil)
	descConnects    = prometheus.NewDesc("citymesh_connections_total", "Network connections accepted.", nil, nil)
	descMsgsIn      = prometheus.NewDesc("citymesh_messages_received_total", "PUBLISH packets received from clients.", nil, nil)
	descMsgsOut     = prometheus.NewDesc("citymesh_messages_sent_total", "PUBLISH packets sent to clients.", nil, nil)
	descBytesIn     = prometheus.NewDesc("citymesh_payload_bytes_received_total", "Payload bytes received.", nil, nil)
	descBytesOut    = prometheus.NewDesc("citymesh_payload_bytes_sent_total", "Payload bytes sent.", nil, nil)
	descProtoErrs   = prometheus.NewDesc("citymesh_protocol_errors_total", "Connections closed for a protocol violation.", nil, nil)
	descDropped     = prometheus.NewDesc("citymesh_messages_dropped_total", "Messages not delivered to a session, by reason.", []string{"reason"}, nil)
	descWills       = prometheus.NewDesc("citymesh_wills_published_total", "Will messages published.", nil, nil)
	descExpiredSess = prometheus.NewDesc("citymesh_sessions_expired_total", "Sessions ended by their expiry interval.", nil, nil)
	descStoreErrs   = prometheus.NewDesc("citymesh_store_errors_total", "Failed store operations.", nil, nil)
	descStored      = prometheus.NewDesc("citymesh_stored_messages", "QoS 1 and 2 messages of durable sessions held in the store.", nil, nil)
	descCorrupt     = prometheus.NewDesc("citymesh_store_corrupt_records_total", "Store records found unreadable.", nil, nil)
	descCommits     = prometheus.NewDesc("citymesh_store_commits_total", "Batches committed to the store (group commits).", nil, nil)
	descWrites      = prometheus.NewDesc("citymesh_store_writes_total", "Writes committed to the store.", nil, nil)
	descCancelled   = prometheus.NewDesc("citymesh_store_writes_cancelled_total", "Queue entries acknowledged by their receiver before their batch was committed, and so never written.", nil, nil)
	descRefused     = prometheus.NewDesc("citymesh_connections_refused_total", "Connections refused, by reason.", []string{"reason"}, nil)
	descDenied      = prometheus.NewDesc("citymesh_acl_denied_total", "Actions the access control refused, by action.", []string{"action"}, nil)
	descThrottled   = prometheus.NewDesc("citymesh_publish_throttled_total", "Times a client was slowed down to its publish rate or bandwidth limit.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClients, descParked, descSessions, descSubs, descRetained, descQueued, descInflight,
		descConnects, descMsgsIn, descMsgsOut, descBytesIn, descBytesOut, descProtoErrs, descDropped, descWills, descExpiredSess, descStoreErrs,
		descStored, descCorrupt, descCommits, descWrites, descCancelled, descRefused, descDenied, descThrottled} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	g := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	k := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	g(descClients, s.Clients)
	g(descParked, s.Parked)
	g(descSessions, s.Sessions)
	g(descSubs, s.Subscriptions)
	g(descRetained, s.Retained)
	g(descQueued, s.Queued)
	g(descInflight, s.Inflight)
	k(descConnects, s.Connects)
	k(descMsgsIn, s.MessagesIn)
	k(descMsgsOut, s.MessagesOut)
	k(descBytesIn, s.BytesIn)
	k(descBytesOut, s.BytesOut)
	k(descProtoErrs, s.ProtocolErrors)
	k(descWills, s.WillsPublished)
	k(descExpiredSess, s.SessionsExpired)
	k(descStoreErrs, s.StoreErrors)
	g(descStored, s.Stored)
	k(descCorrupt, s.StoreCorrupt)
	k(descCommits, s.StoreCommits)
	k(descWrites, s.StoreWrites)
	k(descCancelled, s.StoreCancelled)
	for reason, v := range s.Dropped {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(v), reason)
	}
	for reason, v := range s.Refused {
		ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(v), reason)
	}
	for action, v := range s.Denied {
		ch <- prometheus.MustNewConstMetric(descDenied, prometheus.CounterValue, float64(v), action)
	}
	k(descThrottled, s.Throttled)
}
