package soil

import (
	"math"
	"testing"
)

// TestConversionFactors checks the oxide–element factors against the
// values the brief and the sources print (0.4364 and 0.8301; Vitipendium
// "Kalium" prints 0,8302 and K × 1,205 = K2O).
func TestConversionFactors(t *testing.T) {
	if math.Abs(FactorP2O5ToP-0.4364) > 0.00005 {
		t.Errorf("P2O5→P factor %v, want 0.4364", FactorP2O5ToP)
	}
	if math.Abs(FactorK2OToK-0.8301) > 0.00006 {
		t.Errorf("K2O→K factor %v, want 0.8301", FactorK2OToK)
	}
	if math.Abs(1/FactorK2OToK-1.205) > 0.0005 {
		t.Errorf("K→K2O factor %v, want 1.205 (Vitipendium Kalium)", 1/FactorK2OToK)
	}
}

// TestConversionsWorked reproduces the paired values printed by Vitipendium
// ("Phosphor-Düngung", "Kalium-Düngung") and domain.md §2.4, each to the
// precision printed.
func TestConversionsWorked(t *testing.T) {
	tests := []struct {
		name      string
		got, want float64
		tol       float64
	}{
		{"5 kg P2O5 = 2.2 kg P", P2O5ToP(5), 2.2, 0.05},
		{"15 kg P2O5 = 6.5 kg P", P2O5ToP(15), 6.5, 0.06},
		{"25 kg P2O5 = 11 kg P", P2O5ToP(25), 11, 0.5},
		{"12 mg P2O5 = 5.2 mg P", P2O5ToP(12), 5.2, 0.05},
		{"20 mg P2O5 = 8.7 mg P", P2O5ToP(20), 8.7, 0.05},
		{"12 mg P2O5/100 g = 52 ppm P", MgPer100gToPPM(P2O5ToP(12)), 52, 0.5},
		{"20 mg P2O5/100 g = 87 ppm P", MgPer100gToPPM(P2O5ToP(20)), 87, 0.5},
		{"30 kg K2O = 25 kg K", K2OToK(30), 25, 0.5},
		{"80 kg K2O = 66 kg K", K2OToK(80), 66, 0.5},
		{"40 kg K2O = 33 kg K", K2OToK(40), 33, 0.5},
		{"120 kg K2O = 100 kg K", K2OToK(120), 100, 0.5},
		{"10 mg K2O = 8 mg K", K2OToK(10), 8, 0.5},
		{"round trip P", P2O5ToP(PToP2O5(7.3)), 7.3, 1e-12},
		{"round trip K", K2OToK(KToK2O(19.1)), 19.1, 1e-12},
		{"ppm round trip", PPMToMgPer100g(MgPer100gToPPM(3.3)), 3.3, 1e-12},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > tt.tol {
			t.Errorf("%s: got %.4f", tt.name, tt.got)
		}
	}
}

// TestClassBoundaries checks each class limit and its neighbours: class C
// is the closed range printed by the sources (12–20 mg P2O5; 10–20, 15–25,
// 20–30 mg K2O; pH 5.4–6.3 and 6.5–7.2).
func TestClassBoundaries(t *testing.T) {
	tests := []struct {
		n    Nutrient
		st   SoilType
		v    float64
		want Class
	}{
		{Phosphorus, Medium, 5.99, ClassA},
		{Phosphorus, Medium, 6, ClassB},
		{Phosphorus, Medium, 11.99, ClassB},
		{Phosphorus, Medium, 12, ClassC},
		{Phosphorus, Light, 20, ClassC},
		{Phosphorus, Heavy, 20.01, ClassD},
		{Phosphorus, Medium, 40, ClassD},
		{Phosphorus, Medium, 40.01, ClassE},
		{Potassium, Light, 9.99, ClassB},
		{Potassium, Light, 10, ClassC},
		{Potassium, Light, 20, ClassC},
		{Potassium, Light, 20.5, ClassD},
		{Potassium, Heavy, 19.9, ClassB},
		{Potassium, Heavy, 20, ClassC},
		{Potassium, Heavy, 30, ClassC},
		{Potassium, Heavy, 60.1, ClassE},
		{Potassium, Heavy, 9.9, ClassA},
		{Potassium, Medium, 15, ClassC},
		{Potassium, Medium, 25.1, ClassD},
		{PH, Light, 5.39, ClassB},
		{PH, Light, 5.4, ClassC},
		{PH, Light, 6.3, ClassC},
		{PH, Light, 6.31, ClassD},
		{PH, Light, 4.89, ClassA},
		{PH, Medium, 6.5, ClassC},
		{PH, Heavy, 7.2, ClassC},
		{PH, Heavy, 7.21, ClassD},
		{PH, Heavy, 7.71, ClassE},
	}
	for _, tt := range tests {
		s := VineyardScheme(tt.n, tt.st)
		if !s.Valid() {
			t.Fatalf("%v %v: scheme %+v does not ascend", tt.n, tt.st, s)
		}
		if got := s.Classify(tt.v); got != tt.want {
			t.Errorf("%v %v %g: class %v, want %v", tt.n, tt.st, tt.v, got, tt.want)
		}
	}
}

// TestToSchemeUnit checks that elemental values are converted to oxide
// before classing: 5.24 mg P is 12.0 mg P2O5 (class C), 5.2 mg P is 11.9
// (class B).
func TestToSchemeUnit(t *testing.T) {
	s := VineyardScheme(Phosphorus, Medium)
	if c := s.Classify(ToSchemeUnit(Phosphorus, Element, 5.24)); c != ClassC {
		t.Errorf("5.24 mg P: %v, want C", c)
	}
	if c := s.Classify(ToSchemeUnit(Phosphorus, Element, 5.2)); c != ClassB {
		t.Errorf("5.2 mg P: %v, want B", c)
	}
	if v := ToSchemeUnit(Phosphorus, Oxide, 13); v != 13 {
		t.Errorf("oxide unchanged: %v", v)
	}
	if v := ToSchemeUnit(PH, Element, 6.8); v != 6.8 {
		t.Errorf("pH unchanged: %v", v)
	}
	if v := ToSchemeUnit(Potassium, Element, K2OToK(25)); math.Abs(v-25) > 1e-12 {
		t.Errorf("K: %v, want 25", v)
	}
}

func TestParseEnums(t *testing.T) {
	for _, s := range []string{"p", "k", "ph"} {
		n, err := ParseNutrient(s)
		if err != nil || n.String() != s {
			t.Errorf("ParseNutrient(%q) = %v, %v", s, n, err)
		}
	}
	for _, s := range []string{"light", "medium", "heavy"} {
		st, err := ParseSoilType(s)
		if err != nil || st.String() != s {
			t.Errorf("ParseSoilType(%q) = %v, %v", s, st, err)
		}
	}
	for _, s := range []string{"element", "oxide"} {
		f, err := ParseForm(s)
		if err != nil || f.String() != s {
			t.Errorf("ParseForm(%q) = %v, %v", s, f, err)
		}
	}
	for _, s := range []string{"idw", "kriging"} {
		m, err := ParseMethod(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseMethod(%q) = %v, %v", s, m, err)
		}
	}
	for _, bad := range []func() error{
		func() error { _, err := ParseNutrient("n"); return err },
		func() error { _, err := ParseSoilType("loam"); return err },
		func() error { _, err := ParseForm("ppm"); return err },
		func() error { _, err := ParseMethod("spline"); return err },
	} {
		if bad() == nil {
			t.Error("bad name accepted")
		}
	}
}
