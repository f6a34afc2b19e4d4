package vineyard

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.FixedZone("CEST", 2*3600))

// series builds consecutive hours from t0 with the given temperatures and a
// common RH and rain.
func series(temps []float64, rh, rain float64) []Hour {
	hs := make([]Hour, len(temps))
	for i, t := range temps {
		hs[i] = Hour{Time: t0.Add(time.Duration(i) * time.Hour), TempC: t, RHPct: rh, RainMM: rain}
	}
	return hs
}

func repeat(v float64, n int) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// Saturation vapour pressure from the Alduchov & Eskridge (1996) Magnus form:
// by definition 0.61094 kPa at 0 °C; 2.3334 kPa at 20 °C (hand-computed from
// the published constants).
func TestSaturationVapourPressure(t *testing.T) {
	for _, c := range []struct{ t, want float64 }{{0, 0.61094}, {20, 2.3334}, {-10, 0.2868}} {
		if got := SaturationVapourPressure(c.t); !near(got, c.want, 0.0005) {
			t.Errorf("e_s(%g) = %.4f kPa, want %.4f", c.t, got, c.want)
		}
	}
}

// Dew points against the usual published dew-point tables (20 °C/50 % →
// 9.3 °C, 25 °C/60 % → 16.7 °C, 10 °C/90 % → 8.4 °C), and Td = T at 100 %.
func TestDewPoint(t *testing.T) {
	for _, c := range []struct{ t, rh, want float64 }{
		{20, 50, 9.3}, {25, 60, 16.7}, {10, 90, 8.4}, {15, 100, 15}, {-5, 100, -5},
	} {
		if got := DewPoint(c.t, c.rh); !near(got, c.want, 0.06) {
			t.Errorf("DewPoint(%g, %g) = %.2f, want %.1f", c.t, c.rh, got, c.want)
		}
	}
	if got := DewPoint(20, 0); math.IsNaN(got) || math.IsInf(got, 0) || got > -40 {
		t.Errorf("DewPoint at 0 %% RH = %g, want a finite, very low value", got)
	}
}

func TestVPD(t *testing.T) {
	for _, c := range []struct{ t, rh, want float64 }{{20, 50, 1.1667}, {20, 100, 0}, {0, 0, 0.61094}} {
		if got := VPD(c.t, c.rh); !near(got, c.want, 0.0005) {
			t.Errorf("VPD(%g, %g) = %.4f, want %.4f", c.t, c.rh, got, c.want)
		}
	}
}

func TestDeriveWetness(t *testing.T) {
	hs := []Hour{
		{TempC: 15, RHPct: 89.9},
		{TempC: 15, RHPct: 90},
		{TempC: 15, RHPct: 50, RainMM: 0.2},
		{TempC: 15, RHPct: 99, HasLeafWet: true, LeafWet: 0.2}, // the sensor wins
		{TempC: 15, RHPct: 40, HasLeafWet: true, LeafWet: 0.5},
	}
	want := []string{"", "rh", "rain", "", "sensor"}
	for i, d := range Derive(hs, 0) {
		if d.WetSource != want[i] || d.Wet != (want[i] != "") {
			t.Errorf("hour %d: wet %v by %q, want by %q", i, d.Wet, d.WetSource, want[i])
		}
	}
	// A configured threshold replaces 90 %.
	if d := Derive(hs[:1], 85); !d[0].Wet {
		t.Errorf("RH 89.9 %% with threshold 85 %%: not wet")
	}
}

const csvHead = "time,temp_c,rh_pct,rain_mm\n"

func TestReadCSV(t *testing.T) {
	in := csvHead +
		"2026-05-01T00:00:00+02:00,12.5,88,0\n" +
		"2026-05-01T01:00:00+02:00,12.1,91,0.4\n" +
		"\n" +
		"2026-05-01T04:00:00+02:00,11.0,95,1.2\n"
	w, err := ReadCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Hours) != 3 || w.Hours[1].RainMM != 0.4 || w.Hours[2].TempC != 11 {
		t.Fatalf("hours = %+v", w.Hours)
	}
	if len(w.Gaps) != 1 || w.Gaps[0].MissingHours != 2 || !w.Gaps[0].After.Equal(w.Hours[1].Time) {
		t.Fatalf("gaps = %+v, want one of 2 hours after 01:00", w.Gaps)
	}

	lw := "time,temp_c,rh_pct,rain_mm,leaf_wet\n" +
		"2026-05-01T00:00:00Z,12.5,88,0,1\n" +
		"2026-05-01T01:00:00Z,12.5,88,0,\n"
	w, err = ReadCSV(strings.NewReader(lw))
	if err != nil {
		t.Fatal(err)
	}
	if !w.Hours[0].HasLeafWet || w.Hours[0].LeafWet != 1 || w.Hours[1].HasLeafWet {
		t.Errorf("leaf wetness = %+v", w.Hours)
	}
}

