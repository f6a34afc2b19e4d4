package vineyard

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Plausible ranges for station readings; values outside them are rejected
// as sensor faults rather than used.
const (
	minTempC  = -50.0
	maxTempC  = 60.0
	maxRainMM = 300.0 // per hour; above the world record hourly rainfall
)

// ReadCSV reads an hourly weather series with the header
//
//	time,temp_c,rh_pct,rain_mm[,leaf_wet]
//
// time is RFC 3339 (for example 2026-05-14T06:00:00+02:00), temp_c in °C
// (−50 to 60), rh_pct in % (0 to 100), rain_mm in mm per hour (0 to 300) and
// the optional leaf_wet the wet fraction of the hour from a sensor (0 to 1;
// an empty cell means no reading for that hour). Records must be in strictly
// increasing time order, whole hours apart; a record may not repeat a time.
// Missing hours are reported in Weather.Gaps and never filled in.
// Errors name the line and the field.
func ReadCSV(r io.Reader) (Weather, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return Weather{}, errors.New("weather csv: empty input, want header time,temp_c,rh_pct,rain_mm[,leaf_wet]")
	}
	if err != nil {
		return Weather{}, fmt.Errorf("weather csv: header: %w", err)
	}
	hasLW, err := checkHeader(header)
	if err != nil {
		return Weather{}, fmt.Errorf("weather csv: line 1: %w", err)
	}
	want := 4
	if hasLW {
		want = 5
	}
	var w Weather
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Weather{}, fmt.Errorf("weather csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != want {
			return Weather{}, fmt.Errorf("weather csv: line %d: %d fields, want %d", line, len(rec), want)
		}
		h, err := parseRecord(rec, hasLW)
		if err != nil {
			return Weather{}, fmt.Errorf("weather csv: line %d: %w", line, err)
		}
		if n := len(w.Hours); n > 0 {
			prev := w.Hours[n-1].Time
			step := h.Time.Sub(prev)
			switch {
			case step == 0:
				return Weather{}, fmt.Errorf("weather csv: line %d: time %s repeats the previous record", line, h.Time.Format(time.RFC3339))
			case step < 0:
				return Weather{}, fmt.Errorf("weather csv: line %d: time %s is before the previous record %s", line, h.Time.Format(time.RFC3339), prev.Format(time.RFC3339))
			case step%time.Hour != 0:
				return Weather{}, fmt.Errorf("weather csv: line %d: time %s is %s after the previous record, want whole hours", line, h.Time.Format(time.RFC3339), step)
			case step > time.Hour:
				w.Gaps = append(w.Gaps, Gap{After: prev, Before: h.Time, MissingHours: int(step/time.Hour) - 1})
			}
		}
		w.Hours = append(w.Hours, h)
	}
	if len(w.Hours) == 0 {
		return Weather{}, errors.New("weather csv: no records after the header")
	}
	return w, nil
}

func checkHeader(h []string) (leafWet bool, err error) {
	names := []string{"time", "temp_c", "rh_pct", "rain_mm", "leaf_wet"}
	if len(h) != 4 && len(h) != 5 {
		return false, fmt.Errorf("header has %d columns, want time,temp_c,rh_pct,rain_mm[,leaf_wet]", len(h))
	}
	for i, got := range h {
		got = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(got, "\ufeff")))
		if got != names[i] {
			return false, fmt.Errorf("header column %d is %q, want %q", i+1, got, names[i])
		}
	}
	return len(h) == 5, nil
}

func parseRecord(rec []string, hasLW bool) (Hour, error) {
	var h Hour
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(rec[0]))
	if err != nil {
		return h, fmt.Errorf("field time: %w", err)
	}
	h.Time = t
	if h.TempC, err = parseRange(rec[1], "temp_c", minTempC, maxTempC); err != nil {
		return h, err
	}
	if h.RHPct, err = parseRange(rec[2], "rh_pct", 0, 100); err != nil {
		return h, err
	}
	if h.RainMM, err = parseRange(rec[3], "rain_mm", 0, maxRainMM); err != nil {
		return h, err
	}
	if hasLW && strings.TrimSpace(rec[4]) != "" {
		if h.LeafWet, err = parseRange(rec[4], "leaf_wet", 0, 1); err != nil {
			return h, err
		}
		h.HasLeafWet = true
	}
	return h, nil
}

// check applies ReadCSV's range checks to an hour built in code.
func (h Hour) check() error {
	in := func(v, lo, hi float64) bool { return v >= lo && v <= hi } // false for NaN
	switch {
	case !in(h.TempC, minTempC, maxTempC):
		return fmt.Errorf("temp_c %g is outside %g to %g", h.TempC, minTempC, maxTempC)
	case !in(h.RHPct, 0, 100):
		return fmt.Errorf("rh_pct %g is outside 0 to 100", h.RHPct)
	case !in(h.RainMM, 0, maxRainMM):
		return fmt.Errorf("rain_mm %g is outside 0 to %g", h.RainMM, maxRainMM)
	case h.HasLeafWet && !in(h.LeafWet, 0, 1):
		return fmt.Errorf("leaf_wet %g is outside 0 to 1", h.LeafWet)
	}
	return nil
}

func parseRange(s, field string, lo, hi float64) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("field %s: empty", field)
	}
	v, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("field %s: %q is outside %g to %g", field, s, lo, hi)
	}
	if err != nil {
		return 0, fmt.Errorf("field %s: %q is not a number", field, s)
	}
	if math.IsNaN(v) || v < lo || v > hi {
		return 0, fmt.Errorf("field %s: %g is outside %g to %g", field, v, lo, hi)
	}
	return v, nil
}

// WriteCSV writes hours in the format ReadCSV reads, with the leaf_wet column
// when any hour has a sensor reading.
func WriteCSV(wr io.Writer, hours []Hour) error {
	lw := false
	for _, h := range hours {
		if h.HasLeafWet {
			lw = true
			break
		}
	}
	cw := csv.NewWriter(wr)
	head := []string{"time", "temp_c", "rh_pct", "rain_mm"}
	if lw {
		head = append(head, "leaf_wet")
	}
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("weather csv: write header: %w", err)
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	for i, h := range hours {
		rec := []string{h.Time.Format(time.RFC3339), f(h.TempC), f(h.RHPct), f(h.RainMM)}
		if lw {
			s := ""
			if h.HasLeafWet {
				s = f(h.LeafWet)
			}
			rec = append(rec, s)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("weather csv: write record %d: %w", i+1, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("weather csv: %w", err)
	}
	return nil
}
