package campus

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/event"
)

func TestCopyNames(t *testing.T) {
	for _, c := range []struct {
		id   string
		k    int
		want string
	}{
		{"b03-2.14", 0, "b03-2.14"}, {"b03-2.14", 2, "b03-2.14-x2"}, {"loomi", 100, "loomi-x100"}, {"el-x", 7, "el-x-x7"},
	} {
		got := CopyID(c.id, c.k)
		if got != c.want {
			t.Errorf("CopyID(%q, %d) = %q, want %q", c.id, c.k, got, c.want)
		}
		if orig, k := CopyOf(got); orig != c.id || k != c.k {
			t.Errorf("CopyOf(%q) = %q, %d", got, orig, k)
		}
	}
	for _, id := range []string{"a-x0", "a-x01", "a-x", "a-xy", "a-x-1"} {
		if orig, k := CopyOf(id); orig != id || k != 0 {
			t.Errorf("CopyOf(%q) = %q, %d; want copy 0", id, orig, k)
		}
	}
	if got := CopyPoint("loomi/check/b04-escape", "loomi", 3); got != "loomi-x3/check/b04-escape" {
		t.Errorf("CopyPoint: %s", got)
	}
	for _, c := range []struct {
		eui  string
		k    int
		want string
		ok   bool
	}{
		{"a840410100000001", 0, "A840410100000001", true},
		{"A840410100000001", 5, "A840410105000001", true},
		{"A840410100000001", 0x1234, "A840411334000001", true},
		{"A840410100000001", MaxCopies - 1, "A84041FEFF000001", true},
		{"A840410100000001", MaxCopies, "", false},
		{"A840410100000001", -1, "", false},
		{"zz", 1, "", false},
	} {
		got, err := CopyEUI(c.eui, c.k)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("CopyEUI(%q, %d) = %q, %v; want %q", c.eui, c.k, got, err, c.want)
		}
	}
}

