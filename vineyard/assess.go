package vineyard

import (
	"errors"
	"fmt"
	"time"
)

// Config holds the settings of all models. The zero value uses every
// model's published defaults.
type Config struct {
	// WetRH is the RH (%) at or above which an hour without a sensor reading
	// is wet (DefaultWetRH, 90 %).
	WetRH    float64
	Downy    DownyConfig
	Powdery  PowderyConfig
	Botrytis BotrytisConfig
	// From, when not zero, drops the hours before it from the day-by-day
	// risk (the models still read them, e.g. for degree-day sums). Use it for
	// budbreak: the Gubler-Thomas index starts on the first day from it.
	From time.Time
}

// Assessment is the outcome of all models over one weather series.
type Assessment struct {
	// Hours is the number of hourly records read and Gaps the missing
	// stretches; results next to a gap rest on fewer hours.
	Hours int   `json:"hours"`
	Gaps  []Gap `json:"gaps"`
	// Risk is the season summary: per disease, per day, the level and why.
	Risk []DiseaseRisk `json:"risk"`

	Oospores  []OosporeDay      `json:"oospore_maturity"`
	Rule310   []Rule310Event    `json:"rule_3_10"`
	Primary   PrimaryResult     `json:"primary_infection"`
	Secondary []SecondaryPeriod `json:"secondary_infection"`

	Powdery    []PowderyDay     `json:"powdery_index"`
	Ascospores []AscosporeEvent `json:"powdery_ascospores"`

	Botrytis []BotrytisPeriod `json:"botrytis_periods"`
}

// Disease names used in Assessment.Risk.
const (
	DiseaseDowny    = "downy_mildew"
	DiseasePowdery  = "powdery_mildew"
	DiseaseBotrytis = "botrytis"
)

