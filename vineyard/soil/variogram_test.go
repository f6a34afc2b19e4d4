package soil

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestVariogramForms checks the model formulas at hand-computed points
// (PyKrige docs/source/variogram_models.rst forms, range = practical range).
func TestVariogramForms(t *testing.T) {
	tests := []struct {
		name string
		v    Variogram
		h    float64
		want float64
	}{
		{"zero lag is zero even with nugget", Variogram{Model: Spherical, Nugget: 1, Sill: 3, Range: 10}, 0, 0},
		{"spherical half range", Variogram{Model: Spherical, Nugget: 1, Sill: 3, Range: 10}, 5, 1 + 2*(0.75-0.0625)},
		{"spherical at range", Variogram{Model: Spherical, Nugget: 1, Sill: 3, Range: 10}, 10, 3},
		{"spherical beyond range", Variogram{Model: Spherical, Nugget: 1, Sill: 3, Range: 10}, 50, 3},
		{"exponential at range ≈95%", Variogram{Model: Exponential, Sill: 1, Range: 30}, 30, 1 - math.Exp(-3)},
		{"exponential small lag", Variogram{Model: Exponential, Nugget: 0.5, Sill: 2, Range: 30}, 10, 0.5 + 1.5*(1-math.Exp(-1))},
		{"gaussian at range ≈95%", Variogram{Model: Gaussian, Sill: 1, Range: 7}, 7, 1 - math.Exp(-49.0/16)},
		{"gaussian at 4r/7", Variogram{Model: Gaussian, Sill: 2, Range: 7}, 4, 2 * (1 - math.Exp(-1))},
	}
	for _, tt := range tests {
		if got := tt.v.Value(tt.h); !near(got, tt.want, 1e-14) {
			t.Errorf("%s: γ(%g) = %v, want %v", tt.name, tt.h, got, tt.want)
		}
	}
}

