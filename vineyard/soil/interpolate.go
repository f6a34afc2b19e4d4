package soil

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// DefaultPower is the default inverse-distance power (Shepard's form with
// p = 2, the default of e.g. the inverse_distance_weight crate).
const DefaultPower = 2.0

// IDW is an inverse distance weighting interpolator over points in metres:
//
//	u(x) = Σ wk·uk / Σ wk,  wk = ‖x − xk‖^(−p)
//
// It returns uk exactly at a sample xk. The zero value has no samples.
type IDW struct {
	pts   [][2]float64
	z     []float64
	power float64
}

// NewIDW returns an IDW interpolator with power p (DefaultPower when
// p ≤ 0). pts and z must have the same, non-zero length and hold finite
// numbers.
func NewIDW(pts [][2]float64, z []float64, p float64) (*IDW, error) {
	if len(pts) == 0 || len(pts) != len(z) {
		return nil, fmt.Errorf("idw: %d points and %d values", len(pts), len(z))
	}
	if err := checkFinite(pts, z); err != nil {
		return nil, fmt.Errorf("idw: %w", err)
	}
	if p <= 0 {
		p = DefaultPower
	}
	if math.IsNaN(p) || math.IsInf(p, 0) {
		return nil, fmt.Errorf("idw: power %g is not finite", p)
	}
	return &IDW{pts: pts, z: z, power: p}, nil
}

// Predict returns the interpolated value at (x, y). The weights are scaled
// by the nearest squared distance, (d²min/d²)^(p/2), which leaves the
// estimate unchanged but keeps large powers from underflowing to 0/0.
func (m *IDW) Predict(x, y float64) float64 {
	dmin := math.Inf(1)
	for i, p := range m.pts {
		dx, dy := x-p[0], y-p[1]
		d2 := dx*dx + dy*dy
		if d2 == 0 {
			return m.z[i]
		}
		dmin = math.Min(dmin, d2)
	}
	var num, den float64
	half := m.power / 2
	for i, p := range m.pts {
		dx, dy := x-p[0], y-p[1]
		r := dmin / (dx*dx + dy*dy)
		w := r
		if half != 1 {
			w = math.Pow(r, half)
		}
		num += w * m.z[i]
		den += w
	}
	return num / den
}

// checkFinite reports the first point or value that is NaN or infinite.
func checkFinite(pts [][2]float64, z []float64) error {
	bad := func(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
	for i, p := range pts {
		if bad(p[0]) || bad(p[1]) || bad(z[i]) {
			return fmt.Errorf("point %d (%g, %g) = %g is not finite", i, p[0], p[1], z[i])
		}
	}
	return nil
}

// ErrKrigingSystem reports a kriging matrix that cannot be solved reliably.
var ErrKrigingSystem = errors.New("kriging system is singular or ill-conditioned")

// maxCond is the largest condition number of the kriging matrix accepted;
// beyond it the weights lose more than about four significant digits.
const maxCond = 1e12

// OrdinaryKriging is an ordinary kriging interpolator (unknown constant mean). For n
// samples it solves, for every target x0,
//
//	Σj λj·γ(xi, xj) + μ = γ(xi, x0)   (i = 1…n),   Σj λj = 1,
//
// with estimate Ẑ(x0) = Σ λj·zj and kriging variance
// σ²(x0) = Σ λi·γ(xi, x0) + μ.
//
// The (n+1)×(n+1) matrix A does not depend on x0, so it is factorised once
// (LU with partial pivoting, gonum/mat). The estimate uses the dual form
// Ẑ(x0) = bᵀ·A⁻¹·[z; 0] with b = [γ(xi, x0); 1], so each estimate costs
// O(n); the variance σ² = bᵀ·A⁻¹·b costs O(n²) and is computed for blocks of
// targets with one matrix product each.
type OrdinaryKriging struct {
	pts  [][2]float64
	vg   Variogram
	dual []float64  // A⁻¹·[z; 0]
	inv  *mat.Dense // A⁻¹
}

// MaxKrigingSamples is the most samples NewOrdinaryKriging accepts. The
// matrix and its inverse hold 2·(n+1)² numbers (about 144 MB at 3 000
// samples) and the factorisation costs O(n³); larger sample sets are mapped
// by IDW (NewMap says so in Map.Note) or should be kriged in neighbourhoods.
const MaxKrigingSamples = 3000

// NewOrdinaryKriging sets up ordinary kriging of values z at pts (metres) with
// variogram vg. It returns ErrKrigingSystem when the matrix is singular or
// its condition number exceeds 1e12 (for example Gaussian models without a
// nugget on dense samples), and an error for more than MaxKrigingSamples
// points.
func NewOrdinaryKriging(pts [][2]float64, z []float64, vg Variogram) (*OrdinaryKriging, error) {
	n := len(pts)
	if n < 2 || n != len(z) {
		return nil, fmt.Errorf("kriging: %d points and %d values, need at least 2", n, len(z))
	}
	if n > MaxKrigingSamples {
		return nil, fmt.Errorf("kriging: %d points, at most %d (the system grows as n²)", n, MaxKrigingSamples)
	}
	if err := checkFinite(pts, z); err != nil {
		return nil, fmt.Errorf("kriging: %w", err)
	}
	if vg.Model < Spherical || vg.Model >= Auto || !(vg.Range > 0) || !(vg.Sill > 0) || !(vg.Nugget >= 0) || vg.Nugget > vg.Sill ||
		math.IsInf(vg.Range, 0) || math.IsInf(vg.Sill, 0) {
		return nil, fmt.Errorf("kriging: invalid variogram %+v", vg)
	}
	a := mat.NewDense(n+1, n+1, nil)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			g := vg.Value(dist(pts[i], pts[j]))
			a.Set(i, j, g)
			a.Set(j, i, g)
		}
		a.Set(i, n, 1)
		a.Set(n, i, 1)
	}
	var lu mat.LU
	lu.Factorize(a)
	if c := lu.Cond(); math.IsInf(c, 0) || math.IsNaN(c) || c > maxCond {
		return nil, fmt.Errorf("kriging: condition number %.3g: %w", c, ErrKrigingSystem)
	}
	rhs := mat.NewVecDense(n+1, nil)
	for i, v := range z {
		rhs.SetVec(i, v)
	}
	var dual mat.VecDense
	if err := lu.SolveVecTo(&dual, false, rhs); err != nil {
		return nil, fmt.Errorf("kriging: %w: %v", ErrKrigingSystem, err)
	}
	inv := mat.NewDense(n+1, n+1, nil)
	eye := mat.NewDiagDense(n+1, nil)
	for i := 0; i <= n; i++ {
		eye.SetDiag(i, 1)
	}
	if err := lu.SolveTo(inv, false, eye); err != nil {
		return nil, fmt.Errorf("kriging: %w: %v", ErrKrigingSystem, err)
	}
	d := make([]float64, n+1)
	for i := range d {
		d[i] = dual.AtVec(i)
	}
	return &OrdinaryKriging{pts: pts, vg: vg, dual: d, inv: inv}, nil
}

