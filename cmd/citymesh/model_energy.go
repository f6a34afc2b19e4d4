package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // tariff windows and local days in Europe/Berlin on hosts without zoneinfo

	"github.com/citymesh/citymesh/energy"
)

func init() {
	registerModel("consumption", "energy: meter readings CSV (OBIS registers) to 15-minute consumption with gaps, resets, rollovers, meter exchanges", runConsumptionModel)
	registerModel("invoice", "energy: tenants' invoices from readings, tariff and site YAML (time-of-use, standing charge, VAT, HeizkostenV §7)", runInvoiceModel)
	registerModel("esg", "energy: MWh by carrier, Scope 1/2 CO2 location- and market-based, ESRS E1-5 energy mix", runESGModel)
	registerModel("anomalies", "energy: baselines with ASHRAE Guideline 14 fit, deviations, night base load, water leaks", runAnomaliesModel)
}

// energyCommon holds the flags the energy models share.
type energyCommon struct {
	readings, site, out, tz string
	interval, maxGap        time.Duration
	fillGaps                bool
	from, to                string
}

func (c *energyCommon) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.readings, "readings", "", "meter readings, CSV: time,meter,obis,value (required)")
	fs.StringVar(&c.out, "o", "", "write the JSON here instead of stdout")
	fs.DurationVar(&c.interval, "interval", 15*time.Minute, "interval length")
	fs.DurationVar(&c.maxGap, "max-gap", 0, "longest span between readings that is not a gap (0: one interval)")
	fs.BoolVar(&c.fillGaps, "fill-gaps", false, "apportion gaps by linear interpolation (marked estimated)")
	fs.StringVar(&c.tz, "tz", "Europe/Berlin", "time zone for local days and nights and for -from/-to given as dates")
	fs.StringVar(&c.from, "from", "", "period start, RFC 3339 or YYYY-MM-DD (local midnight)")
	fs.StringVar(&c.to, "to", "", "period end (exclusive), RFC 3339 or YYYY-MM-DD (local midnight)")
}

func (c *energyCommon) options() energy.Options {
	return energy.Options{Interval: c.interval, MaxGap: c.maxGap, FillGaps: c.fillGaps}
}

func parseEnergyFlags(name string, fs *flag.FlagSet, args []string, c *energyCommon) (bool, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, fmt.Errorf("model %s: %w", name, err)
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("model %s: unexpected argument %q", name, fs.Arg(0))
	}
	if c.readings == "" {
		return false, fmt.Errorf("model %s: -readings FILE.csv is required", name)
	}
	if c.interval <= 0 || c.maxGap < 0 {
		return false, fmt.Errorf("model %s: -interval must be positive and -max-gap not negative", name)
	}
	return false, nil
}

func (c *energyCommon) location() (*time.Location, error) {
	loc, err := time.LoadLocation(c.tz)
	if err != nil {
		return nil, fmt.Errorf("-tz %q: %w", c.tz, err)
	}
	return loc, nil
}

// period parses -from and -to; both empty gives zero times.
func (c *energyCommon) period(required bool) (time.Time, time.Time, error) {
	if c.from == "" && c.to == "" && !required {
		return time.Time{}, time.Time{}, nil
	}
	if c.from == "" || c.to == "" {
		return time.Time{}, time.Time{}, errors.New("-from and -to are both required")
	}
	loc, err := c.location()
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	parse := func(flag, s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("-%s %q: want RFC 3339 or YYYY-MM-DD", flag, s)
	}
	f, err := parse("from", c.from)
	if err != nil {
		return f, f, err
	}
	t, err := parse("to", c.to)
	if err != nil {
		return f, t, err
	}
	if !f.Before(t) {
		return f, t, fmt.Errorf("-from %s must be before -to %s", c.from, c.to)
	}
	return f, t, nil
}

// filterPeriod keeps readings in [from, to] (a zero period keeps all).
func filterPeriod(rs []energy.Reading, from, to time.Time) []energy.Reading {
	if from.IsZero() {
		return rs
	}
	out := rs[:0:0]
	for _, r := range rs {
		if !r.Time.Before(from) && !r.Time.After(to) {
			out = append(out, r)
		}
	}
	return out
}

func loadSiteOptional(path string) (*energy.Site, map[energy.RegisterKey]energy.Register, error) {
	if path == "" {
		return nil, nil, nil
	}
	s, err := readModelFile(path, energy.ReadSiteYAML)
	if err != nil {
		return nil, nil, err
	}
	return &s, s.Registers(), nil
}

