package vineyard

import (
	"fmt"
	"math"
	"time"
)

// ShootObservation is a shoot length measured in the vineyard.
type ShootObservation struct {
	Time time.Time `json:"time"`
	CM   float64   `json:"cm"`
}

// DownyConfig holds the thresholds of the downy-mildew models. A zero field
// takes the default named in its comment.
type DownyConfig struct {
	// OosporeBaseC is the base temperature of the oospore-maturity degree-day
	// sum (8 °C; Agroscope/VitiMeteo, via FieldClimate).
	OosporeBaseC float64
	// OosporeMatureDD is the degree-day sum at which the first oospores are
	// mature (160 °C·d; VitiMeteo "normalerweise 160 Gradtage", FieldClimate
	// 160–170).
	OosporeMatureDD float64
	// PriorDegreeDays is the degree-day sum from 1 January to the first day
	// of the series, for series that start later (0 by default).
	PriorDegreeDays float64

	// Rule310RainMM is the rain sum of the 3-10 rule (10 mm).
	Rule310RainMM float64
	// Rule310TempC is the temperature of the 3-10 rule (10 °C).
	Rule310TempC float64
	// Rule310ShootCM is the shoot length of the 3-10 rule (10 cm).
	Rule310ShootCM float64
	// Rule310WindowHours is the window of the rain sum (24 h; sources use
	// 24 to 48 h).
	Rule310WindowHours int
	// Rule310MinTemp makes the rule test the window's minimum temperature
	// (Wineskills: "10 °C minimum over 24 h") instead of its mean.
	Rule310MinTemp bool
	// ShootCM is the shoot length for the whole series when Shoots is empty;
	// 0 means not known.
	ShootCM float64
	// Shoots are shoot-length observations; each holds from its time until
	// the next one. Before the first one the length is unknown.
	Shoots []ShootObservation

	// InitialHT is the hydrothermal time of Rossi et al. (2008) accumulated
	// from 1 January to the first hour of the series (0 by default).
	InitialHT float64
	// ReleaseExpOfSum selects the zoospore-release threshold as read in the
	// viticolaR package, WD ≥ exp((−1.022 + 19.634)/TWD), instead of the
	// default WD ≥ exp(−1.022 + 19.634/TWD). The paper's bracketing was not
	// confirmed (docs/models/vineyard.md).
	ReleaseExpOfSum bool
	// InfectionDegreeHours is the wetness degree-hours (wet hours × mean
	// temperature) zoospores need to infect (60 °C·h).
	InfectionDegreeHours float64

	// SecondaryModerate and SecondaryHigh are the leaf-wetness degree-hour
	// sums of one wet period for moderate (50 °C·h) and high (150 °C·h)
	// secondary-infection risk (VitiMeteo ≥ 50; VineForecast > 50, > 150).
	SecondaryModerate float64
	SecondaryHigh     float64
	// LesionsFrom is when oil spots were seen; secondary infection is
	// assessed from then, or from the first predicted end of incubation of a
	// primary infection, whichever is earlier. Zero means not seen.
	LesionsFrom time.Time
}

func (c DownyConfig) withDefaults() DownyConfig {
	orDefault(&c.OosporeBaseC, 8)
	orDefault(&c.OosporeMatureDD, 160)
	orDefault(&c.Rule310RainMM, 10)
	orDefault(&c.Rule310TempC, 10)
	orDefault(&c.Rule310ShootCM, 10)
	orDefault(&c.InfectionDegreeHours, 60)
	orDefault(&c.SecondaryModerate, 50)
	orDefault(&c.SecondaryHigh, 150)
	orDefault(&c.Rule310WindowHours, 24)
	return c
}

