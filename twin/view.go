package twin

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
)

// PointState is an information point as the twin knows it: the campus
// model's description and its latest value. Value is set for numeric
// points, Text for a robot check's observation (and Value too when that is
// a number), Position for a robot's position; all three are empty until a
// value arrived.
type PointState struct {
	ID        string `json:"id"`
	Asset     string `json:"asset"`
	AssetKind string `json:"asset_kind"`
	Quantity  string `json:"quantity"`
	Unit      string `json:"unit"`
	Name      string `json:"name,omitempty"`
	Site      string `json:"site"`
	Tenant    string `json:"tenant,omitempty"`
	// Location is where the point measures, [longitude, latitude].
	Location orb.Point `json:"location"`
	// Topic is where its values are published.
	Topic    string     `json:"topic"`
	Value    *float64   `json:"value,omitempty"`
	Text     string     `json:"text,omitempty"`
	Position *orb.Point `json:"position,omitempty"`
	// Observed is the value's time (the event's, or the value's own);
	// Received when the twin received it.
	Observed time.Time `json:"observed,omitzero"`
	Received time.Time `json:"received,omitzero"`
	// Source is the event's source.
	Source *event.Source `json:"source,omitempty"`
}

// Liveness says whether an asset is heard from.
type Liveness struct {
	// LastSeen is the time of its newest event, LastReceived when the twin
	// received that.
	LastSeen     time.Time `json:"last_seen,omitzero"`
	LastReceived time.Time `json:"last_received,omitzero"`
	// ExpectedIntervalS is how often it is expected to publish, in
	// seconds; 0 for assets that publish only statuses (gateways) or
	// nothing themselves (buildings, plots).
	ExpectedIntervalS float64 `json:"expected_interval_s,omitempty"`
	// Silent: an expected interval is known and the asset was not heard
	// for SilentAfter of them (or never), or its latest status is offline.
	Silent bool `json:"silent"`
	// Status, Reason and StatusTime are its latest status event's.
	Status     string    `json:"status,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	StatusTime time.Time `json:"status_time,omitzero"`
}

// AssetState is an asset as the twin knows it.
type AssetState struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Name   string `json:"name,omitempty"`
	Site   string `json:"site"`
	Domain string `json:"domain"`
	Tenant string `json:"tenant,omitempty"`
	// Location is its position, [longitude, latitude]; Geometry its
	// outline (a building's footprint, a plot's area), as GeoJSON.
	Location  orb.Point         `json:"location"`
	Geometry  *geojson.Geometry `json:"geometry,omitempty"`
	Relations Relations         `json:"relations"`
	// Points are the ids of its information points.
	Points   []string `json:"points"`
	Liveness Liveness `json:"liveness"`
	// Attributes are what the model says of this kind of asset: a
	// room's floor and area, a meter's carrier, a device's type and
	// DevEUI, a plot's variety, a building's floors.
	Attributes map[string]any `json:"attributes,omitempty"`
}

// Point returns the state of point id.
func (s *State) Point(id string) (PointState, bool) {
	i, ok := s.byPoint[id]
	if !ok {
		return PointState{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.pointState(i), true
}

// pointState returns point i's state. s.mu is held.
func (s *State) pointState(i int32) PointState {
	e := &s.points[i]
	p := e.p
	ps := PointState{ID: p.ID, Asset: p.Asset, AssetKind: string(p.AssetKind), Quantity: p.Quantity, Unit: string(p.Unit),
		Name: p.Name, Site: p.Site, Tenant: p.Tenant, Location: p.Location, Topic: p.Topic.String()}
	if e.set {
		if e.numeric {
			v := e.value
			ps.Value = &v
		}
		ps.Text = e.text
		if e.hasPos {
			pos := e.pos
			ps.Position = &pos
		}
		ps.Observed, ps.Received, ps.Source = e.observed, e.received, e.source
	}
	return ps
}

// Asset returns the state of asset id at now (which decides liveness).
func (s *State) Asset(id string, now time.Time) (AssetState, bool) {
	i, ok := s.byAsset[id]
	if !ok {
		return AssetState{}, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.assetState(i, now), true
}

// assetState returns asset i's state. s.mu is held.
func (s *State) assetState(i int32, now time.Time) AssetState {
	e := &s.assets[i]
	a := e.a
	as := AssetState{ID: a.ID, Kind: string(a.Kind), Name: a.Name, Site: a.Site, Domain: string(a.Domain), Tenant: a.Tenant,
		Location: a.Location, Relations: e.related, Points: make([]string, len(e.points)), Liveness: e.liveness(now)}
	if e.geometry != nil {
		as.Geometry = geojson.NewGeometry(e.geometry)
	}
	for j, pi := range e.points {
		as.Points[j] = s.points[pi].p.ID
	}
	switch o := e.object.(type) {
	case *campus.Building:
		as.Attributes = map[string]any{"floors": o.Floors, "basements": o.Basements}
	case *campus.Room:
		as.Attributes = map[string]any{"floor": o.Floor, "type": o.Type}
		if o.AreaM2 > 0 {
			as.Attributes["area_m2"] = o.AreaM2
		}
	case *campus.Meter:
		as.Attributes = map[string]any{"carrier": string(o.Carrier)}
		if o.Type != "" {
			as.Attributes["type"] = o.Type
		}
	case *campus.Device:
		as.Attributes = map[string]any{"type": o.Type.ID, "dev_eui": o.DevEUI}
	case *campus.Plot:
		if o.Variety != "" {
			as.Attributes = map[string]any{"variety": o.Variety}
		}
	case *campus.Gateway:
		as.Attributes = map[string]any{"gateway_kind": string(o.GatewayKind)}
		if o.EUI != "" {
			as.Attributes["eui"] = o.EUI
		}
	}
	return as
}

// liveness returns the asset's liveness at now.
func (e *assetEntry) liveness(now time.Time) Liveness {
	l := Liveness{LastSeen: e.lastSeen, LastReceived: e.lastReceived, ExpectedIntervalS: e.interval.Seconds(),
		Status: string(e.status), Reason: e.reason, StatusTime: e.statusTime}
	if e.interval > 0 && (e.lastSeen.IsZero() || now.Sub(e.lastSeen) > SilentAfter*e.interval) {
		l.Silent = true
	}
	if e.status == event.Offline {
		l.Silent = true
	}
	return l
}

// appendPoint appends point i's state as JSON, as encoding/json would
// marshal its PointState, but without reflection: the latest state of ten
// thousand points is one response. srcs caches the sources' JSON, which the
// values of one event share. s.mu is held.
func (s *State) appendPoint(b []byte, i int32, srcs map[*event.Source][]byte) []byte {
	e := &s.points[i]
	p := e.p
	b = append(b, `{"id":`...)
	b = strconv.AppendQuote(b, p.ID)
	b = append(b, `,"asset":`...)
	b = strconv.AppendQuote(b, p.Asset)
	b = append(b, `,"asset_kind":`...)
	b = strconv.AppendQuote(b, string(p.AssetKind))
	b = append(b, `,"quantity":`...)
	b = strconv.AppendQuote(b, p.Quantity)
	b = append(b, `,"unit":`...)
	b = strconv.AppendQuote(b, string(p.Unit))
	if p.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
	}
	b = append(b, `,"site":`...)
	b = strconv.AppendQuote(b, p.Site)
	if p.Tenant != "" {
		b = append(b, `,"tenant":`...)
		b = strconv.AppendQuote(b, p.Tenant)
	}
	b = append(b, `,"location":`...)
	b = appendLonLat(b, p.Location)
	b = append(b, `,"topic":"`...)
	b = append(b, p.Topic.Domain...)
	b = append(b, '/')
	b = append(b, p.Topic.Site...)
	b = append(b, '/')
	b = append(b, p.Topic.Kind...)
	b = append(b, '/')
	b = append(b, p.Topic.Asset...)
	b = append(b, '/')
	b = append(b, p.Topic.Event...)
	b = append(b, '"')
	if e.set {
		if e.numeric {
			b = append(b, `,"value":`...)
			b = strconv.AppendFloat(b, e.value, 'g', -1, 64)
		}
		if e.text != "" {
			b = append(b, `,"text":`...)
			b = appendString(b, e.text)
		}
		if e.hasPos {
			b = append(b, `,"position":`...)
			b = appendLonLat(b, e.pos)
		}
		b = append(b, `,"observed":"`...)
		b = e.observed.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `","received":"`...)
		b = e.received.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
		if e.source != nil {
			js, ok := srcs[e.source]
			if !ok {
				js, _ = json.Marshal(e.source)
				srcs[e.source] = js
			}
			b = append(b, `,"source":`...)
			b = append(b, js...)
		}
	}
	return append(b, '}')
}

// appendLonLat appends [lon,lat].
func appendLonLat(b []byte, p orb.Point) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, p[0], 'g', -1, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, p[1], 'g', -1, 64)
	return append(b, ']')
}

// appendString appends s as a JSON string, as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	js, _ := json.Marshal(s)
	return append(b, js...)
}
