package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func energyFiles(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"r.csv": "time,meter,obis,value\n" +
			"2026-01-05T00:00:00+01:00,M1,1-0:1.8.0,100\n" +
			"2026-01-05T00:15:00+01:00,M1,1-0:1.8.0,101\n" +
			"2026-01-05T00:30:00+01:00,M1,1-0:1.8.0,103\n" +
			"2026-01-05T00:30:00+01:00,M1,1-0:1.8.0,103\n" +
			"2026-01-05T00:45:00+01:00,M1,1-0:1.8.0,106\n" +
			"2026-01-05T01:00:00+01:00,M1,1-0:1.8.0,110\n",
		"site.yaml":    "meters:\n  - {id: M1, obis: \"1-0:1.8.0\"}\ntenants:\n  - {id: T1, area_m2: 50, meters: [M1]}\n",
		"tariff.yaml":  "tariffs:\n  - carrier: electricity\n    bands: [{name: flat, price: \"0.30\"}]\n",
		"factors.yaml": "defaults: uba\n",
		"bad.csv":      "time,meter,obis,value\n2026-01-05T00:00:00+01:00,M1,1-0:1.8,100\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runEnergy(t *testing.T, name string, args ...string) (map[string]any, error) {
	t.Helper()
	var out bytes.Buffer
	err := models[name].run(context.Background(), args, &out)
	if err != nil {
		return nil, err
	}
	if out.Len() == 0 {
		return nil, nil // written to -o
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("%s: output is not JSON: %v\n%s", name, err, out.String())
	}
	return v, nil
}

