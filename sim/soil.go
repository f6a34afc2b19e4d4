package sim

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/citymesh/citymesh/vineyard/soil"
)

// SoilPlot describes a vineyard plot's soil: its mean nutrient contents, how
// much they vary across the plot, and its water-holding properties. Zero
// fields take the defaults in their comments, typical of the loess and
// Keuper soils around Heilbronn (docs/simulator.md).
type SoilPlot struct {
	// ID names the plot; it seeds the plot's spatial pattern.
	ID string
	// CentreLat and CentreLon are the plot's centre in degrees.
	CentreLat, CentreLon float64

	// PMg100g and KMg100g are the plot's mean CAL-extractable phosphorus
	// and potassium as the element in mg per 100 g of soil (defaults 9 and
	// 18: P a little above, K within the vineyard target class C of
	// vitipendium.de).
	PMg100g, KMg100g float64
	// PH is the mean pH (default 7.2: lime-rich loess and Keuper soils need
	// no liming).
	PH float64
	// NminMgKg is the mean mineral nitrogen in mg/kg (default 15).
	NminMgKg float64
	// ECuScm is the bulk electrical conductivity at field capacity and
	// 25 °C in µS/cm (default 250).
	ECuScm float64

	// LengthScaleM is the correlation length of the nutrients' spatial
	// pattern in metres (default 40).
	LengthScaleM float64
	// NutrientCV is the coefficient of variation of P, K and N across the
	// plot (default 0.25); PHSD the standard deviation of pH (default 0.25).
	NutrientCV float64
	PHSD       float64

	// FieldCapacity, WiltingPoint and Saturation are volumetric water
	// contents in m³/m³ (defaults 0.32, 0.12, 0.45: a silt loam).
	FieldCapacity, WiltingPoint, Saturation float64
}

func (p *SoilPlot) defaults() error {
	orDefault(&p.PMg100g, 9)
	orDefault(&p.KMg100g, 18)
	orDefault(&p.PH, 7.2)
	orDefault(&p.NminMgKg, 15)
	orDefault(&p.ECuScm, 250)
	orDefault(&p.LengthScaleM, 40)
	orDefault(&p.NutrientCV, 0.25)
	orDefault(&p.PHSD, 0.25)
	orDefault(&p.FieldCapacity, 0.32)
	orDefault(&p.WiltingPoint, 0.12)
	orDefault(&p.Saturation, 0.45)
	if p.ID == "" {
		return errors.New("soil plot: id is empty")
	}
	for name, v := range map[string]float64{"p": p.PMg100g, "k": p.KMg100g, "nmin": p.NminMgKg, "ec": p.ECuScm,
		"length scale": p.LengthScaleM, "nutrient cv": p.NutrientCV, "ph sd": p.PHSD} {
		if !(v > 0) || math.IsInf(v, 0) {
			return fmt.Errorf("soil plot %s: %s %v must be a positive finite number", p.ID, name, v)
		}
	}
	if !(p.PH >= soil.MinPH && p.PH <= soil.MaxPH) {
		return fmt.Errorf("soil plot %s: pH %v outside %v–%v", p.ID, p.PH, soil.MinPH, soil.MaxPH)
	}
	if !(p.WiltingPoint > 0 && p.WiltingPoint < p.FieldCapacity && p.FieldCapacity < p.Saturation && p.Saturation < 1) {
		return fmt.Errorf("soil plot %s: want 0 < wilting point %v < field capacity %v < saturation %v < 1",
			p.ID, p.WiltingPoint, p.FieldCapacity, p.Saturation)
	}
	if !(p.CentreLat >= -90 && p.CentreLat <= 90 && p.CentreLon >= -180 && p.CentreLon <= 180) {
		return fmt.Errorf("soil plot %s: centre (%v, %v) out of range", p.ID, p.CentreLat, p.CentreLon)
	}
	return nil
}

func orDefault(v *float64, d float64) {
	if *v == 0 {
		*v = d
	}
}

// SoilField is a plot's soil as a smooth random pattern in space: the
// nutrients at each point are the plot's mean times a log-normal factor of
// a Gaussian random field (correlation length LengthScaleM), pH the mean
// plus a field, so an interpolated soil map has structure to find. It is
// read-only after NewSoilField and safe for concurrent use.
type SoilField struct {
	plot                SoilPlot
	proj                soil.Projection
	fP, fK, fN, fPH, fE field2D
	seed                uint64
}

