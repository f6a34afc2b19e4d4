package energy

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

// Reading is one value of a cumulative register: the register's content at
// Time, in the register's unit (kWh, m³, ...).
type Reading struct {
	Time  time.Time
	Meter string
	OBIS  OBIS
	Value float64
}

// Key returns the register the reading belongs to.
func (r Reading) Key() RegisterKey { return RegisterKey{Meter: r.Meter, OBIS: r.OBIS} }

// RegisterKey names one register of one meter.
type RegisterKey struct {
	Meter string
	OBIS  OBIS
}

// String returns "meter/obis".
func (k RegisterKey) String() string { return k.Meter + "/" + k.OBIS.String() }

func (k RegisterKey) less(l RegisterKey) bool {
	if k.Meter != l.Meter {
		return k.Meter < l.Meter
	}
	return k.OBIS.Less(l.OBIS)
}

// ReadReadingsCSV reads readings from CSV with the header
// time,meter,obis,value (columns in any order, further columns ignored).
// time is RFC 3339 (e.g. 2026-01-05T00:15:00+01:00), value a decimal number
// with a point. Errors name the line and the field.
func ReadReadingsCSV(r io.Reader) ([]Reading, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("readings csv: empty input, want header time,meter,obis,value")
		}
		return nil, fmt.Errorf("readings csv: header: %w", err)
	}
	col := map[string]int{"time": -1, "meter": -1, "obis": -1, "value": -1}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if j, ok := col[h]; ok {
			if j >= 0 {
				return nil, fmt.Errorf("readings csv: line 1: column %q twice", h)
			}
			col[h] = i
		}
	}
	for _, name := range []string{"time", "meter", "obis", "value"} {
		if col[name] < 0 {
			return nil, fmt.Errorf("readings csv: line 1: missing column %q (want time,meter,obis,value)", name)
		}
	}
	obisCache := map[string]OBIS{}
	var out []Reading
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("readings csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		get := func(name string) (string, error) {
			i := col[name]
			if i >= len(rec) {
				return "", fmt.Errorf("readings csv: line %d: missing field %q", line, name)
			}
			return strings.TrimSpace(rec[i]), nil
		}
		var rd Reading
		s, err := get("time")
		if err != nil {
			return nil, err
		}
		if rd.Time, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, fmt.Errorf("readings csv: line %d: field time %q: want RFC 3339 (2026-01-05T00:15:00+01:00)", line, s)
		}
		if rd.Meter, err = get("meter"); err != nil {
			return nil, err
		}
		if rd.Meter == "" {
			return nil, fmt.Errorf("readings csv: line %d: field meter is empty", line)
		}
		rd.Meter = strings.Clone(rd.Meter)
		if s, err = get("obis"); err != nil {
			return nil, err
		}
		o, ok := obisCache[s]
		if !ok {
			if o, err = ParseOBIS(s); err != nil {
				return nil, fmt.Errorf("readings csv: line %d: field obis: %w", line, err)
			}
			obisCache[strings.Clone(s)] = o
		}
		rd.OBIS = o
		if s, err = get("value"); err != nil {
			return nil, err
		}
		if rd.Value, err = strconv.ParseFloat(s, 64); err != nil || math.IsNaN(rd.Value) || math.IsInf(rd.Value, 0) {
			return nil, fmt.Errorf("readings csv: line %d: field value %q is not a finite number", line, s)
		}
		if rd.Value < 0 {
			return nil, fmt.Errorf("readings csv: line %d: field value %v: a cumulative register cannot be negative", line, rd.Value)
		}
		out = append(out, rd)
	}
}

// WriteReadingsCSV writes readings in the format ReadReadingsCSV reads.
func WriteReadingsCSV(w io.Writer, rs []Reading) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"time", "meter", "obis", "value"}); err != nil {
		return fmt.Errorf("readings csv: %w", err)
	}
	for _, r := range rs {
		rec := []string{r.Time.Format(time.RFC3339Nano), r.Meter, r.OBIS.String(), strconv.FormatFloat(r.Value, 'f', -1, 64)}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("readings csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("readings csv: %w", err)
	}
	return nil
}
