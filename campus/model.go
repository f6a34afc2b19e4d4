package campus

import (
	"time"

	"github.com/paulmach/orb"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/robot"
)

// Model is a campus, fully expanded and validated: every asset and every
// information point with its id, quantity, unit, position and tenant. Load
// and Parse return one; treat it as read-only (it is safe for concurrent
// readers).
type Model struct {
	// ID and Name identify the campus; Timezone is its IANA zone name
	// ("Europe/Berlin") and Location the zone itself.
	ID       string
	Name     string
	Timezone string
	Location *time.Location

	Sites        []*Site
	Tenants      []*Tenant
	Applications []*Application
	Gateways     []*Gateway
	Buildings    []*Building
	Rooms        []*Room
	Meters       []*Meter
	Plots        []*Plot
	Devices      []*Device
	Robots       []*Robot
	// Points are all information points, in file order: rooms, meters,
	// devices and robots as declared, then points added in the points
	// list.
	Points []*Point

	sites        map[string]*Site
	tenants      map[string]*Tenant
	applications map[string]*Application
	assets       map[string]*Asset
	points       map[string]*Point
	byAsset      map[string][]*Point
	byEUI        map[string]*Device
	byNetwork    map[networkKey]*Device
	registers    map[energy.RegisterKey]*Point
	roomTypes    map[string]*RoomType
	meterTypes   map[string]*MeterType
	objects      map[string]any // asset id → *Building, *Room, ...
}

type networkKey struct{ server, application, device string }

// SiteKind says what a site is; it decides the topic domain of its
// buildings, rooms, gateways and devices.
type SiteKind string

// Site kinds.
const (
	// SiteCampus: buildings, rooms, building gateways and devices publish
	// under the building domain.
	SiteCampus SiteKind = "campus"
	// SiteVineyard: plots, devices and gateways publish under the vineyard
	// domain.
	SiteVineyard SiteKind = "vineyard"
)

// Site is a place: the campus, a vineyard. Its id is the topic's second
// level.
type Site struct {
	ID   string
	Name string
	Kind SiteKind
	// Location is the site's reference point (longitude, latitude);
	// RadiusM bounds how far from it the site's assets may be.
	Location orb.Point
	RadiusM  float64
}

// Tenant is a user of the campus: rooms (their areas) and meters are
// theirs.
type Tenant struct {
	ID   string
	Name string
	// Rooms and Meters are the ids of the tenant's rooms and meters.
	Rooms  []string
	Meters []string
	// AreaM2 is the sum of the tenant's rooms' areas, by building id.
	AreaM2 map[string]float64
}

// NetworkServer names a LoRaWAN network server product.
type NetworkServer string

// Network servers.
const (
	TheThingsStack NetworkServer = event.NetworkServerTTS        // The Things Stack v3 (The Things Network)
	ChirpStack     NetworkServer = event.NetworkServerChirpStack // ChirpStack v4
)

// Application is a LoRaWAN application on a network server, through which
// the campus's devices arrive.
type Application struct {
	// ID is the campus model's name for it; devices refer to it.
	ID     string
	Server NetworkServer
	// ApplicationID and TenantID are the ids on the network server: The
	// Things Stack's application id and tenant id ("ttn" on The Things
	// Network), ChirpStack's application and tenant UUIDs.
	ApplicationID string
	TenantID      string
	// Address is the server's host name, if given
	// ("eu1.cloud.thethings.network").
	Address string
}

// Asset is what every asset has. Buildings, rooms, meters, gateways,
// plots, devices and robots embed it; asset ids are unique across all of
// them.
type Asset struct {
	ID   string
	Kind event.AssetKind
	Name string
	Site string
	// Domain is the topic domain of the asset's events.
	Domain event.Domain
	// Tenant is the tenant the asset belongs to, "" if none.
	Tenant string
	// Location is the asset's position (longitude, latitude): given in the
	// file, else derived (a building's or plot's centroid, a room's or
	// meter's building).
	Location orb.Point
	// Line is the line of the asset's declaration in the campus file.
	Line int
}