// SoilValues are a point's soil properties without sensor noise.
type SoilValues struct {
	// PMg100g and KMg100g: CAL phosphorus and potassium, element, mg/100 g.
	PMg100g, KMg100g float64
	// PH is the pH, NminMgKg mineral nitrogen in mg/kg.
	PH, NminMgKg float64
	// EC25uScm is the bulk conductivity at field capacity and 25 °C.
	EC25uScm float64
}

// NewSoilField builds the soil pattern of a plot for a simulation seed.
func NewSoilField(seed uint64, plot SoilPlot) (*SoilField, error) {
	if err := plot.defaults(); err != nil {
		return nil, err
	}
	s := SeedOf(seed, "soil/"+plot.ID)
	l := plot.LengthScaleM
	return &SoilField{
		plot: plot,
		proj: soil.Projection{Lon0: plot.CentreLon, Lat0: plot.CentreLat},
		fP:   newField2D(s^1, l),
		fK:   newField2D(s^2, l),
		fN:   newField2D(s^3, l),
		fPH:  newField2D(s^4, 1.5*l),
		fE:   newField2D(s^5, l),
		seed: s,
	}, nil
}

// Plot returns the plot with its defaults filled in.
func (f *SoilField) Plot() SoilPlot { return f.plot }

// logNormal returns mean·exp(cv·z − cv²/2), whose mean over z is mean.
func logNormal(mean, cv, z float64) float64 {
	s := math.Sqrt(math.Log(1 + cv*cv))
	return mean * math.Exp(s*z-s*s/2)
}

// At returns the soil at a point (degrees).
func (f *SoilField) At(lat, lon float64) SoilValues {
	x, y := f.proj.Forward(lon, lat)
	p := f.plot
	return SoilValues{
		PMg100g:  logNormal(p.PMg100g, p.NutrientCV, f.fP.at(x, y)),
		KMg100g:  logNormal(p.KMg100g, p.NutrientCV, f.fK.at(x, y)),
		NminMgKg: logNormal(p.NminMgKg, p.NutrientCV, 0.6*f.fN.at(x, y)+0.4*f.fP.at(x, y)),
		PH:       clamp(p.PH+p.PHSD*f.fPH.at(x, y), soil.MinPH, soil.MaxPH),
		EC25uScm: logNormal(p.ECuScm, 0.15, f.fE.at(x, y)),
	}
}

// Sample returns a laboratory soil sample taken at a point: P and K in
// mg/100 g as the element, rounded to 0.1, pH to 0.01, as soil.Sample (the
// soil-map input). Laboratory error is 3 % for P and K and 0.03 for pH.
func (f *SoilField) Sample(lat, lon float64) soil.Sample {
	v := f.At(lat, lon)
	k := int64(math.Float64bits(lat) ^ math.Float64bits(lon)*31)
	return soil.Sample{
		Lat: lat, Lon: lon,
		P:  round(v.PMg100g*(1+0.03*gauss(f.seed, stSoilNoise, 3*k)), 0.1),
		K:  round(v.KMg100g*(1+0.03*gauss(f.seed, stSoilNoise, 3*k+1)), 0.1),
		PH: round(v.PH+0.03*gauss(f.seed, stSoilNoise, 3*k+2), 0.01),
	}
}

// SoilProbeConfig configures a soil probe (a LoRaWAN soil sensor).
type SoilProbeConfig struct {
	// ID names the probe; it seeds the sensor noise.
	ID string
	// Lat and Lon are the probe's position in degrees.
	Lat, Lon float64
	// DepthM is the sensor's depth (default 0.3 m).
	DepthM float64
	// Start anchors the hourly water balance: it starts from field
	// capacity 30 days before Start, so the state at Start has forgotten
	// its beginning.
	Start time.Time
}

