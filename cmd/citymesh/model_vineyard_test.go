package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const vineyardExample = "../../examples/models/vineyard/heilbronn-2026-may-june.csv"

func TestDiseaseModelExample(t *testing.T) {
	out := filepath.Join(t.TempDir(), "risk.json")
	var stdout bytes.Buffer
	err := runDiseaseModel(context.Background(), []string{
		"-weather", vineyardExample, "-shoot-cm", "15", "-dd0", "120", "-ht0", "2", "-from", "2026-05-01", "-o", out,
	}, &stdout)
	if err != nil {
		t.Fatal(err)
	}
	if stdout.Len() != 0 {
		t.Errorf("wrote to stdout with -o: %q", stdout.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Model string `json:"model"`
		Hours int    `json:"hours"`
		Risk  []struct {
			Disease string `json:"disease"`
			Peak    string `json:"peak"`
			Days    []struct {
				Date    string `json:"date"`
				Level   string `json:"level"`
				Reasons []struct {
					Rule   string             `json:"rule"`
					Level  string             `json:"level"`
					Text   string             `json:"text"`
					Values map[string]float64 `json:"values"`
				} `json:"reasons"`
			} `json:"days"`
		} `json:"risk"`
		Rule310 []map[string]any `json:"rule_3_10"`
		Powdery []struct {
			Index int `json:"index"`
		} `json:"powdery_index"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Model != "disease" || got.Hours != 61*24 || len(got.Risk) != 3 {
		t.Fatalf("model %q, %d hours, %d diseases", got.Model, got.Hours, len(got.Risk))
	}
	for _, r := range got.Risk {
		if len(r.Days) != 61 {
			t.Errorf("%s: %d days, want 61", r.Disease, len(r.Days))
		}
		for _, d := range r.Days {
			if d.Level != "none" && len(d.Reasons) == 0 {
				t.Errorf("%s %s: level %s without a reason", r.Disease, d.Date, d.Level)
			}
			for _, rs := range d.Reasons {
				if rs.Rule == "" || rs.Text == "" {
					t.Errorf("%s %s: empty reason %+v", r.Disease, d.Date, rs)
				}
			}
		}
	}
	if len(got.Rule310) == 0 {
		t.Error("the example has no 3-10 event")
	}
	if len(got.Powdery) != 61 {
		t.Errorf("%d powdery days", len(got.Powdery))
	}
}

func TestDiseaseModelStdout(t *testing.T) {
	var stdout bytes.Buffer
	if err := runDiseaseModel(context.Background(), []string{"-weather", vineyardExample}, &stdout); err != nil {
		t.Fatal(err)
	}
	if !json.Valid(stdout.Bytes()) || !strings.Contains(stdout.String(), `"downy_mildew"`) {
		t.Errorf("stdout is not the JSON: %.200s", stdout.String())
	}
}

func TestDiseaseModelBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("time,temp_c,rh_pct,rain_mm\n2026-05-01T00:00:00Z,12,180,0\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no weather", nil, "-weather FILE.csv is required"},
		{"missing file", []string{"-weather", filepath.Join(dir, "nope.csv")}, "no such file"},
		{"bad csv", []string{"-weather", bad}, "line 2: field rh_pct"},
		{"bad from", []string{"-weather", vineyardExample, "-from", "May"}, "-from"},
		{"bad lesions", []string{"-weather", vineyardExample, "-lesions", "soon"}, "-lesions"},
		{"bad flag", []string{"-weather", vineyardExample, "-shoot-cm", "long"}, "invalid value"},
		{"negative shoot", []string{"-weather", vineyardExample, "-shoot-cm", "-3"}, "negative"},
		{"zero temperature", []string{"-weather", vineyardExample, "-temp-c", "0"}, "-temp-c 0"},
		{"zero wet RH", []string{"-weather", vineyardExample, "-wet-rh", "0"}, "-wet-rh 0"},
		{"zero window", []string{"-weather", vineyardExample, "-window-h", "0"}, "-window-h 0"},
		{"stray argument", []string{"-weather", vineyardExample, "extra"}, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := runDiseaseModel(context.Background(), c.args, &stdout)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestDiseaseModelRegistered(t *testing.T) {
	if _, ok := models["disease"]; !ok {
		t.Fatal("model disease is not registered")
	}
}

// TestDiseaseModelFromAfterDST checks that -from YYYY-MM-DD means midnight
// of the records' own clock after the change to summer time (Europe/Berlin,
// 29 March 2026): a file that starts in +01:00 and a date in +02:00. Each of
// 30 and 31 March and 1 April has exactly 6 h at 25 °C from 00:00 local, so
// the Gubler-Thomas start needs all three runs whole to reach 60.
func TestDiseaseModelFromAfterDST(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	summer := time.FixedZone("CEST", 2*3600)
	var b strings.Builder
	b.WriteString("time,temp_c,rh_pct,rain_mm\n")
	start := time.Date(2026, 3, 28, 0, 0, 0, 0, time.UTC).Add(-time.Hour) // 00:00 CET
	for i := range 24 * 5 {
		t := start.Add(time.Duration(i) * time.Hour)
		if t.Before(time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)) {
			t = t.In(berlin)
		} else {
			t = t.In(summer)
		}
		temp := 15.0
		if day := t.Day(); (day == 30 || day == 31 || day == 1) && t.Hour() < 6 {
			temp = 25
		}
		fmt.Fprintf(&b, "%s,%g,60,0\n", t.Format(time.RFC3339), temp)
	}
	path := filepath.Join(t.TempDir(), "dst.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	if err := runDiseaseModel(context.Background(), []string{"-weather", path, "-from", "2026-03-30"}, &stdout); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Powdery []struct {
			Date     string `json:"date"`
			RunHours int    `json:"run_hours"`
			Index    int    `json:"index"`
		} `json:"powdery_index"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Powdery) < 3 || got.Powdery[0].Date != "2026-03-30" || got.Powdery[0].RunHours != 6 || got.Powdery[2].Index != 60 {
		t.Errorf("powdery days %+v, want 30 March to 1 April, 6 h runs, index 60", got.Powdery)
	}
}