// Weights returns the kriging weights λ and the Lagrange multiplier μ for a
// target (x, y). It is meant for inspection and tests; Predict is faster.
func (k *OrdinaryKriging) Weights(x, y float64) (lambda []float64, mu float64) {
	n := len(k.pts)
	b := k.rhs(x, y, make([]float64, n+1))
	sol := make([]float64, n+1)
	for i := 0; i <= n; i++ {
		var s float64
		for j, bj := range b {
			s += k.inv.At(i, j) * bj
		}
		sol[i] = s
	}
	return sol[:n], sol[n]
}

func (k *OrdinaryKriging) rhs(x, y float64, b []float64) []float64 {
	for i, p := range k.pts {
		b[i] = k.vg.Value(math.Hypot(x-p[0], y-p[1]))
	}
	b[len(k.pts)] = 1
	return b
}

// Predict returns the estimate and the kriging variance at (x, y).
func (k *OrdinaryKriging) Predict(x, y float64) (est, variance float64) {
	e, v := k.PredictMany([][2]float64{{x, y}})
	return e[0], v[0]
}

// krigeBlock is the number of targets whose variances share one matrix
// product.
const krigeBlock = 256

// PredictMany returns estimates and kriging variances at many targets.
// Variances that round below zero are returned as zero.
func (k *OrdinaryKriging) PredictMany(targets [][2]float64) (est, variance []float64) {
	n1 := len(k.pts) + 1
	est = make([]float64, len(targets))
	variance = make([]float64, len(targets))
	bbuf := make([]float64, krigeBlock*n1)
	cbuf := make([]float64, krigeBlock*n1)
	inv := k.inv.RawMatrix()
	for start := 0; start < len(targets); start += krigeBlock {
		m := min(krigeBlock, len(targets)-start)
		bm := blas64.General{Rows: m, Cols: n1, Stride: n1, Data: bbuf[:m*n1]}
		cm := blas64.General{Rows: m, Cols: n1, Stride: n1, Data: cbuf[:m*n1]}
		for r := 0; r < m; r++ {
			t := targets[start+r]
			row := k.rhs(t[0], t[1], bbuf[r*n1:(r+1)*n1])
			var s float64
			for j, bj := range row {
				s += bj * k.dual[j]
			}
			est[start+r] = s
		}
		// C = B·A⁻¹; then σ²_r = C_r·B_r.
		blas64.Gemm(blas.NoTrans, blas.NoTrans, 1, bm, inv, 0, cm)
		for r := 0; r < m; r++ {
			var s float64
			b := bbuf[r*n1 : (r+1)*n1]
			c := cbuf[r*n1 : (r+1)*n1]
			for j := range b {
				s += b[j] * c[j]
			}
			if s < 0 {
				s = 0
			}
			variance[start+r] = s
		}
	}
	return est, variance
}
