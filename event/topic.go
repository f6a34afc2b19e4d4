package event

import (
	"fmt"
	"strings"
)

// Domain is the first topic level: which part of the city an event belongs
// to.
type Domain string

// The domains of the reference city.
const (
	// DomainEnergy holds meter readings (energy/{site}/meter/{meter}/reading).
	DomainEnergy Domain = "energy"
	// DomainBuilding holds building automation: rooms, building gateways
	// and devices on a campus site.
	DomainBuilding Domain = "building"
	// DomainVineyard holds the vineyards' LoRaWAN devices, gateways and
	// plots.
	DomainVineyard Domain = "vineyard"
	// DomainRobot holds patrol robots: positions, status, checks and
	// pictures.
	DomainRobot Domain = "robot"
)

// AssetKind is the third topic level: what kind of thing the asset is.
type AssetKind string

// The asset kinds of the campus model (package campus).
const (
	AssetBuilding AssetKind = "building"
	AssetRoom     AssetKind = "room"
	AssetMeter    AssetKind = "meter"
	AssetDevice   AssetKind = "device"
	AssetGateway  AssetKind = "gateway"
	AssetPlot     AssetKind = "plot"
	AssetRobot    AssetKind = "robot"
)

// Topic names one event stream: {domain}/{site}/{kind}/{asset}/{event},
// for example vineyard/wartberg/device/soil-probe-07/measurement or
// energy/campus/meter/el-b01-main/reading.
type Topic struct {
	Domain Domain
	// Site is the campus model's site id ("campus", "wartberg").
	Site string
	// Kind is the asset's kind.
	Kind AssetKind
	// Asset is the asset's id in the campus model.
	Asset string
	// Event names what happened: one of the topic event names (see
	// KindOf), "reading" for a meter's registers.
	Event string
}

// Topic event names: the last topic level. Each maps to one event kind
// (KindOf); a meter's values are a "reading", any other asset's a
// "measurement", both of kind measurement.
const (
	EventMeasurement = "measurement"
	EventReading     = "reading"
	EventStatus      = "status"
	EventUplink      = "uplink"
	EventPosition    = "position"
	EventCheck       = "check"
	EventPicture     = "picture"
)

// NewTopic returns the topic of an event about asset. It does not
// validate; Topic.Validate does.
func NewTopic(d Domain, site string, kind AssetKind, asset, event string) Topic {
	return Topic{Domain: d, Site: site, Kind: kind, Asset: asset, Event: event}
}

// String returns the topic name.
func (t Topic) String() string {
	return string(t.Domain) + "/" + t.Site + "/" + string(t.Kind) + "/" + t.Asset + "/" + t.Event
}

// EventKind returns the kind of the events published on t, false if the
// topic's event name is not one citymesh defines.
func (t Topic) EventKind() (Kind, bool) { return KindOf(t.Event) }

// Validate checks that every level is set and is a valid id (ValidID),
// so that the topic has exactly five levels and holds no wildcard.
func (t Topic) Validate() error {
	for _, l := range [...]struct{ name, v string }{
		{"domain", string(t.Domain)}, {"site", t.Site}, {"kind", string(t.Kind)}, {"asset", t.Asset}, {"event", t.Event},
	} {
		if err := ValidID(l.v); err != nil {
			return fmt.Errorf("topic %q: %s: %w", t.String(), l.name, err)
		}
	}
	return nil
}

// ParseTopic parses a topic name of the form
// {domain}/{site}/{kind}/{asset}/{event}. It checks the shape and the
// levels' characters, not that the domain, kind or event are ones citymesh
// defines (derived events may add their own).
func ParseTopic(name string) (Topic, error) {
	parts := strings.Split(name, "/")
	if len(parts) != 5 {
		return Topic{}, fmt.Errorf("topic %q: %d levels, want 5: {domain}/{site}/{kind}/{asset}/{event}", name, len(parts))
	}
	t := Topic{Domain: Domain(parts[0]), Site: parts[1], Kind: AssetKind(parts[2]), Asset: parts[3], Event: parts[4]}
	if err := t.Validate(); err != nil {
		return Topic{}, err
	}
	return t, nil
}

// Filter returns an MQTT topic filter over the five levels: an empty
// argument becomes the single-level wildcard +. Filter("vineyard", "", "",
// "", "measurement") is vineyard/+/+/+/measurement.
func Filter(domain Domain, site string, kind AssetKind, asset, event string) string {
	lv := [...]string{string(domain), site, string(kind), asset, event}
	for i, v := range lv {
		if v == "" {
			lv[i] = "+"
		}
	}
	return strings.Join(lv[:], "/")
}

// MaxIDLen is the longest id ValidID accepts.
const MaxIDLen = 64

// ValidID checks an id that is used as a topic level: a site, an asset, a
// domain or an event name. It is 1 to MaxIDLen characters of ASCII letters,
// digits, '.', '_' and '-', and starts with a letter or digit. So an id
// never holds a topic separator or wildcard and never starts with '$'.
func ValidID(s string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	if len(s) > MaxIDLen {
		return fmt.Errorf("%q is longer than %d characters", s, MaxIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%q: character %q at %d; want letters, digits, '.', '_' or '-', starting with a letter or digit", s, c, i)
		}
	}
	return nil
}

// MaxPointIDLen is the longest information point id ValidPointID accepts.
const MaxPointIDLen = 200

// ValidPointID checks an information point id: segments separated by '/',
// each made of ASCII letters, digits, '.', '_', ':' and '-' (so that an OBIS
// code such as 1-0:1.8.0 fits), at most MaxPointIDLen characters in all. The
// campus model derives point ids as {asset}/{key}, e.g.
// soil-probe-07/soilMoistureVwc or el-b01-main/1-0:1.8.0.
func ValidPointID(s string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	if len(s) > MaxPointIDLen {
		return fmt.Errorf("%q is longer than %d characters", s, MaxPointIDLen)
	}
	seg := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '-':
			seg++
		case c == '/':
			if seg == 0 {
				return fmt.Errorf("%q: empty segment at %d", s, i)
			}
			seg = 0
		default:
			return fmt.Errorf("%q: character %q at %d; want letters, digits, '.', '_', ':', '-' and '/' between segments", s, c, i)
		}
	}
	if seg == 0 {
		return fmt.Errorf("%q ends with '/'", s)
	}
	return nil
}