type consumptionOutput struct {
	Model    string          `json:"model"`
	Readings string          `json:"readings"`
	Interval string          `json:"interval"`
	Series   []energy.Series `json:"series"`
}

func runConsumptionModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model consumption", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var c energyCommon
	c.flags(fs)
	fs.StringVar(&c.site, "site", "", "site YAML: register maximum, meter exchanges (optional)")
	meter := fs.String("meter", "", "only this meter")
	if help, err := parseEnergyFlags("consumption", fs, args, &c); help || err != nil {
		return err
	}
	from, to, err := c.period(false)
	if err != nil {
		return fmt.Errorf("model consumption: %w", err)
	}
	_, regs, err := loadSiteOptional(c.site)
	if err != nil {
		return fmt.Errorf("model consumption: %w", err)
	}
	rs, err := readModelFile(c.readings, energy.ReadReadingsCSV)
	if err != nil {
		return fmt.Errorf("model consumption: %w", err)
	}
	if *meter != "" {
		kept := rs[:0]
		for _, r := range rs {
			if r.Meter == *meter {
				kept = append(kept, r)
			}
		}
		rs = kept
	}
	series, err := energy.ConsumeAll(filterPeriod(rs, from, to), regs, c.options())
	if err != nil {
		return fmt.Errorf("model consumption: %s: %w", c.readings, err)
	}
	return writeModelJSON(c.out, stdout, consumptionOutput{Model: "consumption", Readings: c.readings, Interval: c.interval.String(), Series: series})
}

type invoiceOutput struct {
	Model    string           `json:"model"`
	Readings string           `json:"readings"`
	Tariff   string           `json:"tariff"`
	Site     string           `json:"site"`
	Invoices []energy.Invoice `json:"invoices"`
	Warnings []string         `json:"warnings,omitempty"`
}

func runInvoiceModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model invoice", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var c energyCommon
	c.flags(fs)
	fs.StringVar(&c.site, "tenants", "", "site YAML: meters, tenants, shared meters (required)")
	tariffPath := fs.String("tariff", "", "tariff YAML (required)")
	if help, err := parseEnergyFlags("invoice", fs, args, &c); help || err != nil {
		return err
	}
	if c.site == "" || *tariffPath == "" {
		return errors.New("model invoice: -tariff FILE.yaml and -tenants FILE.yaml are required")
	}
	from, to, err := c.period(true)
	if err != nil {
		return fmt.Errorf("model invoice: %w", err)
	}
	tf, err := readModelFile(*tariffPath, energy.ReadTariffYAML)
	if err != nil {
		return fmt.Errorf("model invoice: %w", err)
	}
	site, err := readModelFile(c.site, energy.ReadSiteYAML)
	if err != nil {
		return fmt.Errorf("model invoice: %w", err)
	}
	rs, err := readModelFile(c.readings, energy.ReadReadingsCSV)
	if err != nil {
		return fmt.Errorf("model invoice: %w", err)
	}
	inv, warn, err := energy.Invoices(rs, site, tf, energy.InvoiceOptions{From: from, To: to, Consumption: c.options()})
	if err != nil {
		return fmt.Errorf("model invoice: %w", err)
	}
	return writeModelJSON(c.out, stdout, invoiceOutput{Model: "invoice", Readings: c.readings, Tariff: *tariffPath, Site: c.site, Invoices: inv, Warnings: warn})
}

type esgOutput struct {
	Model    string              `json:"model"`
	Readings string              `json:"readings"`
	Factors  string              `json:"factors"`
	Uses     []energy.CarrierUse `json:"consumption_kwh"`
	energy.ESGReport
}

func runESGModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model esg", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var c energyCommon
	c.flags(fs)
	fs.StringVar(&c.site, "site", "", "site YAML: carriers, conversion factors, shared meters (optional: carriers from OBIS codes)")
	factorsPath := fs.String("factors", "", "emission factors YAML (default: built-in UBA electricity factors)")
	year := fs.Int("year", 0, "reporting year for the factors (0: the year of -from, else of the first reading)")
	revenue := fs.Float64("revenue", 0, "net revenue in the reporting currency for the energy intensity (0: none)")
	if help, err := parseEnergyFlags("esg", fs, args, &c); help || err != nil {
		return err
	}
	from, to, err := c.period(false)
	if err != nil {
		return fmt.Errorf("model esg: %w", err)
	}
	factors := energy.UBAFactors()
	fname := "built-in " + factors.Name
	if *factorsPath != "" {
		if factors, err = readModelFile(*factorsPath, energy.ReadFactorsYAML); err != nil {
			return fmt.Errorf("model esg: %w", err)
		}
		fname = *factorsPath
	}
	site, regs, err := loadSiteOptional(c.site)
	if err != nil {
		return fmt.Errorf("model esg: %w", err)
	}
	rs, err := readModelFile(c.readings, energy.ReadReadingsCSV)
	if err != nil {
		return fmt.Errorf("model esg: %w", err)
	}
	rs = filterPeriod(rs, from, to)
	if len(rs) == 0 {
		return fmt.Errorf("model esg: %s: no readings in the period", c.readings)
	}
	series, err := energy.ConsumeAll(rs, regs, c.options())
	if err != nil {
		return fmt.Errorf("model esg: %w", err)
	}
	var uses []energy.CarrierUse
	if site != nil {
		uses, err = energy.UsesFromSeries(series, *site)
	} else {
		uses, err = usesByOBIS(series)
	}
	if err != nil {
		return fmt.Errorf("model esg: %w", err)
	}
	y := *year
	if y == 0 {
		loc, err := c.location()
		if err != nil {
			return fmt.Errorf("model esg: %w", err)
		}
		y = rs[0].Time.In(loc).Year()
		for _, r := range rs {
			if yy := r.Time.In(loc).Year(); yy < y {
				y = yy
			}
		}
		if !from.IsZero() {
			y = from.In(loc).Year()
		}
	}
	var rev *float64
	if *revenue > 0 {
		rev = revenue
	}
	rep, err := energy.ESG(uses, factors, y, rev)
	if err != nil {
		return fmt.Errorf("model esg: %w", err)
	}
	return writeModelJSON(c.out, stdout, esgOutput{Model: "esg", Readings: c.readings, Factors: fname, Uses: uses, ESGReport: rep})
}

type registerAnomalies struct {
	Meter      string                     `json:"meter"`
	OBIS       string                     `json:"obis"`
	Carrier    energy.Carrier             `json:"carrier"`
	Daily      []energy.DayValue          `json:"daily"`
	DegreeDays *energy.DegreeDayBaseline  `json:"degree_day_baseline,omitempty"`
	HourOfWeek *energy.HourOfWeekBaseline `json:"hour_of_week_baseline,omitempty"`
	NightLoad  []energy.NightLoad         `json:"night_base_load,omitempty"`
	NightFlow  []energy.NightFlow         `json:"night_flow,omitempty"`
	Leaks      []energy.LeakSuspect       `json:"leak_suspects,omitempty"`
	Events     []energy.Event             `json:"events,omitempty"`
	Gaps       []energy.Gap               `json:"gaps,omitempty"`
	Notes      []string                   `json:"notes,omitempty"`
}

type anomaliesOutput struct {
	Model     string              `json:"model"`
	Readings  string              `json:"readings"`
	Registers []registerAnomalies `json:"registers"`
}