// Assess runs every model over w and returns their results with a
// day-by-day risk per disease. It fails on an empty or unordered series,
// on an hour with a value ReadCSV would refuse (NaN, or outside its
// plausible range) and on invalid settings.
func Assess(w Weather, cfg Config) (Assessment, error) {
	hours := w.Hours
	if len(hours) == 0 {
		return Assessment{}, errors.New("vineyard: no weather hours")
	}
	for i, h := range hours {
		if i > 0 && !h.Time.After(hours[i-1].Time) {
			return Assessment{}, fmt.Errorf("vineyard: hour %d (%s) is not after the one before", i+1, h.Time.Format(time.RFC3339))
		}
		if err := h.check(); err != nil {
			return Assessment{}, fmt.Errorf("vineyard: hour %d (%s): %w", i+1, h.Time.Format(time.RFC3339), err)
		}
	}
	if !(cfg.WetRH >= 0 && cfg.WetRH <= 100) {
		return Assessment{}, fmt.Errorf("vineyard: wet RH threshold %g %% outside 0 to 100", cfg.WetRH)
	}
	dc := cfg.Downy.withDefaults()
	if err := dc.validate(); err != nil {
		return Assessment{}, fmt.Errorf("vineyard: %w", err)
	}
	pc := cfg.Powdery.withDefaults()
	if err := pc.validate(); err != nil {
		return Assessment{}, fmt.Errorf("vineyard: %w", err)
	}
	bc := cfg.Botrytis.withDefaults()
	if err := bc.validate(); err != nil {
		return Assessment{}, fmt.Errorf("vineyard: %w", err)
	}

	der := Derive(hours, cfg.WetRH)
	ix := indexDays(hours)
	gaps := w.Gaps
	if gaps == nil {
		gaps = []Gap{}
	}
	a := Assessment{Hours: len(hours), Gaps: gaps}

	// Downy mildew.
	dm := newDays(ix, len(hours))
	a.Oospores = OosporeMaturity(hours, dc.OosporeBaseC, dc.OosporeMatureDD, dc.PriorDegreeDays)
	matured := false
	for d, o := range a.Oospores {
		if o.Mature && !matured {
			matured = true
			at := ix.first[d]
			addReason(dm, ix, at, Reason{
				From: hours[0].Time, To: hours[ix.first[d]].Time, Rule: "downy.oospore-maturity", Level: Low,
				Text:   fmt.Sprintf("oospores mature: %.0f degree-days above %g °C since 1 January ≥ %g", o.DegreeDays, dc.OosporeBaseC, dc.OosporeMatureDD),
				Values: map[string]float64{"degree_days": o.DegreeDays, "threshold": dc.OosporeMatureDD},
			})
		}
	}
	a.Rule310 = Rule310(hours, dc)
	if a.Rule310 == nil {
		a.Rule310 = []Rule310Event{}
	}
	hourAt := hourIndex(hours)
	for _, e := range a.Rule310 {
		i := hourAt(e.From)
		mature := a.Oospores[ix.of[i]].Mature
		lv, note := High, "oospores mature"
		switch {
		case !mature:
			lv, note = Low, fmt.Sprintf("but oospores not yet mature (%.0f of %g degree-days)", a.Oospores[ix.of[i]].DegreeDays, dc.OosporeMatureDD)
		case !e.ShootKnown:
			lv, note = Moderate, "shoot length not given"
		}
		tempWord := "mean"
		if dc.Rule310MinTemp {
			tempWord = "minimum"
		}
		r := Reason{
			From: e.From.Add(-time.Duration(dc.Rule310WindowHours-1) * time.Hour), To: e.To, Rule: "downy.rule-3-10", Level: lv,
			Text: fmt.Sprintf("3-10 rule: %.1f mm rain in %d h ≥ %g, %s %.1f °C ≥ %g, shoots %.0f cm (≥ %g); %s",
				e.RainMM, dc.Rule310WindowHours, dc.Rule310RainMM, tempWord, e.TempC, dc.Rule310TempC, e.ShootCM, dc.Rule310ShootCM, note),
			Values: map[string]float64{"rain_mm": e.RainMM, "temp_c": e.TempC, "shoot_cm": e.ShootCM},
		}
		// File the event under each day it covers.
		for d := ix.of[i]; d < len(ix.dates) && d <= ix.of[hourAt(e.To)]; d++ {
			addReason(dm, ix, ix.first[d], r)
		}
	}
	a.Primary = primary(hours, der, dc, ix, dm)
	lesions := dc.LesionsFrom
	for _, co := range a.Primary.Cohorts {
		if t := co.IncubationStart; !t.IsZero() && (lesions.IsZero() || t.Before(lesions)) {
			lesions = t
		}
	}
	a.Secondary = secondary(hours, der, dc, lesions, ix, dm)

	// Powdery mildew: the index starts on the first day from cfg.From.
	pm := newDays(ix, len(hours))
	start := 0
	if !cfg.From.IsZero() {
		for start < len(hours) && hours[start].Time.Before(cfg.From) {
			start++
		}
	}
	a.Powdery = []PowderyDay{}
	if start < len(hours) {
		a.Powdery = GublerThomas(hours[start:], pc)
		sub := ix // the days GublerThomas used
		if start > 0 {
			sub = indexDays(hours[start:])
		}
		for k, p := range a.Powdery {
			a0, b0 := sub.hours(k, len(hours)-start)
			a0, b0 = a0+start, b0+start
			text := fmt.Sprintf("Gubler-Thomas index %d (%+d): longest run %d h at %g–%g °C (need %d), maximum %.1f °C; sulfur every %s, other fungicides every %s",
				p.Index, p.Change, p.RunHours, pc.LowC, pc.HighC, pc.RunHours, p.MaxTempC, p.Advice.Sulfur, p.Advice.Chemical)
			if !p.Started {
				text = fmt.Sprintf("Gubler-Thomas start phase, index %d: longest run %d h at %g–%g °C (need %d on 3 days in a row)",
					p.Index, p.RunHours, pc.LowC, pc.HighC, pc.RunHours)
			}
			lv := p.Advice.RiskLevel
			if !p.Started {
				lv = Low
			}
			addReason(pm, ix, a0, Reason{
				From: hours[a0].Time, To: hours[b0-1].Time, Rule: "powdery.gubler-thomas", Level: lv, Text: text,
				Values: map[string]float64{"index": float64(p.Index), "change": float64(p.Change), "run_hours": float64(p.RunHours), "max_temp_c": p.MaxTempC},
			})
		}
	}
	a.Ascospores = ascospores(hours, der, pc)
	for _, e := range a.Ascospores {
		addReason(pm, ix, hourAt(e.To), Reason{
			From: e.From, To: e.To, Rule: "powdery.ascospore", Level: High,
			Text: fmt.Sprintf("ascospore infection: %.1f mm rain, then %d wet hours at %.1f °C (need %g mm, %d h, ≥ %g °C)",
				e.RainMM, e.WetHours, e.MeanTempC, pc.AscosporeRainMM, pc.AscosporeWetHours, pc.AscosporeMinC),
			Values: map[string]float64{"rain_mm": e.RainMM, "wet_hours": float64(e.WetHours), "mean_temp_c": e.MeanTempC},
		})
	}

	// Botrytis: one reason per wet period and day, at the day's highest index.
	bt := newDays(ix, len(hours))
	lastDay := -1
	var lastFrom time.Time
	a.Botrytis = botrytis(hours, der, bc, func(p *BotrytisPeriod, s botrytisStep) {
		lv := BroomeLevel(s.index)
		if lv == None {
			return
		}
		d := ix.of[s.i]
		r := Reason{
			From: p.From, To: hours[s.i].Time, Rule: "botrytis.broome", Level: lv,
			Text: fmt.Sprintf("Broome index %.2f (P(infected berry) %.0f %%): %d wet hours at %.1f °C",
				s.index, 100*BroomeProbability(s.index), s.w, s.mean),
			Values: map[string]float64{"index": s.index, "wet_hours": float64(s.w), "mean_temp_c": s.mean},
		}
		if d == lastDay && p.From.Equal(lastFrom) {
			rs := bt[d].Reasons
			if s.index >= rs[len(rs)-1].Values["index"] {
				roundValues(r.Values)
				rs[len(rs)-1] = r
			}
			if lv > bt[d].Level {
				bt[d].Level = lv
			}
			return
		}
		addReason(bt, ix, s.i, r)
		lastDay, lastFrom = d, p.From
	})

	a.Risk = []DiseaseRisk{
		summarise(DiseaseDowny, trimDays(dm, ix, hours, cfg.From)),
		summarise(DiseasePowdery, trimDays(pm, ix, hours, cfg.From)),
		summarise(DiseaseBotrytis, trimDays(bt, ix, hours, cfg.From)),
	}
	return a, nil
}

// hourIndex returns a lookup from a record's time to its index.
func hourIndex(hours []Hour) func(time.Time) int {
	return func(t time.Time) int {
		lo, hi := 0, len(hours)-1
		for lo < hi {
			m := (lo + hi) / 2
			if hours[m].Time.Before(t) {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo
	}
}

func trimDays(days []DayRisk, ix dayIndex, hours []Hour, from time.Time) []DayRisk {
	if from.IsZero() {
		return days
	}
	for d := range days {
		_, b := ix.hours(d, len(hours))
		if !hours[b-1].Time.Before(from) {
			return days[d:]
		}
	}
	return []DayRisk{}
}