func (c DownyConfig) validate() error {
	if err := finite("downy", map[string]float64{
		"oospore base": c.OosporeBaseC, "oospore maturity": c.OosporeMatureDD, "prior degree-days": c.PriorDegreeDays,
		"rule 3-10 rain": c.Rule310RainMM, "rule 3-10 temperature": c.Rule310TempC, "rule 3-10 shoot length": c.Rule310ShootCM,
		"shoot length": c.ShootCM, "initial hydrothermal time": c.InitialHT, "infection degree-hours": c.InfectionDegreeHours,
		"secondary moderate": c.SecondaryModerate, "secondary high": c.SecondaryHigh,
	}); err != nil {
		return err
	}
	for i, s := range c.Shoots {
		if math.IsNaN(s.CM) || math.IsInf(s.CM, 0) {
			return fmt.Errorf("downy: shoot observation %d: %g cm is not a finite number", i+1, s.CM)
		}
	}
	switch {
	case c.Rule310WindowHours < 1 || c.Rule310WindowHours > 24*14:
		return fmt.Errorf("downy: rule 3-10 window %d h, want 1 to 336", c.Rule310WindowHours)
	case c.SecondaryHigh < c.SecondaryModerate:
		return fmt.Errorf("downy: secondary high threshold %g below moderate %g", c.SecondaryHigh, c.SecondaryModerate)
	case c.ShootCM < 0:
		return fmt.Errorf("downy: shoot length %g cm is negative", c.ShootCM)
	case c.InitialHT < 0 || c.PriorDegreeDays < 0:
		return fmt.Errorf("downy: initial hydrothermal time and prior degree-days must not be negative")
	}
	for i, s := range c.Shoots {
		if s.CM < 0 {
			return fmt.Errorf("downy: shoot observation %d: %g cm is negative", i+1, s.CM)
		}
		if i > 0 && !s.Time.After(c.Shoots[i-1].Time) {
			return fmt.Errorf("downy: shoot observation %d is not after the one before", i+1)
		}
	}
	return nil
}

// OosporeDay is one day of the oospore-maturity degree-day sum.
type OosporeDay struct {
	Date       string  `json:"date"`
	MeanTempC  float64 `json:"mean_temp_c"`
	DegreeDays float64 `json:"degree_days"`
	Mature     bool    `json:"mature"`
}

// OosporeMaturity sums max(0, Tmean − base) per day from 1 January (plus
// prior for the days before the series) and marks the days on which the sum
// has reached mature. Tmean is the mean of the day's hourly records. The sum
// restarts on 1 January of each year.
func OosporeMaturity(hours []Hour, base, mature, prior float64) []OosporeDay {
	ix := indexDays(hours)
	out := make([]OosporeDay, len(ix.dates))
	sum := prior
	for d := range ix.dates {
		a, b := ix.hours(d, len(hours))
		if d > 0 && hours[a].Time.Year() != hours[ix.first[d-1]].Time.Year() {
			sum = 0 // a new year, even across a gap
		}
		var s float64
		for _, h := range hours[a:b] {
			s += h.TempC
		}
		mean := s / float64(b-a)
		sum += math.Max(0, mean-base)
		out[d] = OosporeDay{Date: ix.dates[d], MeanTempC: mean, DegreeDays: sum, Mature: sum >= mature}
	}
	return out
}

// Rule310Event is a stretch of consecutive hours in which the 3-10 rule held.
type Rule310Event struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// RainMM and TempC are the window's rain sum and mean (or minimum)
	// temperature at the first hour of the event.
	RainMM float64 `json:"rain_mm"`
	TempC  float64 `json:"temp_c"`
	// ShootCM is the shoot length then; ShootKnown says whether it was given.
	ShootCM    float64 `json:"shoot_cm"`
	ShootKnown bool    `json:"shoot_known"`
}

func (c DownyConfig) shootAt(t time.Time) (float64, bool) {
	if len(c.Shoots) == 0 {
		return c.ShootCM, c.ShootCM > 0
	}
	cm, ok := 0.0, false
	for _, s := range c.Shoots {
		if s.Time.After(t) {
			break
		}
		cm, ok = s.CM, true
	}
	return cm, ok
}

