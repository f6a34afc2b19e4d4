package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/citymesh/citymesh/vineyard"
)

func init() {
	registerModel("disease", "vineyard disease risk (downy, powdery mildew, botrytis) from hourly weather CSV", runDiseaseModel)
}

// diseaseOutput is the JSON `citymesh model disease` writes.
type diseaseOutput struct {
	Model   string `json:"model"`
	Weather string `json:"weather"`
	vineyard.Assessment
}

func runDiseaseModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model disease", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var (
		weather  = fs.String("weather", "", "hourly weather CSV: time,temp_c,rh_pct,rain_mm[,leaf_wet] (required)")
		out      = fs.String("o", "", "write the JSON here instead of stdout")
		shoot    = fs.Float64("shoot-cm", 0, "shoot length in cm for the 3-10 rule (0: not known)")
		from     = fs.String("from", "", "first day of the day-by-day risk, YYYY-MM-DD or RFC 3339 (budbreak; starts the Gubler-Thomas index)")
		wetRH    = fs.Float64("wet-rh", vineyard.DefaultWetRH, "RH % at or above which an hour without a sensor reading is wet")
		dd0      = fs.Float64("dd0", 0, "oospore degree-days (> 8 °C) from 1 January to the first day of the file")
		ht0      = fs.Float64("ht0", 0, "Rossi hydrothermal time from 1 January to the first hour of the file")
		rainMM   = fs.Float64("rain-mm", 10, "3-10 rule: rain sum in mm")
		tempC    = fs.Float64("temp-c", 10, "3-10 rule: temperature in °C")
		shootMin = fs.Float64("shoot-min-cm", 10, "3-10 rule: shoot length in cm")
		window   = fs.Int("window-h", 24, "3-10 rule: rain window in hours (sources: 24 to 48)")
		minTemp  = fs.Bool("min-temp", false, "3-10 rule: test the window's minimum temperature instead of its mean")
		expSum   = fs.Bool("release-exp-of-sum", false, "Rossi zoospore release as read in viticolaR, exp((-1.022+19.634)/TWD)")
		lesions  = fs.String("lesions", "", "date oil spots were seen, YYYY-MM-DD or RFC 3339 (starts secondary downy mildew)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("model disease: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("model disease: unexpected argument %q", fs.Arg(0))
	}
	if *weather == "" {
		return errors.New("model disease: -weather FILE.csv is required")
	}
	w, err := readModelFile(*weather, vineyard.ReadCSV)
	if err != nil {
		return fmt.Errorf("model disease: %w", err)
	}
	if len(w.Hours) == 0 {
		return fmt.Errorf("model disease: %s: no hours of weather", *weather)
	}
	// The library reads a zero threshold as "use the default", so a 0 given
	// on the command line would silently become the default; refuse it.
	for _, f := range []struct {
		name string
		v    float64
	}{{"wet-rh", *wetRH}, {"rain-mm", *rainMM}, {"temp-c", *tempC}, {"shoot-min-cm", *shootMin}, {"window-h", float64(*window)}} {
		if f.v == 0 {
			return fmt.Errorf("model disease: -%s 0: the models read 0 as their default; give a non-zero value", f.name)
		}
	}
	cfg := vineyard.Config{
		WetRH: *wetRH,
		Downy: vineyard.DownyConfig{
			PriorDegreeDays:    *dd0,
			InitialHT:          *ht0,
			ShootCM:            *shoot,
			Rule310RainMM:      *rainMM,
			Rule310TempC:       *tempC,
			Rule310ShootCM:     *shootMin,
			Rule310WindowHours: *window,
			Rule310MinTemp:     *minTemp,
			ReleaseExpOfSum:    *expSum,
		},
	}
	if *from != "" {
		if cfg.From, err = parseDay(*from, w.Hours); err != nil {
			return fmt.Errorf("model disease: -from: %w", err)
		}
	}
	if *lesions != "" {
		if cfg.Downy.LesionsFrom, err = parseDay(*lesions, w.Hours); err != nil {
			return fmt.Errorf("model disease: -lesions: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := vineyard.Assess(w, cfg)
	if err != nil {
		return fmt.Errorf("model disease: %w", err)
	}
	if err := writeModelJSON(*out, stdout, diseaseOutput{Model: "disease", Weather: *weather, Assessment: a}); err != nil {
		return fmt.Errorf("model disease: %w", err)
	}
	return nil
}

// parseDay reads an RFC 3339 time or YYYY-MM-DD. A date means local
// midnight in the UTC offset of the weather records on that date (the first
// record dated on or after it, else the last record), so that a date after
// a daylight-saving change starts at 00:00 of the records' own clock.
func parseDay(s string, hours []vineyard.Hour) (time.Time, error) {
	if d, err := time.Parse("2006-01-02", s); err == nil {
		loc := hours[len(hours)-1].Time.Location()
		for _, h := range hours {
			y, m, dd := h.Time.Date()
			if !time.Date(y, m, dd, 0, 0, 0, 0, time.UTC).Before(d) {
				loc = h.Time.Location()
				break
			}
		}
		y, m, dd := d.Date()
		return time.Date(y, m, dd, 0, 0, 0, 0, loc), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor RFC 3339", s)
	}
	return t, nil
}
