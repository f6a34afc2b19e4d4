package robot

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

// csvTable reads a CSV file with a header row, giving columns by name.
// Lines starting with '#' are comments; blank lines are skipped.
type csvTable struct {
	r    *csv.Reader
	name string
	cols map[string]int
}

func newCSVTable(r io.Reader, name string, required, optional []string) (*csvTable, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file, want a header row with %s", name, strings.Join(required, ","))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", name, err)
	}
	t := &csvTable{r: cr, name: name, cols: map[string]int{}}
	known := map[string]bool{}
	for _, c := range append(append([]string(nil), required...), optional...) {
		known[c] = true
	}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !known[h] {
			continue // other columns are ignored
		}
		if _, dup := t.cols[h]; dup {
			return nil, fmt.Errorf("%s: header: column %q appears twice", name, h)
		}
		t.cols[h] = i
	}
	for _, c := range required {
		if _, ok := t.cols[c]; !ok {
			return nil, fmt.Errorf("%s: header: no %q column (want %s)", name, c, strings.Join(required, ","))
		}
	}
	return t, nil
}

// next returns the next record and its line, or io.EOF.
func (t *csvTable) next() ([]string, int, error) {
	for {
		rec, err := t.r.Read()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, 0, io.EOF
			}
			return nil, 0, fmt.Errorf("%s: %w", t.name, err)
		}
		line, _ := t.r.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		return rec, line, nil
	}
}

func (t *csvTable) get(rec []string, col string) string {
	i, ok := t.cols[col]
	if !ok || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

func (t *csvTable) errf(line int, format string, args ...any) error {
	return fmt.Errorf("%s: line %d: %s", t.name, line, fmt.Sprintf(format, args...))
}

func (t *csvTable) time(rec []string, line int) (time.Time, error) {
	s := t.get(rec, "time")
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, t.errf(line, "column time: %q is not an RFC 3339 time such as 2026-03-02T21:00:00+01:00", s)
	}
	return ts, nil
}

// MaxCSVRows bounds the rows a CSV reader accepts.
const MaxCSVRows = 10_000_000

// rows reads t's data rows to the end of the file. For each it parses the
// time column and calls row with the record, its line and its time; when
// ordered is set, a row's time must not be earlier than the previous row's
// (checked after row accepts the row). It stops at the first error, and
// refuses more than MaxCSVRows rows.
func (t *csvTable) rows(ordered bool, row func(rec []string, line int, ts time.Time) error) error {
	var prev time.Time
	for n := 0; ; n++ {
		rec, line, err := t.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if n >= MaxCSVRows {
			return t.errf(line, "more than %d rows", MaxCSVRows)
		}
		ts, err := t.time(rec, line)
		if err != nil {
			return err
		}
		if err := row(rec, line, ts); err != nil {
			return err
		}
		if ordered && n > 0 && ts.Before(prev) {
			return t.errf(line, "column time: %s is earlier than the previous row's %s", ts.Format(time.RFC3339), prev.Format(time.RFC3339))
		}
		prev = ts
	}
}

// ReadTrackCSV reads robot fixes from CSV with columns time (RFC 3339),
// lat and lon (decimal degrees). Other columns are ignored. Times must not
// go backwards.
func ReadTrackCSV(r io.Reader) ([]Fix, error) {
	t, err := newCSVTable(r, "track", []string{"time", "lat", "lon"}, nil)
	if err != nil {
		return nil, err
	}
	var out []Fix
	err = t.rows(true, func(rec []string, line int, ts time.Time) error {
		var ll [2]float64
		for i, col := range []string{"lat", "lon"} {
			s := t.get(rec, col)
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return t.errf(line, "column %s: %q is not a number", col, s)
			}
			ll[i] = v
		}
		if ll[0] < -90 || ll[0] > 90 {
			return t.errf(line, "column lat: %v is outside −90..90", ll[0])
		}
		if ll[1] < -180 || ll[1] > 180 {
			return t.errf(line, "column lon: %v is outside −180..180", ll[1])
		}
		out = append(out, Fix{Time: ts, Lat: ll[0], Lon: ll[1]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadChecksCSV reads check observations from CSV with columns time, check
// and value, and optional waypoint, picture and note. Times must not go
// backwards.
func ReadChecksCSV(r io.Reader) ([]Observation, error) {
	t, err := newCSVTable(r, "checks", []string{"time", "check", "value"}, []string{"waypoint", "picture", "note"})
	if err != nil {
		return nil, err
	}
	var out []Observation
	err = t.rows(true, func(rec []string, line int, ts time.Time) error {
		o := Observation{Time: ts, Check: t.get(rec, "check"), Waypoint: t.get(rec, "waypoint"), Value: t.get(rec, "value"),
			Picture: t.get(rec, "picture"), Note: t.get(rec, "note"), Line: line}
		if o.Check == "" {
			return t.errf(line, "column check: empty")
		}
		if strings.ContainsAny(o.Picture, " \t\r\n") {
			return t.errf(line, "column picture: %q is not a URI or hash (it contains white space)", o.Picture)
		}
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadEventsCSV reads people's incident events from CSV with columns time,
// action and actor, and either incident (an id) or asset and kind, and an
// optional note.
func ReadEventsCSV(r io.Reader) ([]Event, error) {
	t, err := newCSVTable(r, "events", []string{"time", "action", "actor"}, []string{"incident", "asset", "kind", "note"})
	if err != nil {
		return nil, err
	}
	var out []Event
	err = t.rows(false, func(rec []string, line int, ts time.Time) error {
		e := Event{Time: ts, Incident: t.get(rec, "incident"), Asset: t.get(rec, "asset"), Kind: AnomalyKind(t.get(rec, "kind")),
			Action: strings.ToLower(t.get(rec, "action")), Actor: t.get(rec, "actor"), Note: t.get(rec, "note"), Line: line}
		if _, ok := actionTarget(e.Action); !ok {
			return t.errf(line, "column action: %q: want acknowledge, start, resolve, close, cancel or reopen", e.Action)
		}
		if e.Actor == "" {
			return t.errf(line, "column actor: empty (every change needs a who)")
		}
		if e.Incident == "" && (e.Asset == "" || e.Kind == "") {
			return t.errf(line, "name the incident, or the asset and kind")
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