// Rule310 evaluates the 3-10 rule (Baldacci 1947) at every hour over the
// window ending with that hour: rain sum ≥ RainMM, temperature (mean, or
// minimum) ≥ TempC and shoots ≥ ShootCM. When the shoot length is not known
// the rule is judged on the weather alone and the event says so. The window
// counts only the records present; a gap does not add rain. A window below
// 1 h counts as 1 h (Assess refuses it).
func Rule310(hours []Hour, c DownyConfig) []Rule310Event {
	c = c.withDefaults()
	win := time.Duration(max(c.Rule310WindowHours, 1)) * time.Hour
	var out []Rule310Event
	open := false
	j := 0
	var rain, tsum float64 // running sums over hours[j : i+1]
	for i, h := range hours {
		rain += h.RainMM
		tsum += h.TempC
		for j < i && h.Time.Sub(hours[j].Time) >= win {
			rain -= hours[j].RainMM
			tsum -= hours[j].TempC
			j++
		}
		if j == i {
			rain, tsum = h.RainMM, h.TempC // drop rounding residue
		}
		rain = math.Max(rain, 0)
		temp := tsum / float64(i+1-j)
		if c.Rule310MinTemp {
			temp = math.Inf(1)
			for _, w := range hours[j : i+1] {
				temp = math.Min(temp, w.TempC)
			}
		}
		shoot, known := c.shootAt(h.Time)
		fires := rain >= c.Rule310RainMM && temp >= c.Rule310TempC && (!known || shoot >= c.Rule310ShootCM)
		switch {
		case fires && open && consecutive(hours, i):
			out[len(out)-1].To = h.Time
		case fires:
			out = append(out, Rule310Event{From: h.Time, To: h.Time, RainMM: rain, TempC: temp, ShootCM: shoot, ShootKnown: known})
			open = true
		default:
			open = false
		}
	}
	return out
}

// Cohort is one cohort of oospores of the Rossi et al. (2008) model: the
// oospores that germinate after one rain event, followed through sporangia,
// zoospore release and dispersal to infection and incubation.
type Cohort struct {
	// Start is the first hour of the rain event (R ≥ 0.2 mm after R < 0.2 mm).
	Start time.Time `json:"start"`
	// HT is the hydrothermal time at Start; Dose is the fraction of the
	// season's oospores that broke dormancy since the previous cohort.
	HT   float64 `json:"ht"`
	Dose float64 `json:"dose"`
	// The times of the stages reached; zero when not reached.
	Germinated        time.Time `json:"germinated,omitzero"`
	ZoosporesReleased time.Time `json:"zoospores_released,omitzero"`
	Dispersed         time.Time `json:"dispersed,omitzero"`
	Infection         time.Time `json:"infection,omitzero"`
	// InfectionDegreeHours is WD·TWD of the wet period that infected.
	InfectionDegreeHours float64 `json:"infection_degree_hours,omitempty"`
	// IncubationStart and IncubationEnd bound the expected appearance of
	// oil spots (Rossi et al. 2008 eqs 8–9).
	IncubationStart time.Time `json:"incubation_start,omitzero"`
	IncubationEnd   time.Time `json:"incubation_end,omitzero"`
	// Fate says how the cohort ended: "infection", "sporangia died",
	// "zoospores dried out", or "running" at the end of the series.
	Fate string `json:"fate"`
	// MissingHours counts hours missing from the series while the cohort ran;
	// stages after a gap come later than they would with complete data.
	MissingHours int `json:"missing_hours,omitempty"`

	stage                int
	ger, sus, inc1, inc2 float64
	wd                   int
	wsum                 float64
}

const (
	stGerminating = iota
	stSporangia
	stReleased
	stDispersed
	stIncubating
	stDone
)

// PrimaryResult is the outcome of the Rossi et al. (2008) model.
type PrimaryResult struct {
	// HTEnd is the hydrothermal time at the last hour.
	HTEnd float64 `json:"ht_end"`
	// SeasonStart and SeasonEnd are when HT reached 1.3 and 8.6 (3 % and
	// 97 % of oospores mature); zero when not reached.
	SeasonStart time.Time `json:"season_start,omitzero"`
	SeasonEnd   time.Time `json:"season_end,omitzero"`
	Cohorts     []Cohort  `json:"cohorts"`
}

// Rossi et al. (2008) primary-season bounds in hydrothermal time.
const (
	htSeasonStart = 1.3
	htSeasonEnd   = 8.6
)

