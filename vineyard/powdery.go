package vineyard

import (
	"fmt"
	"math"
	"time"
)

// PowderyConfig holds the thresholds of the Gubler-Thomas powdery-mildew
// model. A zero field takes the default named in its comment.
type PowderyConfig struct {
	// LowC and HighC bound the favourable temperature range, both ends
	// included (21.1 and 29.4 °C, i.e. UC Davis's 70–85 °F).
	LowC, HighC float64
	// RunHours is the run of consecutive favourable hours a day needs (6).
	RunHours int
	// HotC is the temperature that lowers the index (35 °C, i.e. 95 °F). With
	// hourly data an hour at or above it stands for the source's "at least
	// 15 minutes".
	HotC float64
	// AscosporeRainMM is the rain that releases ascospores (2.5 mm), and
	// AscosporeWetHours and AscosporeMinC the wetness the release then needs
	// to infect (8 h at a mean of at least 10 °C; Metos: 8–12 h at 10–15 °C).
	AscosporeRainMM   float64
	AscosporeWetHours int
	AscosporeMinC     float64
}

func (c PowderyConfig) withDefaults() PowderyConfig {
	orDefault(&c.LowC, 21.1)
	orDefault(&c.HighC, 29.4)
	orDefault(&c.RunHours, 6)
	orDefault(&c.HotC, 35)
	orDefault(&c.AscosporeRainMM, 2.5)
	orDefault(&c.AscosporeWetHours, 8)
	orDefault(&c.AscosporeMinC, 10)
	return c
}

func (c PowderyConfig) validate() error {
	if err := finite("powdery", map[string]float64{
		"low temperature": c.LowC, "high temperature": c.HighC, "hot temperature": c.HotC,
		"ascospore rain": c.AscosporeRainMM, "ascospore temperature": c.AscosporeMinC,
	}); err != nil {
		return err
	}
	if c.HighC <= c.LowC {
		return fmt.Errorf("powdery: favourable range %g–%g °C is empty", c.LowC, c.HighC)
	}
	if c.RunHours < 1 || c.RunHours > 24 || c.AscosporeWetHours < 1 {
		return fmt.Errorf("powdery: run of %d h or ascospore wetness of %d h out of range", c.RunHours, c.AscosporeWetHours)
	}
	return nil
}

// PowderyDay is one day of the Gubler-Thomas conidial index.
type PowderyDay struct {
	Date string `json:"date"`
	// RunHours is the day's longest run of consecutive favourable hours.
	RunHours int `json:"run_hours"`
	// MaxTempC is the day's highest hourly temperature.
	MaxTempC float64 `json:"max_temp_c"`
	// Started says whether the epidemic start (3 favourable days in a row)
	// has been reached by the end of this day.
	Started bool `json:"started"`
	// Index is the conidial index (0–100) at the end of the day, and Change
	// the day's change.
	Index  int `json:"index"`
	Change int `json:"change"`
	// Advice is the spray-interval advice for the index band.
	Advice SprayAdvice `json:"advice"`
}

// SprayAdvice is the spray interval for a Gubler-Thomas index band
// (UC IPM / APSnet, as given by mywildeye's model notes).
type SprayAdvice struct {
	Band      string `json:"band"`
	Chemical  string `json:"chemical_interval"`
	Sulfur    string `json:"sulfur_interval"`
	RiskLevel Level  `json:"level"`
}

// AdviceFor returns the spray advice for a conidial index: 0–30 low
// (chemical 21 d or label maximum, sulfur 14–21 d), 40–60 moderate (chemical
// 21 d or label maximum, sulfur 10–17 d), above 60 high (chemical 14 d or
// label minimum, sulfur 7 d).
func AdviceFor(index int) SprayAdvice {
	switch {
	case index <= 30:
		return SprayAdvice{"0-30", "21 d or label maximum", "14-21 d", Low}
	case index <= 60:
		return SprayAdvice{"40-60", "21 d or label maximum", "10-17 d", Moderate}
	default:
		return SprayAdvice{"70-100", "14 d or label minimum", "7 d", High}
	}
}

