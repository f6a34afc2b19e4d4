package campus

import (
	"testing"

	"github.com/citymesh/citymesh/energy"
)

// The OBIS table agrees with package energy: the register's usual unit is
// the unit energy.OBIS.Unit gives, and a consumption register's carrier is
// the one mediumCarrier gives.
func TestOBISTable(t *testing.T) {
	symbol := map[string]string{"KWH": "kWh", "K3": "kvarh", "MTQ": "m3", "KWT": ""}
	for _, tc := range []struct {
		code     string
		quantity string
		ok       bool
	}{
		{"1-0:1.8.0", "activeEnergyImport", true},
		{"1-0:1.8.1", "activeEnergyImport", true},
		{"1-1:1.8.2", "activeEnergyImport", true},
		{"1-0:2.8.0", "activeEnergyExport", true},
		{"1-0:3.8.0", "reactiveEnergyImport", true},
		{"1-0:4.8.0", "reactiveEnergyExport", true},
		{"1-0:1.7.0", "activePower", true},
		{"1-0:1.29.0", "activePowerDemand", true},
		{"5-0:1.0.0", "coolingEnergy", true},
		{"6-0:1.0.0", "heatEnergy", true},
		{"7-0:3.0.0", "gasVolume", true},
		{"7-0:13.2.0", "gasVolume", true},
		{"8-0:1.0.0", "waterConsumption", true},
		{"9-0:1.0.0", "waterConsumption", true},
		{"1-0:1.8.0*1", "", false}, // a billing period's value, not the current one
		{"1-0:1.8.10", "", false},
		{"8-0:1.0.0", "waterConsumption", true},
		{"1-0:32.7.0", "", false},
		{"8-0:2.0.0", "", false},
	} {
		o, err := energy.ParseOBIS(tc.code)
		if err != nil {
			t.Fatal(err)
		}
		q, u, ok := OBISQuantity(o)
		if ok != tc.ok || q != tc.quantity {
			t.Errorf("%s: %s %s %v", tc.code, q, u, ok)
			continue
		}
		if !ok {
			continue
		}
		if qt, found := LookupQuantity(q); !found || qt.Units[0] != u {
			t.Errorf("%s: usual unit %s is not quantity %s's first", tc.code, u, q)
		}
		if want := symbol[string(u)]; want != "" && o.Unit() != want {
			t.Errorf("%s: unit %s, package energy says %s", tc.code, u, o.Unit())
		}
		if c := o.DefaultCarrier(); c != "" && c != energy.ElectricityFeed && c != mediumCarrier(o.A) {
			t.Errorf("%s: carrier %s, package energy says %s", tc.code, mediumCarrier(o.A), c)
		}
	}
}