// HTRate returns the hourly hydrothermal-time increment of Rossi et al.
// (2008) for a moist hour at tempC: 1/(1330.1 − 116.19·T + 2.6256·T²) for
// T > 0, else 0. The same rate drives oospore germination.
func HTRate(tempC float64) float64 {
	if tempC <= 0 {
		return 0
	}
	return 1 / (1330.1 - 116.19*tempC + 2.6256*tempC*tempC)
}

// Dormancy returns the fraction of oospores that have broken dormancy at
// hydrothermal time ht: DOR = exp(−15.891·exp(−0.653·(HT + 1))) (Rossi et al. 2008).
func Dormancy(ht float64) float64 {
	return math.Exp(-15.891 * math.Exp(-0.653*(ht+1)))
}

// SporangiaSurvivalRate returns the hourly increment of the sporangia
// survival sum (Rossi et al. 2008): 1/(24·(5.67 − 0.47·x + 0.01·x²)) with
// x = T·(1 − RH/100). x is kept within 0 to 23.5, the minimum of the fitted
// polynomial, so drier air never lengthens survival (my reading).
func SporangiaSurvivalRate(tempC, rhPct float64) float64 {
	x := tempC * (1 - math.Min(rhPct, 100)/100)
	x = math.Min(math.Max(x, 0), 23.5)
	return 1 / (24 * (5.67 - 0.47*x + 0.01*x*x))
}

// IncubationRates returns the hourly increments of the two incubation sums
// of Rossi et al. (2008) eqs 8–9: the window opens when the first reaches 1,
// 1/(24·(45.1 − 3.45·T + 0.073·T²)), and closes when the second does,
// 1/(24·(59.9 − 4.55·T + 0.095·T²)).
func IncubationRates(tempC float64) (start, end float64) {
	t := tempC
	return 1 / (24 * (45.1 - 3.45*t + 0.073*t*t)), 1 / (24 * (59.9 - 4.55*t + 0.095*t*t))
}

// ReleaseHours returns the wet hours a germinated cohort needs to release
// zoospores at mean wet-period temperature twd: exp(−1.022 + 19.634/TWD), or
// with expOfSum exp((−1.022 + 19.634)/TWD). It is +Inf for TWD ≤ 0.
func ReleaseHours(twd float64, expOfSum bool) float64 {
	if twd <= 0 {
		return math.Inf(1)
	}
	if expOfSum {
		return math.Exp((-1.022 + 19.634) / twd)
	}
	return math.Exp(-1.022 + 19.634/twd)
}

// moist reports Rossi's leaf-litter moisture M_h: rain or VPD ≤ 0.45 kPa.
func moist(h Hour, d Derived) bool {
	return h.RainMM > 0 || d.VPDkPa <= 0.45
}

// Primary runs the Rossi et al. (2008) primary-infection model hour by hour.
// der must be Derive(hours, …). Reasons are filed into days (see Assess).
func primary(hours []Hour, der []Derived, c DownyConfig, ix dayIndex, days []DayRisk) PrimaryResult {
	res := PrimaryResult{Cohorts: []Cohort{}}
	ht := c.InitialHT
	lastDOR := 0.0
	var active []int
	for i, h := range hours {
		gap := i > 0 && !consecutive(hours, i)
		if i > 0 && h.Time.Year() != hours[i-1].Time.Year() {
			// Rossi's hydrothermal time and oospore dose restart on 1 January.
			ht, lastDOR = 0, 0
		}
		m := 0.0
		if moist(h, der[i]) {
			m = 1
		}
		ht += m * HTRate(h.TempC)
		if res.SeasonStart.IsZero() && ht >= htSeasonStart {
			res.SeasonStart = h.Time
		}
		if res.SeasonEnd.IsZero() && ht >= htSeasonEnd {
			res.SeasonEnd = h.Time
		}
		inSeason := ht >= htSeasonStart && ht <= htSeasonEnd
		rainStart := h.RainMM >= 0.2 && (i == 0 || gap || hours[i-1].RainMM < 0.2)
		if inSeason && rainStart {
			dor := Dormancy(ht)
			res.Cohorts = append(res.Cohorts, Cohort{Start: h.Time, HT: ht, Dose: dor - lastDOR, Fate: "running"})
			lastDOR = dor
			addReason(days, ix, i, Reason{
				From: h.Time, To: h.Time, Rule: "downy.rossi.cohort", Level: Low,
				Text: fmt.Sprintf("rain %.1f mm starts an oospore cohort (hydrothermal time %.2f, %.1f %% of oospores out of dormancy)",
					h.RainMM, ht, 100*dor),
				Values: map[string]float64{"rain_mm": h.RainMM, "ht": ht, "dormancy": dor},
			})
			active = append(active, len(res.Cohorts)-1)
		}
		keep := active[:0]
		for _, k := range active {
			co := &res.Cohorts[k]
			if gap {
				co.MissingHours += int(h.Time.Sub(hours[i-1].Time)/time.Hour) - 1
			}
			stepCohort(co, h, der[i], m, gap, c, ix, days, i)
			if co.stage != stDone {
				keep = append(keep, k)
			}
		}
		active = keep
	}
	res.HTEnd = ht
	return res
}

