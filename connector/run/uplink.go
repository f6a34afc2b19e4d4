package run

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/event"
)

// uplink is an uplink as either network server reports it, in the terms
// of citymesh's events.
type uplink struct {
	key    connector.UplinkKey
	hasKey bool
	// id starts the events' ids: the same uplink always gets the same.
	id         string
	time       time.Time
	fPort      uint8
	payload    []byte
	decoded    map[string]any   // the network server's decoded payload
	normalized []map[string]any // The Things Stack's normalized payload
	// meta is the uplink event without its values' points.
	meta event.Uplink
}

// Status reasons the connectors add to events.md's.
const (
	// reasonDecodeFailed: the device sends, but its payload could not be
	// decoded (the codec failed, or nothing could decode it).
	reasonDecodeFailed = "decode_failed"
	// reasonDeviceStatus: the device answered the network server's
	// status request (ChirpStack's status event: battery, margin).
	reasonDeviceStatus = "device_status"
)

// handleUplink turns one uplink of d into its events: a status when the
// device's state changes, the measurement of its values (retained) and
// the uplink's radio metadata. A copy of an uplink already handled (the
// same uplink through a second gateway, or again after a reconnect) is
// counted and dropped.
func (r *Runtime) handleUplink(ctx context.Context, d *device, up *uplink) {
	u := d.up
	d.stats.received.Add(1)
	if up.hasKey && r.dedupe.Seen(up.key) {
		d.stats.duplicate.Add(1)
		return
	}
	values, via, decodeErr := r.values(ctx, d, up)
	if decodeErr != nil {
		r.fail(u, d, reasonCodec, "payload not decoded", "f_cnt", up.key.FCnt, "f_port", up.fPort, "err", decodeErr)
	}
	if len(values) > 0 {
		d.stats.decoded[via].Add(1)
	}
	reason := event.ReasonUplink
	detail := ""
	if decodeErr != nil {
		reason, detail = reasonDecodeFailed, truncate(decodeErr.Error(), 1024)
	}
	if st := r.heard(d, up.time, reason, detail, &up.meta.Source, false); st != nil {
		r.publish(ctx, u, d, d.statusTopic, d.status, st)
	}
	if len(values) > 0 {
		m := &event.Measurement{Header: event.Header{ID: up.id + "-m", Time: up.time, Asset: d.dev.ID, Source: up.meta.Source}, Values: values}
		r.publish(ctx, u, d, d.measurementTopic, d.measurement, m)
	}
	meta := &up.meta
	meta.Header = event.Header{ID: up.id + "-u", Time: up.time, Asset: d.dev.ID, Source: up.meta.Source}
	if len(values) > 0 {
		meta.Points = make([]string, len(values))
		for i := range values {
			meta.Points[i] = values[i].Point
		}
	}
	msg, err := message(d.uplinkTopic, d.uplink, meta)
	if err != nil {
		// The values went out; the radio metadata does not make an
		// uplink event (no frequency, say).
		r.fail(u, d, reasonParse, "uplink metadata refused", "f_cnt", up.key.FCnt, "err", err)
		return
	}
	r.publishMessage(ctx, u, d, msg, event.KindUplink)
}

// errNoDecoder is the failure of an uplink with a payload that nothing
// decodes.
var errNoDecoder = errors.New("no codec for the device type, and no decoded or normalized payload from the network server")

