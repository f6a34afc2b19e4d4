package vineyard

import (
	"fmt"
	"math"
	"time"
)

// BotrytisConfig holds the settings of the Broome et al. (1995) model. A zero
// field takes the default named in its comment.
type BotrytisConfig struct {
	// ClampLowC and ClampHighC bound the hourly temperature used in the
	// equation (12.2 and 32.2 °C, GrapeCast's 54 and 90 °F); hours above
	// IgnoreAboveC (40 °C, 104 °F) do not count as wet hours.
	ClampLowC, ClampHighC, IgnoreAboveC float64
	// MaxWetHours caps W (0: no cap; one public implementation caps at 16 h).
	MaxWetHours int
}

func (c BotrytisConfig) withDefaults() BotrytisConfig {
	orDefault(&c.ClampLowC, 12.2)
	orDefault(&c.ClampHighC, 32.2)
	orDefault(&c.IgnoreAboveC, 40)
	return c
}

func (c BotrytisConfig) validate() error {
	if err := finite("botrytis", map[string]float64{
		"low clamp": c.ClampLowC, "high clamp": c.ClampHighC, "ignore above": c.IgnoreAboveC,
	}); err != nil {
		return err
	}
	switch {
	case c.ClampHighC < c.ClampLowC:
		return fmt.Errorf("botrytis: clamp range %g–%g °C is empty", c.ClampLowC, c.ClampHighC)
	case c.MaxWetHours < 0:
		return fmt.Errorf("botrytis: wet-hour cap %d is negative", c.MaxWetHours)
	}
	return nil
}

// BroomeIndex returns the Broome et al. (1995) infection index
// ln(Y/(1−Y)) = −2.647866 − 0.374927·W + 0.061601·W·T − 0.001511·W·T²
// for a wet period of w hours at mean temperature t °C (Phytopathology
// 85:97–102; coefficients as printed by Monteiro et al. 2015 and GrapeCast).
func BroomeIndex(w, t float64) float64 {
	return -2.647866 - 0.374927*w + 0.061601*w*t - 0.001511*w*t*t
}

// BroomeProbability turns an index into the proportion of infected berries,
// Y = 1/(1 + e^−index) (inverse of the logit).
func BroomeProbability(index float64) float64 {
	return 1 / (1 + math.Exp(-index))
}

// BroomeLevel returns GrapeCast's band of an index: ≤ 0 none, below 0.5
// low, below 1.0 moderate, from 1.0 high.
func BroomeLevel(index float64) Level {
	switch {
	case index <= 0:
		return None
	case index < 0.5:
		return Low
	case index < 1:
		return Moderate
	default:
		return High
	}
}

// BotrytisPeriod is one wet period with its Broome index at its end and its
// highest level.
type BotrytisPeriod struct {
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	WetHours  int       `json:"wet_hours"`
	MeanTempC float64   `json:"mean_temp_c"`
	Index     float64   `json:"index"`
	// Probability is the proportion of infected berries the index stands for.
	Probability float64 `json:"probability"`
	Level       Level   `json:"level"`
}

// botrytisStep is one wet hour's running state.
type botrytisStep struct {
	i     int
	w     int
	mean  float64
	index float64
}

// botrytis walks the wet periods (runs of consecutive wet hours; a dry hour
// or a gap ends one) and calls f with the running index at each wet hour.
func botrytis(hours []Hour, der []Derived, c BotrytisConfig, f func(p *BotrytisPeriod, s botrytisStep)) []BotrytisPeriod {
	out := []BotrytisPeriod{}
	var cur *BotrytisPeriod
	var sum float64
	w := 0
	for i, h := range hours {
		if i > 0 && !consecutive(hours, i) {
			cur = nil // a gap ends the wet period, also before a hot hour
		}
		if h.TempC > c.IgnoreAboveC {
			continue // not conducive, neither wet nor dry (GrapeCast)
		}
		if !der[i].Wet {
			cur = nil
			continue
		}
		if cur == nil {
			out = append(out, BotrytisPeriod{From: h.Time})
			cur = &out[len(out)-1]
			sum, w = 0, 0
		}
		t := math.Min(math.Max(h.TempC, c.ClampLowC), c.ClampHighC)
		sum += t
		w++
		mean := sum / float64(w)
		ww := w
		if c.MaxWetHours > 0 && ww > c.MaxWetHours {
			ww = c.MaxWetHours
		}
		idx := BroomeIndex(float64(ww), mean)
		cur.To, cur.WetHours, cur.MeanTempC, cur.Index = h.Time, w, mean, idx
		cur.Probability = BroomeProbability(idx)
		if lv := BroomeLevel(idx); lv > cur.Level {
			cur.Level = lv
		}
		if f != nil {
			f(cur, botrytisStep{i: i, w: w, mean: mean, index: idx})
		}
	}
	return out
}
