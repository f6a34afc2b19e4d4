package soil

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/optimize"
)

// Model is a semivariogram model family.
type Model int

// The supported models. The zero value is Spherical, ArcGIS's default for
// ordinary kriging (KrigingModelOrdinary). Auto asks FitAuto to choose the
// family with the smallest weighted fit error.
const (
	Spherical Model = iota
	Exponential
	Gaussian
	Auto
)

// String returns the model name used on the command line.
func (m Model) String() string {
	switch m {
	case Spherical:
		return "spherical"
	case Exponential:
		return "exponential"
	case Gaussian:
		return "gaussian"
	case Auto:
		return "auto"
	}
	return fmt.Sprintf("Model(%d)", int(m))
}

// ParseModel parses "spherical", "exponential", "gaussian" or "auto".
func ParseModel(s string) (Model, error) {
	for _, m := range []Model{Spherical, Exponential, Gaussian, Auto} {
		if strings.EqualFold(strings.TrimSpace(s), m.String()) {
			return m, nil
		}
	}
	return 0, fmt.Errorf("variogram %q: want spherical, exponential, gaussian or auto", s)
}

// Variogram is a fitted semivariogram: a model family with nugget n, total
// sill (nugget plus partial sill) and practical range r in metres, the
// distance at which the model reaches (about 95 % of) the sill. The forms
// follow PyKrige's documentation (docs/source/variogram_models.rst), with
// p = Sill − Nugget:
//
//	spherical:   γ(h) = p·(3h/(2r) − h³/(2r³)) + n   for h ≤ r, p + n beyond
//	exponential: γ(h) = p·(1 − exp(−h/(r/3))) + n
//	gaussian:    γ(h) = p·(1 − exp(−h²/((4r/7)²))) + n
//
// γ(0) = 0: the nugget is the limit as h → 0⁺, so kriging stays exact at the
// samples. Lags below ZeroLag count as zero, so that a target that differs
// from a sample only by coordinate round-off still gets the sample's value.
type Variogram struct {
	Model  Model   `json:"model"`
	Nugget float64 `json:"nugget"`
	Sill   float64 `json:"sill"`
	Range  float64 `json:"range_m"`
}

// Value returns γ(h) for a lag distance h in metres.
func (v Variogram) Value(h float64) float64 {
	if h < ZeroLag {
		return 0
	}
	p := v.Sill - v.Nugget
	r := v.Range
	switch v.Model {
	case Exponential:
		return p*(1-math.Exp(-3*h/r)) + v.Nugget
	case Gaussian:
		a := 4 * r / 7
		return p*(1-math.Exp(-(h*h)/(a*a))) + v.Nugget
	default:
		if h >= r {
			return p + v.Nugget
		}
		q := h / r
		return p*(1.5*q-0.5*q*q*q) + v.Nugget
	}
}

// ZeroLag is the lag distance in metres (1 µm) below which two points are
// the same point for the variogram.
const ZeroLag = 1e-6

// Lag is one bin of an empirical semivariogram: the mean pair distance in
// metres, the semivariance γ̂ = Σ(zi − zj)²/(2N) and the number of pairs N.
type Lag struct {
	Distance float64 `json:"distance_m"`
	Gamma    float64 `json:"gamma"`
	Pairs    int     `json:"pairs"`
}

// Empirical returns the empirical semivariogram of values z at points
// (x, y in metres) in nLags equal bins over (0, maxLag]. With maxLag ≤ 0 it
// uses half the largest pair distance, a common rule of thumb; with
// nLags ≤ 0 it uses 12 bins, and it uses at most MaxLags bins. Empty bins
// are left out. Points without a value (when z is shorter) are ignored.
func Empirical(pts [][2]float64, z []float64, nLags int, maxLag float64) []Lag {
	n := min(len(pts), len(z))
	if nLags <= 0 {
		nLags = 12
	}
	nLags = min(nLags, MaxLags)
	if maxLag <= 0 {
		var dmax float64
		for i := 0; i < n; i++ {
			for j := i + 1; j < n; j++ {
				dmax = math.Max(dmax, dist(pts[i], pts[j]))
			}
		}
		maxLag = dmax / 2
	}
	if maxLag <= 0 {
		return nil
	}
	sumD := make([]float64, nLags)
	sumG := make([]float64, nLags)
	cnt := make([]int, nLags)
	width := maxLag / float64(nLags)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			d := dist(pts[i], pts[j])
			if d < ZeroLag || d > maxLag {
				continue
			}
			b := int(math.Ceil(d/width)) - 1
			if b >= nLags {
				b = nLags - 1
			}
			if b < 0 {
				b = 0
			}
			dz := z[i] - z[j]
			sumD[b] += d
			sumG[b] += dz * dz
			cnt[b]++
		}
	}
	var out []Lag
	for b := range cnt {
		if cnt[b] == 0 {
			continue
		}
		out = append(out, Lag{Distance: sumD[b] / float64(cnt[b]), Gamma: sumG[b] / (2 * float64(cnt[b])), Pairs: cnt[b]})
	}
	return out
}

// MaxLags is the most bins Empirical uses; the bins are allocated up front,
// so the count is bounded whatever a caller asks for.
const MaxLags = 1000

func dist(a, b [2]float64) float64 { return math.Hypot(a[0]-b[0], a[1]-b[1]) }

// ErrFit reports that no variogram could be fitted.
var ErrFit = errors.New("variogram fit failed")

