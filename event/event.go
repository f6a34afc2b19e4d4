package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Kind is a kind of event; each has one Go type, one JSON schema
// (schema/{kind}.schema.json) and a fixed publishing policy.
type Kind string

// The event kinds.
const (
	// KindMeasurement: values of information points (*Measurement).
	KindMeasurement Kind = "measurement"
	// KindStatus: an asset went online or offline, with the reason and
	// battery (*Status).
	KindStatus Kind = "status"
	// KindUplink: the radio metadata of one LoRaWAN uplink (*Uplink).
	KindUplink Kind = "uplink"
	// KindPosition: where a robot is (*Position).
	KindPosition Kind = "position"
	// KindCheck: what a robot checked and saw (*Check).
	KindCheck Kind = "check"
	// KindPicture: a reference to a picture stored elsewhere (*Picture).
	KindPicture Kind = "picture"
)

// Kinds returns every event kind, in a fixed order.
func Kinds() []Kind {
	return []Kind{KindMeasurement, KindStatus, KindUplink, KindPosition, KindCheck, KindPicture}
}

// KindOf returns the kind of the events published under a topic event
// name: "measurement" and "reading" are measurements, "status", "uplink",
// "position", "check" and "picture" are their own kinds.
func KindOf(eventName string) (Kind, bool) {
	switch eventName {
	case EventMeasurement, EventReading:
		return KindMeasurement, true
	case EventStatus:
		return KindStatus, true
	case EventUplink:
		return KindUplink, true
	case EventPosition:
		return KindPosition, true
	case EventCheck:
		return KindCheck, true
	case EventPicture:
		return KindPicture, true
	}
	return "", false
}

// Event is one event of any kind: *Measurement, *Status, *Uplink,
// *Position, *Check or *Picture.
type Event interface {
	// Kind returns the event's kind.
	Kind() Kind
	// Validate checks the event against the rules of its kind, the same
	// rules as its JSON schema. Errors wrap ErrInvalid.
	Validate() error
	// Head returns the fields every event has.
	Head() *Header
}

// ErrInvalid is wrapped by every error that says an event breaks the rules
// of its kind.
var ErrInvalid = errors.New("invalid event")

// invalid returns an error wrapping ErrInvalid: "event measurement:
// values[0].unit: ...".
func invalid(k Kind, field, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return fmt.Errorf("%w: %s: %s", ErrInvalid, k, msg)
}

// Header holds what every event has: when, about which asset, where it
// came from, and an optional id. Each event type embeds it.
type Header struct {
	// ID, when set, identifies the event uniquely among those of its
	// source (the CloudEvents id); republishing the same event keeps it.
	// At most 128 characters.
	ID string `json:"id,omitempty"`
	// Time is when the event happened (measured, observed, received by the
	// network server), RFC 3339 in JSON. Required.
	Time time.Time `json:"time"`
	// Asset is the id of the asset the event is about, as in the campus
	// model and the topic. Required.
	Asset string `json:"asset"`
	// Source says where the event came from. Required.
	Source Source `json:"source"`
}

// Head returns h; every event type gets it by embedding Header.
func (h *Header) Head() *Header { return h }

func (h *Header) validate(k Kind) error {
	if len(h.ID) > 128 {
		return invalid(k, "id", "longer than 128 characters")
	}
	if h.Time.IsZero() {
		return invalid(k, "time", "missing")
	}
	if y := h.Time.Year(); y < 1970 || y > 9999 {
		return invalid(k, "time", "year %d is not 1970..9999", y)
	}
	if err := ValidID(h.Asset); err != nil {
		return invalid(k, "asset", "%v", err)
	}
	return h.Source.validate(k)
}

// SourceType says what produced an event.
type SourceType string

// Source types.
const (
	// SourceLoRaWAN: a LoRaWAN network server's uplink, through a
	// connector (The Things Stack or ChirpStack).
	SourceLoRaWAN SourceType = "lorawan"
	// SourceBuilding: a building automation gateway publishing directly.
	SourceBuilding SourceType = "building"
	// SourceRobot: a robot publishing directly.
	SourceRobot SourceType = "robot"
	// SourceService: a citymesh service or another program.
	SourceService SourceType = "service"
	// SourceSimulator: the campus simulator publishing directly.
	SourceSimulator SourceType = "simulator"
)

// Network servers a LoRaWAN source names.
const (
	NetworkServerTTS        = "tts"        // The Things Stack v3 (The Things Network)
	NetworkServerChirpStack = "chirpstack" // ChirpStack v4
)

