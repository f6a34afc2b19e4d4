package energy

import (
	"fmt"
	"io"
	"math"
	"sort"
)

// EnergyMix is the split of a carrier's energy into fossil, nuclear and
// renewable sources (fractions summing to 1), as ESRS E1-5 reports it.
type EnergyMix struct {
	Fossil    float64 `yaml:"fossil" json:"fossil"`
	Nuclear   float64 `yaml:"nuclear" json:"nuclear"`
	Renewable float64 `yaml:"renewable" json:"renewable"`
}

// Contract is a contractual instrument for the market-based Scope 2 method
// (GHG Protocol Scope 2 Guidance): Kind is "certificate" (guarantee of
// origin, REC), "ppa" (direct contract) or "supplier" (supplier-specific
// factor). Instruments are applied in that order, then the residual mix,
// then (with a note) the location-based factor.
type Contract struct {
	Name    string  `yaml:"name" json:"name"`
	Carrier Carrier `yaml:"carrier" json:"carrier"`
	Kind    string  `yaml:"kind" json:"kind"`
	// Factor is the instrument's emission factor in g CO2(e)/kWh.
	Factor float64 `yaml:"factor" json:"factor"`
	// MWh is the volume covered; zero covers all remaining consumption.
	MWh float64 `yaml:"mwh" json:"mwh"`
	// Renewable marks the covered energy as renewable in the ESRS mix.
	Renewable bool `yaml:"renewable" json:"renewable"`
}

// FactorSet holds emission factors in g CO2 (or CO2e, per Basis) per kWh by
// carrier and year, residual-mix factors, energy mixes and contracts.
type FactorSet struct {
	Name      string                      `yaml:"name" json:"name"`
	Basis     string                      `yaml:"basis" json:"basis"`
	Source    string                      `yaml:"source" json:"source"`
	Defaults  string                      `yaml:"defaults" json:"-"`
	Location  map[Carrier]map[int]float64 `yaml:"location" json:"location"`
	Residual  map[Carrier]map[int]float64 `yaml:"residual" json:"residual,omitempty"`
	Mix       map[Carrier]EnergyMix       `yaml:"mix" json:"mix,omitempty"`
	Contracts []Contract                  `yaml:"contracts" json:"contracts,omitempty"`
}

// UBAFactors returns the Umweltbundesamt's CO2 emission factors of the
// German electricity mix (direct CO2 per kWh of electricity consumption, no
// upstream chain), g/kWh: 2024 363 (UBA estimate), 2023 380, 2019 401
// (estimate), 2018 468 (preliminary), 2017 485. See docs/models/energy.md for
// which values were confirmed and where.
func UBAFactors() FactorSet {
	return FactorSet{
		Name:   "uba-strommix",
		Basis:  "direct CO2 per kWh of electricity consumption (UBA), no upstream chain",
		Source: "Umweltbundesamt, Entwicklung der spezifischen Treibhausgas-Emissionen des deutschen Strommix 1990-2024",
		Location: map[Carrier]map[int]float64{
			Electricity: {2017: 485, 2018: 468, 2019: 401, 2023: 380, 2024: 363},
		},
	}
}

// GEGFactors returns the emission factors of GEG 2020 Anlage 9 in
// g CO2-equivalent per kWh, including upstream chains: grid electricity 560,
// natural gas 240, heating oil 310, LPG 270, district heating from gas CHP
// (≥ 70 % CHP) 180. They hold for every year and must not be mixed with UBA
// factors in one report.
func GEGFactors() FactorSet {
	all := func(v float64) map[int]float64 { return map[int]float64{0: v} }
	return FactorSet{
		Name:   "geg-2020-anlage-9",
		Basis:  "CO2-equivalent per kWh including upstream chains (GEG 2020 Anlage 9)",
		Source: "Gebäudeenergiegesetz 2020, Anlage 9",
		Location: map[Carrier]map[int]float64{
			Electricity: all(560), NaturalGas: all(240), "heating_oil": all(310), "lpg": all(270),
			Heat: all(180), "biogas": all(140), "wood": all(20),
		},
	}
}