// values returns the values of d's points an uplink carries and how they
// were obtained: from the network server's decoded payload when it holds
// fields of the device type; else by the device type's codec from the raw
// payload; else from The Things Stack's normalized payload. A codec that
// fails, or a payload nothing decodes, is returned as the error, with the
// normalized payload's values if there are any.
func (r *Runtime) values(ctx context.Context, d *device, up *uplink) ([]event.Value, int, error) {
	var decodeErr error
	if up.decoded != nil {
		vals, _, err := r.model.DeviceValues(d.dev, up.decoded)
		if err == nil && len(vals) > 0 {
			r.noteBattery(d, vals)
			return vals, viaServer, nil
		}
		if err != nil {
			decodeErr = fmt.Errorf("decoded payload: %w", err)
		}
	}
	if d.codec != nil && len(up.payload) > 0 && up.fPort > 0 {
		out, err := r.decode(ctx, d, up)
		if err == nil {
			var vals []event.Value
			vals, _, err = r.model.DeviceValues(d.dev, out.Data)
			if err == nil && len(vals) > 0 {
				r.noteBattery(d, vals)
				return vals, viaCodec, nil
			}
			if err == nil {
				err = fmt.Errorf("codec %s decoded none of the fields of %s", d.codec.ID(), d.dev.Type.ID)
			}
		}
		decodeErr = err
	}
	if len(up.normalized) > 0 {
		if vals := r.normalizedValues(d, up.normalized); len(vals) > 0 {
			r.noteBattery(d, vals)
			return vals, viaNormalized, decodeErr
		}
	}
	if decodeErr == nil && len(up.payload) > 0 && up.fPort > 0 {
		decodeErr = errNoDecoder
		if up.decoded != nil {
			decodeErr = fmt.Errorf("the decoded payload has none of the fields of %s (%s), and no codec decodes it", d.dev.Type.ID, strings.Join(sortedKeys(up.decoded), ", "))
		}
	}
	return nil, 0, decodeErr
}

// decode runs d's codec on an uplink's payload, once a codec slot is free.
func (r *Runtime) decode(ctx context.Context, d *device, up *uplink) (*codec.UplinkOutput, error) {
	select {
	case r.codecSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-r.codecSlots }()
	return d.codec.DecodeUplink(ctx, codec.UplinkInput{Bytes: up.payload, FPort: up.fPort, RecvTime: up.time})
}

// noteBattery remembers the battery point's value for statuses.
func (r *Runtime) noteBattery(d *device, vals []event.Value) {
	bp := d.dev.ID + "/battery"
	for i := range vals {
		if vals[i].Point == bp {
			v := vals[i]
			d.mu.Lock()
			d.mu.battery = &v
			d.mu.Unlock()
			return
		}
	}
}

// heard records that d was heard at time t and returns the status to
// publish when its state changes: online after it was offline or unknown
// (reason uplink, or join), whenever decoding starts or stops failing
// (reason decode_failed, then uplink again), and when force is set (a
// join, news of the device's battery). A device that stays online and
// decodable gets no status per uplink: the status is retained, and says
// what is true until it changes.
func (r *Runtime) heard(d *device, t time.Time, reason, detail string, src *event.Source, force bool) *event.Status {
	now := r.clock.Now()
	d.mu.Lock()
	d.mu.since, d.mu.heard = now, true
	wasFailing := d.mu.reason == reasonDecodeFailed
	change := d.mu.state != event.Online || force || (reason == reasonDecodeFailed) != wasFailing
	var st *event.Status
	if change {
		d.mu.state, d.mu.reason = event.Online, reason
		st = event.NewStatus(d.dev.ID, t, *src, event.Online, reason)
		st.Detail = detail
		last := t
		st.LastSeen = &last
		st.Battery = d.mu.battery
	}
	d.mu.Unlock()
	if r.live != nil {
		r.live.schedule(d, now.Add(d.offlineAfter))
	}
	return st
}

// checkSilent declares d offline if it is still silent: the liveness
// timer found its deadline passed, and an uplink may have come in since.
func (r *Runtime) checkSilent(ctx context.Context, d *device) {
	now := r.clock.Now()
	d.mu.Lock()
	if d.mu.state == event.Offline || now.Before(d.mu.since.Add(d.offlineAfter)) {
		d.mu.Unlock()
		return
	}
	d.mu.state, d.mu.reason = event.Offline, event.ReasonSilent
	st := event.NewStatus(d.dev.ID, now, serviceSource, event.Offline, event.ReasonSilent)
	if d.mu.heard {
		last := d.mu.since
		st.LastSeen = &last
		st.Detail = "no uplink for " + d.offlineAfter.String() + fmt.Sprintf(" (%g expected intervals of %s)",
			float64(d.offlineAfter)/float64(d.dev.Interval), d.dev.Interval)
	} else {
		st.Detail = "no uplink since the connector started " + d.offlineAfter.String() + " ago"
	}
	st.Battery = d.mu.battery
	d.mu.Unlock()
	r.publish(ctx, d.up, d, d.statusTopic, d.status, st)
}

