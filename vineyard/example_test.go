package vineyard_test

import (
	"fmt"
	"strings"

	"github.com/citymesh/citymesh/vineyard"
)

// A wet night of 16 hours at 20 °C, read from CSV and assessed for Botrytis
// with the Broome et al. (1995) index.
func ExampleAssess() {
	var b strings.Builder
	b.WriteString("time,temp_c,rh_pct,rain_mm\n")
	for h := range 18 {
		rh := 95
		if h == 0 || h == 17 {
			rh = 60
		}
		fmt.Fprintf(&b, "2026-06-01T%02d:00:00+02:00,20,%d,0\n", h, rh)
	}
	w, err := vineyard.ReadCSV(strings.NewReader(b.String()))
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := vineyard.Assess(w, vineyard.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	day := a.Risk[2].Days[0]
	fmt.Println(a.Risk[2].Disease, day.Date, day.Level)
	fmt.Println(day.Reasons[0].Text)
	// Output:
	// botrytis 2026-06-01 high
	// Broome index 1.40 (P(infected berry) 80 %): 16 wet hours at 20.0 °C
}
