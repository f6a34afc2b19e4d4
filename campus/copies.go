package campus

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
)

// Copies of a campus, for scale tests: copy 0 is the campus as described;
// copy k > 0 has the same assets under ids with the suffix "-x{k}"
// (b03-2.14-x2, soil-probe-07-x2, bms-b03-x2, loomi-x2), so its topics,
// client ids and device ids on the network servers differ, and DevEUIs and
// gateway EUIs with k XORed into their fourth and fifth bytes. Sites,
// tenants, applications, room and meter types, routes and check ids are
// shared. The simulator plays copies with these names (sim.PlayerConfig's
// Copies), and Model.Copies makes the model that knows them, so that the
// connectors and a checker of events recognise a copy's devices and
// points.

// MaxCopies is the number of copies EUIs leave room for: k is XORed into
// two bytes.
const MaxCopies = 0x10000

// CopyID returns the id of asset id in copy k.
func CopyID(id string, k int) string {
	if k == 0 {
		return id
	}
	return id + "-x" + strconv.Itoa(k)
}

// CopyOf returns the original id and the copy number of an id made by
// CopyID. An id without a copy suffix is copy 0. (An original id that
// itself ends in "-x" and digits is read as a copy: avoid such ids in
// campuses played with copies; Model.Copies refuses them.)
func CopyOf(id string) (string, int) {
	i := strings.LastIndex(id, "-x")
	if i < 0 {
		return id, 0
	}
	k, err := strconv.Atoi(id[i+2:])
	if err != nil || k <= 0 || strconv.Itoa(k) != id[i+2:] {
		return id, 0
	}
	return id[:i], k
}

// CopyPoint returns the id of a point of asset in copy k: the asset's
// copy id followed by the rest of the point id.
func CopyPoint(point, asset string, k int) string {
	if k == 0 {
		return point
	}
	return CopyID(asset, k) + strings.TrimPrefix(point, asset)
}

// CopyEUI returns the EUI (16 hex digits, upper case) of a device or
// gateway in copy k: k XORed into bytes 3 and 4 (of 0–7), so copies of
// one device differ and keep the vendor's prefix.
func CopyEUI(eui string, k int) (string, error) {
	e, err := event.ParseEUI(eui)
	if err != nil {
		return "", err
	}
	if k == 0 {
		return e, nil
	}
	if k < 0 || k >= MaxCopies {
		return "", fmt.Errorf("copy %d: want 0 to %d", k, MaxCopies-1)
	}
	v, err := strconv.ParseUint(e, 16, 64)
	if err != nil {
		return "", err
	}
	v ^= uint64(k) << 24
	return fmt.Sprintf("%016X", v), nil
}

// Copies returns the model of copies first, first+1, …, first+n−1 of m,
// named as CopyID, CopyPoint and CopyEUI say: every building, room,
// meter, gateway, plot, device and robot once per copy, with its points,
// and the indexes over all of them. Sites, tenants (whose rooms and
// meters then include the copies'), applications, types and routes are
// shared. Copies(0, 1) is m itself. It refuses what would make two copies
// collide or an id too long: an original id that reads as a copy's, an
// id or point id past its length limit, more points than MaxPoints.
func (m *Model) Copies(first, n int) (*Model, error) {
	switch {
	case n < 1:
		return nil, fmt.Errorf("campus: copies %d: want at least 1", n)
	case first < 0 || first+n > MaxCopies:
		return nil, fmt.Errorf("campus: copies %d to %d: want copies from 0 to %d", first, first+n-1, MaxCopies-1)
	case len(m.Points)*n > MaxPoints:
		return nil, fmt.Errorf("campus: %d copies of %d information points are more than %d", n, len(m.Points), MaxPoints)
	}
	if first == 0 && n == 1 {
		return m, nil
	}
	for id := range m.assets {
		if _, k := CopyOf(id); k != 0 {
			return nil, fmt.Errorf("campus: asset id %s reads as copy %d of another id: rename it to play copies", id, k)
		}
	}
	c := &Model{
		ID: m.ID, Name: m.Name, Timezone: m.Timezone, Location: m.Location,
		Sites: m.Sites, Applications: m.Applications,
		sites: m.sites, applications: m.applications, roomTypes: m.roomTypes, meterTypes: m.meterTypes,
		tenants: make(map[string]*Tenant, len(m.tenants)), assets: make(map[string]*Asset, len(m.assets)*n),
		points: make(map[string]*Point, len(m.points)*n), byAsset: make(map[string][]*Point, len(m.byAsset)*n),
		byEUI: make(map[string]*Device, len(m.byEUI)*n), byNetwork: make(map[networkKey]*Device, len(m.byNetwork)*n),
		registers: make(map[energy.RegisterKey]*Point, len(m.registers)*n), objects: make(map[string]any, len(m.objects)*n),
	}
	for _, t := range m.Tenants {
		ct := &Tenant{ID: t.ID, Name: t.Name, AreaM2: make(map[string]float64)}
		c.Tenants = append(c.Tenants, ct)
		c.tenants[ct.ID] = ct
	}
	for k := first; k < first+n; k++ {
		if err := c.addCopy(m, k); err != nil {
			return nil, err
		}
	}
	for _, mt := range c.Meters {
		for i := range mt.Registers {
			p := c.points[mt.Registers[i].Point]
			p.Register = &mt.Registers[i]
			c.registers[energy.RegisterKey{Meter: mt.ID, OBIS: mt.Registers[i].OBIS}] = p
		}
		if t, ok := c.tenants[mt.Tenant]; ok {
			t.Meters = append(t.Meters, mt.ID)
		}
	}
	for _, r := range c.Rooms {
		if t, ok := c.tenants[r.Tenant]; ok {
			t.Rooms = append(t.Rooms, r.ID)
			t.AreaM2[r.Building] += r.AreaM2
		}
	}
	for _, p := range c.Points {
		c.byAsset[p.Asset] = append(c.byAsset[p.Asset], p)
	}
	return c, nil
}