// ReadFactorsYAML reads a factor file. "defaults: uba" or "defaults: geg"
// starts from UBAFactors or GEGFactors; the file's entries override them.
func ReadFactorsYAML(r io.Reader) (FactorSet, error) {
	var f FactorSet
	if err := decodeYAML(r, "factors yaml", &f); err != nil {
		return f, err
	}
	var base FactorSet
	switch f.Defaults {
	case "":
	case "uba":
		base = UBAFactors()
	case "geg":
		base = GEGFactors()
	default:
		return f, fmt.Errorf("factors yaml: defaults %q: want uba or geg", f.Defaults)
	}
	if f.Defaults != "" {
		if f.Name == "" {
			f.Name = base.Name
		}
		if f.Basis == "" {
			f.Basis = base.Basis
		}
		if f.Source == "" {
			f.Source = base.Source
		}
		for c, years := range base.Location {
			if f.Location == nil {
				f.Location = map[Carrier]map[int]float64{}
			}
			if f.Location[c] == nil {
				f.Location[c] = map[int]float64{}
			}
			for y, v := range years {
				if _, set := f.Location[c][y]; !set {
					f.Location[c][y] = v
				}
			}
		}
	}
	if err := f.Check(); err != nil {
		return f, err
	}
	return f, nil
}

// Check validates factors, mixes and contracts.
func (f *FactorSet) Check() error {
	for c, years := range f.Location {
		for y, v := range years {
			if !(v >= 0) || math.IsInf(v, 0) {
				return fmt.Errorf("factors: location %s %d: %v is not a non-negative number", c, y, v)
			}
		}
	}
	for c, years := range f.Residual {
		for y, v := range years {
			if !(v >= 0) || math.IsInf(v, 0) {
				return fmt.Errorf("factors: residual %s %d: %v is not a non-negative number", c, y, v)
			}
		}
	}
	for c, m := range f.Mix {
		if !finiteNonNegative(m.Fossil) || !finiteNonNegative(m.Nuclear) || !finiteNonNegative(m.Renewable) || !(math.Abs(m.Fossil+m.Nuclear+m.Renewable-1) <= 1e-6) {
			return fmt.Errorf("factors: mix %s: fossil, nuclear and renewable must be non-negative and sum to 1", c)
		}
	}
	for i, c := range f.Contracts {
		if c.Carrier == "" {
			return fmt.Errorf("factors: contract %d (%s): carrier is empty", i+1, c.Name)
		}
		if kindRank(c.Kind) == 0 {
			return fmt.Errorf("factors: contract %d (%s): kind %q: want certificate, ppa or supplier", i+1, c.Name, c.Kind)
		}
		if !finiteNonNegative(c.Factor) || !finiteNonNegative(c.MWh) {
			return fmt.Errorf("factors: contract %d (%s): factor %v and mwh %v must be finite non-negative numbers", i+1, c.Name, c.Factor, c.MWh)
		}
	}
	return nil
}

func kindRank(k string) int {
	switch k {
	case "certificate":
		return 1
	case "ppa":
		return 2
	case "supplier":
		return 3
	}
	return 0
}

// factor returns the factor for carrier c in year y: that year's, else the
// latest earlier year's (noted), else a year-independent entry (key 0).
func factorFor(table map[Carrier]map[int]float64, c Carrier, y int) (float64, int, bool) {
	years := table[c]
	if v, ok := years[y]; ok {
		return v, y, true
	}
	best := -1
	for yy := range years {
		if yy != 0 && yy < y && yy > best {
			best = yy
		}
	}
	if best > 0 {
		return years[best], best, true
	}
	if v, ok := years[0]; ok {
		return v, 0, true
	}
	return 0, 0, false
}

// scope2 carriers are purchased energy (GHG Protocol Scope 2: electricity,
// steam, heat and cooling); other carriers with factors are fuels burned on
// site (Scope 1).
var scope2 = map[Carrier]bool{Electricity: true, Heat: true, Cooling: true, "steam": true}

