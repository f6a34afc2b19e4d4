package vineyard

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Level is a risk level. The zero value is None.
type Level int

// Risk levels, in increasing order.
const (
	None Level = iota
	Low
	Moderate
	High
)

var levelNames = [...]string{"none", "low", "moderate", "high"}

// String returns the level's lower-case name.
func (l Level) String() string {
	if l < None || l > High {
		return fmt.Sprintf("Level(%d)", int(l))
	}
	return levelNames[l]
}

// MarshalText writes the level's name, so JSON shows "high", not 3.
func (l Level) MarshalText() ([]byte, error) {
	if l < None || l > High {
		return nil, fmt.Errorf("vineyard: invalid level %d", int(l))
	}
	return []byte(levelNames[l]), nil
}

// UnmarshalText reads a level's name.
func (l *Level) UnmarshalText(b []byte) error {
	for i, n := range levelNames {
		if string(b) == n {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("vineyard: unknown level %q", b)
}

// Reason explains one rule that fired: on which hours, which rule, with which
// values, and the level it gives.
type Reason struct {
	// From and To bound the hours the rule looked at (To is the start of the
	// last hour).
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Rule names the model and rule, e.g. "downy.rule-3-10".
	Rule string `json:"rule"`
	// Level is the level this rule gives.
	Level Level `json:"level"`
	// Text says in words what happened, with the numbers.
	Text string `json:"text"`
	// Values are the numbers the rule compared, by name.
	Values map[string]float64 `json:"values,omitempty"`
}

// DayRisk is one disease's level on one day and the reasons for it.
type DayRisk struct {
	// Date is the local calendar day (YYYY-MM-DD) in the offset of the records.
	Date string `json:"date"`
	// Level is the highest level of the day's reasons (None without reasons).
	Level Level `json:"level"`
	// Hours is the number of hourly records the day has (24 when complete).
	Hours int `json:"hours"`
	// Reasons are the rules that fired on the day.
	Reasons []Reason `json:"reasons"`
}

// DiseaseRisk is one disease's risk over a season, day by day.
type DiseaseRisk struct {
	Disease string `json:"disease"`
	// Peak is the highest daily level.
	Peak Level     `json:"peak"`
	Days []DayRisk `json:"days"`
}

// dayIndex maps the hours of a series to local calendar days.
type dayIndex struct {
	dates []string // one per day, in order
	first []int    // index of the first hour of each day
	of    []int    // day number of each hour
}

func dayKey(t time.Time) int {
	y, m, d := t.Date()
	return y*10000 + int(m)*100 + d
}

// indexDays groups hours into calendar days, each hour dated in its own UTC
// offset. Dates only move forward: an hour whose offset dates it before the
// current day (possible only when a file mixes offsets other than a
// daylight-saving change) stays in the current day, so no date repeats.
func indexDays(hours []Hour) dayIndex {
	var ix dayIndex
	ix.of = make([]int, len(hours))
	last := -1
	for i, h := range hours {
		k := dayKey(h.Time)
		if k > last {
			ix.dates = append(ix.dates, h.Time.Format("2006-01-02"))
			ix.first = append(ix.first, i)
			last = k
		}
		ix.of[i] = len(ix.dates) - 1
	}
	return ix
}

// hours returns the half-open range of hour indexes of day d.
func (ix dayIndex) hours(d, n int) (int, int) {
	end := n
	if d+1 < len(ix.first) {
		end = ix.first[d+1]
	}
	return ix.first[d], end
}

// newDays returns one empty DayRisk per day of ix.
func newDays(ix dayIndex, n int) []DayRisk {
	days := make([]DayRisk, len(ix.dates))
	for d := range days {
		a, b := ix.hours(d, n)
		days[d] = DayRisk{Date: ix.dates[d], Hours: b - a, Reasons: []Reason{}}
	}
	return days
}

// add files a reason under the day of hour index at, raising the day's level.
func addReason(days []DayRisk, ix dayIndex, at int, r Reason) {
	d := &days[ix.of[at]]
	roundValues(r.Values)
	d.Reasons = append(d.Reasons, r)
	if r.Level > d.Level {
		d.Level = r.Level
	}
}

// roundValues rounds a reason's values to 3 decimals for reading.
func roundValues(v map[string]float64) {
	for k, x := range v {
		v[k] = math.Round(x*1000) / 1000
	}
}

func summarise(disease string, days []DayRisk) DiseaseRisk {
	dr := DiseaseRisk{Disease: disease, Days: days}
	for _, d := range days {
		if d.Level > dr.Peak {
			dr.Peak = d.Level
		}
	}
	return dr
}

// consecutive reports whether hour i directly follows hour i−1 (no gap).
func consecutive(hours []Hour, i int) bool {
	return i > 0 && hours[i].Time.Sub(hours[i-1].Time) == time.Hour
}

// finite returns an error naming the first (in name order) of the settings
// that is NaN or infinite.
func finite(model string, settings map[string]float64) error {
	names := make([]string, 0, len(settings))
	for n := range settings {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if v := settings[n]; math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s: %s %g is not a finite number", model, n, v)
		}
	}
	return nil
}

// orDefault sets *v to d when *v is the zero value: a zero setting means
// "use the published default".
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