func stepCohort(co *Cohort, h Hour, d Derived, m float64, gap bool, c DownyConfig, ix dayIndex, days []DayRisk, i int) {
	wet := d.Wet || h.RainMM > 0
	switch co.stage {
	case stGerminating:
		co.ger += m * HTRate(h.TempC)
		if co.ger >= 1 {
			co.Germinated = h.Time
			co.stage = stSporangia
			addReason(days, ix, i, Reason{
				From: co.Start, To: h.Time, Rule: "downy.rossi.germination", Level: Low,
				Text:   fmt.Sprintf("oospores of the cohort of %s have germinated: sporangia formed", co.Start.Format(time.RFC3339)),
				Values: map[string]float64{"germination": co.ger},
			})
		}
		return
	case stSporangia:
		co.sus += SporangiaSurvivalRate(h.TempC, h.RHPct)
		if co.sus > 1 {
			co.stage, co.Fate = stDone, "sporangia died"
			return
		}
		if gap || !wet {
			co.wd, co.wsum = 0, 0
			if !wet {
				return
			}
		}
		co.wd++
		co.wsum += h.TempC
		twd := co.wsum / float64(co.wd)
		need := ReleaseHours(twd, c.ReleaseExpOfSum)
		if float64(co.wd) < need {
			return
		}
		co.ZoosporesReleased = h.Time
		co.stage = stReleased
		addReason(days, ix, i, Reason{
			From: h.Time.Add(-time.Duration(co.wd-1) * time.Hour), To: h.Time, Rule: "downy.rossi.release", Level: Moderate,
			Text: fmt.Sprintf("zoospores released after %d wet hours at %.1f °C (need %.1f h); infection needs rain splash and %g °C·h of wetness",
				co.wd, twd, need, c.InfectionDegreeHours),
			Values: map[string]float64{"wet_hours": float64(co.wd), "mean_temp_c": twd, "needed_hours": need},
		})
		fallthrough
	case stReleased:
		if co.stage == stReleased && !co.ZoosporesReleased.Equal(h.Time) && (gap || !wet) {
			co.stage, co.Fate = stDone, "zoospores dried out"
			return
		}
		if h.RainMM < 0.2 {
			return
		}
		co.Dispersed = h.Time
		co.stage = stDispersed
		co.wd, co.wsum = 0, 0
		fallthrough
	case stDispersed:
		if co.stage == stDispersed && !co.Dispersed.Equal(h.Time) && (gap || !wet) {
			co.stage, co.Fate = stDone, "zoospores dried out"
			return
		}
		co.wd++
		co.wsum += h.TempC
		if co.wsum < c.InfectionDegreeHours {
			return
		}
		co.Infection = h.Time
		co.InfectionDegreeHours = co.wsum
		co.stage, co.Fate = stIncubating, "infection"
		twd := co.wsum / float64(co.wd)
		addReason(days, ix, i, Reason{
			From: co.Dispersed, To: h.Time, Rule: "downy.rossi.infection", Level: High,
			Text: fmt.Sprintf("primary infection: zoospores of the cohort of %s, splashed by rain at %s, stayed wet %d h at %.1f °C: WD·TWD = %.0f °C·h ≥ %g",
				co.Start.Format(time.RFC3339), co.Dispersed.Format(time.RFC3339), co.wd, twd, co.wsum, c.InfectionDegreeHours),
			Values: map[string]float64{"wet_hours": float64(co.wd), "mean_temp_c": twd, "degree_hours": co.wsum, "dose": co.Dose},
		})
		return
	case stIncubating:
		a, b := IncubationRates(h.TempC)
		co.inc1 += a
		co.inc2 += b
		if co.IncubationStart.IsZero() && co.inc1 >= 1 {
			co.IncubationStart = h.Time
			addReason(days, ix, i, Reason{
				From: co.Infection, To: h.Time, Rule: "downy.rossi.incubation", Level: Low,
				Text: fmt.Sprintf("oil spots of the infection of %s may appear from now (incubation window opens)", co.Infection.Format(time.RFC3339)),
			})
		}
		if co.inc2 >= 1 {
			co.IncubationEnd = h.Time
			co.stage = stDone
		}
	}
}

