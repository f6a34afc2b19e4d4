package sim

import "math"

// Every random number in the simulator is a pure function of a seed, a
// stream (what the number is for) and a key (usually a time index), so any
// value can be computed on its own, in any order, and the same inputs always
// give the same number. There is no shared generator state to advance.

// stream names what a random number is used for, so that two uses of the
// same seed and key never see the same number.
type stream uint64

// Streams. The values are arbitrary distinct constants; changing one changes
// every simulated series that uses it.
const (
	stTempSlow stream = iota + 0x5157_0000_0000_0001
	stTempFast
	stTempLocal
	stCloudFast
	stCloudSlow
	stRainStrat
	stRainConv
	stRainHour
	stRainLocal
	stDewDep
	stWindSlow
	stWindFast
	stWindDir
	stGust
	stPressure
	stScenario
	stSoilField
	stSoilNoise
	stSoilSeason
	stLoadDay
	stLoadMinute
	stLoadQuarter
	stWaterDraws
	stWaterVolume
	stMeterInit
	stRoomSlot
	stRoomFill
	stRoomOffice
	stRoomWindow
	stRoomNoise
	stRobotSpeed
	stRobotGPSSlow
	stRobotGPSWhite
	stRobotValue
	stJitter
	stPhase
	stDelivery
	stPicture
	// Streams of the campus player (appended, so the models' streams keep
	// their values).
	stULID
	stUUID
	stShadow
	stFading
	stChannel
	stSession
	stFCnt
	stBattery
	stLatency
	stGatewayClock
	stSensorNoise
	stDuplicate
)

// mix64 is the SplitMix64 finaliser (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", OOPSLA 2014): a bijective
// scrambler of 64-bit words with good avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hash returns the random word of seed, stream s and key k.
func hash(seed uint64, s stream, k int64) uint64 {
	return mix64(seed ^ mix64(uint64(s)^mix64(uint64(k)+0x9e3779b97f4a7c15)))
}

// unit returns a uniform number in [0, 1) for seed, stream and key.
func unit(seed uint64, s stream, k int64) float64 {
	return float64(hash(seed, s, k)>>11) * 0x1p-53
}

// gauss returns a standard normal number for seed, stream and key
// (Box–Muller on two words of the key).
func gauss(seed uint64, s stream, k int64) float64 {
	h1 := hash(seed, s, 2*k)
	h2 := hash(seed, s, 2*k+1)
	u1 := (float64(h1>>11) + 0.5) * 0x1p-53 // (0, 1)
	u2 := float64(h2>>11) * 0x1p-53
	return math.Sqrt(-2*math.Log(u1)) * math.Cos(2*math.Pi*u2)
}

// SeedOf derives the seed of a named thing (a site, a building, a device)
// from the simulation's seed, so that every model gets its own independent
// numbers and adding a device does not change any other device's values.
// The name is hashed with 64-bit FNV-1a and scrambled with the seed.
func SeedOf(seed uint64, name string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return mix64(seed ^ mix64(h))
}

// noise returns smooth Gaussian noise with mean 0 and standard deviation 1
// at position x (in knots): standard normal values at the integers,
// interpolated by a uniform cubic B-spline and divided by the spline's
// standard deviation at x, so the variance is 1 everywhere. Its correlation
// length is about one knot.
func noise(seed uint64, s stream, x float64) float64 {
	fi := math.Floor(x)
	i := int64(fi)
	f := x - fi
	g0 := gauss(seed, s, i-1)
	g1 := gauss(seed, s, i)
	g2 := gauss(seed, s, i+1)
	g3 := gauss(seed, s, i+2)
	f2 := f * f
	f3 := f2 * f
	w0 := (1 - 3*f + 3*f2 - f3) / 6
	w1 := (4 - 6*f2 + 3*f3) / 6
	w2 := (1 + 3*f + 3*f2 - 3*f3) / 6
	w3 := f3 / 6
	sd := math.Sqrt(w0*w0 + w1*w1 + w2*w2 + w3*w3)
	return (w0*g0 + w1*g1 + w2*g2 + w3*g3) / sd
}

// field2D is a stationary Gaussian random field in the plane with mean 0,
// variance 1 and a Gaussian covariance exp(−r²/(2ℓ²)), built from random
// Fourier features (Rahimi and Recht, "Random features for large-scale
// kernel machines", NIPS 2007): f(x) = √(2/M) Σ cos(ωᵢ·x + φᵢ) with ωᵢ
// drawn from N(0, I/ℓ²) and φᵢ uniform in [0, 2π).
type field2D struct {
	wx, wy, phase []float64
}

// fieldFeatures is the number of Fourier features of a field2D; with 64 the
// field's one-point distribution is close to normal and evaluation costs 64
// cosines.
const fieldFeatures = 64

func newField2D(seed uint64, lengthM float64) field2D {
	f := field2D{
		wx:    make([]float64, fieldFeatures),
		wy:    make([]float64, fieldFeatures),
		phase: make([]float64, fieldFeatures),
	}
	for i := range fieldFeatures {
		k := int64(i)
		f.wx[i] = gauss(seed, stSoilField, 3*k) / lengthM
		f.wy[i] = gauss(seed, stSoilField, 3*k+1) / lengthM
		f.phase[i] = 2 * math.Pi * unit(seed, stSoilField, 3*k+2)
	}
	return f
}

// at returns the field's value at (x, y) metres.
func (f field2D) at(x, y float64) float64 {
	var s float64
	for i := range f.wx {
		s += math.Cos(f.wx[i]*x + f.wy[i]*y + f.phase[i])
	}
	return s * math.Sqrt(2.0/float64(len(f.wx)))
}

// poisson returns a Poisson-distributed count with mean lambda from a
// uniform number u in [0, 1), by inverting the distribution function.
// lambda is expected to be small (the loop runs about lambda + 1 times; it
// stops at 1000).
func poisson(lambda, u float64) int {
	if lambda <= 0 {
		return 0
	}
	p := math.Exp(-lambda)
	c := p
	k := 0
	for u >= c && k < 1000 {
		k++
		p *= lambda / float64(k)
		c += p
	}
	return k
}

func clamp(v, lo, hi float64) float64 { return math.Min(hi, math.Max(lo, v)) }

// smoothstep is 0 below 0, 1 above 1 and 3x²−2x³ between.
func smoothstep(x float64) float64 {
	x = clamp(x, 0, 1)
	return x * x * (3 - 2*x)
}