// Fit fits model m (not Auto) to the empirical semivariogram lags by weighted
// least squares with gstat's default weights Nj/hj² (fit.method = 7), and
// returns the variogram and the weighted root-mean-square error
// sqrt(Σ wj(γ̂j − γ(hj))² / Σ wj). It needs at least three lags. The search
// is gonum's Nelder–Mead simplex (optimize.NelderMead) over unbounded
// variables that map onto the sill (log scale), the nugget's share of the
// sill (0…1, logistic) and the range (0…4 × the largest lag distance,
// logistic), started from nine fixed points, so the result is deterministic.
func Fit(lags []Lag, m Model) (Variogram, float64, error) {
	if m == Auto || m < Spherical || m > Auto {
		return Variogram{}, 0, fmt.Errorf("%w: model %v cannot be fitted directly", ErrFit, m)
	}
	if len(lags) < 3 {
		return Variogram{}, 0, fmt.Errorf("%w: %d lag bins with pairs, need at least 3", ErrFit, len(lags))
	}
	var gmax, hmax, wsum float64
	w := make([]float64, len(lags))
	for i, l := range lags {
		if !(l.Distance > 0) || math.IsNaN(l.Gamma) || math.IsInf(l.Gamma, 0) || l.Pairs <= 0 {
			return Variogram{}, 0, fmt.Errorf("%w: lag %d is invalid", ErrFit, i)
		}
		gmax = math.Max(gmax, l.Gamma)
		hmax = math.Max(hmax, l.Distance)
		w[i] = float64(l.Pairs) / (l.Distance * l.Distance)
		wsum += w[i]
	}
	if !(gmax > 0) {
		return Variogram{}, 0, fmt.Errorf("%w: the empirical semivariogram is zero (constant values)", ErrFit)
	}
	rmax := 4 * hmax
	decode := func(u []float64) Variogram {
		sill := gmax * math.Exp(u[0])
		return Variogram{Model: m, Sill: sill, Nugget: sill * logistic(u[1]), Range: rmax * logistic(u[2])}
	}
	// The objective is the weighted squared error divided by Σ wj·γ̂max², so
	// that it has no unit and the convergence tolerances below mean the same
	// for every data set.
	scale := wsum * gmax * gmax
	obj := func(u []float64) float64 {
		v := decode(u)
		var s float64
		for i, l := range lags {
			d := l.Gamma - v.Value(l.Distance)
			s += w[i] * d * d
		}
		if math.IsNaN(s) {
			return math.Inf(1)
		}
		return s / scale
	}
	best := math.Inf(1)
	var bestU []float64
	for _, nf := range []float64{0.01, 0.2, 0.5} {
		for _, rf := range []float64{0.25, 0.5, 1} {
			x0 := []float64{0, logit(nf), logit(rf * hmax / rmax)}
			res, err := optimize.Minimize(optimize.Problem{Func: obj}, x0, fitSettings(), &optimize.NelderMead{
				// The coefficients of Nelder & Mead (1965): reflection 1,
				// expansion 2, contraction ½, shrink ½; the first simplex
				// adds 0.5 to each variable of the start in turn.
				Reflection: 1, Expansion: 2, Contraction: 0.5, Shrink: 0.5, SimplexSize: 0.5,
			})
			if err != nil {
				continue // the start itself has no finite objective; try the others
			}
			if res.F < best {
				best, bestU = res.F, res.X
			}
		}
	}
	if bestU == nil || math.IsInf(best, 0) {
		return Variogram{}, 0, fmt.Errorf("%w: the optimiser found no finite fit", ErrFit)
	}
	v := decode(bestU)
	if v.Nugget < 1e-9*v.Sill {
		v.Nugget = 0
	}
	if !(v.Sill > 0) || !(v.Range > 0) || math.IsInf(v.Sill, 0) {
		return Variogram{}, 0, fmt.Errorf("%w: degenerate parameters (sill %g, range %g)", ErrFit, v.Sill, v.Range)
	}
	return v, gmax * math.Sqrt(best), nil
}

// FitAuto fits the spherical, exponential and Gaussian models and returns
// the one with the smallest weighted fit error (ties keep that order).
func FitAuto(lags []Lag) (Variogram, float64, error) {
	var (
		best    Variogram
		bestErr = math.Inf(1)
		errs    []error
	)
	for _, m := range []Model{Spherical, Exponential, Gaussian} {
		v, e, err := Fit(lags, m)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if e < bestErr {
			best, bestErr = v, e
		}
	}
	if math.IsInf(bestErr, 0) {
		return Variogram{}, 0, errors.Join(errs...)
	}
	return best, bestErr, nil
}

// fitSettings returns the stopping rules of one Nelder–Mead run in Fit: at
// most 3000 iterations, and a stop once the best normalised objective has
// not fallen by more than 1e-13 + 1e-10 of itself in 20 iterations. On
// noise-free semivariograms this recovers the parameters to 2e-7 or better.
func fitSettings() *optimize.Settings {
	return &optimize.Settings{
		MajorIterations: 3000,
		Converger:       &optimize.FunctionConverge{Absolute: 1e-13, Relative: 1e-10, Iterations: 20},
	}
}

func logistic(u float64) float64 { return 1 / (1 + math.Exp(-u)) }
func logit(p float64) float64    { return math.Log(p / (1 - p)) }

// MarshalText encodes the model as its name.
func (m Model) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText decodes a model name (see ParseModel).
func (m *Model) UnmarshalText(b []byte) error {
	v, err := ParseModel(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