// Topic returns the topic of the asset's events named eventName
// ("measurement", "status", ...).
func (a *Asset) Topic(eventName string) event.Topic {
	return event.NewTopic(a.Domain, a.Site, a.Kind, a.ID, eventName)
}

// GatewayKind says what a gateway is.
type GatewayKind string

// Gateway kinds.
const (
	// GatewayLoRaWAN is a LoRaWAN gateway.
	GatewayLoRaWAN GatewayKind = "lorawan"
	// GatewayBuilding is a building automation gateway that publishes a
	// building's rooms and meters to citymesh over MQTT.
	GatewayBuilding GatewayKind = "building"
)

// Gateway is a LoRaWAN gateway or a building automation gateway. It has no
// information points; its status is published on its own topic.
type Gateway struct {
	Asset
	GatewayKind GatewayKind
	// EUI is a LoRaWAN gateway's EUI-64 (16 upper-case hex digits).
	EUI string
	// Building is the building a building gateway serves.
	Building string
}

// Building is a building with its footprint.
type Building struct {
	Asset
	// Footprint is the outline (GeoJSON Polygon, longitude/latitude).
	Footprint orb.Polygon
	// Floors is the number of storeys above ground (floors 0..Floors-1),
	// Basements the number below (floors -Basements..-1).
	Floors, Basements int
	// Rooms are the ids of the building's rooms.
	Rooms []string
	// Gateway is the id of the building gateway serving it, "" if none.
	Gateway string
}

// RoomType is a template of room points, declared in the campus file's
// room_types.
type RoomType struct {
	ID          string
	Description string
	Points      []PointTemplate
}

// PointTemplate is one point of a room type or meter type: the point id
// is {asset}/{Key}.
type PointTemplate struct {
	Key      string
	Quantity string
	Unit     event.Unit
	Name     string
}

// Room is a room of a building.
type Room struct {
	Asset
	Building string
	Floor    int
	// Type is the room type whose points the room has.
	Type string
	// AreaM2 is its usable area, 0 if not given.
	AreaM2 float64
}

// MeterType is a template of meter registers, declared in the campus
// file's meter_types.
type MeterType struct {
	ID          string
	Description string
	Registers   []Register
}

// Meter is a utility meter with one or more registers; each register is an
// information point {meter}/{OBIS}, e.g. el-b01-main/1-0:1.8.0.
type Meter struct {
	Asset
	Building string
	// Parent is the meter this one is a sub-meter of, "" for a main meter.
	Parent string
	// Type is the meter type it was declared with, "" for inline
	// registers.
	Type string
	// Carrier is the energy carrier of its registers (energy.Carrier).
	Carrier   energy.Carrier
	Registers []Register
}

// Register is one register of a meter.
type Register struct {
	OBIS     energy.OBIS
	Quantity string
	Unit     event.Unit
	// Digits is the register's width in whole digits; Max its wrap value
	// 10^Digits. Both 0: never wraps.
	Digits int
	Max    float64
	// Point is the register's information point id ({meter}/{OBIS}).
	Point string
}

// Plot is a vineyard plot.
type Plot struct {
	Asset
	// Area is the plot's outline (longitude/latitude), as in
	// vineyard/soil.
	Area orb.MultiPolygon
	// Variety is the grape variety.
	Variety string
	// Devices are the ids of the devices on the plot.
	Devices []string
}

// Device is a LoRaWAN end device.
type Device struct {
	Asset
	// Type is the device type (catalogue: DeviceTypes).
	Type DeviceType
	// DevEUI is the device's EUI-64, 16 upper-case hex digits.
	DevEUI string
	// Application is the campus id of the LoRaWAN application it is in;
	// NetworkID its device id on the network server (default: its campus
	// id).
	Application string
	NetworkID   string
	// Plot is the plot it stands on, "" if none.
	Plot string
	// Interval is its expected uplink interval.
	Interval time.Duration
}

// Robot is a patrol robot with its route (package robot's route format).
type Robot struct {
	Asset
	Route *robot.Route
	// RouteFile is the route's file, "" when it is inline.
	RouteFile string
}