func runAnomaliesModel(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("model anomalies", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var c energyCommon
	c.flags(fs)
	fs.StringVar(&c.site, "site", "", "site YAML: carriers, register maximum, meter exchanges (optional)")
	temps := fs.String("temps", "", "daily mean temperatures, CSV: date,temp_c (enables the degree-day baseline)")
	hddBase := fs.Float64("hdd-base", 15, "heating degree-day base temperature in °C")
	trainDays := fs.Int("train-days", 14, "days of the hour-of-week training period")
	rel := fs.Float64("rel", 0.2, "deviation threshold, relative to the baseline")
	abs := fs.Float64("abs", 0, "deviation threshold, absolute (register unit per period)")
	minPeriods := fs.Int("min-periods", 2, "periods in a row a deviation must last")
	leakNights := fs.Int("leak-nights", 3, "nights in a row with flow above -leak-threshold that make a leak suspect")
	leakThreshold := fs.Float64("leak-threshold", 0, "night flow per hour counted as zero")
	if help, err := parseEnergyFlags("anomalies", fs, args, &c); help || err != nil {
		return err
	}
	if *trainDays < 1 || *minPeriods < 1 || *leakNights < 1 {
		return errors.New("model anomalies: -train-days, -min-periods and -leak-nights must be at least 1")
	}
	// -rel 0 would silently become DeviationRule's default 0.2, so it is
	// refused; NaN thresholds would never flag anything.
	if !(*rel > 0) || math.IsInf(*rel, 0) || !(*abs >= 0) || math.IsInf(*abs, 0) || !(*leakThreshold >= 0) || math.IsInf(*leakThreshold, 0) || math.IsNaN(*hddBase) || math.IsInf(*hddBase, 0) {
		return errors.New("model anomalies: -rel must be a positive number, -abs and -leak-threshold finite and not negative, -hdd-base a finite temperature")
	}
	loc, err := c.location()
	if err != nil {
		return fmt.Errorf("model anomalies: %w", err)
	}
	from, to, err := c.period(false)
	if err != nil {
		return fmt.Errorf("model anomalies: %w", err)
	}
	site, regs, err := loadSiteOptional(c.site)
	if err != nil {
		return fmt.Errorf("model anomalies: %w", err)
	}
	var tempC map[string]float64
	if *temps != "" {
		if tempC, err = readModelFile(*temps, energy.ReadTemperatureCSV); err != nil {
			return fmt.Errorf("model anomalies: %w", err)
		}
	}
	rs, err := readModelFile(c.readings, energy.ReadReadingsCSV)
	if err != nil {
		return fmt.Errorf("model anomalies: %w", err)
	}
	series, err := energy.ConsumeAll(filterPeriod(rs, from, to), regs, c.options())
	if err != nil {
		return fmt.Errorf("model anomalies: %w", err)
	}
	carrier := map[string]energy.Carrier{}
	if site != nil {
		for _, m := range site.Meters {
			carrier[m.ID+"/"+m.Register().OBIS.String()] = m.Carrier
		}
	}
	rule := energy.DeviationRule{Rel: *rel, Abs: *abs, MinPeriods: *minPeriods}
	out := anomaliesOutput{Model: "anomalies", Readings: c.readings, Registers: []registerAnomalies{}}
	for _, s := range series {
		o, _ := energy.ParseOBIS(s.OBIS)
		cr, ok := carrier[s.Meter+"/"+s.OBIS]
		if !ok {
			cr = o.DefaultCarrier()
		}
		ra := registerAnomalies{Meter: s.Meter, OBIS: s.OBIS, Carrier: cr, Daily: energy.DailyTotals(s, loc), Events: s.Events, Gaps: s.Gaps}
		if tempC != nil {
			b, err := energy.FitDegreeDays(ra.Daily, tempC, *hddBase, rule)
			if err != nil {
				ra.Notes = append(ra.Notes, err.Error())
			} else {
				ra.DegreeDays = &b
			}
		}
		if b, err := energy.FitHourOfWeek(s, loc, *trainDays, rule); err != nil {
			ra.Notes = append(ra.Notes, err.Error())
		} else {
			ra.HourOfWeek = &b
		}
		switch cr {
		case energy.Water:
			ra.NightFlow, ra.Leaks = energy.WaterLeaks(s, loc, energy.LeakRule{Threshold: *leakThreshold, Nights: *leakNights})
		case energy.Electricity:
			ra.NightLoad = energy.NightBaseLoad(s, loc, energy.NightRule{})
		}
		out.Registers = append(out.Registers, ra)
	}
	return writeModelJSON(c.out, stdout, out)
}

// usesByOBIS sums each series' total per carrier implied by its OBIS code,
// for esg without a site file (where one meter may hold several registers,
// e.g. import 1.8.0 and export 2.8.0).
func usesByOBIS(series []energy.Series) ([]energy.CarrierUse, error) {
	sums := map[energy.Carrier]float64{}
	for _, sr := range series {
		o, err := energy.ParseOBIS(sr.OBIS)
		if err != nil {
			return nil, fmt.Errorf("meter %s: %w", sr.Meter, err)
		}
		c := o.DefaultCarrier()
		if c == "" {
			return nil, fmt.Errorf("meter %s: OBIS %s implies no carrier; give a -site file with one", sr.Meter, sr.OBIS)
		}
		sums[c] += sr.Total
	}
	out := make([]energy.CarrierUse, 0, len(sums))
	for c, v := range sums {
		out = append(out, energy.CarrierUse{Carrier: c, KWh: v})
	}
	slices.SortFunc(out, func(a, b energy.CarrierUse) int { return strings.Compare(string(a.Carrier), string(b.Carrier)) })
	return out, nil
}
