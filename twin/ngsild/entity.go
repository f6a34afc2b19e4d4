package ngsild

import (
	"strconv"
	"strings"
	"time"

	"github.com/paulmach/orb"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin"
)

// The entity types an asset becomes (Smart Data Models names; docs/twin.md
// has the table and the sources).
const (
	TypeBuilding = "Building"                  // dataModel.Building/Building
	TypeRoom     = "IndoorEnvironmentObserved" // dataModel.Environment/IndoorEnvironmentObserved
	TypeDevice   = "Device"                    // dataModel.Device/Device
	TypeParcel   = "AgriParcel"                // dataModel.Agrifood/AgriParcel
)

// Types lists the entity types this API serves.
var Types = []string{TypeBuilding, TypeRoom, TypeDevice, TypeParcel}

// entityType returns the entity type of an asset kind.
func entityType(kind string) string {
	switch event.AssetKind(kind) {
	case event.AssetBuilding:
		return TypeBuilding
	case event.AssetRoom:
		return TypeRoom
	case event.AssetPlot:
		return TypeParcel
	}
	return TypeDevice // meter, device, gateway, robot
}

// kindsOf returns the asset kinds of an entity type, nil if it is none of
// Types.
func kindsOf(typ string) []string {
	switch typ {
	case TypeBuilding:
		return []string{"building"}
	case TypeRoom:
		return []string{"room"}
	case TypeParcel:
		return []string{"plot"}
	case TypeDevice:
		return []string{"meter", "device", "gateway", "robot"}
	}
	return nil
}

// EntityID returns the NGSI-LD id of an asset of kind kind:
// urn:ngsi-ld:{Type}:{asset}.
func EntityID(kind, asset string) string {
	return "urn:ngsi-ld:" + entityType(kind) + ":" + asset
}

// assetOf returns the asset id and type an entity id names, false if id
// is not of the form urn:ngsi-ld:{Type}:{asset}.
func assetOf(id string) (asset, typ string, ok bool) {
	rest, ok := strings.CutPrefix(id, "urn:ngsi-ld:")
	if !ok {
		return "", "", false
	}
	typ, asset, ok = strings.Cut(rest, ":")
	return asset, typ, ok && asset != "" && typ != ""
}

// The attribute kinds of NGSI-LD (clause 4.5): Property, GeoProperty,
// Relationship.
const (
	kindProperty     = "Property"
	kindGeoProperty  = "GeoProperty"
	kindRelationship = "Relationship"
)

// attr is one attribute of an entity.
type attr struct {
	name string
	kind string
	// value is a Property's value (float64, string, int, []string) or a
	// GeoProperty's geometry (orb.Geometry); object a Relationship's
	// target entity id.
	value  any
	object string
	// observedAt and unitCode, when set.
	observedAt time.Time
	unitCode   string
	// point is the information point whose history the attribute has
	// (numeric points only).
	point string
}

// entity is an asset as an NGSI-LD entity.
type entity struct {
	id, typ string
	asset   string
	tenant  string
	// loc is the reference point that near measures from; geom the
	// location's geometry (a footprint, an area, or the point).
	loc   orb.Point
	geom  orb.Geometry
	attrs []attr
}

// attr returns the attribute named name.
func (e *entity) attr(name string) (*attr, bool) {
	for i := range e.attrs {
		if e.attrs[i].name == name {
			return &e.attrs[i], true
		}
	}
	return nil, false
}

