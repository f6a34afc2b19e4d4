package energy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Fit holds goodness-of-fit metrics of a baseline against measurements, as
// ASHRAE Guideline 14-2014 defines them for model calibration:
//
//	CV(RMSE) = √(Σ(ŷ−y)²/(n−p)) / ȳ
//	NMBE     = Σ(ŷ−y) / ((n−p)·ȳ)
//
// in per cent, with p the number of model parameters (p = 0 gives the plain
// mean over n). A positive NMBE means the baseline over-predicts.
type Fit struct {
	N      int     `json:"n"`
	P      int     `json:"p"`
	Mean   float64 `json:"mean"`
	CVRMSE float64 `json:"cv_rmse_percent"`
	NMBE   float64 `json:"nmbe_percent"`
	// MonthlyOK: CV(RMSE) ≤ 15 % and |NMBE| ≤ 5 %; HourlyOK: ≤ 30 % and
	// ≤ 10 % (ASHRAE Guideline 14 calibration criteria).
	MonthlyOK bool `json:"meets_monthly_criteria"`
	HourlyOK  bool `json:"meets_hourly_criteria"`
}

// GoodnessOfFit computes CV(RMSE) and NMBE of predicted against measured.
func GoodnessOfFit(measured, predicted []float64, p int) (Fit, error) {
	n := len(measured)
	if n != len(predicted) {
		return Fit{}, fmt.Errorf("goodness of fit: %d measured but %d predicted values", n, len(predicted))
	}
	if p < 0 || n-p <= 0 {
		return Fit{}, fmt.Errorf("goodness of fit: need more values (%d) than parameters (%d)", n, p)
	}
	var sy, se, se2 float64
	for i := range measured {
		if math.IsNaN(measured[i]) || math.IsNaN(predicted[i]) || math.IsInf(measured[i], 0) || math.IsInf(predicted[i], 0) {
			return Fit{}, fmt.Errorf("goodness of fit: value %d is not a finite number", i)
		}
		sy += measured[i]
		e := predicted[i] - measured[i]
		se += e
		se2 += e * e
	}
	mean := sy / float64(n)
	if mean == 0 {
		return Fit{}, fmt.Errorf("goodness of fit: the measured mean is zero")
	}
	dof := float64(n - p)
	f := Fit{N: n, P: p, Mean: mean,
		CVRMSE: 100 * math.Sqrt(se2/dof) / mean,
		NMBE:   100 * se / (dof * mean)}
	f.MonthlyOK = f.CVRMSE <= 15 && math.Abs(f.NMBE) <= 5
	f.HourlyOK = f.CVRMSE <= 30 && math.Abs(f.NMBE) <= 10
	return f, nil
}

// DayValue is one local calendar day's value.
type DayValue struct {
	Date  string  `json:"date"` // YYYY-MM-DD
	Value float64 `json:"value"`
	// Complete is set when every interval of the day was present, measured
	// and complete.
	Complete bool `json:"complete"`
}

// orUTC returns loc, or UTC for nil (the anomaly functions read local days
// and hours in loc; nil means UTC).
func orUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// DailyTotals sums a series per local day in loc (nil means UTC).
func DailyTotals(s Series, loc *time.Location) []DayValue {
	loc = orUTC(loc)
	step := s.Interval
	if step <= 0 {
		step = 15 * time.Minute
	}
	type acc struct {
		v     float64
		n     int
		exact bool
		want  int
	}
	m := map[string]*acc{}
	var keys []string
	for _, iv := range s.Intervals {
		t := iv.Start.In(loc)
		d := t.Format(time.DateOnly)
		a := m[d]
		if a == nil {
			day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
			a = &acc{exact: true, want: int(day.AddDate(0, 0, 1).Sub(day) / step)}
			m[d] = a
			keys = append(keys, d)
		}
		a.v += iv.Value
		a.n++
		if iv.Estimated || !iv.Complete {
			a.exact = false
		}
	}
	sort.Strings(keys)
	out := make([]DayValue, 0, len(keys))
	for _, k := range keys {
		a := m[k]
		out = append(out, DayValue{Date: k, Value: a.v, Complete: a.exact && a.n == a.want})
	}
	return out
}

