package soil

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randomSamples returns n distinct points in a w×w metre square with values
// from a smooth field plus noise, seeded for repeatability.
func randomSamples(seed uint64, n int, w float64) ([][2]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	pts := make([][2]float64, n)
	z := make([]float64, n)
	for i := range pts {
		x, y := rng.Float64()*w, rng.Float64()*w
		pts[i] = [2]float64{x, y}
		z[i] = 10 + 3*math.Sin(x/40) + 2*math.Cos(y/30) + rng.NormFloat64()
	}
	return pts, z
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

// TestIDWExactAtSamples checks the property that IDW returns each sample's
// value at its own location, for several powers and random sample sets.
func TestIDWExactAtSamples(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		pts, z := randomSamples(seed, 5+int(seed)*3, 200)
		for _, p := range []float64{1, 2, 3, 0.5} {
			m, err := NewIDW(pts, z, p)
			if err != nil {
				t.Fatal(err)
			}
			for i, q := range pts {
				if got := m.Predict(q[0], q[1]); got != z[i] {
					t.Fatalf("seed %d power %g sample %d: got %v, want exactly %v", seed, p, i, got, z[i])
				}
			}
		}
	}
}

// TestIDWProperties checks properties of the IDW weights: estimates lie
// within the sample range, are invariant under translation and rotation of
// all points, and transform affinely with the values (u → a·u + b).
func TestIDWProperties(t *testing.T) {
	pts, z := randomSamples(3, 40, 150)
	m, _ := NewIDW(pts, z, 2)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range z {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	const a, b = -2.5, 7.0
	z2 := make([]float64, len(z))
	moved := make([][2]float64, len(pts))
	th := 0.7
	rot := func(p [2]float64) [2]float64 {
		return [2]float64{math.Cos(th)*p[0] - math.Sin(th)*p[1] + 1000, math.Sin(th)*p[0] + math.Cos(th)*p[1] - 500}
	}
	for i := range z {
		z2[i] = a*z[i] + b
		moved[i] = rot(pts[i])
	}
	steep, _ := NewIDW(pts, z, 300)
	if v := steep.Predict(75, 75); math.IsNaN(v) || v < lo || v > hi {
		t.Fatalf("power 300: estimate %v", v)
	}
	ma, _ := NewIDW(pts, z2, 2)
	mr, _ := NewIDW(moved, z, 2)
	rng := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 200; i++ {
		q := [2]float64{rng.Float64() * 150, rng.Float64() * 150}
		v := m.Predict(q[0], q[1])
		if v < lo-1e-12 || v > hi+1e-12 {
			t.Fatalf("estimate %v outside sample range [%v, %v]", v, lo, hi)
		}
		if got := ma.Predict(q[0], q[1]); !near(got, a*v+b, 1e-12) {
			t.Fatalf("affine values: got %v, want %v", got, a*v+b)
		}
		r := rot(q)
		if got := mr.Predict(r[0], r[1]); !near(got, v, 1e-9) {
			t.Fatalf("rotated: got %v, want %v", got, v)
		}
	}
}

// TestKrigingExactAtSamples checks the property that ordinary kriging
// reproduces each sample value with zero variance at its location, for all
// three models, with and without a nugget (γ(0) = 0 by definition).
func TestKrigingExactAtSamples(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		pts, z := randomSamples(seed, 10+int(seed)*5, 200)
		for _, vg := range []Variogram{
			{Model: Spherical, Sill: 4, Range: 120},
			{Model: Exponential, Sill: 4, Range: 150},
			{Model: Gaussian, Nugget: 0.2, Sill: 4, Range: 90},
			{Model: Spherical, Nugget: 1, Sill: 4, Range: 80},
		} {
			k, err := NewOrdinaryKriging(pts, z, vg)
			if err != nil {
				t.Fatalf("seed %d %+v: %v", seed, vg, err)
			}
			est, vars := k.PredictMany(pts)
			for i := range pts {
				if !near(est[i], z[i], 1e-8) {
					t.Fatalf("seed %d %+v sample %d: estimate %v, want %v", seed, vg, i, est[i], z[i])
				}
				if vars[i] > 1e-8*vg.Sill {
					t.Fatalf("seed %d %+v sample %d: variance %v, want 0", seed, vg, i, vars[i])
				}
			}
		}
	}
}