// Source says where an event came from. Which fields are set depends on
// Type: a LoRaWAN source names the network server, the application and
// the device on it, the DevEUI and frame counter, and the best gateway
// with its signal; a building source names the building gateway; a
// service or simulator source names the program.
type Source struct {
	Type SourceType `json:"type"`
	// Simulated marks events that describe no real device, even when
	// they came the whole way through a network server.
	Simulated bool `json:"simulated,omitempty"`

	// NetworkServer is "tts" or "chirpstack" (LoRaWAN only).
	NetworkServer string `json:"network_server,omitempty"`
	// Tenant is the tenant on the network server: "ttn" on The Things
	// Network, a UUID on ChirpStack. Optional.
	Tenant string `json:"tenant,omitempty"`
	// Application is the application id on the network server (a UUID on
	// ChirpStack).
	Application string `json:"application,omitempty"`
	// DeviceID is the device's id on the network server (The Things
	// Stack's device_id, ChirpStack's device name).
	DeviceID string `json:"device_id,omitempty"`
	// DevEUI is the device's EUI-64: 16 upper-case hex digits.
	DevEUI string `json:"dev_eui,omitempty"`
	// FCnt is the uplink frame counter (FCntUp).
	FCnt *uint32 `json:"f_cnt,omitempty"`
	// Gateway is the gateway the event came through: for LoRaWAN the
	// gateway with the best signal, for a building the building gateway's
	// id.
	Gateway string `json:"gateway,omitempty"`
	// RSSIdBm and SNRdB are the best gateway's signal (LoRaWAN only).
	RSSIdBm *float64 `json:"rssi_dbm,omitempty"`
	SNRdB   *float64 `json:"snr_db,omitempty"`

	// Service names the program for service and simulator sources
	// ("citymesh-sim").
	Service string `json:"service,omitempty"`
}

func (s *Source) validate(k Kind) error {
	const f = "source"
	str := func(name, v string, max int) error {
		if v == "" {
			return invalid(k, f+"."+name, "missing for a %s source", s.Type)
		}
		if len(v) > max {
			return invalid(k, f+"."+name, "longer than %d characters", max)
		}
		return nil
	}
	lorawan := s.Type == SourceLoRaWAN
	switch s.Type {
	case SourceLoRaWAN:
		if s.NetworkServer != NetworkServerTTS && s.NetworkServer != NetworkServerChirpStack {
			return invalid(k, f+".network_server", "%q, want tts or chirpstack", s.NetworkServer)
		}
		if err := str("application", s.Application, 128); err != nil {
			return err
		}
		if err := str("device_id", s.DeviceID, 128); err != nil {
			return err
		}
		if !validEUI(s.DevEUI) {
			return invalid(k, f+".dev_eui", "%q is not 16 upper-case hex digits", s.DevEUI)
		}
		if s.FCnt == nil {
			return invalid(k, f+".f_cnt", "missing for a lorawan source")
		}
		if len(s.Tenant) > 128 || len(s.Gateway) > 128 {
			return invalid(k, f, "tenant or gateway longer than 128 characters")
		}
		if s.RSSIdBm != nil && !inRange(*s.RSSIdBm, -200, 50) {
			return invalid(k, f+".rssi_dbm", "%v is not -200..50", *s.RSSIdBm)
		}
		if s.SNRdB != nil && !inRange(*s.SNRdB, -50, 50) {
			return invalid(k, f+".snr_db", "%v is not -50..50", *s.SNRdB)
		}
	case SourceBuilding:
		if err := str("gateway", s.Gateway, 128); err != nil {
			return err
		}
	case SourceRobot:
	case SourceService, SourceSimulator:
		if err := str("service", s.Service, 128); err != nil {
			return err
		}
	case "":
		return invalid(k, f+".type", "missing")
	default:
		return invalid(k, f+".type", "%q, want lorawan, building, robot, service or simulator", s.Type)
	}
	if !lorawan && (s.NetworkServer != "" || s.Application != "" || s.DeviceID != "" || s.DevEUI != "" || s.FCnt != nil || s.RSSIdBm != nil || s.SNRdB != nil || s.Tenant != "") {
		return invalid(k, f, "network_server, tenant, application, device_id, dev_eui, f_cnt, rssi_dbm and snr_db belong to lorawan sources only")
	}
	if s.Type != SourceService && s.Type != SourceSimulator && s.Service != "" {
		return invalid(k, f+".service", "belongs to service and simulator sources only")
	}
	if s.Type == SourceRobot && s.Gateway != "" {
		return invalid(k, f+".gateway", "not for robot sources")
	}
	return nil
}

