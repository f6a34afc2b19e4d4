package energy

import (
	"fmt"
	"math"
	"sort"

	"github.com/shopspring/decimal"
)

var (
	minHeatingShare = decimal.RequireFromString("0.5")
	maxHeatingShare = decimal.RequireFromString("0.7")
	cent            = decimal.New(1, -2)
)

// finiteNonNegative reports whether v is a number in [0, +Inf).
func finiteNonNegative(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }

func checkHeatingShare(s decimal.Decimal) error {
	if s.LessThan(minHeatingShare) || s.GreaterThan(maxHeatingShare) {
		return fmt.Errorf("consumption share %s is outside 0.5..0.7 (HeizkostenV §7 (1): at least 50, at most 70 per cent by measured consumption)", s)
	}
	return nil
}

// HeatingUser is one user (tenant) in a heating-cost split: measured heat
// consumption (any unit, the same for all users) and area in m².
type HeatingUser struct {
	ID          string  `json:"id"`
	Consumption float64 `json:"consumption"`
	AreaM2      float64 `json:"area_m2"`
}

// HeatingShare is one user's part of a heating cost.
type HeatingShare struct {
	ID string `json:"id"`
	// ByConsumption is the consumption-based part, ByArea the area-based
	// (Grundkosten) part, Total their sum; all in currency units, rounded
	// to the cent.
	ByConsumption decimal.Decimal `json:"by_consumption"`
	ByArea        decimal.Decimal `json:"by_area"`
	Total         decimal.Decimal `json:"total"`
}

// SplitHeatingCost splits a central-heating operating cost under
// HeizkostenV §7 (1): share (0.5..0.7) of cost by the users' measured heat
// consumption, the rest by area:
//
//	cost_i = C·s·E_i/ΣE + C·(1−s)·A_i/ΣA
//
// Each of the two parts is rounded to the cent by the largest-remainder
// method (ties by user ID), so the parts add up exactly to C·s (rounded to
// the cent) and to C minus that.
func SplitHeatingCost(cost, share decimal.Decimal, users []HeatingUser) ([]HeatingShare, error) {
	if err := checkHeatingShare(share); err != nil {
		return nil, fmt.Errorf("heating split: %w", err)
	}
	if cost.IsNegative() {
		return nil, fmt.Errorf("heating split: cost %s is negative", cost)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("heating split: no users")
	}
	var sumE, sumA float64
	seen := map[string]bool{}
	for _, u := range users {
		if u.ID == "" || seen[u.ID] {
			return nil, fmt.Errorf("heating split: user ID %q is empty or repeated", u.ID)
		}
		seen[u.ID] = true
		if !finiteNonNegative(u.Consumption) || !finiteNonNegative(u.AreaM2) {
			return nil, fmt.Errorf("heating split: user %s: consumption %v and area %v must be finite non-negative numbers", u.ID, u.Consumption, u.AreaM2)
		}
		sumE += u.Consumption
		sumA += u.AreaM2
	}
	if !(sumE > 0) || !(sumA > 0) || math.IsInf(sumE, 0) || math.IsInf(sumA, 0) {
		return nil, fmt.Errorf("heating split: total consumption %v and total area %v must be positive and finite", sumE, sumA)
	}
	total := cost.Round(2)
	consPart := total.Mul(share).Round(2)
	areaPart := total.Sub(consPart)
	we := make([]decimal.Decimal, len(users))
	wa := make([]decimal.Decimal, len(users))
	for i, u := range users {
		we[i] = decimal.NewFromFloat(u.Consumption)
		wa[i] = decimal.NewFromFloat(u.AreaM2)
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
	}
	ce := apportion(consPart, we, ids)
	ca := apportion(areaPart, wa, ids)
	out := make([]HeatingShare, len(users))
	for i, u := range users {
		out[i] = HeatingShare{ID: u.ID, ByConsumption: ce[i], ByArea: ca[i], Total: ce[i].Add(ca[i])}
	}
	return out, nil
}

// apportion splits amount (whole cents) in proportion to weights, rounding
// down to cents and giving the remaining cents to the largest remainders
// (ties broken by id), so the parts sum exactly to amount.
func apportion(amount decimal.Decimal, weights []decimal.Decimal, ids []string) []decimal.Decimal {
	sum := decimal.Zero
	for _, w := range weights {
		sum = sum.Add(w)
	}
	out := make([]decimal.Decimal, len(weights))
	if sum.IsZero() {
		for i := range out {
			out[i] = decimal.Zero
		}
		return out
	}
	rem := make([]decimal.Decimal, len(weights))
	given := decimal.Zero
	for i, w := range weights {
		exact := amount.Mul(w).DivRound(sum, 16)
		out[i] = exact.RoundFloor(2)
		rem[i] = exact.Sub(out[i])
		given = given.Add(out[i])
	}
	left := amount.Sub(given).Div(cent).IntPart()
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		ra, rb := rem[order[a]], rem[order[b]]
		if !ra.Equal(rb) {
			return ra.GreaterThan(rb)
		}
		return ids[order[a]] < ids[order[b]]
	})
	for k := int64(0); k < left && len(order) > 0; k++ {
		i := order[int(k)%len(order)]
		out[i] = out[i].Add(cent)
	}
	return out
}