// TestKrigingProperties checks the unbiasedness constraint (weights sum to
// one), invariance under permutation, translation and rotation of the
// samples, and that the variance never exceeds what the sill allows far away.
func TestKrigingProperties(t *testing.T) {
	pts, z := randomSamples(11, 30, 150)
	vg := Variogram{Model: Exponential, Nugget: 0.3, Sill: 5, Range: 100}
	k, err := NewOrdinaryKriging(pts, z, vg)
	if err != nil {
		t.Fatal(err)
	}
	perm := rand.New(rand.NewPCG(4, 4)).Perm(len(pts))
	pp := make([][2]float64, len(pts))
	pz := make([]float64, len(pts))
	th := 1.1
	rot := func(p [2]float64) [2]float64 {
		return [2]float64{math.Cos(th)*p[0] - math.Sin(th)*p[1] - 300, math.Sin(th)*p[0] + math.Cos(th)*p[1] + 40}
	}
	for i, j := range perm {
		pp[i] = rot(pts[j])
		pz[i] = z[j]
	}
	k2, err := NewOrdinaryKriging(pp, pz, vg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 100; i++ {
		q := [2]float64{rng.Float64() * 150, rng.Float64() * 150}
		lam, _ := k.Weights(q[0], q[1])
		var s float64
		for _, l := range lam {
			s += l
		}
		if !near(s, 1, 1e-9) {
			t.Fatalf("weights sum to %v, want 1", s)
		}
		e1, v1 := k.Predict(q[0], q[1])
		r := rot(q)
		e2, v2 := k2.Predict(r[0], r[1])
		if !near(e1, e2, 1e-8) || !near(v1, v2, 1e-8) {
			t.Fatalf("moved and permuted samples: (%v, %v) vs (%v, %v)", e1, v1, e2, v2)
		}
		if v1 < 0 {
			t.Fatalf("negative variance %v", v1)
		}
	}
}

// TestKrigingHandExample solves two small systems by hand.
//
// Two samples at x = −1 and x = +1 with a linear-looking spherical model
// (range 100, sill 100, no nugget) and the target at 0: by symmetry
// λ1 = λ2 = ½; the first equation ½·γ(2) + μ = γ(1) gives μ = γ(1) − γ(2)/2,
// and σ² = ½γ(1) + ½γ(1) + μ = 2γ(1) − γ(2)/2.
//
// Three samples on a line at 0, 1, 3 with target at 1 (a sample) give
// λ = (0, 1, 0), μ = 0 and σ² = 0.
func TestKrigingHandExample(t *testing.T) {
	vg := Variogram{Model: Spherical, Sill: 100, Range: 100}
	g1, g2 := vg.Value(1), vg.Value(2)
	// Spherical: γ(1) = 100·(0.015 − 0.5e-6) = 1.49995, γ(2) = 100·(0.03 − 4e-6) = 2.9996.
	if !near(g1, 1.49995, 1e-12) || !near(g2, 2.9996, 1e-12) {
		t.Fatalf("γ(1) = %v, γ(2) = %v", g1, g2)
	}
	k, err := NewOrdinaryKriging([][2]float64{{-1, 0}, {1, 0}}, []float64{4, 8}, vg)
	if err != nil {
		t.Fatal(err)
	}
	lam, mu := k.Weights(0, 0)
	est, v := k.Predict(0, 0)
	if !near(lam[0], 0.5, 1e-12) || !near(lam[1], 0.5, 1e-12) {
		t.Errorf("weights %v, want [0.5 0.5]", lam)
	}
	if want := g1 - g2/2; !near(mu, want, 1e-12) {
		t.Errorf("μ = %v, want %v", mu, want)
	}
	if !near(est, 6, 1e-12) {
		t.Errorf("estimate %v, want 6", est)
	}
	if want := 2*g1 - g2/2; !near(v, want, 1e-12) { // 1.5003
		t.Errorf("variance %v, want %v", v, want)
	}

	k3, err := NewOrdinaryKriging([][2]float64{{0, 0}, {1, 0}, {3, 0}}, []float64{1, 2, 5}, vg)
	if err != nil {
		t.Fatal(err)
	}
	lam, mu = k3.Weights(1, 0)
	for i, want := range []float64{0, 1, 0} {
		if math.Abs(lam[i]-want) > 1e-12 {
			t.Errorf("λ%d = %v, want %v", i+1, lam[i], want)
		}
	}
	if math.Abs(mu) > 1e-12 {
		t.Errorf("μ = %v, want 0", mu)
	}
}

// TestKrigingRejectsSingular checks that duplicate points (a singular
// matrix) and invalid variograms are errors, not panics.
func TestKrigingRejectsSingular(t *testing.T) {
	vg := Variogram{Model: Spherical, Sill: 1, Range: 10}
	if _, err := NewOrdinaryKriging([][2]float64{{0, 0}, {0, 0}, {5, 5}}, []float64{1, 2, 3}, vg); err == nil {
		t.Error("duplicate points: no error")
	}
	if _, err := NewOrdinaryKriging([][2]float64{{0, 0}, {1, 1}}, []float64{1, 2}, Variogram{Sill: 1}); err == nil {
		t.Error("zero range: no error")
	}
	if _, err := NewOrdinaryKriging([][2]float64{{0, 0}}, []float64{1}, vg); err == nil {
		t.Error("one sample: no error")
	}
	if _, err := NewIDW(nil, nil, 2); err == nil {
		t.Error("IDW without samples: no error")
	}
	two := [][2]float64{{0, 0}, {1, 1}}
	for _, bad := range []Variogram{
		{Model: Model(7), Sill: 1, Range: 10},
		{Model: Auto, Sill: 1, Range: 10},
		{Sill: 1, Range: 10, Nugget: math.NaN()},
		{Sill: math.Inf(1), Range: 10},
		{Sill: 1, Range: math.Inf(1)},
	} {
		if _, err := NewOrdinaryKriging(two, []float64{1, 2}, bad); err == nil {
			t.Errorf("variogram %+v: no error", bad)
		}
	}
	for _, c := range []struct {
		pts [][2]float64
		z   []float64
	}{
		{[][2]float64{{0, 0}, {1, 1}}, []float64{1, math.NaN()}},
		{[][2]float64{{0, math.Inf(1)}, {1, 1}}, []float64{1, 2}},
	} {
		if _, err := NewOrdinaryKriging(c.pts, c.z, vg); err == nil || !strings.Contains(err.Error(), "not finite") {
			t.Errorf("kriging %v = %v: %v", c.pts, c.z, err)
		}
		if _, err := NewIDW(c.pts, c.z, 2); err == nil || !strings.Contains(err.Error(), "not finite") {
			t.Errorf("IDW %v = %v: %v", c.pts, c.z, err)
		}
	}
	// More than MaxKrigingSamples is refused before the (n+1)² matrix is
	// allocated.
	many, mz := randomSamples(5, MaxKrigingSamples+1, 1000)
	if _, err := NewOrdinaryKriging(many, mz, vg); err == nil || !strings.Contains(err.Error(), "at most 3000") {
		t.Errorf("%d samples: %v", len(many), err)
	}
}

// TestKrigingIsaaksSrivastava reproduces the ordinary kriging example of
// Isaaks & Srivastava, An Introduction to Applied Geostatistics (Oxford
// University Press 1989), chapter 12: seven V samples around the point
// (65E, 137N) with covariance C(h) = 10·exp(−0.3h), i.e. an exponential
// variogram with sill 10, no nugget and practical range 10 (3/r = 0.3).
// The book gives the weights 0.173, 0.318, 0.129, 0.086, 0.151, 0.057,
// 0.086, the estimate 592.7 ppm and the kriging variance 8.96 ppm².
func TestKrigingIsaaksSrivastava(t *testing.T) {
	pts := [][2]float64{{61, 139}, {63, 140}, {64, 129}, {68, 128}, {71, 140}, {73, 141}, {75, 128}}
	z := []float64{477, 696, 227, 646, 606, 791, 783}
	k, err := NewOrdinaryKriging(pts, z, Variogram{Model: Exponential, Sill: 10, Range: 10})
	if err != nil {
		t.Fatal(err)
	}
	lam, _ := k.Weights(65, 137)
	for i, want := range []float64{0.173, 0.318, 0.129, 0.086, 0.151, 0.057, 0.086} {
		if math.Abs(lam[i]-want) > 0.0005 {
			t.Errorf("λ%d = %.4f, want %.3f", i+1, lam[i], want)
		}
	}
	est, v := k.Predict(65, 137)
	if math.Abs(est-592.7) > 0.05 {
		t.Errorf("estimate %.2f, want 592.7", est)
	}
	if math.Abs(v-8.96) > 0.005 {
		t.Errorf("variance %.3f, want 8.96", v)
	}
}

// TestKrigingIllConditioned checks that a Gaussian model without a nugget
// on densely spaced samples (its matrix is numerically singular) is refused
// with ErrKrigingSystem rather than producing wild weights.
func TestKrigingIllConditioned(t *testing.T) {
	var pts [][2]float64
	var z []float64
	for i := 0; i < 10; i++ {
		for j := 0; j < 10; j++ {
			pts = append(pts, [2]float64{float64(i), float64(j)})
			z = append(z, float64(i+j))
		}
	}
	_, err := NewOrdinaryKriging(pts, z, Variogram{Model: Gaussian, Sill: 1, Range: 50})
	if !errors.Is(err, ErrKrigingSystem) {
		t.Fatalf("error %v, want ErrKrigingSystem", err)
	}
}