// SoilState is a probe's soil without sensor noise.
type SoilState struct {
	Time time.Time
	// MoistureVol is the volumetric water content in m³/m³.
	MoistureVol float64
	// TempC is the soil temperature at the sensor's depth in °C.
	TempC float64
	// ECuScm is the bulk electrical conductivity in µS/cm.
	ECuScm float64
	// NMgKg, PMgKg and KMgKg are nitrogen (mineral), phosphorus and
	// potassium in mg/kg (the element); PH is the pH.
	NMgKg, PMgKg, KMgKg, PH float64
}

// SoilReading is what a probe reports, with sensor noise and at the
// sensor's resolution: moisture in % volume (0.1), temperature in °C (0.1),
// EC in µS/cm (1), N, P, K in mg/kg (1), pH (0.01).
type SoilReading struct {
	Time        time.Time
	MoisturePct float64
	TempC       float64
	ECuScm      float64
	NMgKg       float64
	PMgKg       float64
	KMgKg       float64
	PH          float64
}

// SoilProbe simulates one probe: an hourly bucket water balance driven by
// the weather's rain and evapotranspiration, a soil temperature lagging the
// air, and the plot's nutrients at the probe's position with slow seasonal
// change. A SoilProbe is not safe for concurrent use.
type SoilProbe struct {
	cfg     SoilProbeConfig
	w       *Weather
	field   *SoilField
	base    SoilValues
	seed    uint64
	layerMM float64
	tau     float64 // soil temperature lag, hours
	origin  int64   // first hour of the water balance

	// State at the start of hour h (hours since the epoch).
	h     int64
	theta float64
	ts    float64
}

// Bucket-model constants: crop coefficient of a vineyard with cover crop
// (FAO-56 Table 12 gives 0.7–0.85 for grapes in mid-season; 0.7 used), the
// depletion fraction before stress (FAO-56 Table 22 gives 0.35–0.45 for
// grapes) and the drainage time constant above field capacity (estimate).
const (
	cropKc       = 0.7
	depletionP   = 0.45
	drainageTauH = 48.0
	spinUpHours  = 30 * 24
)

// NewSoilProbe returns a probe in field, driven by w.
func NewSoilProbe(seed uint64, w *Weather, field *SoilField, cfg SoilProbeConfig) (*SoilProbe, error) {
	if w == nil || field == nil {
		return nil, errors.New("soil probe: weather and field are required")
	}
	if cfg.ID == "" {
		return nil, errors.New("soil probe: id is empty")
	}
	orDefault(&cfg.DepthM, 0.3)
	if !(cfg.DepthM > 0 && cfg.DepthM <= 2) {
		return nil, fmt.Errorf("soil probe %s: depth %v m outside 0–2 m", cfg.ID, cfg.DepthM)
	}
	if cfg.Start.IsZero() {
		return nil, fmt.Errorf("soil probe %s: start is missing", cfg.ID)
	}
	p := &SoilProbe{
		cfg:     cfg,
		w:       w,
		field:   field,
		base:    field.At(cfg.Lat, cfg.Lon),
		seed:    SeedOf(seed, "probe/"+cfg.ID),
		layerMM: math.Max(200, 1500*cfg.DepthM),
		tau:     12 + 90*cfg.DepthM,
		origin:  hourOf(cfg.Start) - spinUpHours,
	}
	p.reset()
	return p, nil
}

func hourOf(t time.Time) int64 { return int64(math.Floor(float64(t.Unix()) / 3600)) }

func (p *SoilProbe) reset() {
	p.h = p.origin
	p.theta = p.field.plot.FieldCapacity
	p.ts = p.w.DailyMeanC(time.Unix(p.origin*3600, 0)) + 1
}