// fuelMix gives the ESRS E1-5 class of fuels.
var fuelMix = map[Carrier]EnergyMix{
	NaturalGas: {Fossil: 1}, "heating_oil": {Fossil: 1}, "lpg": {Fossil: 1}, "coal": {Fossil: 1},
	"biogas": {Renewable: 1}, "wood": {Renewable: 1},
}

// CarrierUse is consumption of one carrier in kWh.
type CarrierUse struct {
	Carrier Carrier `json:"carrier"`
	KWh     float64 `json:"kwh"`
}

// CarrierESG is the ESG result for one carrier.
type CarrierESG struct {
	Carrier        Carrier `json:"carrier"`
	MWh            float64 `json:"mwh"`
	Scope          int     `json:"scope"`
	LocationFactor float64 `json:"location_factor_g_per_kwh"`
	LocationT      float64 `json:"location_based_t"`
	MarketT        float64 `json:"market_based_t"`
	FossilMWh      float64 `json:"fossil_mwh"`
	NuclearMWh     float64 `json:"nuclear_mwh"`
	RenewableMWh   float64 `json:"renewable_mwh"`
	UnclassMWh     float64 `json:"unclassified_mwh,omitempty"`
}

// ESGReport holds energy by carrier, Scope 1/2 CO2 and the ESRS E1-5 mix.
type ESGReport struct {
	Year      int          `json:"year"`
	Basis     string       `json:"basis"`
	Source    string       `json:"source"`
	Carriers  []CarrierESG `json:"carriers"`
	TotalMWh  float64      `json:"total_energy_mwh"`
	Fossil    float64      `json:"fossil_mwh"`
	Nuclear   float64      `json:"nuclear_mwh"`
	Renewable float64      `json:"renewable_mwh"`
	// Unclassified is energy whose source mix was not given.
	Unclassified   float64 `json:"unclassified_mwh"`
	RenewableShare float64 `json:"renewable_share"`
	Scope1T        float64 `json:"scope1_t"`
	Scope2LocT     float64 `json:"scope2_location_based_t"`
	Scope2MktT     float64 `json:"scope2_market_based_t"`
	// IntensityMWhPerMEUR is total energy per million of net revenue
	// (ESRS E1-5 §40); nil when no revenue was given.
	IntensityMWhPerMEUR *float64 `json:"energy_intensity_mwh_per_million_revenue,omitempty"`
	Notes               []string `json:"notes,omitempty"`
}