func TestReadCSVBadInput(t *testing.T) {
	row := "2026-05-01T00:00:00+02:00,12,80,0\n"
	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "empty input"},
		{"header only", csvHead, "no records"},
		{"wrong header", "time,temp,rh,rain\n" + row, `column 2 is "temp"`},
		{"too few header columns", "time,temp_c\n", "header has 2 columns"},
		{"bad time", csvHead + "yesterday,12,80,0\n", "line 2: field time"},
		{"no zone", csvHead + "2026-05-01T00:00:00,12,80,0\n", "line 2: field time"},
		{"temp too high", csvHead + "2026-05-01T00:00:00Z,61,80,0\n", "line 2: field temp_c: 61 is outside"},
		{"rh over 100", csvHead + "2026-05-01T00:00:00Z,12,101,0\n", "field rh_pct"},
		{"negative rain", csvHead + "2026-05-01T00:00:00Z,12,80,-1\n", "field rain_mm"},
		{"NaN", csvHead + "2026-05-01T00:00:00Z,NaN,80,0\n", "field temp_c"},
		{"not a number", csvHead + "2026-05-01T00:00:00Z,warm,80,0\n", `"warm" is not a number`},
		{"empty field", csvHead + "2026-05-01T00:00:00Z,,80,0\n", "field temp_c: empty"},
		{"leaf wet over 1", "time,temp_c,rh_pct,rain_mm,leaf_wet\n2026-05-01T00:00:00Z,12,80,0,30\n", "field leaf_wet"},
		{"field count", csvHead + "2026-05-01T00:00:00Z,12,80\n", "line 2: 3 fields, want 4"},
		{"duplicate", csvHead + row + row, "line 3: time 2026-05-01T00:00:00+02:00 repeats"},
		{"backwards", csvHead + "2026-05-01T05:00:00Z,12,80,0\n" + "2026-05-01T04:00:00Z,12,80,0\n", "line 3: time 2026-05-01T04:00:00Z is before"},
		{"half hour", csvHead + "2026-05-01T05:00:00Z,12,80,0\n" + "2026-05-01T05:30:00Z,12,80,0\n", "want whole hours"},
		{"quote", csvHead + "\"2026,12,80,0\n", "weather csv"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestWriteCSVRoundTrip(t *testing.T) {
	hs := series([]float64{10.5, 11, -2.25}, 85, 0.3)
	hs[1].HasLeafWet, hs[1].LeafWet = true, 0.75
	var b bytes.Buffer
	if err := WriteCSV(&b, hs); err != nil {
		t.Fatal(err)
	}
	w, err := ReadCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range hs {
		g, h := w.Hours[i], hs[i]
		if !g.Time.Equal(h.Time) || g.TempC != h.TempC || g.RHPct != h.RHPct || g.RainMM != h.RainMM || g.HasLeafWet != h.HasLeafWet || g.LeafWet != h.LeafWet {
			t.Errorf("hour %d: %+v, want %+v", i, g, h)
		}
	}
}

// FuzzReadCSV checks that any input gives either an error or a series that
// keeps the reader's promises, and that a series survives a round trip.
func FuzzReadCSV(f *testing.F) {
	ex, err := os.ReadFile("../examples/models/vineyard/heilbronn-2026-may-june.csv")
	if err == nil {
		f.Add(string(ex[:min(len(ex), 2000)]))
	}
	f.Add(csvHead + "2026-05-01T00:00:00+02:00,12,80,0\n2026-05-01T03:00:00+02:00,12,80,0\n")
	f.Add("time,temp_c,rh_pct,rain_mm,leaf_wet\n2026-05-01T00:00:00Z,12,80,0,\n")
	f.Fuzz(func(t *testing.T, in string) {
		w, err := ReadCSV(strings.NewReader(in))
		if err != nil {
			if w.Hours != nil {
				t.Fatalf("error %v with hours", err)
			}
			return
		}
		if len(w.Hours) == 0 {
			t.Fatal("no error and no hours")
		}
		missing := 0
		for _, g := range w.Gaps {
			missing += g.MissingHours
		}
		span := int(w.Hours[len(w.Hours)-1].Time.Sub(w.Hours[0].Time) / time.Hour)
		if span+1 != len(w.Hours)+missing {
			t.Fatalf("span %d h, %d hours, %d missing", span, len(w.Hours), missing)
		}
		for i, h := range w.Hours {
			if h.TempC < minTempC || h.TempC > maxTempC || h.RHPct < 0 || h.RHPct > 100 || h.RainMM < 0 || h.LeafWet < 0 || h.LeafWet > 1 {
				t.Fatalf("hour %d out of range: %+v", i, h)
			}
			if i > 0 && h.Time.Sub(w.Hours[i-1].Time)%time.Hour != 0 {
				t.Fatalf("hour %d not whole hours after the one before", i)
			}
		}
		var b bytes.Buffer
		if err := WriteCSV(&b, w.Hours); err != nil {
			t.Fatal(err)
		}
		w2, err := ReadCSV(&b)
		if err != nil || len(w2.Hours) != len(w.Hours) {
			t.Fatalf("round trip: %v, %d hours of %d", err, len(w2.Hours), len(w.Hours))
		}
		if _, err := Assess(w, Config{}); err != nil {
			t.Fatalf("Assess of a valid series: %v", err)
		}
	})
}
