package robot

import (
	"math"
	"sort"
	"time"
)

// DurationStats summarises durations in seconds. Percentiles use the
// nearest-rank method: the p-th percentile of n sorted values is the value
// at rank ⌈p/100 · n⌉.
type DurationStats struct {
	N     int     `json:"n"`
	MeanS float64 `json:"mean_s"`
	P50S  float64 `json:"p50_s"`
	P90S  float64 `json:"p90_s"`
	P95S  float64 `json:"p95_s"`
	MaxS  float64 `json:"max_s"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of the
// sorted values, 0 when there are none.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

func summarise(ds []time.Duration) DurationStats {
	if len(ds) == 0 {
		return DurationStats{}
	}
	xs := make([]float64, len(ds))
	var sum float64
	for i, d := range ds {
		xs[i] = d.Seconds()
		sum += xs[i]
	}
	sort.Float64s(xs)
	return DurationStats{
		N:     len(xs),
		MeanS: sum / float64(len(xs)),
		P50S:  Percentile(xs, 50),
		P90S:  Percentile(xs, 90),
		P95S:  Percentile(xs, 95),
		MaxS:  xs[len(xs)-1],
	}
}

// ResponseStats are response-time figures over a set of incidents.
type ResponseStats struct {
	// Kind is the anomaly kind, "" for all kinds together.
	Kind      AnomalyKind `json:"kind,omitempty"`
	Incidents int         `json:"incidents"`
	// Open counts incidents in new, acknowledged or in_progress.
	Open int `json:"open"`
	// Unacknowledged counts incidents still new.
	Unacknowledged int `json:"unacknowledged"`
	// TimeToAcknowledge: from opening to first leaving new (cancellations
	// straight from new are not counted).
	TimeToAcknowledge DurationStats `json:"time_to_acknowledge"`
	// TimeToResolve: from opening to the latest resolution, for incidents
	// that are resolved or closed now.
	TimeToResolve DurationStats `json:"time_to_resolve"`
}

// ResponseTimes computes response-time figures for all incidents together
// and per anomaly kind (sorted by kind).
func ResponseTimes(incs []Incident) (all ResponseStats, byKind []ResponseStats) {
	type acc struct {
		st       ResponseStats
		tta, ttr []time.Duration
	}
	total := &acc{}
	kinds := map[AnomalyKind]*acc{}
	for _, inc := range incs {
		k := kinds[inc.Kind]
		if k == nil {
			k = &acc{st: ResponseStats{Kind: inc.Kind}}
			kinds[inc.Kind] = k
		}
		for _, a := range []*acc{total, k} {
			a.st.Incidents++
			if inc.State.Open() {
				a.st.Open++
			}
			if inc.State == StateNew {
				a.st.Unacknowledged++
			}
			if !inc.AcknowledgedAt.IsZero() {
				a.tta = append(a.tta, inc.AcknowledgedAt.Sub(inc.OpenedAt))
			}
			if !inc.ResolvedAt.IsZero() && (inc.State == StateResolved || inc.State == StateClosed) {
				a.ttr = append(a.ttr, inc.ResolvedAt.Sub(inc.OpenedAt))
			}
		}
	}
	finish := func(a *acc) ResponseStats {
		a.st.TimeToAcknowledge = summarise(a.tta)
		a.st.TimeToResolve = summarise(a.ttr)
		return a.st
	}
	all = finish(total)
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, string(k))
	}
	sort.Strings(names)
	for _, n := range names {
		byKind = append(byKind, finish(kinds[AnomalyKind(n)]))
	}
	return all, byKind
}