// HDD returns heating degree days of a daily mean temperature: base − t when
// positive, else 0.
func HDD(meanC, baseC float64) float64 { return math.Max(0, baseC-meanC) }

// Deviation is a run of consecutive periods where measured consumption
// differs from the baseline by more than both thresholds.
type Deviation struct {
	From     string  `json:"from"`
	To       string  `json:"to"`
	Periods  int     `json:"periods"`
	Measured float64 `json:"measured"`
	Baseline float64 `json:"baseline"`
}

// DeviationRule flags runs where |y−ŷ| > Rel·ŷ and > Abs for at least
// MinPeriods periods in a row (energytwin.io's "relative and absolute and
// persistent" rule; the numbers are the user's). Zero values mean 20 %,
// 0 and 1.
type DeviationRule struct {
	Rel, Abs   float64
	MinPeriods int
}

func (r DeviationRule) norm() DeviationRule {
	if r.Rel == 0 {
		r.Rel = 0.2
	}
	if r.MinPeriods == 0 {
		r.MinPeriods = 1
	}
	return r
}

// Deviations applies the rule to labelled measured and baseline values.
// Only the first min(len(labels), len(measured), len(baseline)) periods are
// examined, so slices of different lengths never index out of range.
func Deviations(labels []string, measured, baseline []float64, rule DeviationRule) []Deviation {
	rule = rule.norm()
	n := min(len(labels), len(measured), len(baseline))
	labels, measured, baseline = labels[:n], measured[:n], baseline[:n]
	out := []Deviation{}
	start := -1
	flush := func(end int) {
		if start >= 0 && end-start >= rule.MinPeriods {
			d := Deviation{From: labels[start], To: labels[end-1], Periods: end - start}
			for i := start; i < end; i++ {
				d.Measured += measured[i]
				d.Baseline += baseline[i]
			}
			out = append(out, d)
		}
		start = -1
	}
	for i := range measured {
		diff := math.Abs(measured[i] - baseline[i])
		if diff > rule.Rel*math.Abs(baseline[i]) && diff > rule.Abs {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(measured))
	return out
}

// DegreeDayBaseline is a linear regression of daily consumption on heating
// degree days: consumption = Intercept + Slope·HDD.
type DegreeDayBaseline struct {
	BaseC      float64     `json:"hdd_base_c"`
	Intercept  float64     `json:"intercept"`
	Slope      float64     `json:"slope_per_hdd"`
	Fit        Fit         `json:"fit"`
	Days       []string    `json:"-"`
	Measured   []float64   `json:"-"`
	Predicted  []float64   `json:"-"`
	Deviations []Deviation `json:"deviations"`
}

// FitDegreeDays fits the baseline by ordinary least squares over the days
// that are complete and have a temperature (p = 2 in the fit metrics), and
// flags deviations with rule.
func FitDegreeDays(days []DayValue, tempC map[string]float64, baseC float64, rule DeviationRule) (DegreeDayBaseline, error) {
	b := DegreeDayBaseline{BaseC: baseC}
	var xs, ys []float64
	for _, d := range days {
		t, ok := tempC[d.Date]
		if !ok || !d.Complete {
			continue
		}
		b.Days = append(b.Days, d.Date)
		xs = append(xs, HDD(t, baseC))
		ys = append(ys, d.Value)
	}
	n := float64(len(xs))
	if len(xs) < 3 {
		return b, fmt.Errorf("degree-day baseline: %d complete days with a temperature; need at least 3", len(xs))
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if math.Abs(den) < 1e-12*math.Max(1, n*sxx) {
		b.Slope = 0
		b.Intercept = sy / n
	} else {
		b.Slope = (n*sxy - sx*sy) / den
		b.Intercept = (sy - b.Slope*sx) / n
	}
	b.Measured = ys
	b.Predicted = make([]float64, len(xs))
	for i, x := range xs {
		b.Predicted[i] = b.Intercept + b.Slope*x
	}
	fit, err := GoodnessOfFit(ys, b.Predicted, 2)
	if err != nil {
		return b, fmt.Errorf("degree-day baseline: %w", err)
	}
	b.Fit = fit
	b.Deviations = Deviations(b.Days, ys, b.Predicted, rule)
	return b, nil
}

// HourOfWeekBaseline is the mean consumption of each hour of the week
// (0 = Monday 00:00 local) over a training period.
type HourOfWeekBaseline struct {
	TrainedHours int         `json:"trained_hours"`
	Fit          Fit         `json:"fit"`
	Deviations   []Deviation `json:"deviations"`
}

// FitHourOfWeek builds an hour-of-week profile from the first trainDays
// local days (in loc; nil means UTC) of hourly sums, reports its in-sample fit (p = number of
// profile hours with data) and flags deviations of all hours after training.
func FitHourOfWeek(s Series, loc *time.Location, trainDays int, rule DeviationRule) (HourOfWeekBaseline, error) {
	loc = orUTC(loc)
	var b HourOfWeekBaseline
	if trainDays <= 0 {
		return b, fmt.Errorf("hour-of-week baseline: training days %d must be positive", trainDays)
	}
	type hour struct {
		t time.Time
		v float64
	}
	var hours []hour
	idx := map[int64]int{}
	for _, iv := range s.Intervals {
		h := iv.Start.Truncate(time.Hour)
		k := h.Unix()
		i, ok := idx[k]
		if !ok {
			i = len(hours)
			idx[k] = i
			hours = append(hours, hour{t: h})
		}
		hours[i].v += iv.Value
	}
	sort.Slice(hours, func(i, j int) bool { return hours[i].t.Before(hours[j].t) })
	if len(hours) == 0 {
		return b, fmt.Errorf("hour-of-week baseline: no data")
	}
	how := func(t time.Time) int {
		l := t.In(loc)
		return ((int(l.Weekday())+6)%7)*24 + l.Hour()
	}
	end := hours[0].t.In(loc).AddDate(0, 0, trainDays)
	var sum [168]float64
	var cnt [168]int
	var train []hour
	var test []hour
	for _, h := range hours {
		if h.t.Before(end) {
			sum[how(h.t)] += h.v
			cnt[how(h.t)]++
			train = append(train, h)
		} else {
			test = append(test, h)
		}
	}
	p := 0
	for i := range cnt {
		if cnt[i] > 0 {
			p++
		}
	}
	pred := func(t time.Time) (float64, bool) {
		k := how(t)
		if cnt[k] == 0 {
			return 0, false
		}
		return sum[k] / float64(cnt[k]), true
	}
	var ym, yp []float64
	for _, h := range train {
		v, _ := pred(h.t)
		ym = append(ym, h.v)
		yp = append(yp, v)
	}
	b.TrainedHours = len(train)
	fit, err := GoodnessOfFit(ym, yp, p)
	if err != nil {
		return b, fmt.Errorf("hour-of-week baseline: %w (train on more days than one week)", err)
	}
	b.Fit = fit
	var labels []string
	ym, yp = nil, nil
	for _, h := range test {
		v, ok := pred(h.t)
		if !ok {
			continue
		}
		labels = append(labels, h.t.UTC().Format(time.RFC3339))
		ym = append(ym, h.v)
		yp = append(yp, v)
	}
	b.Deviations = Deviations(labels, ym, yp, rule)
	return b, nil
}

// NightLoad is one night's base load compared with the day.
type NightLoad struct {
	Date string `json:"date"`
	// Base is the 10th percentile of the night intervals' mean power (unit
	// per hour); DayMean the mean power in the day window.
	Base    float64 `json:"night_base"`
	DayMean float64 `json:"day_mean"`
	Ratio   float64 `json:"night_to_day"`
	// Median and MAD are over the previous Window nights; Flag is set when
	// Base exceeds Median + max(K·MAD, MinRise·Median) (at least 7 previous
	// nights needed).
	Median float64 `json:"median_prev"`
	MAD    float64 `json:"mad_prev"`
	Flag   bool    `json:"flag"`
}

// NightRule sets the windows (local hours [From, To)) and the flag rule of
// NightBaseLoad. Zero values mean night 0–5, day 8–18, K 3, MinRise 0.1 and
// a window of 28 nights (a negative window also means 28).
type NightRule struct {
	NightFrom, NightTo, DayFrom, DayTo int
	K                                  float64
	// MinRise is the smallest rise over the median, relative to it, that is
	// flagged, so a very steady load does not flag noise.
	MinRise float64
	Window  int
}

func (r NightRule) norm() NightRule {
	if r.NightFrom == 0 && r.NightTo == 0 {
		r.NightTo = 5
	}
	if r.DayFrom == 0 && r.DayTo == 0 {
		r.DayFrom, r.DayTo = 8, 18
	}
	if r.K == 0 {
		r.K = 3
	}
	if r.Window <= 0 {
		r.Window = 28
	}
	if r.MinRise == 0 {
		r.MinRise = 0.1
	}
	return r
}

func inHours(h, from, to int) bool {
	if from <= to {
		return h >= from && h < to
	}
	return h >= from || h < to
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return s[lo] + (s[hi]-s[lo])*(pos-float64(lo))
}

// NightBaseLoad computes per local day (in loc; nil means UTC) the night
// base load and flags a rise above the median of previous nights by more
// than K median absolute deviations and more than MinRise of the median (a
// derived rule: no published threshold was found).
func NightBaseLoad(s Series, loc *time.Location, rule NightRule) []NightLoad {
	loc = orUTC(loc)
	rule = rule.norm()
	step := s.Interval
	if step <= 0 {
		step = 15 * time.Minute
	}
	perH := float64(time.Hour) / float64(step)
	night := map[string][]float64{}
	day := map[string][]float64{}
	var dates []string
	seen := map[string]bool{}
	for _, iv := range s.Intervals {
		l := iv.Start.In(loc)
		d := l.Format(time.DateOnly)
		if !seen[d] {
			seen[d] = true
			dates = append(dates, d)
		}
		p := iv.Value * perH
		if inHours(l.Hour(), rule.NightFrom, rule.NightTo) {
			night[d] = append(night[d], p)
		}
		if inHours(l.Hour(), rule.DayFrom, rule.DayTo) {
			day[d] = append(day[d], p)
		}
	}
	sort.Strings(dates)
	out := []NightLoad{}
	var prev []float64
	for _, d := range dates {
		if len(night[d]) == 0 {
			continue
		}
		nl := NightLoad{Date: d, Base: quantile(night[d], 0.1)}
		if dv := day[d]; len(dv) > 0 {
			var sum float64
			for _, v := range dv {
				sum += v
			}
			nl.DayMean = sum / float64(len(dv))
			if nl.DayMean > 0 {
				nl.Ratio = nl.Base / nl.DayMean
			}
		}
		if len(prev) >= 7 {
			w := prev
			if len(w) > rule.Window {
				w = w[len(w)-rule.Window:]
			}
			nl.Median = quantile(w, 0.5)
			dev := make([]float64, len(w))
			for i, v := range w {
				dev[i] = math.Abs(v - nl.Median)
			}
			nl.MAD = quantile(dev, 0.5)
			nl.Flag = nl.Base > nl.Median+math.Max(rule.K*nl.MAD, rule.MinRise*math.Abs(nl.Median)) && nl.Base > nl.Median
		}
		prev = append(prev, nl.Base)
		out = append(out, nl)
	}
	return out
}

// NightFlow is one night's minimum flow of a water meter.
type NightFlow struct {
	Date string `json:"date"`
	// MinFlow is the lowest interval flow in the night window, per hour;
	// MeanFlow the day's mean flow per hour; Ratio MinFlow/MeanFlow
	// (Bentley: at or below about 0.5 major leakage is unlikely).
	MinFlow  float64 `json:"min_night_flow"`
	MeanFlow float64 `json:"mean_daily_flow"`
	Ratio    float64 `json:"ratio"`
	NonZero  bool    `json:"never_zero"`
}

// LeakSuspect is a run of nights whose flow never reached the threshold.
type LeakSuspect struct {
	From   string  `json:"from"`
	To     string  `json:"to"`
	Nights int     `json:"nights"`
	MinMNF float64 `json:"lowest_min_night_flow"`
}

// LeakRule sets the night window (local hours [From, To)), the flow per
// hour counted as zero, and the number of nights in a row. Zero values mean
// 1–5 h, 0 and 3 nights.
type LeakRule struct {
	From, To  int
	Threshold float64
	Nights    int
}

// WaterLeaks computes the minimum night flow per local day (in loc; nil
// means UTC) and reports runs
// of at least rule.Nights nights in which the flow never fell to the
// threshold (continuous flow: a leak suspect).
func WaterLeaks(s Series, loc *time.Location, rule LeakRule) ([]NightFlow, []LeakSuspect) {
	loc = orUTC(loc)
	if rule.From == 0 && rule.To == 0 {
		rule.From, rule.To = 1, 5
	}
	if rule.Nights == 0 {
		rule.Nights = 3
	}
	step := s.Interval
	if step <= 0 {
		step = 15 * time.Minute
	}
	perH := float64(time.Hour) / float64(step)
	type acc struct {
		min      float64
		nNight   int
		sum      float64
		nAll     int
		complete bool
	}
	m := map[string]*acc{}
	var dates []string
	for _, iv := range s.Intervals {
		l := iv.Start.In(loc)
		d := l.Format(time.DateOnly)
		a := m[d]
		if a == nil {
			a = &acc{min: math.Inf(1)}
			m[d] = a
			dates = append(dates, d)
		}
		f := iv.Value * perH
		a.sum += f
		a.nAll++
		if inHours(l.Hour(), rule.From, rule.To) {
			a.nNight++
			a.min = math.Min(a.min, f)
		}
	}
	sort.Strings(dates)
	flows := []NightFlow{}
	sus := []LeakSuspect{}
	var run []NightFlow
	flush := func() {
		if len(run) >= rule.Nights {
			ls := LeakSuspect{From: run[0].Date, To: run[len(run)-1].Date, Nights: len(run), MinMNF: math.Inf(1)}
			for _, n := range run {
				ls.MinMNF = math.Min(ls.MinMNF, n.MinFlow)
			}
			sus = append(sus, ls)
		}
		run = nil
	}
	for _, d := range dates {
		a := m[d]
		if a.nNight == 0 {
			flush()
			continue
		}
		nf := NightFlow{Date: d, MinFlow: a.min, MeanFlow: a.sum / float64(a.nAll)}
		if nf.MeanFlow > 0 {
			nf.Ratio = nf.MinFlow / nf.MeanFlow
		}
		nf.NonZero = nf.MinFlow > rule.Threshold
		flows = append(flows, nf)
		if nf.NonZero {
			run = append(run, nf)
		} else {
			flush()
		}
	}
	flush()
	return flows, sus
}

// ReadTemperatureCSV reads daily mean temperatures with the header
// date,temp_c (date YYYY-MM-DD, °C).
func ReadTemperatureCSV(r io.Reader) (map[string]float64, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("temperature csv: empty input, want header date,temp_c")
		}
		return nil, fmt.Errorf("temperature csv: header: %w", err)
	}
	di, ti := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))) {
		case "date":
			di = i
		case "temp_c":
			ti = i
		}
	}
	if di < 0 || ti < 0 {
		return nil, fmt.Errorf("temperature csv: line 1: want columns date,temp_c")
	}
	out := map[string]float64{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("temperature csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if di >= len(rec) || ti >= len(rec) {
			return nil, fmt.Errorf("temperature csv: line %d: missing fields", line)
		}
		d := strings.TrimSpace(rec[di])
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			return nil, fmt.Errorf("temperature csv: line %d: field date %q: want YYYY-MM-DD", line, d)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[ti]), 64)
		if err != nil || math.IsNaN(v) || v < -90 || v > 60 {
			return nil, fmt.Errorf("temperature csv: line %d: field temp_c %q is not a temperature in °C (-90..60)", line, rec[ti])
		}
		if _, dup := out[d]; dup {
			return nil, fmt.Errorf("temperature csv: line %d: date %s twice", line, d)
		}
		out[d] = v
	}
}
