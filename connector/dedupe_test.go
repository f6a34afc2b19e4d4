package connector_test

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/connector"
)

// clock is a settable time source for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func eui(n uint64) connector.EUI64 {
	var e connector.EUI64
	binary.BigEndian.PutUint64(e[:], n)
	return e
}

func TestDeduplicatorCases(t *testing.T) {
	t.Parallel()
	dev := eui(0xA84041000181C61F)
	other := eui(0xA840410001810000)
	sess1 := connector.SessionID([]byte("session-1"))
	sess2 := connector.SessionID([]byte("session-2"))
	addr1 := connector.DevAddr{0x26, 0x0B, 0x1A, 0x2C}
	addr2 := connector.DevAddr{0x26, 0x0B, 0x99, 0x01}
	type step struct {
		key   connector.UplinkKey
		after time.Duration // advance the clock before this step
		want  bool          // Seen's answer
	}
	k := func(d connector.EUI64, a connector.DevAddr, s uint64, f uint32) connector.UplinkKey {
		return connector.UplinkKey{DevEUI: d, DevAddr: a, Session: s, FCnt: f}
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"same uplink through two gateways", []step{
			{k(dev, addr1, sess1, 1842), 0, false},
			{k(dev, addr1, sess1, 1842), 30 * time.Millisecond, true},
		}},
		{"redelivered after a reconnect", []step{
			{k(dev, addr1, sess1, 7), 0, false},
			{k(dev, addr1, sess1, 8), time.Minute, false},
			{k(dev, addr1, sess1, 7), 10 * time.Minute, true},
			{k(dev, addr1, sess1, 8), 0, true},
		}},
		{"next frame counter is new", []step{
			{k(dev, addr1, sess1, 1), 0, false},
			{k(dev, addr1, sess1, 2), 0, false},
			{k(dev, addr1, sess1, 3), 0, false},
		}},
		{"rejoin: counter restarts in a new session", []step{
			{k(dev, addr1, sess1, 0), 0, false},
			{k(dev, addr1, sess1, 1), 0, false},
			{k(dev, addr2, sess2, 0), time.Second, false},
			{k(dev, addr2, sess2, 1), 0, false},
			{k(dev, addr2, sess2, 1), 0, true},
		}},
		{"rejoin with the same DevAddr but a new session key", []step{
			{k(dev, addr1, sess1, 0), 0, false},
			{k(dev, addr1, sess2, 0), 0, false},
		}},
		{"ChirpStack: no session key ID, a new DevAddr", []step{
			{k(dev, addr1, 0, 5), 0, false},
			{k(dev, addr2, 0, 5), 0, false},
			{k(dev, addr2, 0, 5), 0, true},
		}},
		{"32-bit counter wraps", []step{
			{k(dev, addr1, sess1, 4294967294), 0, false},
			{k(dev, addr1, sess1, 4294967295), 0, false},
			{k(dev, addr1, sess1, 0), 0, false},
			{k(dev, addr1, sess1, 1), 0, false},
			{k(dev, addr1, sess1, 4294967295), 0, true},
			{k(dev, addr1, sess1, 0), 0, true},
		}},
		{"two devices with the same counter", []step{
			{k(dev, addr1, sess1, 9), 0, false},
			{k(other, addr1, sess1, 9), 0, false},
		}},
		{"a copy after the window is new", []step{
			{k(dev, addr1, sess1, 3), 0, false},
			{k(dev, addr1, sess1, 3), 59 * time.Minute, true},
			{k(dev, addr1, sess1, 3), 2 * time.Minute, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Date(2026, 5, 1, 6, 0, 0, 0, time.UTC)}
			d := connector.NewDeduplicator(connector.DedupeConfig{Now: c.now})
			for i, s := range tt.steps {
				c.add(s.after)
				if got := d.Seen(s.key); got != s.want {
					t.Fatalf("step %d (%+v): Seen = %v, want %v", i, s.key, got, s.want)
				}
			}
		})
	}
}

func TestDeduplicatorForget(t *testing.T) {
	t.Parallel()
	d := connector.NewDeduplicator(connector.DedupeConfig{})
	k := connector.UplinkKey{DevEUI: eui(1), FCnt: 0}
	if d.Seen(k) {
		t.Fatal("first Seen = true")
	}
	d.Forget(k.DevEUI)
	if d.Seen(k) {
		t.Fatal("Seen after Forget = true, want a forgotten device's uplink to be new")
	}
	if st := d.Stats(); st.Devices != 1 || st.Duplicates != 0 {
		t.Fatalf("Stats = %+v", st)
	}
}

func TestDeduplicatorBounded(t *testing.T) {
	t.Parallel()
	const max = 640
	d := connector.NewDeduplicator(connector.DedupeConfig{MaxDevices: max, PerDevice: 4})
	for i := range 10 * max {
		for f := range 10 {
			d.Seen(connector.UplinkKey{DevEUI: eui(uint64(i)), FCnt: uint32(f)})
		}
	}
	st := d.Stats()
	if st.Devices > max {
		t.Fatalf("Devices = %d, want at most %d", st.Devices, max)
	}
	if st.Evicted == 0 {
		t.Fatal("nothing evicted")
	}
	// Per device, only the last PerDevice uplinks are remembered.
	last := eui(uint64(10*max - 1))
	if !d.Seen(connector.UplinkKey{DevEUI: last, FCnt: 9}) {
		t.Error("the last uplink of the last device is not remembered")
	}
	if d.Seen(connector.UplinkKey{DevEUI: last, FCnt: 0}) {
		t.Error("an uplink older than PerDevice is still remembered")
	}
	// The least recently heard devices were forgotten.
	if d.Seen(connector.UplinkKey{DevEUI: eui(0), FCnt: 9}) {
		t.Error("the first device is still remembered past MaxDevices")
	}
}

func TestDeduplicatorConcurrent(t *testing.T) {
	t.Parallel()
	d := connector.NewDeduplicator(connector.DedupeConfig{})
	const workers, devices, frames = 8, 50, 12 // frames < PerDevice
	var mu sync.Mutex
	firsts := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := 0
			for dev := range devices {
				for f := range frames {
					if !d.Seen(connector.UplinkKey{DevEUI: eui(uint64(dev)), FCnt: uint32(f)}) {
						n++
					}
				}
			}
			mu.Lock()
			firsts += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if firsts != devices*frames {
		t.Fatalf("%d uplinks taken as new, want exactly %d (each once)", firsts, devices*frames)
	}
}

func BenchmarkDeduplicator(b *testing.B) {
	b.Run("new", func(b *testing.B) {
		d := connector.NewDeduplicator(connector.DedupeConfig{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := uint64(0)
			for pb.Next() {
				i++
				d.Seen(connector.UplinkKey{DevEUI: eui(i % 5000), FCnt: uint32(i)})
			}
		})
	})
	b.Run("duplicate", func(b *testing.B) {
		d := connector.NewDeduplicator(connector.DedupeConfig{})
		k := connector.UplinkKey{DevEUI: eui(42), FCnt: 7}
		d.Seen(k)
		b.ReportAllocs()
		for b.Loop() {
			d.Seen(k)
		}
	})
}
