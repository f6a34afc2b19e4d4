package event

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Measurement carries values of information points: one value, or several
// values of one asset at one time (what one uplink or one scan of a
// building gateway delivered). Published on
// {domain}/{site}/{kind}/{asset}/measurement, and for meters on
// energy/{site}/meter/{meter}/reading.
type Measurement struct {
	Header
	// Values are the values, at least one and at most 1000. A point may
	// appear more than once with different Value.Time (a batch).
	Values []Value `json:"values"`
}

// NewMeasurement returns a measurement of asset at t.
func NewMeasurement(asset string, t time.Time, src Source, values ...Value) *Measurement {
	return &Measurement{Header: Header{Time: t, Asset: asset, Source: src}, Values: values}
}

// Kind returns KindMeasurement.
func (*Measurement) Kind() Kind { return KindMeasurement }

// Validate checks the measurement.
func (m *Measurement) Validate() error {
	if err := m.Header.validate(KindMeasurement); err != nil {
		return err
	}
	if len(m.Values) == 0 || len(m.Values) > 1000 {
		return invalid(KindMeasurement, "values", "%d values, want 1..1000", len(m.Values))
	}
	for i := range m.Values {
		if m.Values[i].validate(KindMeasurement, "values") != nil {
			// Again, to name the value: its index is written only on
			// the way out, which keeps Validate free of formatting.
			return m.Values[i].validate(KindMeasurement, fmt.Sprintf("values[%d]", i))
		}
	}
	return nil
}

// State is an asset's state in a status event.
type State string

// States.
const (
	Online  State = "online"
	Offline State = "offline"
)

// Reasons a status event commonly gives. Reason is free lowerCamelCase or
// snake_case text; these are the ones citymesh's components use.
const (
	ReasonUplink       = "uplink"        // a message arrived from the device
	ReasonJoin         = "join"          // the device joined the network
	ReasonSilent       = "silent"        // no message for several expected intervals
	ReasonLowBattery   = "low_battery"   // the battery is below its threshold
	ReasonConnected    = "connected"     // a gateway or robot connected to the broker
	ReasonDisconnected = "disconnected"  // a gateway's or robot's connection ended (its will)
	ReasonMaintenance  = "maintenance"   // taken out of service on purpose
	ReasonStarted      = "started"       // a program started publishing for the asset
	ReasonStopped      = "stopped"       // a program stopped publishing for the asset
	ReasonDocked       = "docked"        // a robot is on its charging dock
	ReasonRouteStarted = "route_started" // a robot started a patrol
)

// Status says an asset (a device, a gateway, a robot) went online or
// offline, or that its battery changed, and why. Published retained on
// {domain}/{site}/{kind}/{asset}/status.
type Status struct {
	Header
	// State is online or offline. Required.
	State State `json:"state"`
	// Reason says why, as a short word (ReasonUplink, ReasonSilent, ...).
	// Required.
	Reason string `json:"reason"`
	// Detail, optional, explains in a person's words.
	Detail string `json:"detail,omitempty"`
	// LastSeen is when the asset was last heard of, if known.
	LastSeen *time.Time `json:"last_seen,omitempty"`
	// Battery is the battery point's latest value, if known.
	Battery *Value `json:"battery,omitempty"`
}

// NewStatus returns a status event.
func NewStatus(asset string, t time.Time, src Source, state State, reason string) *Status {
	return &Status{Header: Header{Time: t, Asset: asset, Source: src}, State: state, Reason: reason}
}

// Kind returns KindStatus.
func (*Status) Kind() Kind { return KindStatus }

// Validate checks the status.
func (s *Status) Validate() error {
	if err := s.Header.validate(KindStatus); err != nil {
		return err
	}
	if s.State != Online && s.State != Offline {
		return invalid(KindStatus, "state", "%q, want online or offline", s.State)
	}
	if !validReason(s.Reason) {
		return invalid(KindStatus, "reason", "%q is not a word of letters, digits and '_' (at most 64)", s.Reason)
	}
	if len(s.Detail) > 1024 {
		return invalid(KindStatus, "detail", "longer than 1024 characters")
	}
	if s.LastSeen != nil && (s.LastSeen.Year() < 1970 || s.LastSeen.Year() > 9999) {
		return invalid(KindStatus, "last_seen", "year %d is not 1970..9999", s.LastSeen.Year())
	}
	if s.Battery != nil {
		if err := s.Battery.validate(KindStatus, "battery"); err != nil {
			return err
		}
	}
	return nil
}