// TestModelCopies: the model of copies 1 to 3 has each asset and point of
// the campus three times, under the copies' names, with every index and
// check working on them.
func TestModelCopies(t *testing.T) {
	m, err := Load("testdata/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if same, err := m.Copies(0, 1); err != nil || same != m {
		t.Fatalf("Copies(0, 1) = %p, %v; want the model itself", same, err)
	}
	const first, n = 1, 3
	c, err := m.Copies(first, n)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		what      string
		got, want int
	}{
		{"points", len(c.Points), n * len(m.Points)},
		{"rooms", len(c.Rooms), n * len(m.Rooms)},
		{"meters", len(c.Meters), n * len(m.Meters)},
		{"devices", len(c.Devices), n * len(m.Devices)},
		{"gateways", len(c.Gateways), n * len(m.Gateways)},
		{"buildings", len(c.Buildings), n * len(m.Buildings)},
		{"plots", len(c.Plots), n * len(m.Plots)},
		{"robots", len(c.Robots), n * len(m.Robots)},
		{"sites", len(c.Sites), len(m.Sites)},
		{"applications", len(c.Applications), len(m.Applications)},
	} {
		if x.got != x.want {
			t.Errorf("%s: %d, want %d", x.what, x.got, x.want)
		}
	}
	if _, ok := c.Asset(m.Rooms[0].ID); ok {
		t.Errorf("copy 0's room %s is in the model of copies 1 to 3", m.Rooms[0].ID)
	}
	for k := first; k < first+n; k++ {
		for _, p := range m.Points {
			cp, ok := c.Point(CopyPoint(p.ID, p.Asset, k))
			if !ok {
				t.Fatalf("copy %d: no point %s", k, CopyPoint(p.ID, p.Asset, k))
			}
			if cp.Asset != CopyID(p.Asset, k) || cp.Quantity != p.Quantity || cp.Unit != p.Unit || cp.Topic.Asset != cp.Asset ||
				cp.Topic.Event != p.Topic.Event || cp.Field != p.Field || cp.Check != p.Check {
				t.Errorf("copy %d: point %+v of %+v", k, cp, p)
			}
			if p.Register != nil && (cp.Register == nil || cp.Register.Point != cp.ID || cp.Register.OBIS != p.Register.OBIS) {
				t.Errorf("copy %d: register of %s: %+v", k, cp.ID, cp.Register)
			}
		}
		for _, d := range m.Devices {
			eui, _ := CopyEUI(d.DevEUI, k)
			cd, ok := c.DeviceByEUI(eui)
			if !ok || cd.ID != CopyID(d.ID, k) || cd.Plot != CopyID(d.Plot, k) || cd.Type.ID != d.Type.ID {
				t.Fatalf("copy %d: device by EUI %s: %+v", k, eui, cd)
			}
			app, _ := c.Application(d.Application)
			if byNet, ok := c.DeviceOnNetwork(app.Server, app.ApplicationID, CopyID(d.NetworkID, k)); !ok || byNet != cd {
				t.Errorf("copy %d: device %s not found by its network id", k, cd.ID)
			}
			if len(c.PointsOf(cd.ID)) != len(m.PointsOf(d.ID)) {
				t.Errorf("copy %d: %s has %d points, want %d", k, cd.ID, len(c.PointsOf(cd.ID)), len(m.PointsOf(d.ID)))
			}
		}
		for _, mt := range m.Meters {
			for _, r := range mt.Registers {
				if p, ok := c.MeterPoint(CopyID(mt.ID, k), r.OBIS); !ok || p.ID != CopyPoint(r.Point, mt.ID, k) {
					t.Errorf("copy %d: register %s of %s: %v", k, r.OBIS, mt.ID, p)
				}
			}
		}
		for _, b := range m.Buildings {
			cb, _ := c.Building(CopyID(b.ID, k))
			if cb == nil || len(cb.Rooms) != len(b.Rooms) || (b.Gateway != "" && cb.Gateway != CopyID(b.Gateway, k)) {
				t.Errorf("copy %d: building %+v", k, cb)
			}
		}
	}
	for _, tn := range m.Tenants {
		ct, _ := c.Tenant(tn.ID)
		if len(ct.Rooms) != n*len(tn.Rooms) || len(ct.Meters) != n*len(tn.Meters) {
			t.Errorf("tenant %s: %d rooms and %d meters, want %d and %d", tn.ID, len(ct.Rooms), len(ct.Meters), n*len(tn.Rooms), n*len(tn.Meters))
		}
	}
	// The copied model is new: the campus's own is untouched.
	if len(m.Tenants[0].Rooms) > 0 && strings.Contains(m.Tenants[0].Rooms[len(m.Tenants[0].Rooms)-1], "-x") {
		t.Error("the campus's tenant lists were changed")
	}

	// Events of a copy check against the copies' model, and not against
	// the campus's.
	room := m.Rooms[0]
	rp := m.PointsOf(room.ID)[0]
	gw := m.Gateways[0]
	for _, g := range m.Gateways {
		if g.GatewayKind == GatewayBuilding && g.Building == room.Building {
			gw = g
		}
	}
	at := time.Date(2026, 5, 12, 9, 30, 0, 0, time.UTC)
	roomCopy := CopyID(room.ID, 2)
	meas := &event.Measurement{Header: event.Header{Time: at, Asset: roomCopy, Source: event.Source{Type: event.SourceBuilding, Gateway: CopyID(gw.ID, 2)}},
		Values: []event.Value{{Point: CopyPoint(rp.ID, room.ID, 2), Value: 21.5, Unit: rp.Unit}}}
	ct := event.NewTopic(room.Domain, room.Site, room.Kind, roomCopy, event.EventMeasurement)
	if err := c.Check(ct, meas); err != nil {
		t.Errorf("a copy's room event: %v", err)
	}
	if err := m.Check(ct, meas); err == nil {
		t.Error("the campus model accepted a copy's event")
	}
	d := m.Devices[0]
	dc, _ := c.Device(CopyID(d.ID, 3))
	app, _ := c.Application(d.Application)
	fcnt := uint32(7)
	dm := &event.Measurement{Header: event.Header{Time: at, Asset: dc.ID, Source: event.Source{Type: event.SourceLoRaWAN,
		NetworkServer: string(app.Server), Application: app.ApplicationID, DeviceID: dc.NetworkID, DevEUI: dc.DevEUI, FCnt: &fcnt}},
		Values: []event.Value{{Point: c.PointsOf(dc.ID)[0].ID, Value: 1, Unit: c.PointsOf(dc.ID)[0].Unit}}}
	if err := c.Check(dc.Topic(event.EventMeasurement), dm); err != nil {
		t.Errorf("a copy's device event: %v", err)
	}
	dm.Source.DevEUI = d.DevEUI
	if err := c.Check(dc.Topic(event.EventMeasurement), dm); err == nil {
		t.Error("a copy's device event with the original's DevEUI was accepted")
	}
	if _, ok := c.MeterPoint(CopyID(m.Meters[0].ID, 1), energy.OBIS{}); ok {
		t.Error("a register that does not exist was found")
	}
}

// TestModelCopiesRefused: copies that would collide or break a limit are
// refused, each with what is wrong.
func TestModelCopiesRefused(t *testing.T) {
	m, err := Load("testdata/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		first, n int
		want     string
	}{
		{0, 0, "want at least 1"},
		{-1, 2, "want copies from 0"},
		{MaxCopies - 1, 2, "want copies from 0"},
		{0, min(MaxPoints/len(m.Points)+1, MaxCopies), "more than"},
	} {
		if _, err := m.Copies(c.first, c.n); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Copies(%d, %d) = %v, want %q", c.first, c.n, err, c.want)
		}
	}
	src, err := os.ReadFile("testdata/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := os.DirFS(filepath.Join("testdata", "small"))
	d := m.Devices[0].ID
	for _, c := range []struct {
		name, from, to string
		n              int
		want           string
	}{
		{"an id that reads as a copy's", d, d + "-x4", 2, "reads as copy 4"},
		{"a network id too long for its copies", d, strings.Repeat("d", 34), 10, "longer than 36"},
		{"an asset id too long for its copies", d, strings.Repeat("d", 62) + ", network_id: nid-01", 1000, "longer than 64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := strings.ReplaceAll(string(src), "id: "+c.from+",", "id: "+c.to+",")
			mm, err := Parse("campus.yaml", []byte(body), files)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mm.Copies(0, c.n); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Copies(0, %d) = %v, want %q", c.n, err, c.want)
			}
		})
	}
}