func TestModelEnergyConsumption(t *testing.T) {
	d := energyFiles(t)
	v, err := runEnergy(t, "consumption", "-readings", filepath.Join(d, "r.csv"))
	if err != nil {
		t.Fatal(err)
	}
	s := v["series"].([]any)[0].(map[string]any)
	ivs := s["intervals"].([]any)
	var got []float64
	for _, iv := range ivs {
		got = append(got, iv.(map[string]any)["value"].(float64))
	}
	if len(got) != 4 || got[0] != 1 || got[1] != 2 || got[2] != 3 || got[3] != 4 || s["total"].(float64) != 10 || s["duplicates"].(float64) != 1 {
		t.Errorf("got %v total %v", got, s["total"])
	}
	v, err = runEnergy(t, "consumption", "-readings", filepath.Join(d, "r.csv"), "-interval", "30m")
	if err != nil || len(v["series"].([]any)[0].(map[string]any)["intervals"].([]any)) != 2 {
		t.Errorf("30-minute intervals: %v %v", v, err)
	}
	out := filepath.Join(d, "out.json")
	if _, err := runEnergy(t, "consumption", "-readings", filepath.Join(d, "r.csv"), "-o", out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Contains(b, []byte(`"model": "consumption"`)) {
		t.Errorf("-o file: %v %s", err, b)
	}
}

func TestModelEnergyInvoice(t *testing.T) {
	d := energyFiles(t)
	v, err := runEnergy(t, "invoice", "-readings", filepath.Join(d, "r.csv"), "-tariff", filepath.Join(d, "tariff.yaml"),
		"-tenants", filepath.Join(d, "site.yaml"), "-from", "2026-01-05T00:00:00+01:00", "-to", "2026-01-05T01:00:00+01:00")
	if err != nil {
		t.Fatal(err)
	}
	inv := v["invoices"].([]any)[0].(map[string]any)
	// 10 kWh × 0.30 = 3.00 net; 19 % VAT 0.57; gross 3.57.
	if inv["net"] != "3.00" || inv["vat"] != "0.57" || inv["gross"] != "3.57" || inv["estimated"] != false {
		t.Errorf("got %v", inv)
	}
}

func TestModelEnergyESGAndAnomalies(t *testing.T) {
	d := energyFiles(t)
	v, err := runEnergy(t, "esg", "-readings", filepath.Join(d, "r.csv"), "-factors", filepath.Join(d, "factors.yaml"), "-year", "2024")
	if err != nil {
		t.Fatal(err)
	}
	// 10 kWh × 363 g/kWh = 3.63 kg = 0.00363 t.
	if got := v["scope2_location_based_t"].(float64); got < 0.00362999 || got > 0.00363001 || v["total_energy_mwh"].(float64) != 0.01 {
		t.Errorf("got %v", v)
	}
	v, err = runEnergy(t, "anomalies", "-readings", filepath.Join(d, "r.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if regs := v["registers"].([]any); len(regs) != 1 || regs[0].(map[string]any)["carrier"] != "electricity" {
		t.Errorf("got %v", v)
	}
}

func TestModelEnergyExamples(t *testing.T) {
	e := filepath.Join("..", "..", "examples", "models", "energy")
	if _, err := os.Stat(filepath.Join(e, "readings.csv")); err != nil {
		t.Skip("examples not present")
	}
	v, err := runEnergy(t, "invoice", "-readings", filepath.Join(e, "readings.csv"), "-tariff", filepath.Join(e, "tariff.yaml"),
		"-tenants", filepath.Join(e, "site.yaml"), "-from", "2026-01-05", "-to", "2026-01-26")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(v["invoices"].([]any)); n != 3 {
		t.Errorf("%d invoices, want 3", n)
	}
	v, err = runEnergy(t, "anomalies", "-readings", filepath.Join(e, "readings.csv"), "-site", filepath.Join(e, "site.yaml"), "-temps", filepath.Join(e, "temps.csv"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range v["registers"].([]any) {
		if r.(map[string]any)["meter"] == "A-WATER" && len(r.(map[string]any)["leak_suspects"].([]any)) == 1 {
			found = true
		}
	}
	if !found {
		t.Error("the example's leaking cistern was not found")
	}
	if _, err := runEnergy(t, "esg", "-readings", filepath.Join(e, "readings.csv"), "-site", filepath.Join(e, "site.yaml"), "-factors", filepath.Join(e, "factors.yaml")); err != nil {
		t.Error(err)
	}
}

func TestModelEnergyBadInput(t *testing.T) {
	d := energyFiles(t)
	r := filepath.Join(d, "r.csv")
	for _, tc := range []struct {
		model string
		args  []string
		want  string
	}{
		{"consumption", nil, "-readings FILE.csv is required"},
		{"consumption", []string{"-readings", filepath.Join(d, "missing.csv")}, "no such file"},
		{"consumption", []string{"-readings", filepath.Join(d, "bad.csv")}, "line 2: field obis"},
		{"consumption", []string{"-readings", r, "-interval", "0s"}, "-interval must be positive"},
		{"consumption", []string{"-readings", r, "extra"}, "unexpected argument"},
		{"consumption", []string{"-readings", r, "-from", "2026-01-05"}, "both required"},
		{"consumption", []string{"-readings", r, "-from", "yesterday", "-to", "2026-01-06"}, "want RFC 3339"},
		{"consumption", []string{"-nope"}, "flag provided but not defined"},
		{"invoice", []string{"-readings", r}, "-tariff FILE.yaml and -tenants FILE.yaml are required"},
		{"invoice", []string{"-readings", r, "-tariff", filepath.Join(d, "tariff.yaml"), "-tenants", filepath.Join(d, "site.yaml")}, "-from and -to are both required"},
		{"invoice", []string{"-readings", r, "-tariff", filepath.Join(d, "site.yaml"), "-tenants", filepath.Join(d, "site.yaml"), "-from", "2026-01-05", "-to", "2026-01-06"}, "tariff yaml"},
		{"invoice", []string{"-readings", r, "-tariff", filepath.Join(d, "tariff.yaml"), "-tenants", filepath.Join(d, "site.yaml"), "-from", "2026-01-06", "-to", "2026-01-05"}, "must be before"},
		{"esg", []string{"-readings", r, "-year", "2010"}, "no location-based factor"},
		{"esg", []string{"-readings", r, "-factors", filepath.Join(d, "r.csv")}, "factors yaml"},
		{"anomalies", []string{"-readings", r, "-tz", "Nowhere/City"}, "-tz"},
		{"anomalies", []string{"-readings", r, "-leak-nights", "0"}, "at least 1"},
		{"anomalies", []string{"-readings", r, "-rel", "0"}, "-rel must be a positive number"},
		{"anomalies", []string{"-readings", r, "-abs", "NaN"}, "-abs and -leak-threshold finite"},
		{"anomalies", []string{"-readings", r, "-hdd-base", "NaN"}, "-hdd-base a finite temperature"},
		{"anomalies", []string{"-readings", r, "-temps", r}, "temperature csv"},
	} {
		_, err := runEnergy(t, tc.model, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: got %v, want %q", tc.model, tc.args, err, tc.want)
		}
	}
	// -help is not an error.
	if err := models["invoice"].run(context.Background(), []string{"-help"}, &bytes.Buffer{}); err != nil {
		t.Errorf("-help: %v", err)
	}
}
