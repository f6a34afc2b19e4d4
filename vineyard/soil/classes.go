package soil

import (
	"fmt"
	"strings"
)

// Standard atomic weights (IUPAC 2021 conventional values) behind the
// oxide–element factors.
const (
	atomicP = 30.973762
	atomicK = 39.0983
	atomicO = 15.999
)

// Oxide–element conversion factors, from the atomic weights:
// P = P2O5 × 2·30.974/(2·30.974 + 5·15.999) = P2O5 × 0.4364 and
// K = K2O × 2·39.098/(2·39.098 + 15.999) = K2O × 0.8301. Vitipendium
// ("Kalium") prints K2O × 0,8302 = K, the same factor rounded up.
const (
	FactorP2O5ToP = 2 * atomicP / (2*atomicP + 5*atomicO)
	FactorK2OToK  = 2 * atomicK / (2*atomicK + atomicO)
)

// P2O5ToP converts mg P2O5 to mg P.
func P2O5ToP(p2o5 float64) float64 { return p2o5 * FactorP2O5ToP }

// PToP2O5 converts mg P to mg P2O5.
func PToP2O5(p float64) float64 { return p / FactorP2O5ToP }

// K2OToK converts mg K2O to mg K.
func K2OToK(k2o float64) float64 { return k2o * FactorK2OToK }

// KToK2O converts mg K to mg K2O.
func KToK2O(k float64) float64 { return k / FactorK2OToK }

// MgPer100gToPPM converts mg per 100 g to mg per kg (ppm): × 10.
func MgPer100gToPPM(v float64) float64 { return v * 10 }

// PPMToMgPer100g converts mg per kg (ppm) to mg per 100 g: ÷ 10.
func PPMToMgPer100g(v float64) float64 { return v / 10 }

// Form says whether the P and K values of samples are the element (P, K) or
// the oxide (P2O5, K2O), as German laboratories report CAL results.
type Form int

// The forms. The zero value is Element, matching the CSV column names
// p_mg_100g and k_mg_100g.
const (
	Element Form = iota
	Oxide
)

// String returns "element" or "oxide".
func (f Form) String() string {
	if f == Oxide {
		return "oxide"
	}
	return "element"
}

// ParseForm parses "element" or "oxide".
func ParseForm(s string) (Form, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "element":
		return Element, nil
	case "oxide":
		return Oxide, nil
	}
	return 0, fmt.Errorf("form %q: want element or oxide", s)
}

// SoilType is the soil texture group that sets the K and pH targets.
type SoilType int

// The soil groups of the vineyard targets. Light: S, l'S; medium: lS, sL,
// uL; heavy: t'L, tL, lT, T (Vitipendium "Kalium-Düngung"). The zero value
// is Medium.
const (
	Medium SoilType = iota
	Light
	Heavy
)

// String returns "light", "medium" or "heavy".
func (t SoilType) String() string {
	switch t {
	case Light:
		return "light"
	case Heavy:
		return "heavy"
	}
	return "medium"
}

// ParseSoilType parses "light", "medium" or "heavy".
func ParseSoilType(s string) (SoilType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "light":
		return Light, nil
	case "medium":
		return Medium, nil
	case "heavy":
		return Heavy, nil
	}
	return 0, fmt.Errorf("soil type %q: want light, medium or heavy", s)
}

// Class is a VDLUFA content class, A (very low) to E (very high). The zero
// value means "not classed".
type Class byte

// The content classes: A very low (strongly raised fertilisation), B low
// (raised), C optimal (maintenance), D high (reduced), E very high (none).
const (
	ClassNone Class = 0
	ClassA    Class = 'A'
	ClassB    Class = 'B'
	ClassC    Class = 'C'
	ClassD    Class = 'D'
	ClassE    Class = 'E'
)

// String returns the class letter, or "" for ClassNone.
func (c Class) String() string {
	if c == ClassNone {
		return ""
	}
	return string(rune(c))
}

// Scheme holds the four class limits of one nutrient, in ascending order
// and in the scheme's Unit: a value below AB is class A, below BC class B,
// up to and including CD class C, up to and including DE class D, above DE
// class E. So class C is the closed range [BC, CD], as the sources print it
// ("12 bis 20 mg P2O5").
type Scheme struct {
	AB, BC, CD, DE float64
	Unit           string
	Source         string
}

// Classify returns the class of v.
func (s Scheme) Classify(v float64) Class {
	switch {
	case v < s.AB:
		return ClassA
	case v < s.BC:
		return ClassB
	case v <= s.CD:
		return ClassC
	case v <= s.DE:
		return ClassD
	}
	return ClassE
}

// Valid reports whether the limits ascend.
func (s Scheme) Valid() bool { return s.AB <= s.BC && s.BC < s.CD && s.CD <= s.DE }

// VineyardScheme returns the vineyard class limits of nutrient n for soil
// type t. P and K limits are in mg oxide (P2O5, K2O) per 100 g, CAL
// extraction; pH limits are pH units.
//
// Class C is published: P 12–20 mg P2O5/100 g (Vitipendium
// "Phosphor-Düngung"); K 10–20 (light) and 20–30 (heavy) mg K2O/100 g
// (Vitipendium "Kalium-Düngung"), medium soils "between" them, taken here as
// 15–25; pH 5.4–6.3 (light) and 6.5–7.2 (medium to heavy) (DLR Rheinpfalz,
// Ziegler, "Magnesium- und Kalkdüngung").
//
// The A/B and D/E limits for vineyards were not found in the sources read.
// For P and K they are derived from the shape of the VDLUFA 2018 arable P
// classes (A < 1.5, C 3.1–6.0, E > 12 mg P/100 g: A/B at half the lower C
// limit, D/E at twice the upper C limit). For pH they are placed 0.5 below
// and above class C. Pass your laboratory's limits as a Scheme to replace
// them.
func VineyardScheme(n Nutrient, t SoilType) Scheme {
	switch n {
	case Phosphorus:
		return Scheme{AB: 6, BC: 12, CD: 20, DE: 40, Unit: "mg P2O5/100 g",
			Source: "C: Vitipendium Phosphor-Düngung; A/B, D/E derived (not published for vineyards)"}
	case Potassium:
		lo, hi := 15.0, 25.0
		switch t {
		case Light:
			lo, hi = 10, 20
		case Heavy:
			lo, hi = 20, 30
		}
		return Scheme{AB: lo / 2, BC: lo, CD: hi, DE: 2 * hi, Unit: "mg K2O/100 g",
			Source: "C: Vitipendium Kalium-Düngung; A/B, D/E derived (not published for vineyards)"}
	default:
		lo, hi := 6.5, 7.2
		if t == Light {
			lo, hi = 5.4, 6.3
		}
		return Scheme{AB: lo - 0.5, BC: lo, CD: hi, DE: hi + 0.5, Unit: "pH",
			Source: "C: DLR Rheinpfalz (Ziegler); A/B, D/E ±0.5 (placeholder, not published)"}
	}
}

// ToSchemeUnit converts a mapped value of nutrient n in form f (mg/100 g of
// the element or oxide) to the unit of VineyardScheme (mg oxide/100 g); pH
// is returned unchanged.
func ToSchemeUnit(n Nutrient, f Form, v float64) float64 {
	if f == Oxide {
		return v
	}
	switch n {
	case Phosphorus:
		return PToP2O5(v)
	case Potassium:
		return KToK2O(v)
	}
	return v
}

// MarshalText encodes the class as its letter ("" for ClassNone).
func (c Class) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
