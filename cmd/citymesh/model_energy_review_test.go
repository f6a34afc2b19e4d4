package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestModelEnergyESGTwoRegistersOneMeter: without -site, a meter with an
// import (1.8.0) and an export (2.8.0) register used to fail with "meter M
// listed twice"; the import counts as consumption, the export is left out
// with a note.
func TestModelEnergyESGTwoRegistersOneMeter(t *testing.T) {
	dir := t.TempDir()
	r := filepath.Join(dir, "r.csv")
	csv := "time,meter,obis,value\n" +
		"2026-01-05T00:00:00+01:00,M,1-0:1.8.0,100\n" +
		"2026-01-05T00:15:00+01:00,M,1-0:1.8.0,1100\n" +
		"2026-01-05T00:00:00+01:00,M,1-0:2.8.0,5\n" +
		"2026-01-05T00:15:00+01:00,M,1-0:2.8.0,7\n"
	if err := os.WriteFile(r, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runEnergy(t, "esg", "-readings", r, "-year", "2024")
	if err != nil {
		t.Fatal(err)
	}
	if out["total_energy_mwh"] != 1.0 || out["scope2_location_based_t"] != 0.363 {
		t.Errorf("got total %v MWh, scope 2 %v t; want 1 MWh and 1 MWh × 363 g/kWh = 0.363 t", out["total_energy_mwh"], out["scope2_location_based_t"])
	}
	if notes, _ := out["notes"].([]any); len(notes) == 0 {
		t.Errorf("no note that the export register is left out: %v", out)
	}
}
