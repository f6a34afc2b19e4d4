package ngsild

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// TestAppendJSON checks the hand-written encoder against encoding/json.
func TestAppendJSON(t *testing.T) {
	values := []any{
		0.0, 1.0, -1.5, 21.5, 1e-7, 1.5e-7, 1e20, 1e21, 1.2345e21, 249653798.56, math.MaxFloat64, math.SmallestNonzeroFloat64, -0.000001,
		0, 42, -7,
		"", "forum", `a "quoted" \\ text`, "<b>&</b>", "Königstraße", "tab\there", "\u2028", string([]byte{0xff, 'x'}),
		[]string{"sensor", "meter"}, []string{},
		geojson.NewGeometry(orb.Point{9.2086135, 49.1494936}),
		geojson.NewGeometry(orb.Polygon{{{9, 49}, {10, 49}, {10, 50}, {9, 49}}}),
		[][2]any{{21.5, "2026-05-12T09:30:00.000Z"}}, [][3]any{{2.0, "a", "b"}}, []any{1.5, "x"},
		map[string]int{"fallback": 1},
	}
	for _, v := range values {
		got, err := appendJSON(nil, v)
		want, err2 := json.Marshal(v)
		if err != nil || err2 != nil || string(got) != string(want) {
			t.Errorf("%#v: %s, encoding/json %s (%v %v)", v, got, want, err, err2)
		}
	}
	o := object{{"id", "x"}, {"v", object{{"n", 1.5}}}, {"l", []object{{{"a", 1}}}}}
	got, err := appendJSON(nil, o)
	if err != nil || string(got) != `{"id":"x","v":{"n":1.5},"l":[{"a":1}]}` {
		t.Errorf("object: %s %v", got, err)
	}
	if b, _ := json.Marshal(o); string(b) != string(got) {
		t.Errorf("MarshalJSON %s", b)
	}
}