// batteryStep is how far a device's reported battery level must move, in
// percentage points, for a new device_status status: network servers may
// ask for the device's status often, and the retained status need not
// follow every point.
const batteryStep = 5

// deviceStatus publishes what a device said of itself (its battery, its
// link margin) as an online status: the first time, and again when its
// battery level moved by batteryStep or more since the last one.
func (r *Runtime) deviceStatus(ctx context.Context, d *device, t time.Time, src event.Source, detail string, batteryPct *float64) {
	d.mu.Lock()
	force := d.mu.reason != reasonDeviceStatus ||
		(batteryPct != nil) != (d.mu.statusBattery != nil) ||
		(batteryPct != nil && math.Abs(*batteryPct-*d.mu.statusBattery) >= batteryStep)
	if force {
		d.mu.statusBattery = batteryPct
	}
	if batteryPct != nil {
		// The battery point's value, where the point is a percentage.
		if p, ok := r.model.Point(d.dev.ID + "/battery"); ok && p.Unit == event.Percent {
			d.mu.battery = &event.Value{Point: p.ID, Quantity: p.Quantity, Value: *batteryPct, Unit: p.Unit}
		}
	}
	d.mu.Unlock()
	if st := r.heard(d, t, reasonDeviceStatus, detail, &src, force); st != nil {
		r.publish(ctx, d.up, d, d.statusTopic, d.status, st)
	}
}

// join handles a device's join: it starts a new session, so what the
// deduplicator remembers of the old one goes, and the device is online.
func (r *Runtime) join(ctx context.Context, d *device, t time.Time, src event.Source) {
	r.dedupe.Forget(d.eui)
	if st := r.heard(d, t, event.ReasonJoin, "", &src, true); st != nil {
		r.publish(ctx, d.up, d, d.statusTopic, d.status, st)
	}
}

// bestFirst sorts gateways best first (highest SNR, then highest RSSI), as
// the uplink event wants them.
func bestFirst(gws []event.GatewayRx) {
	slices.SortStableFunc(gws, func(a, b event.GatewayRx) int {
		switch {
		case a.SNRdB != b.SNRdB:
			if a.SNRdB > b.SNRdB {
				return -1
			}
			return 1
		case a.RSSIdBm != b.RSSIdBm:
			if a.RSSIdBm > b.RSSIdBm {
				return -1
			}
			return 1
		}
		return 0
	})
}

// setBest copies the best gateway into the source.
func setBest(src *event.Source, gws []event.GatewayRx) {
	if len(gws) == 0 {
		return
	}
	g := &gws[0]
	src.Gateway = g.ID
	rssi, snr := g.RSSIdBm, g.SNRdB
	src.RSSIdBm, src.SNRdB = &rssi, &snr
}

// validRx reports whether a gateway's signal is within what an uplink
// event accepts; a gateway that reports nonsense is left out.
func validRx(rssi, snr float64) bool {
	return rssi >= -200 && rssi <= 50 && snr >= -50 && snr <= 50
}

// eventID returns the id stem of an uplink's events.
func eventID(server string, k connector.UplinkKey) string {
	b := make([]byte, 0, 64)
	b = append(b, server...)
	b = append(b, ':')
	b = append(b, k.DevEUI.String()...)
	b = append(b, ':')
	b = strconv.AppendUint(b, k.Session, 16)
	b = append(b, ':')
	b = strconv.AppendUint(b, uint64(k.FCnt), 10)
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
