package energy

import (
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Site describes a building or campus: its meters, its tenants and how
// shared meters are allocated.
type Site struct {
	Name    string       `yaml:"name" json:"name"`
	Meters  []Meter      `yaml:"meters" json:"meters"`
	Tenants []Tenant     `yaml:"tenants" json:"tenants"`
	Shared  []Allocation `yaml:"shared" json:"shared,omitempty"`
}

// Meter is a meter on the site: its billed register (OBIS) and, for a
// multi-register meter, its further registers (Registers).
type Meter struct {
	ID      string  `yaml:"id" json:"id"`
	OBIS    string  `yaml:"obis" json:"obis"`
	Carrier Carrier `yaml:"carrier" json:"carrier"`
	// Max is the register's wrap value (10^digits); zero: never wraps.
	Max float64 `yaml:"max" json:"max,omitempty"`
	// Digits is the register width in whole digits; when set, Max is
	// 10^Digits (give one of the two).
	Digits int `yaml:"digits" json:"digits,omitempty"`
	// MaxRate is the largest possible consumption per hour; zero: unchecked.
	MaxRate float64 `yaml:"max_rate" json:"max_rate,omitempty"`
	// Factor converts register units to billing and energy units, e.g.
	// Zustandszahl × Brennwert in kWh/m³ for a gas meter. Zero means 1.
	Factor    float64    `yaml:"factor" json:"factor,omitempty"`
	Exchanges []Exchange `yaml:"exchanges" json:"exchanges,omitempty"`
	// Registers are the meter's further registers, read but not billed:
	// a main electricity meter's tariff registers (1-0:1.8.1, 1-0:1.8.2),
	// its export (1-0:2.8.0) and power (1-0:1.7.0), a gas meter's second
	// volume. Their readings are known to the site (not "unknown"), their
	// wrap values and exchanges are theirs.
	Registers []MeterRegister `yaml:"registers" json:"registers,omitempty"`

	obis OBIS
}

// MeterRegister is a further register of a multi-register meter.
type MeterRegister struct {
	OBIS string `yaml:"obis" json:"obis"`
	// Max and Digits: the register's wrap value, as for Meter.
	Max       float64    `yaml:"max" json:"max,omitempty"`
	Digits    int        `yaml:"digits" json:"digits,omitempty"`
	Exchanges []Exchange `yaml:"exchanges" json:"exchanges,omitempty"`

	obis OBIS
}

// Tenant is a user of the site with a usable area and directly metered
// registers.
type Tenant struct {
	ID     string   `yaml:"id" json:"id"`
	Name   string   `yaml:"name" json:"name"`
	AreaM2 float64  `yaml:"area_m2" json:"area_m2"`
	Meters []string `yaml:"meters" json:"meters"`
}

// Allocation splits a shared main meter: the main meter's consumption minus
// its sub-meters' is divided among Tenants by area (m²). A negative remainder
// is reported and allocates nothing.
type Allocation struct {
	Meter     string   `yaml:"meter" json:"meter"`
	SubMeters []string `yaml:"sub_meters" json:"sub_meters"`
	Tenants   []string `yaml:"tenants" json:"tenants"`
	// Areas gives a tenant's area served by this meter (e.g. its area in
	// the meter's building), by tenant id; a tenant not in it counts with
	// its whole AreaM2.
	Areas map[string]float64 `yaml:"areas" json:"areas,omitempty"`
}

// area returns tenant t's area in the allocation.
func (a Allocation) area(t *Tenant) float64 {
	if v, ok := a.Areas[t.ID]; ok {
		return v
	}
	return t.AreaM2
}

// ReadSiteYAML reads and checks a site (meters and tenants) file.
func ReadSiteYAML(r io.Reader) (Site, error) {
	var s Site
	if err := decodeYAML(r, "site yaml", &s); err != nil {
		return s, err
	}
	if err := s.Check(); err != nil {
		return s, err
	}
	return s, nil
}

// Check validates the site: unique meter and tenant IDs, parseable OBIS
// codes, known references and positive areas where an area key needs them.
func (s *Site) Check() error {
	meters := map[string]bool{}
	for i := range s.Meters {
		m := &s.Meters[i]
		if m.ID == "" {
			return fmt.Errorf("site: meter %d: id is empty", i+1)
		}
		if meters[m.ID] {
			return fmt.Errorf("site: meter %s listed twice", m.ID)
		}
		meters[m.ID] = true
		o, err := ParseOBIS(m.OBIS)
		if err != nil {
			return fmt.Errorf("site: meter %s: %w", m.ID, err)
		}
		m.obis = o
		if m.Carrier == "" {
			m.Carrier = o.DefaultCarrier()
		}
		if m.Carrier == "" {
			return fmt.Errorf("site: meter %s: carrier is empty and OBIS %s implies none", m.ID, o)
		}
		if m.Digits < 0 || m.Digits > 15 || (m.Digits > 0 && m.Max > 0 && m.Max != math.Pow10(m.Digits)) {
			return fmt.Errorf("site: meter %s: digits %d must be 1..15 and agree with max %v", m.ID, m.Digits, m.Max)
		}
		if m.Digits > 0 {
			m.Max = math.Pow10(m.Digits)
		}
		if !finiteNonNegative(m.Max) || !finiteNonNegative(m.MaxRate) || !finiteNonNegative(m.Factor) {
			return fmt.Errorf("site: meter %s: max %v, max_rate %v and factor %v must be finite non-negative numbers", m.ID, m.Max, m.MaxRate, m.Factor)
		}
		seen := map[OBIS]bool{o: true}
		for j := range m.Registers {
			r := &m.Registers[j]
			ro, err := ParseOBIS(r.OBIS)
			if err != nil {
				return fmt.Errorf("site: meter %s: register %d: %w", m.ID, j+1, err)
			}
			if seen[ro] {
				return fmt.Errorf("site: meter %s: register %s listed twice", m.ID, ro)
			}
			seen[ro] = true
			r.obis = ro
			if r.Digits < 0 || r.Digits > 15 || (r.Digits > 0 && r.Max > 0 && r.Max != math.Pow10(r.Digits)) || !finiteNonNegative(r.Max) {
				return fmt.Errorf("site: meter %s: register %s: digits %d must be 1..15 and agree with max %v", m.ID, ro, r.Digits, r.Max)
			}
			if r.Digits > 0 {
				r.Max = math.Pow10(r.Digits)
			}
		}
	}
	tenants := map[string]*Tenant{}
	owner := map[string]string{}
	for i := range s.Tenants {
		t := &s.Tenants[i]
		if t.ID == "" {
			return fmt.Errorf("site: tenant %d: id is empty", i+1)
		}
		if tenants[t.ID] != nil {
			return fmt.Errorf("site: tenant %s listed twice", t.ID)
		}
		tenants[t.ID] = t
		if !finiteNonNegative(t.AreaM2) {
			return fmt.Errorf("site: tenant %s: area_m2 %v is not a finite non-negative number", t.ID, t.AreaM2)
		}
		for _, m := range t.Meters {
			if !meters[m] {
				return fmt.Errorf("site: tenant %s: meter %s is not in meters", t.ID, m)
			}
			if o, dup := owner[m]; dup {
				return fmt.Errorf("site: meter %s belongs to tenants %s and %s", m, o, t.ID)
			}
			owner[m] = t.ID
		}
	}
	for i, a := range s.Shared {
		if !meters[a.Meter] {
			return fmt.Errorf("site: shared %d: meter %q is not in meters", i+1, a.Meter)
		}
		for _, m := range a.SubMeters {
			if !meters[m] {
				return fmt.Errorf("site: shared %s: sub-meter %s is not in meters", a.Meter, m)
			}
			if s.meter(m).Carrier != s.meter(a.Meter).Carrier {
				return fmt.Errorf("site: shared %s: sub-meter %s has carrier %s, not %s", a.Meter, m, s.meter(m).Carrier, s.meter(a.Meter).Carrier)
			}
		}
		if len(a.Tenants) == 0 {
			return fmt.Errorf("site: shared %s: no tenants", a.Meter)
		}
		var area float64
		for _, t := range a.Tenants {
			tt := tenants[t]
			if tt == nil {
				return fmt.Errorf("site: shared %s: tenant %s is not in tenants", a.Meter, t)
			}
			area += a.area(tt)
		}
		for id, v := range a.Areas {
			if !slices.Contains(a.Tenants, id) || !finiteNonNegative(v) {
				return fmt.Errorf("site: shared %s: area of %s: not one of its tenants or not a finite non-negative number (%v)", a.Meter, id, v)
			}
		}
		if area <= 0 || math.IsInf(area, 0) {
			return fmt.Errorf("site: shared %s: the tenants' total area is zero or not finite (%v)", a.Meter, area)
		}
	}
	return nil
}

func (s *Site) meter(id string) *Meter {
	for i := range s.Meters {
		if s.Meters[i].ID == id {
			return &s.Meters[i]
		}
	}
	return nil
}

func (s *Site) tenant(id string) *Tenant {
	for i := range s.Tenants {
		if s.Tenants[i].ID == id {
			return &s.Tenants[i]
		}
	}
	return nil
}

// Register returns the register description of meter m.
func (m Meter) Register() Register {
	o := m.obis
	if o == (OBIS{}) {
		o, _ = ParseOBIS(m.OBIS)
	}
	return Register{Meter: m.ID, OBIS: o, Max: m.Max, MaxRate: m.MaxRate, Exchanges: m.Exchanges}
}

func (m Meter) factor() float64 {
	if m.Factor == 0 {
		return 1
	}
	return m.Factor
}

// Registers returns the register descriptions of all site meters by key:
// each meter's billed register and its further registers.
func (s *Site) Registers() map[RegisterKey]Register {
	out := make(map[RegisterKey]Register, len(s.Meters))
	for _, m := range s.Meters {
		r := m.Register()
		out[RegisterKey{r.Meter, r.OBIS}] = r
		for _, x := range m.Registers {
			o := x.obis
			if o == (OBIS{}) {
				o, _ = ParseOBIS(x.OBIS)
			}
			out[RegisterKey{m.ID, o}] = Register{Meter: m.ID, OBIS: o, Max: x.Max, Exchanges: x.Exchanges}
		}
	}
	return out
}

// billedRegisters returns the keys of the meters' billed registers.
func (s *Site) billedRegisters() map[RegisterKey]bool {
	out := make(map[RegisterKey]bool, len(s.Meters))
	for _, m := range s.Meters {
		r := m.Register()
		out[RegisterKey{r.Meter, r.OBIS}] = true
	}
	return out
}

// calendarDays returns the number of calendar days from the date of from to
// the date of to, both read in loc (so a DST day counts as one day).
func calendarDays(from, to time.Time, loc *time.Location) int {
	f := from.In(loc)
	t := to.In(loc)
	fd := time.Date(f.Year(), f.Month(), f.Day(), 0, 0, 0, 0, time.UTC)
	td := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	return int(td.Sub(fd).Hours() / 24)
}
