package live

import (
	"fmt"
	"slices"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/energy"
)

// SitesFromCampus builds the billing sites of a campus model, one per
// campus site that has meters, by site id. Each campus meter becomes an
// energy.Meter whose billed register is its first register with the
// meter's carrier (1-0:1.8.0 of a main electricity meter, 7-0:3.0.0 of a
// gas meter); its other registers (tariff registers, export, power) are
// the meter's further registers. The allocation follows the campus's
// meter hierarchy and tenants' rooms:
//
//   - a sub-meter (one with a parent) of a tenant is that tenant's own
//     meter;
//   - a main meter is shared: its consumption less its sub-meters' is
//     split among the tenants that have rooms in its building, by their
//     area in that building (energy.Allocation.Areas); a building without
//     tenants' rooms gives it to the meter's own tenant, if any;
//   - a meter allocated to nobody is read (and counts in ESG) but billed
//     to no tenant.
func SitesFromCampus(m *campus.Model) (map[string]energy.Site, error) {
	subs := map[string][]string{}
	for _, mt := range m.Meters {
		if mt.Parent != "" {
			subs[mt.Parent] = append(subs[mt.Parent], mt.ID)
		}
	}
	areas := map[string]map[string]float64{} // building → tenant → m²
	for _, t := range m.Tenants {
		for b, a := range t.AreaM2 {
			if a > 0 {
				if areas[b] == nil {
					areas[b] = map[string]float64{}
				}
				areas[b][t.ID] = a
			}
		}
	}
	sites := map[string]*energy.Site{}
	tenants := map[string]map[string]*energy.Tenant{} // site → tenant id
	tenantOf := func(site, id string) *energy.Tenant {
		if tenants[site] == nil {
			tenants[site] = map[string]*energy.Tenant{}
		}
		t := tenants[site][id]
		if t == nil {
			ct, _ := m.Tenant(id)
			t = &energy.Tenant{ID: id}
			if ct != nil {
				t.Name = ct.Name
				for _, a := range ct.AreaM2 {
					t.AreaM2 += a
				}
			}
			tenants[site][id] = t
		}
		return t
	}
	for _, mt := range m.Meters {
		s := sites[mt.Site]
		if s == nil {
			s = &energy.Site{Name: mt.Site}
			sites[mt.Site] = s
		}
		em := energy.Meter{ID: mt.ID, Carrier: mt.Carrier}
		billed := -1
		for i, r := range mt.Registers {
			if r.OBIS.DefaultCarrier() == mt.Carrier {
				billed = i
				break
			}
		}
		if billed < 0 {
			return nil, fmt.Errorf("energy: campus meter %s: no register of carrier %s to bill", mt.ID, mt.Carrier)
		}
		for i, r := range mt.Registers {
			if i == billed {
				em.OBIS, em.Digits = r.OBIS.String(), r.Digits
				continue
			}
			em.Registers = append(em.Registers, energy.MeterRegister{OBIS: r.OBIS.String(), Digits: r.Digits})
		}
		s.Meters = append(s.Meters, em)
		switch {
		case mt.Parent != "":
			if mt.Tenant != "" {
				t := tenantOf(mt.Site, mt.Tenant)
				t.Meters = append(t.Meters, mt.ID)
			}
		default:
			a := energy.Allocation{Meter: mt.ID, SubMeters: subs[mt.ID], Areas: map[string]float64{}}
			for tid, area := range areas[mt.Building] {
				a.Tenants = append(a.Tenants, tid)
				a.Areas[tid] = area
			}
			slices.Sort(a.Tenants)
			if len(a.Tenants) == 0 && mt.Tenant != "" {
				a.Tenants, a.Areas = []string{mt.Tenant}, map[string]float64{mt.Tenant: 1}
			}
			if len(a.Tenants) == 0 {
				continue
			}
			for _, tid := range a.Tenants {
				tenantOf(mt.Site, tid)
			}
			s.Shared = append(s.Shared, a)
		}
	}
	out := make(map[string]energy.Site, len(sites))
	for id, s := range sites {
		for _, t := range m.Tenants {
			if et := tenants[id][t.ID]; et != nil {
				s.Tenants = append(s.Tenants, *et)
			}
		}
		if err := s.Check(); err != nil {
			return nil, fmt.Errorf("energy: campus site %s: %w", id, err)
		}
		out[id] = *s
	}
	return out, nil
}