// TestEmpiricalHand checks the empirical semivariogram on four points on a
// line (0, 1, 2, 3 m; values 0, 1, 0, 1): lag 1 has pairs (0,1),(1,2),(2,3),
// all with |dz| = 1, so γ̂ = 3/(2·3) = ½; lag 2 has (0,2),(1,3) with dz = 0;
// lag 3 has (0,3) with dz = 1, γ̂ = ½.
func TestEmpiricalHand(t *testing.T) {
	pts := [][2]float64{{0, 0}, {1, 0}, {2, 0}, {3, 0}}
	z := []float64{0, 1, 0, 1}
	got := Empirical(pts, z, 3, 3)
	want := []Lag{{1, 0.5, 3}, {2, 0, 2}, {3, 0.5, 1}}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if !near(got[i].Distance, want[i].Distance, 1e-12) || !near(got[i].Gamma, want[i].Gamma, 1e-12) || got[i].Pairs != want[i].Pairs {
			t.Errorf("lag %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// Mismatched lengths use the points that have values (no panic).
	if got := Empirical(pts, z[:2], 3, 3); len(got) != 1 || got[0].Pairs != 1 {
		t.Errorf("two values for four points: %+v", got)
	}
	// A huge bin count is capped at MaxLags instead of allocating it; the
	// 6 pairs fall into bins of 3/1000 m, at 1, 2 and 3 m.
	if got := Empirical(pts, z, 1<<40, 3); len(got) != 3 || got[0].Pairs != 3 {
		t.Errorf("2⁴⁰ bins: %+v", got)
	}
}

// exactLags samples a known variogram at lag distances, as an empirical
// semivariogram without sampling error would.
func exactLags(v Variogram, hmax float64, n int) []Lag {
	lags := make([]Lag, n)
	for i := range lags {
		h := hmax * float64(i+1) / float64(n)
		lags[i] = Lag{Distance: h, Gamma: v.Value(h), Pairs: 50 + 10*i}
	}
	return lags
}

// TestFitRecoversExact checks that fitting a model to its own noise-free
// semivariogram recovers nugget, sill and range, and that FitAuto picks the
// generating family.
func TestFitRecoversExact(t *testing.T) {
	for _, want := range []Variogram{
		{Model: Spherical, Nugget: 0.5, Sill: 4, Range: 60},
		{Model: Exponential, Nugget: 0, Sill: 2, Range: 80},
		{Model: Gaussian, Nugget: 0.2, Sill: 1.5, Range: 50},
	} {
		lags := exactLags(want, 100, 15)
		got, fe, err := Fit(lags, want.Model)
		if err != nil {
			t.Fatalf("%v: %v", want.Model, err)
		}
		if !near(got.Sill, want.Sill, 1e-3) || math.Abs(got.Nugget-want.Nugget) > 1e-3*want.Sill || !near(got.Range, want.Range, 1e-3) {
			t.Errorf("%v: got %+v, want %+v (fit error %g)", want.Model, got, want, fe)
		}
		auto, _, err := FitAuto(lags)
		if err != nil || auto.Model != want.Model {
			t.Errorf("auto for %v data chose %v (%v)", want.Model, auto.Model, err)
		}
	}
}

// TestFitRecoversSimulated simulates Gaussian random fields with a known
// spherical variogram (Cholesky factor of the covariance C = sill − γ) and
// checks that the fitted sill and range from 400 samples are within 30 %
// of the truth, averaged over realisations.
func TestFitRecoversSimulated(t *testing.T) {
	want := Variogram{Model: Spherical, Nugget: 0.2, Sill: 2, Range: 60}
	const n, side, runs = 400, 300.0, 6
	rng := rand.New(rand.NewPCG(42, 1))
	var sumSill, sumRange float64
	for run := 0; run < runs; run++ {
		pts := make([][2]float64, n)
		for i := range pts {
			pts[i] = [2]float64{rng.Float64() * side, rng.Float64() * side}
		}
		cov := mat.NewSymDense(n, nil)
		for i := 0; i < n; i++ {
			for j := i; j < n; j++ {
				c := want.Sill - want.Value(dist(pts[i], pts[j]))
				if i == j {
					c = want.Sill
				}
				cov.SetSym(i, j, c)
			}
		}
		var ch mat.Cholesky
		if !ch.Factorize(cov) {
			t.Fatal("covariance not positive definite")
		}
		var l mat.TriDense
		ch.LTo(&l)
		e := make([]float64, n)
		for i := range e {
			e[i] = rng.NormFloat64()
		}
		var zv mat.VecDense
		zv.MulVec(&l, mat.NewVecDense(n, e))
		z := make([]float64, n)
		for i := range z {
			z[i] = 5 + zv.AtVec(i)
		}
		got, _, err := Fit(Empirical(pts, z, 15, 150), Spherical)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d: %+v", run, got)
		sumSill += got.Sill
		sumRange += got.Range
	}
	if s := sumSill / runs; math.Abs(s-want.Sill) > 0.3*want.Sill {
		t.Errorf("mean fitted sill %v, want %v ±30%%", s, want.Sill)
	}
	if r := sumRange / runs; math.Abs(r-want.Range) > 0.3*want.Range {
		t.Errorf("mean fitted range %v, want %v ±30%%", r, want.Range)
	}
}

// TestFitErrors checks that unfit inputs are errors.
func TestFitErrors(t *testing.T) {
	if _, _, err := Fit([]Lag{{1, 1, 1}, {2, 1, 1}}, Spherical); err == nil {
		t.Error("two lags: no error")
	}
	if _, _, err := Fit([]Lag{{1, 0, 3}, {2, 0, 3}, {3, 0, 3}}, Spherical); err == nil {
		t.Error("zero semivariance: no error")
	}
	if _, _, err := Fit(exactLags(Variogram{Sill: 1, Range: 5}, 10, 5), Auto); err == nil {
		t.Error("Fit(Auto): no error")
	}
	if _, _, err := FitAuto(nil); err == nil {
		t.Error("FitAuto(nil): no error")
	}
}

func TestParseModel(t *testing.T) {
	for _, m := range []Model{Spherical, Exponential, Gaussian, Auto} {
		got, err := ParseModel(m.String())
		if err != nil || got != m {
			t.Errorf("ParseModel(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseModel("matern"); err == nil {
		t.Error("matern: no error")
	}
}

// BenchmarkFitAuto measures fitting all three families to the empirical
// semivariogram of the Wartberg example (109 samples, 12 lags).
func BenchmarkFitAuto(b *testing.B) {
	samples, plot := readExample(b, "wartberg_samples.csv")
	c := plot.Bound().Center()
	proj := Projection{Lon0: c[0], Lat0: c[1]}
	pts := make([][2]float64, len(samples))
	z := make([]float64, len(samples))
	for i, s := range samples {
		x, y := proj.Forward(s.Lon, s.Lat)
		pts[i], z[i] = [2]float64{x, y}, s.P
	}
	lags := Empirical(pts, z, 12, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := FitAuto(lags); err != nil {
			b.Fatal(err)
		}
	}
}