func validReason(s string) bool {
	if s == "" || len(s) > 64 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Uplink is the radio metadata of one LoRaWAN uplink, as a network server
// reported it: who sent it (Source: network server, application, device,
// DevEUI, frame counter), on which port, through which gateways at which
// signal, at which data rate and frequency, and how long it was on air.
// The decoded values travel separately as a Measurement with the same
// Source. Published on {domain}/{site}/device/{device}/uplink.
//
// Header.Time is when the network server received the uplink (The Things
// Stack's received_at, ChirpStack's time).
type Uplink struct {
	Header
	// FPort is the LoRaWAN FPort: 1..223 for application payloads, 0 for
	// MAC commands only.
	FPort uint8 `json:"f_port"`
	// DevAddr is the session's device address, 8 upper-case hex digits.
	DevAddr string `json:"dev_addr,omitempty"`
	// Confirmed is true for a confirmed uplink.
	Confirmed bool `json:"confirmed,omitempty"`
	// Payload is the application payload (FRMPayload) as sent, base64 in
	// JSON; at most 255 bytes.
	Payload []byte `json:"payload,omitempty"`
	// FrequencyHz is the uplink's frequency in hertz. Required.
	FrequencyHz uint64 `json:"frequency_hz"`
	// DataRate is the uplink's modulation and data rate. Required.
	DataRate DataRate `json:"data_rate"`
	// AirtimeS is the time on air in seconds, where the network server
	// reported it (The Things Stack's consumed_airtime).
	AirtimeS *float64 `json:"airtime_s,omitempty"`
	// Gateways are the gateways that received the uplink, best first.
	Gateways []GatewayRx `json:"gateways"`
	// CorrelationID ties the uplink to the network server's records: The
	// Things Stack's "as:up:…" correlation id or ChirpStack's deduplication
	// id.
	CorrelationID string `json:"correlation_id,omitempty"`
	// Points lists the information points whose values the uplink carried
	// (the Measurement published with it).
	Points []string `json:"points,omitempty"`
}

// Kind returns KindUplink.
func (*Uplink) Kind() Kind { return KindUplink }

// Modulations of DataRate.
const (
	ModulationLoRa   = "lora"
	ModulationFSK    = "fsk"
	ModulationLRFHSS = "lr-fhss"
)

// DataRate is an uplink's modulation: LoRa with spreading factor,
// bandwidth and coding rate; FSK with its bit rate; or LR-FHSS.
type DataRate struct {
	// Modulation is "lora", "fsk" or "lr-fhss". Required.
	Modulation string `json:"modulation"`
	// SpreadingFactor is 5..12 (LoRa).
	SpreadingFactor uint8 `json:"spreading_factor,omitempty"`
	// BandwidthHz is the bandwidth in hertz (LoRa, e.g. 125000).
	BandwidthHz uint32 `json:"bandwidth_hz,omitempty"`
	// CodingRate is "4/5", "4/6", "4/7" or "4/8" (LoRa); ChirpStack's
	// CR_4_5 is written 4/5.
	CodingRate string `json:"coding_rate,omitempty"`
	// BitRate is the bit rate in bit/s (FSK).
	BitRate uint32 `json:"bit_rate,omitempty"`
	// Index is the regional data rate index (DR0..DR15), when known.
	Index *uint8 `json:"index,omitempty"`
}

// GatewayRx is one gateway's reception of an uplink.
type GatewayRx struct {
	// ID is the gateway's id on the network server. Required.
	ID string `json:"id"`
	// EUI is the gateway's EUI-64, 16 upper-case hex digits.
	EUI string `json:"eui,omitempty"`
	// RSSIdBm is the received signal strength in dBm. Required.
	RSSIdBm float64 `json:"rssi_dbm"`
	// SNRdB is the signal-to-noise ratio in dB. Required.
	SNRdB float64 `json:"snr_db"`
	// Time is the gateway's receive time, when it reported one.
	Time *time.Time `json:"time,omitempty"`
	// Location is where the gateway stands, when the network server said.
	Location *Location `json:"location,omitempty"`
}

// Location is a WGS 84 position in degrees, with an optional altitude in
// metres.
type Location struct {
	Lat       float64  `json:"lat"`
	Lon       float64  `json:"lon"`
	AltitudeM *float64 `json:"altitude_m,omitempty"`
}

func (l *Location) validate(k Kind, field string) error {
	if !inRange(l.Lat, -90, 90) || !inRange(l.Lon, -180, 180) {
		return invalid(k, field, "(%v, %v) is outside latitude -90..90, longitude -180..180", l.Lat, l.Lon)
	}
	if l.AltitudeM != nil && !inRange(*l.AltitudeM, -1000, 100000) {
		return invalid(k, field+".altitude_m", "%v is not -1000..100000", *l.AltitudeM)
	}
	return nil
}

// Validate checks the uplink.
func (u *Uplink) Validate() error {
	const k = KindUplink
	if err := u.Header.validate(k); err != nil {
		return err
	}
	if u.Source.Type != SourceLoRaWAN {
		return invalid(k, "source.type", "%q, an uplink's source is lorawan", u.Source.Type)
	}
	if u.FPort > 223 {
		return invalid(k, "f_port", "%d is not 0..223", u.FPort)
	}
	if u.DevAddr != "" && !validHex(u.DevAddr, 8) {
		return invalid(k, "dev_addr", "%q is not 8 upper-case hex digits", u.DevAddr)
	}
	if len(u.Payload) > 255 {
		return invalid(k, "payload", "%d bytes, at most 255", len(u.Payload))
	}
	if u.FrequencyHz < 100_000_000 || u.FrequencyHz > 3_000_000_000 {
		return invalid(k, "frequency_hz", "%d is not 100 MHz..3 GHz", u.FrequencyHz)
	}
	dr := u.DataRate
	switch dr.Modulation {
	case ModulationLoRa:
		if dr.SpreadingFactor < 5 || dr.SpreadingFactor > 12 {
			return invalid(k, "data_rate.spreading_factor", "%d is not 5..12", dr.SpreadingFactor)
		}
		if dr.BandwidthHz == 0 {
			return invalid(k, "data_rate.bandwidth_hz", "missing for lora")
		}
		switch dr.CodingRate {
		case "", "4/5", "4/6", "4/7", "4/8":
		default:
			return invalid(k, "data_rate.coding_rate", "%q, want 4/5, 4/6, 4/7 or 4/8", dr.CodingRate)
		}
		if dr.BitRate != 0 {
			return invalid(k, "data_rate.bit_rate", "is for fsk")
		}
	case ModulationFSK:
		if dr.BitRate == 0 {
			return invalid(k, "data_rate.bit_rate", "missing for fsk")
		}
		if dr.SpreadingFactor != 0 || dr.CodingRate != "" {
			return invalid(k, "data_rate", "spreading_factor and coding_rate are for lora")
		}
	case ModulationLRFHSS:
		if dr.SpreadingFactor != 0 || dr.BitRate != 0 {
			return invalid(k, "data_rate", "spreading_factor and bit_rate are not for lr-fhss")
		}
	default:
		return invalid(k, "data_rate.modulation", "%q, want lora, fsk or lr-fhss", dr.Modulation)
	}
	if dr.Index != nil && *dr.Index > 15 {
		return invalid(k, "data_rate.index", "%d is not 0..15", *dr.Index)
	}
	if u.AirtimeS != nil && !(*u.AirtimeS > 0 && *u.AirtimeS < 100) {
		return invalid(k, "airtime_s", "%v is not a positive number of seconds below 100", *u.AirtimeS)
	}
	if u.Gateways == nil {
		return invalid(k, "gateways", "missing (an empty list when no gateway is known)")
	}
	if len(u.Gateways) > 100 {
		return invalid(k, "gateways", "%d gateways, at most 100", len(u.Gateways))
	}
	for i := range u.Gateways {
		if err := u.Gateways[i].validate(k, "gateways"); err != nil {
			// Again, to name the gateway (formatted on the way out only).
			return u.Gateways[i].validate(k, fmt.Sprintf("gateways[%d]", i))
		}
	}
	if len(u.CorrelationID) > 256 {
		return invalid(k, "correlation_id", "longer than 256 characters")
	}
	return validIDList(k, "points", u.Points)
}

// validate checks one gateway's reception; f names it in errors.
func (g *GatewayRx) validate(k Kind, f string) error {
	if g.ID == "" || len(g.ID) > 128 {
		return invalid(k, f+".id", "missing or longer than 128 characters")
	}
	if g.EUI != "" && !validEUI(g.EUI) {
		return invalid(k, f+".eui", "%q is not 16 upper-case hex digits", g.EUI)
	}
	if !inRange(g.RSSIdBm, -200, 50) {
		return invalid(k, f+".rssi_dbm", "%v is not -200..50", g.RSSIdBm)
	}
	if !inRange(g.SNRdB, -50, 50) {
		return invalid(k, f+".snr_db", "%v is not -50..50", g.SNRdB)
	}
	if g.Time != nil && (g.Time.Year() < 1970 || g.Time.Year() > 9999) {
		return invalid(k, f+".time", "year %d is not 1970..9999", g.Time.Year())
	}
	if g.Location != nil {
		if err := g.Location.validate(k, f+".location"); err != nil {
			return err
		}
	}
	return nil
}

func validHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// Position is where a robot is. Latitude and longitude are WGS 84 degrees;
// the other quantities carry their unit in their name (metres, degrees
// clockwise from north, metres per second). Published retained on
// robot/{site}/robot/{robot}/position.
type Position struct {
	Header
	// Point is the robot's position information point ({robot}/position).
	Point string  `json:"point"`
	Lat   float64 `json:"lat"`
	Lon   float64 `json:"lon"`
	// AltitudeM, AccuracyM (horizontal, 1 sigma), HeadingDeg (0..360,
	// clockwise from north) and SpeedMPS are optional.
	AltitudeM  *float64 `json:"altitude_m,omitempty"`
	AccuracyM  *float64 `json:"accuracy_m,omitempty"`
	HeadingDeg *float64 `json:"heading_deg,omitempty"`
	SpeedMPS   *float64 `json:"speed_mps,omitempty"`
	// Route is the patrol route the robot follows, Waypoint the waypoint
	// it reached last (ids in the route file).
	Route    string `json:"route,omitempty"`
	Waypoint string `json:"waypoint,omitempty"`
	// Battery is the robot's battery point's value, when it sends it with
	// the position.
	Battery *Value `json:"battery,omitempty"`
}

// Kind returns KindPosition.
func (*Position) Kind() Kind { return KindPosition }

// Validate checks the position.
func (p *Position) Validate() error {
	const k = KindPosition
	if err := p.Header.validate(k); err != nil {
		return err
	}
	if err := ValidPointID(p.Point); err != nil {
		return invalid(k, "point", "%v", err)
	}
	if !inRange(p.Lat, -90, 90) || !inRange(p.Lon, -180, 180) {
		return invalid(k, "lat/lon", "(%v, %v) is outside latitude -90..90, longitude -180..180", p.Lat, p.Lon)
	}
	if p.AltitudeM != nil && !inRange(*p.AltitudeM, -1000, 100000) {
		return invalid(k, "altitude_m", "%v is not -1000..100000", *p.AltitudeM)
	}
	if p.AccuracyM != nil && !inRange(*p.AccuracyM, 0, 100000) {
		return invalid(k, "accuracy_m", "%v is not 0..100000", *p.AccuracyM)
	}
	if p.HeadingDeg != nil && !(*p.HeadingDeg >= 0 && *p.HeadingDeg < 360) {
		return invalid(k, "heading_deg", "%v is not 0..360 (360 excluded)", *p.HeadingDeg)
	}
	if p.SpeedMPS != nil && !inRange(*p.SpeedMPS, 0, 100) {
		return invalid(k, "speed_mps", "%v is not 0..100", *p.SpeedMPS)
	}
	if p.Route != "" {
		if err := ValidID(p.Route); err != nil {
			return invalid(k, "route", "%v", err)
		}
	}
	if len(p.Waypoint) > 128 {
		return invalid(k, "waypoint", "longer than 128 characters")
	}
	if p.Battery != nil {
		return p.Battery.validate(k, "battery")
	}
	return nil
}

// Check kinds, as in the robot package's route files.
const (
	CheckHVACSetpoint = "hvac_setpoint"
	CheckBollard      = "bollard"
	CheckEscapeRoute  = "escape_route"
	CheckLighting     = "lighting"
)

// Check is what a robot checked at a waypoint and what it saw: a setpoint
// in °C, a bollard up or down, an escape route clear or blocked, lighting
// on or off. When the robot evaluated the result itself it adds what it
// expected, whether that was met and the anomaly. Published on
// robot/{site}/robot/{robot}/check.
type Check struct {
	Header
	// Point is the check's information point ({robot}/check/{check}).
	Point string `json:"point"`
	// Route, Waypoint and Check are the route's id, the waypoint's id and
	// the check's id in the route file. Required.
	Route    string `json:"route"`
	Waypoint string `json:"waypoint"`
	Check    string `json:"check"`
	// CheckKind is hvac_setpoint, bollard, escape_route or lighting.
	CheckKind string `json:"check_kind"`
	// Target is what was checked (the check's asset in the route file).
	Target string `json:"target"`
	// Observed is what the robot saw: a number for hvac_setpoint, up or
	// down, clear or blocked, on or off; "unreadable" or "failed" when the
	// check could not be done. Required.
	Observed string `json:"observed"`
	// Unit is the unit of a numeric Observed (CEL for hvac_setpoint).
	Unit Unit `json:"unit,omitempty"`
	// Expected, OK and Anomaly are set when the robot evaluated the
	// result itself.
	Expected string   `json:"expected,omitempty"`
	OK       *bool    `json:"ok,omitempty"`
	Anomaly  *Anomaly `json:"anomaly,omitempty"`
	// Picture references the picture taken at the check: the "sha256:…"
	// hash of a picture event.
	Picture string `json:"picture,omitempty"`
	Note    string `json:"note,omitempty"`
}

// Anomaly is a robot's own verdict that a check failed.
type Anomaly struct {
	// Kind is setpoint_out_of_range, bollard_wrong_state,
	// escape_route_blocked, lighting_wrong_state or check_failed.
	Kind string `json:"kind"`
	// Severity is low, medium, high or critical.
	Severity string `json:"severity"`
	Reason   string `json:"reason,omitempty"`
}

// Kind returns KindCheck.
func (*Check) Kind() Kind { return KindCheck }

// Validate checks the check result.
func (c *Check) Validate() error {
	const k = KindCheck
	if err := c.Header.validate(k); err != nil {
		return err
	}
	if err := ValidPointID(c.Point); err != nil {
		return invalid(k, "point", "%v", err)
	}
	if err := ValidID(c.Route); err != nil {
		return invalid(k, "route", "%v", err)
	}
	for _, f := range [...]struct{ name, v string }{{"waypoint", c.Waypoint}, {"check", c.Check}, {"target", c.Target}, {"observed", c.Observed}} {
		if f.v == "" || len(f.v) > 128 {
			return invalid(k, f.name, "missing or longer than 128 characters")
		}
	}
	switch c.CheckKind {
	case CheckHVACSetpoint, CheckBollard, CheckEscapeRoute, CheckLighting:
	default:
		return invalid(k, "check_kind", "%q, want hvac_setpoint, bollard, escape_route or lighting", c.CheckKind)
	}
	if c.Unit != "" && !c.Unit.Known() {
		return invalid(k, "unit", "%q is not a UN/CEFACT code citymesh knows", c.Unit)
	}
	if len(c.Expected) > 128 || len(c.Note) > 1024 {
		return invalid(k, "expected/note", "expected longer than 128 or note longer than 1024 characters")
	}
	if a := c.Anomaly; a != nil {
		switch a.Kind {
		case "setpoint_out_of_range", "bollard_wrong_state", "escape_route_blocked", "lighting_wrong_state", "check_failed":
		default:
			return invalid(k, "anomaly.kind", "%q is not an anomaly kind", a.Kind)
		}
		switch a.Severity {
		case "low", "medium", "high", "critical":
		default:
			return invalid(k, "anomaly.severity", "%q, want low, medium, high or critical", a.Severity)
		}
		if len(a.Reason) > 1024 {
			return invalid(k, "anomaly.reason", "longer than 1024 characters")
		}
		if c.OK != nil && *c.OK {
			return invalid(k, "anomaly", "given with ok true")
		}
	}
	if c.Picture != "" && !validHash(c.Picture) {
		return invalid(k, "picture", "%q is not sha256: and 64 lower-case hex digits", c.Picture)
	}
	return nil
}

// Picture refers to a picture stored outside the bus (object storage, a
// file, a web server): its bytes never travel in events. Published on
// robot/{site}/robot/{robot}/picture.
type Picture struct {
	Header
	// Hash is "sha256:" and the SHA-256 of the bytes in lower-case hex;
	// other events refer to the picture by it. Required.
	Hash string `json:"hash"`
	// ContentType is the media type: image/jpeg, image/png, image/webp.
	ContentType string `json:"content_type"`
	// Size is the number of bytes. Required, positive.
	Size int64 `json:"size"`
	// URL is where the bytes are: an absolute URL (https, http, s3, file).
	URL string `json:"url"`
	// Width and Height in pixels, when known.
	Width  int `json:"width,omitempty"`
	Height int `json:"height,omitempty"`
	// Check is the id of the route check the picture documents.
	Check string `json:"check,omitempty"`
}

// Kind returns KindPicture.
func (*Picture) Kind() Kind { return KindPicture }

// validImageType: image/ and a subtype of letters, digits, '.', '+', '-'.
func validImageType(s string) bool {
	sub, ok := strings.CutPrefix(s, "image/")
	if !ok || sub == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// validURL: scheme https, http, s3 or file, then "://" and at least one
// character, no white space or control character, at most 2048 bytes.
func validURL(s string) bool {
	if len(s) > 2048 {
		return false
	}
	var rest string
	for _, scheme := range [...]string{"https://", "http://", "s3://", "file://"} {
		if r, ok := strings.CutPrefix(s, scheme); ok {
			rest = r
			break
		}
	}
	if rest == "" {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] <= ' ' || rest[i] == 0x7f {
			return false
		}
	}
	return true
}

func validHash(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Validate checks the picture reference.
func (p *Picture) Validate() error {
	const k = KindPicture
	if err := p.Header.validate(k); err != nil {
		return err
	}
	if !validHash(p.Hash) {
		return invalid(k, "hash", "%q is not sha256: and 64 lower-case hex digits", p.Hash)
	}
	if !validImageType(p.ContentType) {
		return invalid(k, "content_type", "%q is not an image media type such as image/jpeg", p.ContentType)
	}
	if p.Size <= 0 || p.Size > math.MaxInt32 {
		return invalid(k, "size", "%d is not 1..2147483647 bytes", p.Size)
	}
	if !validURL(p.URL) {
		return invalid(k, "url", "%q is not an https, http, s3 or file URL (scheme://..., no spaces, at most 2048 characters)", p.URL)
	}
	if p.Width < 0 || p.Height < 0 || p.Width > 100000 || p.Height > 100000 {
		return invalid(k, "width/height", "%d×%d is not 0..100000", p.Width, p.Height)
	}
	if len(p.Check) > 128 {
		return invalid(k, "check", "longer than 128 characters")
	}
	return nil
}
