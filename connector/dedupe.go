package connector

import (
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"
)

// UplinkKey identifies one uplink of one end device in one session: the same
// uplink received by two gateways, or delivered again after a reconnect,
// has the same key. A device that rejoins starts a new session (a new
// session key ID at The Things Stack, usually a new DevAddr), so its frame
// counter starting again from zero does not collide with the old session's.
type UplinkKey struct {
	// DevEUI is the device's EUI.
	DevEUI EUI64
	// DevAddr is the session's device address (zero when unknown).
	DevAddr DevAddr
	// Session is SessionID of the session key ID the network server gives
	// (The Things Stack's session_key_id), or zero when it gives none
	// (ChirpStack's events carry only the DevAddr).
	Session uint64
	// FCnt is the uplink frame counter (FCntUp), 32 bits as the network
	// server reconstructs it.
	FCnt uint32
}

// SessionID condenses a session key ID (an opaque byte string of up to 2048
// bytes issued by the Join Server) into the 64 bits an UplinkKey carries:
// FNV-1a, the same in every process. An empty ID is 0.
func SessionID(sessionKeyID []byte) uint64 {
	if len(sessionKeyID) == 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write(sessionKeyID)
	return h.Sum64()
}

// DedupeConfig bounds a Deduplicator. Its zero value is usable: every zero
// field takes the default written beside it.
type DedupeConfig struct {
	// MaxDevices is how many devices are remembered at most; past it the
	// least recently heard device is forgotten. Default 100000.
	MaxDevices int `yaml:"max_devices"`
	// PerDevice is how many recent uplinks are remembered per device.
	// Default 16: far more than the copies one uplink produces (one per
	// gateway that heard it, plus a redelivery after a reconnect).
	PerDevice int `yaml:"per_device"`
	// Window is how long an uplink is remembered: a copy that arrives later
	// is taken for a new uplink. Default 1 hour.
	Window time.Duration `yaml:"window"`
	// Now is the clock; nil is time.Now. Tests set it.
	Now func() time.Time `yaml:"-"`
}

const (
	defaultMaxDevices = 100000
	defaultPerDevice  = 16
	defaultWindow     = time.Hour
	dedupeShards      = 64
)

// Deduplicator remembers recent uplinks per device, so that each is handled
// once. It is safe for concurrent use. Memory is bounded by MaxDevices ×
// PerDevice entries of 32 bytes plus one map entry per device (about 1 KiB
// per device with the defaults, some 100 MiB for 100000 devices at most).
//
// It is not replay protection: it compares keys for equality only, never
// orders frame counters, so a counter that wraps from 2^32-1 to 0 is as new
// as any other, and an old frame counter from the current session is new
// unless it is among the device's last PerDevice uplinks within Window.
type Deduplicator struct {
	perDevice int
	window    int64
	now       func() time.Time
	shards    [dedupeShards]dedupeShard

	duplicates atomic.Uint64
	evicted    atomic.Uint64
}

// dedupeShard is one lock's share of the devices, with its own LRU order.
type dedupeShard struct {
	mu struct {
		sync.Mutex
		devices map[EUI64]*deviceWindow
		// head is the most recently heard device, tail the least.
		head, tail *deviceWindow
		max        int
	}
}

// deviceWindow is one device's recent uplinks, a ring, and its place in the
// shard's LRU list.
type deviceWindow struct {
	eui        EUI64
	prev, next *deviceWindow
	ring       []seenUplink
	pos        int
}

// seenUplink is one remembered uplink.
type seenUplink struct {
	at      int64 // unix nanoseconds when first seen; 0: an empty slot
	session uint64
	fcnt    uint32
	addr    DevAddr
}

// NewDeduplicator returns a Deduplicator bounded by cfg.
func NewDeduplicator(cfg DedupeConfig) *Deduplicator {
	if cfg.MaxDevices <= 0 {
		cfg.MaxDevices = defaultMaxDevices
	}
	if cfg.PerDevice <= 0 {
		cfg.PerDevice = defaultPerDevice
	}
	if cfg.Window <= 0 {
		cfg.Window = defaultWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Deduplicator{perDevice: cfg.PerDevice, window: int64(cfg.Window), now: cfg.Now}
	perShard := (cfg.MaxDevices + dedupeShards - 1) / dedupeShards
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.devices = make(map[EUI64]*deviceWindow)
		s.mu.max = perShard
	}
	return d
}