// SecondaryPeriod is a wet period whose leaf-wetness degree-hours reached
// the moderate threshold.
type SecondaryPeriod struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	WetHours    int       `json:"wet_hours"`
	DegreeHours float64   `json:"degree_hours"`
	Level       Level     `json:"level"`
	// Lesions says whether oil spots were present (seen or predicted), so
	// that sporangia could spread; without them the period gives no risk.
	Lesions bool `json:"lesions"`
}

// secondary sums leaf-wetness degree-hours (Σ T over the wet hours, T > 0)
// per wet period (VitiMeteo "Gradstunden bei Blattnässe"). It returns the
// periods that reached the moderate threshold.
func secondary(hours []Hour, der []Derived, c DownyConfig, lesions time.Time, ix dayIndex, days []DayRisk) []SecondaryPeriod {
	out := []SecondaryPeriod{}
	var cur SecondaryPeriod
	open := false // in a wet period
	at := -1      // index of cur in out once it reached the moderate threshold
	lastDay := -1 // day of cur's last reason
	for i, h := range hours {
		if !der[i].Wet || (i > 0 && !consecutive(hours, i)) {
			open = false
			if !der[i].Wet {
				continue
			}
		}
		if !open {
			cur = SecondaryPeriod{From: h.Time}
			open, at, lastDay = true, -1, -1
		}
		cur.To = h.Time
		cur.WetHours++
		cur.DegreeHours += math.Max(0, h.TempC)
		cur.Lesions = !lesions.IsZero() && !h.Time.Before(lesions)
		switch {
		case cur.DegreeHours >= c.SecondaryHigh:
			cur.Level = High
		case cur.DegreeHours >= c.SecondaryModerate:
			cur.Level = Moderate
		default:
			continue
		}
		if at < 0 {
			out = append(out, cur)
			at = len(out) - 1
		}
		out[at] = cur
		if !cur.Lesions {
			continue
		}
		d := ix.of[i]
		r := Reason{
			From: cur.From, To: h.Time, Rule: "downy.secondary", Level: cur.Level,
			Text: fmt.Sprintf("secondary infection: %d wet hours, %.0f leaf-wetness degree-hours (moderate ≥ %g, high ≥ %g) with oil spots present",
				cur.WetHours, cur.DegreeHours, c.SecondaryModerate, c.SecondaryHigh),
			Values: map[string]float64{"wet_hours": float64(cur.WetHours), "degree_hours": cur.DegreeHours},
		}
		// One reason per period and day: replace the day's last one as the sum grows.
		if d == lastDay {
			rs := days[d].Reasons
			roundValues(r.Values)
			rs[len(rs)-1] = r
			days[d].Level = max(days[d].Level, cur.Level)
			continue
		}
		addReason(days, ix, i, r)
		lastDay = d
	}
	return out
}