// step advances the water balance and soil temperature by one hour.
func (p *SoilProbe) step() {
	pl := &p.field.plot
	hs := time.Unix(p.h*3600, 0)
	c := p.w.At(hs.Add(30 * time.Minute))
	rain := p.w.RainMM(hs, hs.Add(time.Hour))
	// Infiltration up to saturation; the rest runs off.
	p.theta = math.Min(pl.Saturation, p.theta+rain/p.layerMM)
	// Drainage above field capacity.
	if p.theta > pl.FieldCapacity {
		p.theta -= (p.theta - pl.FieldCapacity) * (1 - math.Exp(-1/drainageTauH))
	}
	// Evapotranspiration: Hargreaves (1975) radiation form,
	// ET0 = 0.0135·(T + 17.8)·Rs with Rs in mm of evaporation
	// (MJ/m² × 0.408), per hour; a vineyard's crop coefficient; water
	// stress below the readily available water (FAO-56 eq. 84).
	rs := c.GHIWm2 * 3600 / 1e6 * 0.408
	et0 := math.Max(0, 0.0135*(c.TempC+17.8)*rs)
	taw := pl.FieldCapacity - pl.WiltingPoint
	ks := clamp((p.theta-pl.WiltingPoint)/((1-depletionP)*taw), 0, 1)
	p.theta = math.Max(pl.WiltingPoint*0.8, p.theta-cropKc*ks*et0/p.layerMM)
	// Soil temperature: a first-order lag of the air temperature (time
	// constant 12 h + 90 h per metre of depth, an estimate), 1 K warmer.
	target := c.TempC + 1
	p.ts = target + (p.ts-target)*math.Exp(-1/p.tau)
	p.h++
}

// advance brings the state to the start of hour h.
func (p *SoilProbe) advance(h int64) {
	if h < p.h {
		p.reset()
	}
	for p.h < h {
		p.step()
	}
}

// State returns the probe's soil at t without sensor noise: the water
// content and soil temperature interpolated between the hourly states
// around t, the nutrients at the probe's position with their seasonal
// change.
func (p *SoilProbe) State(t time.Time) SoilState {
	h := hourOf(t)
	if h < p.origin {
		h = p.origin
	}
	p.advance(h)
	// Interpolate towards the next hour's state, then restore this hour's.
	th0, ts0 := p.theta, p.ts
	p.step()
	th1, ts1 := p.theta, p.ts
	p.h--
	p.theta, p.ts = th0, ts0
	f := clamp(float64(t.UnixNano()-h*3600e9)/3600e9, 0, 1)
	theta := th0 + (th1-th0)*f
	ts := ts0 + (ts1-ts0)*f

	pl := &p.field.plot
	b := p.base
	doy := float64(t.In(Berlin).YearDay())
	season := math.Cos(2 * math.Pi * (doy - 200) / 365.25) // +1 in July
	// Mineral N peaks with mineralisation in late spring and falls after
	// leaching in winter; P and K dip slightly with summer uptake; pH moves
	// a little with the season (estimates).
	nmin := b.NminMgKg * (1 + 0.5*math.Cos(2*math.Pi*(doy-150)/365.25))
	pp := b.PMg100g * 10 * (1 - 0.03*season)
	kk := b.KMg100g * 10 * (1 - 0.04*season)
	ph := b.PH - 0.05*season
	ec := b.EC25uScm * math.Pow(theta/pl.FieldCapacity, 1.5) * (1 + 0.019*(ts-25)) * (1 + 0.1*math.Cos(2*math.Pi*(doy-120)/365.25))
	return SoilState{Time: t, MoistureVol: theta, TempC: ts, ECuScm: math.Max(0, ec), NMgKg: nmin, PMgKg: pp, KMgKg: kk, PH: ph}
}

// Reading returns what the probe reports at t: State plus sensor noise
// (moisture ±0.5 % vol, temperature ±0.1 K, EC ±3 %, N, P and K ±5 %, pH
// ±0.05, one standard deviation; estimates for low-cost probes), rounded to
// the sensor's resolution.
func (p *SoilProbe) Reading(t time.Time) SoilReading {
	s := p.State(t)
	k := t.Unix() * 8
	g := func(i int64) float64 { return gauss(p.seed, stSoilNoise, k+i) }
	return SoilReading{
		Time:        t,
		MoisturePct: round(clamp(100*s.MoistureVol+0.5*g(0), 0, 100), 0.1),
		TempC:       round(s.TempC+0.1*g(1), 0.1),
		ECuScm:      math.Max(0, round(s.ECuScm*(1+0.03*g(2)), 1)),
		NMgKg:       math.Max(0, round(s.NMgKg*(1+0.05*g(3)), 1)),
		PMgKg:       math.Max(0, round(s.PMgKg*(1+0.05*g(4)), 1)),
		KMgKg:       math.Max(0, round(s.KMgKg*(1+0.05*g(5)), 1)),
		PH:          round(clamp(s.PH+0.05*g(6), 0, 14), 0.01),
	}
}