// Value is one value of one information point.
type Value struct {
	// Point is the information point's id in the campus model. Required.
	Point string `json:"point"`
	// Quantity, optional, repeats the point's quantity
	// ("temperature", "soilMoistureVwc") for readers without the model.
	Quantity string `json:"quantity,omitempty"`
	// Value is the value in Unit; states are numbers too (1 on or open, 0
	// off or closed). Finite; required.
	Value float64 `json:"value"`
	// Unit is the value's UN/CEFACT code. Required.
	Unit Unit `json:"unit"`
	// OBIS is the register's OBIS code for a meter's value ("1-0:1.8.0").
	OBIS string `json:"obis,omitempty"`
	// Time, when set, is when this value was measured, if it differs from
	// the event's time (a batch of earlier values).
	Time *time.Time `json:"time,omitempty"`
}

func (v *Value) validate(k Kind, field string) error {
	if err := ValidPointID(v.Point); err != nil {
		return invalid(k, field+".point", "%v", err)
	}
	if v.Quantity != "" && !validQuantity(v.Quantity) {
		return invalid(k, field+".quantity", "%q is not a lowerCamelCase name of at most 64 characters", v.Quantity)
	}
	if math.IsNaN(v.Value) || math.IsInf(v.Value, 0) {
		return invalid(k, field+".value", "not a finite number")
	}
	if !v.Unit.Known() {
		return invalid(k, field+".unit", "%q is not a UN/CEFACT code citymesh knows", v.Unit)
	}
	if v.OBIS != "" && !validOBIS(v.OBIS) {
		return invalid(k, field+".obis", "%q is not an OBIS code A-B:C.D.E", v.OBIS)
	}
	if v.Time != nil && (v.Time.Year() < 1970 || v.Time.Year() > 9999) {
		return invalid(k, field+".time", "year %d is not 1970..9999", v.Time.Year())
	}
	return nil
}

// validQuantity: lowerCamelCase, as Smart Data Models' property names.
func validQuantity(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validOBIS accepts A-B:C.D.E with each group 0..255, the form the campus
// model and energy.OBIS.String write for current values.
func validOBIS(s string) bool {
	ab, cde, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	a, b, ok := strings.Cut(ab, "-")
	if !ok {
		return false
	}
	groups := append([]string{a, b}, strings.Split(cde, ".")...)
	if len(groups) != 5 {
		return false
	}
	for _, g := range groups {
		if g == "" || len(g) > 3 {
			return false
		}
		n := 0
		for i := 0; i < len(g); i++ {
			if g[i] < '0' || g[i] > '9' {
				return false
			}
			n = n*10 + int(g[i]-'0')
		}
		if n > 255 {
			return false
		}
	}
	return true
}

func validEUI(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < 16; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// ParseEUI returns an EUI-64 (a DevEUI, JoinEUI or gateway EUI) in the
// form events carry: 16 upper-case hex digits. It accepts 16 hex digits in
// either case, the way The Things Stack (upper) and ChirpStack (lower)
// write them.
func ParseEUI(s string) (string, error) {
	u := strings.ToUpper(s)
	if !validEUI(u) {
		return "", fmt.Errorf("EUI %q: want 16 hex digits", s)
	}
	return u, nil
}

func inRange(v, lo, hi float64) bool { return v >= lo && v <= hi }

// New returns a new, empty event of kind k, or nil for an unknown kind.
func New(k Kind) Event {
	switch k {
	case KindMeasurement:
		return new(Measurement)
	case KindStatus:
		return new(Status)
	case KindUplink:
		return new(Uplink)
	case KindPosition:
		return new(Position)
	case KindCheck:
		return new(Check)
	case KindPicture:
		return new(Picture)
	}
	return nil
}

// Decode parses a JSON event of kind k and validates it. Members the kind
// does not define are refused, as by the kind's JSON schema.
func Decode(k Kind, data []byte) (Event, error) {
	e := New(k)
	if e == nil {
		return nil, fmt.Errorf("event: unknown kind %q", k)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(e); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, k, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s: data after the JSON object", ErrInvalid, k)
	}
	if err := e.Validate(); err != nil {
		return nil, err
	}
	return e, nil
}

// Encode validates e and returns its JSON.
func Encode(e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", e.Kind(), err)
	}
	return data, nil
}

func validIDList(k Kind, field string, ids []string) error {
	for i, p := range ids {
		if err := ValidPointID(p); err != nil {
			return invalid(k, fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
	if len(ids) <= 16 {
		// A few ids, as an uplink's points: compared pairwise, no copy.
		for i := range ids {
			if slices.Contains(ids[i+1:], ids[i]) {
				return invalid(k, field, "an id is listed twice")
			}
		}
		return nil
	}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
		return invalid(k, field, "an id is listed twice")
	}
	return nil
}