// Point is an information point: one stream of values of one asset.
type Point struct {
	// ID is the point's stable id: {asset}/{key}.
	ID string
	// Asset is the id of the asset the point belongs to; AssetKind its
	// kind.
	Asset     string
	AssetKind event.AssetKind
	// Quantity and Unit: what it measures and in which unit its values
	// are published.
	Quantity string
	Unit     event.Unit
	// Name, optional, describes the point.
	Name string
	// Location is where it measures (longitude, latitude); by default the
	// asset's.
	Location orb.Point
	// Site and Tenant are the asset's unless overridden.
	Site   string
	Tenant string
	// Topic is where the point's values are published: the asset's
	// measurement (or, for meters, reading) topic; a robot's position
	// point's position topic and its check points' check topic.
	Topic event.Topic
	// Field is the decoded field a device point's value comes from.
	Field string
	// Register is a meter point's register.
	Register *Register
	// Check is a robot check point's check id in the route.
	Check string
}

// Site returns the site with the given id.
func (m *Model) Site(id string) (*Site, bool) { s, ok := m.sites[id]; return s, ok }

// Tenant returns the tenant with the given id.
func (m *Model) Tenant(id string) (*Tenant, bool) { t, ok := m.tenants[id]; return t, ok }

// Application returns the LoRaWAN application with the given campus id.
func (m *Model) Application(id string) (*Application, bool) {
	a, ok := m.applications[id]
	return a, ok
}

// Asset returns the common part of any asset by id.
func (m *Model) Asset(id string) (*Asset, bool) { a, ok := m.assets[id]; return a, ok }

// Point returns the information point with the given id.
func (m *Model) Point(id string) (*Point, bool) { p, ok := m.points[id]; return p, ok }

// PointsOf returns the information points of an asset, in file order.
func (m *Model) PointsOf(asset string) []*Point { return m.byAsset[asset] }

// DeviceByEUI returns the device with the given DevEUI, in either case.
func (m *Model) DeviceByEUI(devEUI string) (*Device, bool) {
	eui, err := event.ParseEUI(devEUI)
	if err != nil {
		return nil, false
	}
	d, ok := m.byEUI[eui]
	return d, ok
}

// DeviceOnNetwork returns the device a network server knows as deviceID in
// its application applicationID (ids on the server, as in The Things
// Stack's topics: v3/{application}@{tenant}/devices/{device}/up).
func (m *Model) DeviceOnNetwork(server NetworkServer, applicationID, deviceID string) (*Device, bool) {
	d, ok := m.byNetwork[networkKey{string(server), applicationID, deviceID}]
	return d, ok
}

// MeterPoint returns the information point of a meter's register.
func (m *Model) MeterPoint(meter string, obis energy.OBIS) (*Point, bool) {
	p, ok := m.registers[energy.RegisterKey{Meter: meter, OBIS: obis}]
	return p, ok
}

// RoomType returns the room type with the given id.
func (m *Model) RoomType(id string) (*RoomType, bool) { t, ok := m.roomTypes[id]; return t, ok }

// MeterType returns the meter type with the given id.
func (m *Model) MeterType(id string) (*MeterType, bool) { t, ok := m.meterTypes[id]; return t, ok }

// Building returns the building with the given id.
func (m *Model) Building(id string) (*Building, bool) { return lookup[*Building](m, id) }

// Room returns the room with the given id.
func (m *Model) Room(id string) (*Room, bool) { return lookup[*Room](m, id) }

// Meter returns the meter with the given id.
func (m *Model) Meter(id string) (*Meter, bool) { return lookup[*Meter](m, id) }

// Device returns the device with the given campus id.
func (m *Model) Device(id string) (*Device, bool) { return lookup[*Device](m, id) }

// Plot returns the plot with the given id.
func (m *Model) Plot(id string) (*Plot, bool) { return lookup[*Plot](m, id) }

// Robot returns the robot with the given id.
func (m *Model) Robot(id string) (*Robot, bool) { return lookup[*Robot](m, id) }

// Gateway returns the gateway with the given id.
func (m *Model) Gateway(id string) (*Gateway, bool) { return lookup[*Gateway](m, id) }

func lookup[T any](m *Model, id string) (T, bool) {
	v, ok := m.objects[id].(T)
	return v, ok
}