// newEntity maps an asset and its points' states to an entity.
func newEntity(a *twin.AssetState, points []twin.PointState) entity {
	e := entity{id: EntityID(a.Kind, a.ID), typ: entityType(a.Kind), asset: a.ID, tenant: a.Tenant, loc: a.Location,
		attrs: make([]attr, 0, len(points)+8)}
	e.geom = a.Location
	if a.Geometry != nil && a.Geometry.Coordinates != nil {
		e.geom = a.Geometry.Coordinates
	}
	add := func(x attr) { e.attrs = append(e.attrs, x) }
	if a.Name != "" {
		add(attr{name: "name", kind: kindProperty, value: a.Name})
	}
	rel := func(name, kind, asset string) {
		if asset != "" {
			add(attr{name: name, kind: kindRelationship, object: EntityID(kind, asset)})
		}
	}
	switch event.AssetKind(a.Kind) {
	case event.AssetBuilding:
		if f, ok := a.Attributes["floors"].(int); ok {
			add(attr{name: "floorsAboveGround", kind: kindProperty, value: f})
		}
		if f, ok := a.Attributes["basements"].(int); ok {
			add(attr{name: "floorsBelowGround", kind: kindProperty, value: f})
		}
	case event.AssetRoom:
		rel("refBuilding", "building", a.Relations.Building)
	case event.AssetMeter:
		add(attr{name: "category", kind: kindProperty, value: []string{"meter"}})
		if c, ok := a.Attributes["carrier"].(string); ok && c != "" {
			add(attr{name: "carrier", kind: kindProperty, value: c})
		}
		rel("refBuilding", "building", a.Relations.Building)
		rel("refParentMeter", "meter", a.Relations.Parent)
	case event.AssetGateway:
		add(attr{name: "category", kind: kindProperty, value: []string{"network"}})
		rel("refBuilding", "building", a.Relations.Building)
	case event.AssetDevice:
		add(attr{name: "category", kind: kindProperty, value: []string{"sensor"}})
		if eui, ok := a.Attributes["dev_eui"].(string); ok && eui != "" {
			add(attr{name: "devEUI", kind: kindProperty, value: eui})
		}
		if t, ok := a.Attributes["type"].(string); ok && t != "" {
			add(attr{name: "refDeviceModel", kind: kindRelationship, object: "urn:ngsi-ld:DeviceModel:" + t})
		}
		rel("hasAgriParcel", "plot", a.Relations.Plot)
	case event.AssetRobot:
		add(attr{name: "category", kind: kindProperty, value: []string{"sensor"}})
	case event.AssetPlot:
		add(attr{name: "category", kind: kindProperty, value: "vineyard"})
		if v, ok := a.Attributes["variety"].(string); ok && v != "" {
			add(attr{name: "cropVariety", kind: kindProperty, value: v})
		}
	}
	if l := a.Liveness; l.Status != "" {
		add(attr{name: "deviceState", kind: kindProperty, value: l.Status, observedAt: l.StatusTime})
	}
	loc := attr{name: "location", kind: kindGeoProperty, value: e.geom}
	var controlled []string
	names := propertyNames(points)
	for i := range points {
		p := &points[i]
		if p.Position != nil { // a robot's position is its location
			e.loc, e.geom = *p.Position, *p.Position
			loc.value, loc.observedAt = e.geom, p.Observed
			continue
		}
		controlled = append(controlled, names[i])
		if p.Observed.IsZero() {
			continue // no value yet
		}
		x := attr{name: names[i], kind: kindProperty, observedAt: p.Observed, unitCode: p.Unit}
		switch {
		case p.Value != nil:
			x.value, x.point = *p.Value, p.ID
		case p.Text != "":
			x.value = p.Text
		default:
			continue
		}
		add(x)
	}
	if e.typ == TypeDevice && len(controlled) > 0 {
		add(attr{name: "controlledProperty", kind: kindProperty, value: controlled})
	}
	add(loc)
	return e
}

// propertyNames returns the property name of each of an asset's points:
// its quantity; a meter's tariff register's quantity and "Tariff" and the
// tariff (activeEnergyImportTariff1 for 1-0:1.8.1); a quantity that two
// points of the asset share otherwise gets "_" and the point's key with
// its letters and digits only.
func propertyNames(points []twin.PointState) []string {
	names := make([]string, len(points))
	count := map[string]int{}
	for i, p := range points {
		names[i] = p.Quantity
		if p.AssetKind == string(event.AssetMeter) {
			if o, err := energy.ParseOBIS(pointKey(p.ID)); err == nil && o.E > 0 {
				names[i] += "Tariff" + strconv.Itoa(int(o.E))
			}
		}
		count[names[i]]++
	}
	for i, p := range points {
		if count[names[i]] > 1 {
			var b strings.Builder
			for _, r := range pointKey(p.ID) {
				if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
					b.WriteRune(r)
				}
			}
			names[i] += "_" + b.String()
		}
	}
	return names
}

// pointKey returns the key of a point id {asset}/{key}.
func pointKey(id string) string {
	_, k, _ := strings.Cut(id, "/")
	return k
}