// AscosporeEvent is a predicted ascospore (primary) infection of powdery
// mildew: a release by rain followed by a long enough warm wet period.
type AscosporeEvent struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	RainMM    float64   `json:"rain_mm"`
	WetHours  int       `json:"wet_hours"`
	MeanTempC float64   `json:"mean_temp_c"`
}

// GublerThomas computes the daily conidial index of the UC Davis
// (Gubler-Thomas) model over the days of hours, starting on the first day.
//
// Start phase: each day with a run of ≥ RunHours consecutive hours in
// LowC–HighC adds 20; a day without one (or a missing day) resets the index
// to 0; three such days in a row reach 60 and start the epidemic, after which
// the start rule is not checked again. Then each day: +20 with such a run,
// −10 without one, −10 if the day reached HotC (so +10 net with both), but
// never more than −10 in one day (so −10 for a short, hot day), kept within
// 0 to 100 (westernfarmpress.com, Spectrum WatchDog manual).
// Runs are broken by gaps in the records.
func GublerThomas(hours []Hour, c PowderyConfig) []PowderyDay {
	c = c.withDefaults()
	ix := indexDays(hours)
	out := make([]PowderyDay, len(ix.dates))
	index, streak, started := 0, 0, false
	var prevDate time.Time
	for d := range ix.dates {
		a, b := ix.hours(d, len(hours))
		run, best := 0, 0
		maxT := math.Inf(-1)
		for i := a; i < b; i++ {
			t := hours[i].TempC
			maxT = math.Max(maxT, t)
			if i > a && !consecutive(hours, i) {
				run = 0
			}
			if t >= c.LowC && t <= c.HighC {
				run++
				best = max(best, run)
			} else {
				run = 0
			}
		}
		good := best >= c.RunHours
		hot := maxT >= c.HotC
		y, m, dd := hours[a].Time.Date()
		date := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
		follows := d > 0 && date.Sub(prevDate) == 24*time.Hour
		prevDate = date
		before := index
		switch {
		case !started && good:
			if !follows {
				streak = 0
			}
			streak++
			index = 20 * streak
			if streak >= 3 {
				started = true
			}
		case !started:
			streak, index = 0, 0
		default:
			change := -10
			if good {
				change = 20
			}
			if hot {
				change -= 10
			}
			// "You can't subtract more than 10 points a day"
			// (westernfarmpress.com, page 2): a short, hot day loses 10.
			change = max(change, -10)
			index = min(100, max(0, index+change))
		}
		out[d] = PowderyDay{Date: ix.dates[d], RunHours: best, MaxTempC: maxT, Started: started,
			Index: index, Change: index - before, Advice: AdviceFor(index)}
	}
	return out
}

// ascospores finds powdery-mildew ascospore infections: a wet period (or the
// 24 h before its start) with ≥ AscosporeRainMM rain that lasts ≥
// AscosporeWetHours at a mean of ≥ AscosporeMinC.
func ascospores(hours []Hour, der []Derived, c PowderyConfig) []AscosporeEvent {
	out := []AscosporeEvent{}
	start := -1
	var tsum, rain float64
	fired := false
	for i := 0; i <= len(hours); i++ {
		endRun := i == len(hours) || !der[i].Wet || (i > 0 && !consecutive(hours, i))
		if endRun && start >= 0 {
			start, fired = -1, false
		}
		if i == len(hours) || !der[i].Wet {
			continue
		}
		if start < 0 {
			start, tsum = i, 0
			// Rain of the 24 h before the wet period counts as the release.
			rain = 0
			for j := i - 1; j >= 0 && hours[i].Time.Sub(hours[j].Time) <= 24*time.Hour; j-- {
				rain += hours[j].RainMM
			}
		}
		tsum += hours[i].TempC
		rain += hours[i].RainMM
		n := i - start + 1
		mean := tsum / float64(n)
		if !fired && n >= c.AscosporeWetHours && rain >= c.AscosporeRainMM && mean >= c.AscosporeMinC {
			out = append(out, AscosporeEvent{From: hours[start].Time, To: hours[i].Time, RainMM: rain, WetHours: n, MeanTempC: mean})
			fired = true
		}
	}
	return out
}