// addCopy adds copy k of m's assets and points to c.
func (c *Model) addCopy(m *Model, k int) error {
	id := func(s string) string {
		if s == "" {
			return ""
		}
		return CopyID(s, k)
	}
	ids := func(list []string) []string {
		if list == nil {
			return nil
		}
		out := make([]string, len(list))
		for i, s := range list {
			out[i] = id(s)
		}
		return out
	}
	var err error
	declare := func(a *Asset, obj any) {
		if err != nil {
			return
		}
		if e := event.ValidID(a.ID); e != nil {
			err = fmt.Errorf("campus: copy %d: asset id %w", k, e)
			return
		}
		if _, dup := c.assets[a.ID]; dup {
			err = fmt.Errorf("campus: copy %d: asset %s twice", k, a.ID)
			return
		}
		c.assets[a.ID] = a
		c.objects[a.ID] = obj
	}
	eui := func(what, s string) string {
		if s == "" || err != nil {
			return s
		}
		e, cerr := CopyEUI(s, k)
		if cerr != nil {
			err = fmt.Errorf("campus: copy %d: %s: %w", k, what, cerr)
		}
		return e
	}
	for _, g := range m.Gateways {
		cg := *g
		cg.ID, cg.Building, cg.EUI = id(g.ID), id(g.Building), eui("gateway "+g.ID, g.EUI)
		c.Gateways = append(c.Gateways, &cg)
		declare(&cg.Asset, &cg)
	}
	for _, b := range m.Buildings {
		cb := *b
		cb.ID, cb.Rooms, cb.Gateway = id(b.ID), ids(b.Rooms), id(b.Gateway)
		c.Buildings = append(c.Buildings, &cb)
		declare(&cb.Asset, &cb)
	}
	for _, r := range m.Rooms {
		cr := *r
		cr.ID, cr.Building = id(r.ID), id(r.Building)
		c.Rooms = append(c.Rooms, &cr)
		declare(&cr.Asset, &cr)
	}
	for _, mt := range m.Meters {
		cm := *mt
		cm.ID, cm.Building, cm.Parent = id(mt.ID), id(mt.Building), id(mt.Parent)
		cm.Registers = make([]Register, len(mt.Registers))
		for i, r := range mt.Registers {
			r.Point = CopyPoint(r.Point, mt.ID, k)
			cm.Registers[i] = r
		}
		c.Meters = append(c.Meters, &cm)
		declare(&cm.Asset, &cm)
	}
	for _, p := range m.Plots {
		cp := *p
		cp.ID, cp.Devices = id(p.ID), ids(p.Devices)
		c.Plots = append(c.Plots, &cp)
		declare(&cp.Asset, &cp)
	}
	for _, d := range m.Devices {
		cd := *d
		cd.ID, cd.Plot, cd.NetworkID, cd.DevEUI = id(d.ID), id(d.Plot), id(d.NetworkID), eui("device "+d.ID, d.DevEUI)
		if err == nil && len(cd.NetworkID) > 36 {
			err = fmt.Errorf("campus: copy %d: network id %s of device %s is longer than 36 characters", k, cd.NetworkID, cd.ID)
		}
		c.Devices = append(c.Devices, &cd)
		declare(&cd.Asset, &cd)
		if err != nil {
			return err
		}
		if prev, dup := c.byEUI[cd.DevEUI]; dup {
			return fmt.Errorf("campus: copy %d: device %s has the DevEUI %s of %s", k, cd.ID, cd.DevEUI, prev.ID)
		}
		c.byEUI[cd.DevEUI] = &cd
		app := c.applications[cd.Application]
		nk := networkKey{string(app.Server), app.ApplicationID, cd.NetworkID}
		if prev, dup := c.byNetwork[nk]; dup {
			return fmt.Errorf("campus: copy %d: device %s is %s in application %s, as %s is", k, cd.ID, cd.NetworkID, app.ID, prev.ID)
		}
		c.byNetwork[nk] = &cd
	}
	for _, r := range m.Robots {
		cr := *r
		cr.ID = id(r.ID)
		c.Robots = append(c.Robots, &cr)
		declare(&cr.Asset, &cr)
	}
	if err != nil {
		return err
	}
	for _, p := range m.Points {
		cp := *p
		cp.ID, cp.Asset = CopyPoint(p.ID, p.Asset, k), id(p.Asset)
		cp.Topic.Asset = id(p.Topic.Asset)
		cp.Register = nil // set to the copied meter's register afterwards
		if e := event.ValidPointID(cp.ID); e != nil {
			return fmt.Errorf("campus: copy %d: point id %w", k, e)
		}
		if _, dup := c.points[cp.ID]; dup {
			return fmt.Errorf("campus: copy %d: point %s twice", k, cp.ID)
		}
		c.points[cp.ID] = &cp
		c.Points = append(c.Points, &cp)
	}
	return nil
}
