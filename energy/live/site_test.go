package live_test

import (
	"strings"
	"testing"

	"github.com/citymesh/citymesh/energy"
	"github.com/citymesh/citymesh/energy/live"
)

// TestSitesFromCampus: the reference campus's 281 meters become one site
// whose main meters are shared by the tenants of their building by their
// area there, whose floor sub-meters are their tenants', and whose
// multi-register meters bill one register and keep the others.
func TestSitesFromCampus(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := sites["campus"]
	if !ok || len(sites) != 1 {
		t.Fatalf("sites %v, want campus only", len(sites))
	}
	regs := 0
	for _, mt := range s.Meters {
		regs += 1 + len(mt.Registers)
	}
	if len(s.Meters) != 281 || regs != 378 {
		t.Errorf("%d meters with %d registers, want 281 and 378", len(s.Meters), regs)
	}
	byID := map[string]energy.Meter{}
	for _, mt := range s.Meters {
		byID[mt.ID] = mt
	}
	if el := byID["el-b01-main"]; el.OBIS != "1-0:1.8.0" || len(el.Registers) != 4 || el.Digits != 9 {
		t.Errorf("el-b01-main: %+v", el)
	}
	if gs := byID["gs-b22-main"]; gs.OBIS != "7-0:3.0.0" || len(gs.Registers) != 1 || gs.Carrier != energy.NaturalGas {
		t.Errorf("gs-b22-main: %+v", gs)
	}
	shared := map[string]energy.Allocation{}
	for _, a := range s.Shared {
		shared[a.Meter] = a
	}
	if len(shared) != 85 {
		t.Errorf("%d shared meters, want the 85 main meters", len(shared))
	}
	if a := shared["el-b01-main"]; len(a.SubMeters) != 4 || strings.Join(a.Tenants, ",") != "campus-service" {
		t.Errorf("el-b01-main allocation %+v", a)
	}
	for _, a := range s.Shared {
		for _, tid := range a.Tenants {
			if !(a.Areas[tid] > 0) {
				t.Errorf("%s: tenant %s without area", a.Meter, tid)
			}
		}
	}
	if len(s.Tenants) < 10 {
		t.Errorf("%d tenants billed", len(s.Tenants))
	}
}