// shard returns the shard that holds eui's device.
func (d *Deduplicator) shard(eui EUI64) *dedupeShard {
	// The low bytes of a DevEUI vary most (the high bytes are the OUI).
	return &d.shards[(eui[7]^eui[5]^eui[3])%dedupeShards]
}

// Seen reports whether the uplink k was already seen within the window, and
// remembers it if not: the first call for a key returns false, later calls
// within the window true.
func (d *Deduplicator) Seen(k UplinkKey) bool {
	now := d.now().UnixNano()
	s := d.shard(k.DevEUI)
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.mu.devices[k.DevEUI]
	if w == nil {
		w = s.newWindow(k.DevEUI, d.perDevice, &d.evicted)
	} else {
		s.toFront(w)
		for i := range w.ring {
			e := &w.ring[i]
			if e.at != 0 && e.fcnt == k.FCnt && e.session == k.Session && e.addr == k.DevAddr && now-e.at < d.window {
				d.duplicates.Add(1)
				return true
			}
		}
	}
	w.ring[w.pos] = seenUplink{at: now, session: k.Session, fcnt: k.FCnt, addr: k.DevAddr}
	w.pos = (w.pos + 1) % len(w.ring)
	return false
}

// Forget drops everything remembered of a device, for example when it
// joins again and starts a new session.
func (d *Deduplicator) Forget(eui EUI64) {
	s := d.shard(eui)
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.mu.devices[eui]; w != nil {
		s.unlink(w)
		delete(s.mu.devices, eui)
	}
}

// DedupeStats counts what a Deduplicator did.
type DedupeStats struct {
	// Devices is how many devices are remembered now.
	Devices int
	// Duplicates is how many uplinks Seen recognised as seen before.
	Duplicates uint64
	// Evicted is how many devices were forgotten to stay within MaxDevices.
	Evicted uint64
}

// Stats returns the Deduplicator's counters.
func (d *Deduplicator) Stats() DedupeStats {
	st := DedupeStats{Duplicates: d.duplicates.Load(), Evicted: d.evicted.Load()}
	for i := range d.shards {
		s := &d.shards[i]
		s.mu.Lock()
		st.Devices += len(s.mu.devices)
		s.mu.Unlock()
	}
	return st
}

// newWindow adds a device at the front, evicting the least recently heard
// device when the shard is full (and reusing its memory). s.mu is held.
func (s *dedupeShard) newWindow(eui EUI64, perDevice int, evicted *atomic.Uint64) *deviceWindow {
	var w *deviceWindow
	if len(s.mu.devices) >= s.mu.max && s.mu.tail != nil {
		w = s.mu.tail
		s.unlink(w)
		delete(s.mu.devices, w.eui)
		evicted.Add(1)
		clear(w.ring)
		w.pos = 0
	} else {
		w = &deviceWindow{ring: make([]seenUplink, perDevice)}
	}
	w.eui = eui
	s.mu.devices[eui] = w
	s.pushFront(w)
	return w
}

// toFront moves w to the front of the LRU list. s.mu is held.
func (s *dedupeShard) toFront(w *deviceWindow) {
	if s.mu.head == w {
		return
	}
	s.unlink(w)
	s.pushFront(w)
}

// pushFront puts an unlinked w at the front. s.mu is held.
func (s *dedupeShard) pushFront(w *deviceWindow) {
	w.prev, w.next = nil, s.mu.head
	if s.mu.head != nil {
		s.mu.head.prev = w
	}
	s.mu.head = w
	if s.mu.tail == nil {
		s.mu.tail = w
	}
}

// unlink takes w out of the LRU list. s.mu is held.
func (s *dedupeShard) unlink(w *deviceWindow) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		s.mu.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		s.mu.tail = w.prev
	}
	w.prev, w.next = nil, nil
}
