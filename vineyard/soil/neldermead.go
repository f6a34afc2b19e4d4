package soil

import (
	"math"
	"sort"
)

// nelderMead minimises f from x0 with the Nelder–Mead simplex method
// (Nelder & Mead 1965, Computer Journal 7:308–313) using the standard
// coefficients: reflection 1, expansion 2, contraction ½, shrink ½. The
// initial simplex adds step to each coordinate of x0 in turn. It stops after
// maxIter iterations or when the simplex's function values agree to 1e-13
// relative, and returns the best point and its value.
func nelderMead(f func([]float64) float64, x0 []float64, step float64, maxIter int) ([]float64, float64) {
	n := len(x0)
	type vertex struct {
		x []float64
		f float64
	}
	eval := func(x []float64) vertex {
		v := f(x)
		if math.IsNaN(v) {
			v = math.Inf(1)
		}
		return vertex{x, v}
	}
	simplex := make([]vertex, n+1)
	simplex[0] = eval(append([]float64(nil), x0...))
	for i := 0; i < n; i++ {
		x := append([]float64(nil), x0...)
		x[i] += step
		simplex[i+1] = eval(x)
	}
	point := func(c []float64, w float64, x []float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = c[i] + w*(x[i]-c[i])
		}
		return out
	}
	for it := 0; it < maxIter; it++ {
		sort.SliceStable(simplex, func(i, j int) bool { return simplex[i].f < simplex[j].f })
		lo, hi := simplex[0].f, simplex[n].f
		if !math.IsInf(hi, 0) && math.Abs(hi-lo) <= 1e-13*(math.Abs(lo)+math.Abs(hi))+1e-300 {
			break
		}
		c := make([]float64, n)
		for _, v := range simplex[:n] {
			for i := range c {
				c[i] += v.x[i] / float64(n)
			}
		}
		worst := simplex[n]
		r := eval(point(c, -1, worst.x))
		switch {
		case r.f < simplex[0].f:
			if e := eval(point(c, -2, worst.x)); e.f < r.f {
				simplex[n] = e
			} else {
				simplex[n] = r
			}
		case r.f < simplex[n-1].f:
			simplex[n] = r
		default:
			var k vertex
			if r.f < worst.f {
				k = eval(point(c, -0.5, worst.x))
			} else {
				k = eval(point(c, 0.5, worst.x))
			}
			if k.f < math.Min(r.f, worst.f) {
				simplex[n] = k
				continue
			}
			for i := 1; i <= n; i++ {
				simplex[i] = eval(point(simplex[0].x, 0.5, simplex[i].x))
			}
		}
	}
	sort.SliceStable(simplex, func(i, j int) bool { return simplex[i].f < simplex[j].f })
	return simplex[0].x, simplex[0].f
}
