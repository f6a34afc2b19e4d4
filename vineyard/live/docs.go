package live

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/vineyard"
)

// Risk is the retained message on vineyard/{site}/plot/{plot}/risk: the
// plot's disease risk, all diseases in one message.
type Risk struct {
	// Time is the start of the plot's latest hour of weather.
	Time   time.Time    `json:"time"`
	Asset  string       `json:"asset"`
	Source event.Source `json:"source"`
	Site   string       `json:"site"`
	// Date is the latest day of weather (local calendar day); Level the
	// highest level of the diseases on it.
	Date  string         `json:"date"`
	Level vineyard.Level `json:"level"`
	// Hours is the number of hourly records of the season the models read;
	// Gaps the stretches of missing hours.
	Hours int            `json:"hours"`
	Gaps  []vineyard.Gap `json:"gaps"`
	// Diseases are downy mildew, powdery mildew and botrytis, in that order.
	Diseases []DiseaseRisk `json:"diseases"`
}

// DiseaseRisk is one disease's risk of a plot.
type DiseaseRisk struct {
	Disease string `json:"disease"`
	// Date and Level are the latest day's; AlarmLevel the highest level of
	// the days the alarm looks at (alarm_days, ending with the latest), on
	// AlarmDate; Peak the season's highest.
	Date       string         `json:"date"`
	Level      vineyard.Level `json:"level"`
	AlarmLevel vineyard.Level `json:"alarm_level"`
	AlarmDate  string         `json:"alarm_date,omitempty"`
	Peak       vineyard.Level `json:"peak"`
	// Days are the last publish_days days, each with its reasons.
	Days []vineyard.DayRisk `json:"days"`
}

// riskDoc builds the plot's risk message from its assessment.
func (s *Service) riskDoc(pi *plotInfo, res *plotResult) Risk {
	a := res.assessment
	last := res.hours[len(res.hours)-1].Time
	r := Risk{
		Time: last, Asset: pi.ID, Source: event.Source{Type: event.SourceService, Service: s.name}, Site: pi.Site,
		Date: last.Format("2006-01-02"), Hours: a.Hours, Gaps: a.Gaps,
	}
	for _, dr := range a.Risk {
		d := DiseaseRisk{Disease: dr.Disease, Peak: dr.Peak, Date: r.Date, Days: []vineyard.DayRisk{}}
		if n := len(dr.Days); n > 0 {
			lastDay := dr.Days[n-1]
			d.Date, d.Level = lastDay.Date, lastDay.Level
			for _, day := range dr.Days[max(0, n-s.cfg.AlarmDays):] {
				if day.Level > d.AlarmLevel || d.AlarmDate == "" {
					d.AlarmLevel, d.AlarmDate = day.Level, day.Date
				}
			}
			d.Days = dr.Days[max(0, n-s.cfg.PublishDays):]
		}
		r.Level = max(r.Level, d.Level)
		r.Diseases = append(r.Diseases, d)
	}
	return r
}

// WeatherHour is one hour of a plot's weather as the service publishes it.
type WeatherHour struct {
	Time   time.Time `json:"time"`
	TempC  float64   `json:"temp_c"`
	RHPct  float64   `json:"rh_pct"`
	RainMM float64   `json:"rain_mm"`
	// LeafWet is the leaf sensors' wet fraction (0–1), absent without one.
	LeafWet *float64 `json:"leaf_wet,omitempty"`
	// Wet says whether the models count the hour wet, and WetSource by
	// which rule: sensor, rh or rain (vineyard.Derive).
	Wet       bool    `json:"wet"`
	WetSource string  `json:"wet_source,omitempty"`
	DewPointC float64 `json:"dew_point_c"`
}

// Weather is the retained message on vineyard/{site}/plot/{plot}/weather:
// the plot's last 24 hourly records.
type Weather struct {
	Time   time.Time     `json:"time"`
	Asset  string        `json:"asset"`
	Source event.Source  `json:"source"`
	Site   string        `json:"site"`
	Hours  []WeatherHour `json:"hours"`
}

func weatherHours(hours []vineyard.Hour, der []vineyard.Derived) []WeatherHour {
	out := make([]WeatherHour, len(hours))
	for i, h := range hours {
		w := WeatherHour{Time: h.Time, TempC: h.TempC, RHPct: h.RHPct, RainMM: h.RainMM,
			Wet: der[i].Wet, WetSource: der[i].WetSource, DewPointC: round(der[i].DewPointC, 2)}
		if h.HasLeafWet {
			lw := h.LeafWet
			w.LeafWet = &lw
		}
		out[i] = w
	}
	return out
}

func weatherDoc(pi *plotInfo, res *plotResult, name string) Weather {
	n := len(res.hours)
	from := max(0, n-24)
	return Weather{
		Time: res.hours[n-1].Time, Asset: pi.ID, Source: event.Source{Type: event.SourceService, Service: name}, Site: pi.Site,
		Hours: weatherHours(res.hours[from:], res.derived[from:]),
	}
}

// hourRecord is a plot hour in the state.
type hourRecord struct {
	T  int64    `json:"t"`
	C  float64  `json:"c"`
	RH float64  `json:"rh"`
	R  float64  `json:"r"`
	LW *float64 `json:"lw,omitempty"`
}

func recordOf(h vineyard.Hour) hourRecord {
	r := hourRecord{T: h.Time.Unix(), C: h.TempC, RH: h.RHPct, R: h.RainMM}
	if h.HasLeafWet {
		lw := h.LeafWet
		r.LW = &lw
	}
	return r
}

func (r hourRecord) hour(loc *time.Location) vineyard.Hour {
	h := vineyard.Hour{Time: time.Unix(r.T, 0).In(loc), TempC: r.C, RHPct: r.RH, RainMM: r.R}
	if r.LW != nil {
		h.LeafWet, h.HasLeafWet = *r.LW, true
	}
	return h
}

// State keys: r/{device}/{hour}/{code}/{time} a raw value; d/{device}/{hour}
// a device hour whose plot hours are still to compute; h/{plot}/{hour} a
// plot hour; v/{plot} the plot's weather revision; p/{plot}/{device}/{q} a
// soil probe's latest value; l/{plot}/{id} a laboratory sample. Hours are
// 16 hex digits of Unix seconds, times 16 of Unix nanoseconds, so that
// keys sort in time order.
func hourKey(id string, hour int64) string { return id + "/" + fmt.Sprintf("%016x", hour) }

func sampleKey(dev string, hour int64, code string, at time.Time) string {
	return "r/" + hourKey(dev, hour) + "/" + code + "/" + fmt.Sprintf("%016x", uint64(at.UnixNano()))
}

func splitHourKey(s string) (id string, hour int64, ok bool) {
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return "", 0, false
	}
	h, err := strconv.ParseInt(s[i+1:], 16, 64)
	if err != nil {
		return "", 0, false
	}
	return s[:i], h, true
}

func floatBytes(v float64) []byte { return binary.BigEndian.AppendUint64(nil, math.Float64bits(v)) }

func bytesFloat(b []byte) (float64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(b))
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("vineyard: encode %T: %v", v, err)) // our own types always encode
	}
	return b
}

func unmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func round(v, digits float64) float64 {
	p := math.Pow(10, digits)
	return math.Round(v*p) / p
}