// ESG computes the report for consumption uses in year with factors f.
// netRevenue is in currency units (nil or ≤ 0 for none). Water and other
// carriers without energy meaning are skipped with a note.
func ESG(uses []CarrierUse, f FactorSet, year int, netRevenue *float64) (ESGReport, error) {
	if err := f.Check(); err != nil {
		return ESGReport{}, err
	}
	rep := ESGReport{Year: year, Basis: f.Basis, Source: f.Source, Carriers: []CarrierESG{}}
	total := map[Carrier]float64{}
	for _, u := range uses {
		if !(u.KWh >= 0) || math.IsInf(u.KWh, 0) {
			return rep, fmt.Errorf("esg: carrier %s: consumption %v kWh is not a non-negative number", u.Carrier, u.KWh)
		}
		total[u.Carrier] += u.KWh
		if math.IsInf(total[u.Carrier], 0) {
			return rep, fmt.Errorf("esg: carrier %s: total consumption overflows", u.Carrier)
		}
	}
	cs := make([]Carrier, 0, len(total))
	for c := range total {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i] < cs[j] })
	contracts := append([]Contract(nil), f.Contracts...)
	sort.SliceStable(contracts, func(i, j int) bool { return kindRank(contracts[i].Kind) < kindRank(contracts[j].Kind) })
	for _, c := range cs {
		kwh := total[c]
		if c == Water || c == ElectricityFeed {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s is not energy consumption; left out", c))
			continue
		}
		fac, fy, ok := factorFor(f.Location, c, year)
		if !ok {
			return rep, fmt.Errorf("esg: no location-based factor for %s in %d in factor set %s", c, year, f.Name)
		}
		if fy != year && fy != 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: no factor for %d; used %d's", c, year, fy))
		}
		ce := CarrierESG{Carrier: c, MWh: kwh / 1000, LocationFactor: fac, LocationT: kwh * fac / 1e6, Scope: 1}
		if scope2[c] {
			ce.Scope = 2
		}
		mix, haveMix := f.Mix[c]
		if !haveMix {
			mix, haveMix = fuelMix[c]
		}
		// Market-based: instruments in order, then residual mix, then grid.
		left := kwh
		var market float64
		var renewableKWh float64
		for _, k := range contracts {
			if k.Carrier != c || left <= 0 {
				continue
			}
			cover := left
			if k.MWh > 0 && k.MWh*1000 < cover {
				cover = k.MWh * 1000
			}
			market += cover * k.Factor
			if k.Renewable {
				renewableKWh += cover
			}
			left -= cover
		}
		if left > 0 {
			if rf, ry, ok := factorFor(f.Residual, c, year); ok {
				market += left * rf
				if ry != year && ry != 0 {
					rep.Notes = append(rep.Notes, fmt.Sprintf("%s: no residual mix for %d; used %d's", c, year, ry))
				}
			} else {
				market += left * fac
				if ce.Scope == 2 {
					rep.Notes = append(rep.Notes, fmt.Sprintf("%s: no residual-mix factor; market-based uses the location-based factor for %.3f MWh not covered by instruments (GHG Protocol Scope 2 hierarchy: last resort)", c, left/1000))
				}
			}
		}
		ce.MarketT = market / 1e6
		if ce.Scope == 1 {
			ce.MarketT = ce.LocationT
		}
		rest := kwh - renewableKWh
		ce.RenewableMWh = renewableKWh / 1000
		if haveMix {
			ce.FossilMWh = rest * mix.Fossil / 1000
			ce.NuclearMWh = rest * mix.Nuclear / 1000
			ce.RenewableMWh += rest * mix.Renewable / 1000
		} else if rest > 0 {
			ce.UnclassMWh = rest / 1000
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: no energy mix given; %.3f MWh unclassified in the ESRS E1-5 mix", c, rest/1000))
		}
		rep.Carriers = append(rep.Carriers, ce)
		rep.TotalMWh += ce.MWh
		rep.Fossil += ce.FossilMWh
		rep.Nuclear += ce.NuclearMWh
		rep.Renewable += ce.RenewableMWh
		rep.Unclassified += ce.UnclassMWh
		if ce.Scope == 2 {
			rep.Scope2LocT += ce.LocationT
			rep.Scope2MktT += ce.MarketT
		} else {
			rep.Scope1T += ce.LocationT
		}
	}
	if rep.TotalMWh > 0 {
		rep.RenewableShare = rep.Renewable / rep.TotalMWh
	}
	if netRevenue != nil && *netRevenue > 0 {
		v := rep.TotalMWh / (*netRevenue / 1e6)
		rep.IntensityMWhPerMEUR = &v
	}
	return rep, nil
}

// UsesFromSeries sums each site meter's consumption (Total × Factor) per
// carrier in kWh. Series of registers not in the site are skipped, and so are
// sub-meters of a shared main meter (their consumption is inside the main's).
func UsesFromSeries(series []Series, site Site) ([]CarrierUse, error) {
	if err := site.Check(); err != nil {
		return nil, err
	}
	sub := map[string]bool{}
	for _, a := range site.Shared {
		for _, m := range a.SubMeters {
			sub[m] = true
		}
	}
	byKey := map[string]Meter{}
	for _, m := range site.Meters {
		if sub[m.ID] {
			continue
		}
		byKey[m.ID+"/"+m.Register().OBIS.String()] = m
	}
	sums := map[Carrier]float64{}
	for _, s := range series {
		m, ok := byKey[s.Meter+"/"+s.OBIS]
		if !ok {
			continue
		}
		sums[m.Carrier] += s.Total * m.factor()
	}
	out := make([]CarrierUse, 0, len(sums))
	for c, v := range sums {
		out = append(out, CarrierUse{Carrier: c, KWh: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Carrier < out[j].Carrier })
	return out, nil
}
