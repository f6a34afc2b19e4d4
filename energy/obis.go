package energy

import (
	"fmt"
	"strconv"
	"strings"
)

// OBIS is an OBIS code (IEC 62056-61) of the form A-B:C.D.E*F. A is the
// medium (1 electricity, 5 cooling, 6 heat, 7 gas, 8 cold water, 9 hot
// water), B the channel, C the measured quantity, D the processing, E the
// tariff and F the billing period (255 means the current value).
type OBIS struct {
	A, B, C, D, E, F uint8
}

// ParseOBIS parses an OBIS code. It accepts the full form "1-0:1.8.0*255",
// the form without F ("1-0:1.8.0", F is then 255) and the short form without
// A-B ("1.8.0", taken as electricity channel 0).
func ParseOBIS(s string) (OBIS, error) {
	var o OBIS
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return o, fmt.Errorf("obis: empty code")
	}
	o.F = 255
	if i := strings.IndexAny(s, "*&"); i >= 0 {
		f, err := obisGroup(s[i+1:], "F")
		if err != nil {
			return OBIS{}, fmt.Errorf("obis %q: %w", orig, err)
		}
		o.F = f
		s = s[:i]
	}
	o.A, o.B = 1, 0
	if i := strings.IndexByte(s, ':'); i >= 0 {
		ab := s[:i]
		s = s[i+1:]
		j := strings.IndexByte(ab, '-')
		if j < 0 {
			return OBIS{}, fmt.Errorf("obis %q: want A-B before ':'", orig)
		}
		var err error
		if o.A, err = obisGroup(ab[:j], "A"); err != nil {
			return OBIS{}, fmt.Errorf("obis %q: %w", orig, err)
		}
		if o.B, err = obisGroup(ab[j+1:], "B"); err != nil {
			return OBIS{}, fmt.Errorf("obis %q: %w", orig, err)
		}
		if o.A > 15 {
			return OBIS{}, fmt.Errorf("obis %q: medium A=%d is not 0..15", orig, o.A)
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return OBIS{}, fmt.Errorf("obis %q: want C.D.E", orig)
	}
	var err error
	if o.C, err = obisGroup(parts[0], "C"); err != nil {
		return OBIS{}, fmt.Errorf("obis %q: %w", orig, err)
	}
	if o.D, err = obisGroup(parts[1], "D"); err != nil {
		return OBIS{}, fmt.Errorf("obis %q: %w", orig, err)
	}
	if o.E, err = obisGroup(parts[2], "E"); err != nil {
		return OBIS{}, fmt.Errorf("obis %q: %w", orig, err)
	}
	return o, nil
}

func obisGroup(s, name string) (uint8, error) {
	if s == "" {
		return 0, fmt.Errorf("group %s is empty", name)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("group %s %q is not a number", name, s)
		}
	}
	v, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("group %s %q is not 0..255", name, s)
	}
	return uint8(v), nil
}

// String returns the code as A-B:C.D.E, with *F appended when F is not 255.
func (o OBIS) String() string {
	s := fmt.Sprintf("%d-%d:%d.%d.%d", o.A, o.B, o.C, o.D, o.E)
	if o.F != 255 {
		s += fmt.Sprintf("*%d", o.F)
	}
	return s
}

// Less orders codes group by group.
func (o OBIS) Less(p OBIS) bool {
	a := [6]uint8{o.A, o.B, o.C, o.D, o.E, o.F}
	b := [6]uint8{p.A, p.B, p.C, p.D, p.E, p.F}
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Carrier names an energy carrier or utility, used to pick tariffs and
// emission factors.
type Carrier string

// Carriers known to the defaults. Any other name may be used in files.
const (
	Electricity     Carrier = "electricity"
	NaturalGas      Carrier = "natural_gas"
	Heat            Carrier = "district_heating"
	Cooling         Carrier = "district_cooling"
	Water           Carrier = "water"
	ElectricityFeed Carrier = "electricity_export"
)

// DefaultCarrier returns the carrier implied by the OBIS medium (group A) and
// quantity: electricity import for 1-b:1.8.x, export for 1-b:2.8.x, natural
// gas for 7, district heating for 6, cooling for 5 and water for 8 and 9. It
// returns "" when the code is not a consumption register it knows.
func (o OBIS) DefaultCarrier() Carrier {
	switch o.A {
	case 1:
		switch {
		case o.C == 1 && o.D == 8:
			return Electricity
		case o.C == 2 && o.D == 8:
			return ElectricityFeed
		}
	case 5:
		return Cooling
	case 6:
		return Heat
	case 7:
		return NaturalGas
	case 8, 9:
		return Water
	}
	return ""
}

// Unit returns the usual unit of a cumulative register with this code: kWh
// for electricity active energy, heat and cooling, kvarh for reactive energy,
// m³ for gas and water volume, and "" when unknown. Source: the OBIS table in
// docs/models/energy.md (metering crate src/obis.rs, Kamstrup HAN list).
func (o OBIS) Unit() string {
	switch o.A {
	case 1:
		switch {
		case (o.C == 1 || o.C == 2) && o.D == 8:
			return "kWh"
		case (o.C == 3 || o.C == 4) && o.D == 8:
			return "kvarh"
		}
	case 5, 6:
		return "kWh"
	case 7, 8, 9:
		return "m3"
	}
	return ""
}
