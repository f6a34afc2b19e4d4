package ngsild

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// shape returns the structure of a JSON value: an object's members and
// their shapes, an array's element shape (or, when its elements differ, as
// in a [value, time] pair, each element's), and the JSON type of a scalar.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = shape(e)
		}
		return m
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		shapes := make([]any, len(x))
		same := true
		for i, e := range x {
			shapes[i] = shape(e)
			same = same && reflect.DeepEqual(shapes[i], shapes[0])
		}
		if same {
			return []any{shapes[0]}
		}
		return map[string]any{"tuple": shapes}
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return "null"
}

// TestSpecExamples compares the structure of responses with the example
// documents of the NGSI-LD specification's representations in
// testdata/examples (README.md there names the clauses): the same members,
// with values of the same types.
func TestSpecExamples(t *testing.T) {
	s, hist := fixture(t)
	h := Handler(s, hist, Options{Now: func() time.Time { return t0 }})
	at := func(i int) string { return t0.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }
	tests := []struct {
		file, target, accept string
		// pairs maps the example's members to the response's.
		pairs map[string]string
		// every: every member of the response has the shape of one of
		// the example's.
		every bool
	}{
		{"entity-normalized.jsonld", "entities/" + room1, "application/ld+json",
			map[string]string{"id": "id", "type": "type", "@context": "@context", "speed": "temperature",
				"isParked": "refBuilding", "location": "location"}, true},
		// A room has no name; a building has, and a footprint.
		{"entity-normalized.jsonld", "entities/" + b01, "application/ld+json",
			map[string]string{"id": "id", "type": "type", "@context": "@context", "brandName": "name"}, false},
		{"entity-keyvalues.json", "entities/" + room1 + "?options=keyValues", "application/json",
			map[string]string{"id": "id", "type": "type", "speed": "temperature", "isParked": "refBuilding",
				"location": "location"}, true},
		{"entity-keyvalues.json", "entities/" + b01 + "?options=keyValues", "application/json",
			map[string]string{"id": "id", "type": "type", "brandName": "name"}, false},
		{"temporal-normalized.json", "temporal/entities/" + room1 + "?attrs=temperature&lastN=2", "application/json",
			map[string]string{"id": "id", "type": "type", "speed": "temperature"}, true},
		{"temporal-values.json", "temporal/entities/" + room1 + "?attrs=temperature&lastN=2&options=temporalValues", "",
			map[string]string{"id": "id", "type": "type", "speed": "temperature"}, true},
		{"temporal-aggregated.json", "temporal/entities/" + room1 + "?attrs=temperature&format=aggregatedValues&aggrMethods=avg,max" +
			"&aggrPeriodDuration=PT4M&timerel=between&timeAt=" + at(0) + "&endTimeAt=" + at(8), "",
			map[string]string{"id": "id", "type": "type", "speed": "temperature"}, true},
		{"problem.json", "entities/urn:ngsi-ld:Building:nosuch", "", map[string]string{"type": "type", "title": "title", "detail": "detail"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.file+" "+tc.target, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "examples", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var example, got map[string]any
			if err := json.Unmarshal(b, &example); err != nil {
				t.Fatal(err)
			}
			w := do(t, h, Prefix+tc.target, "Accept", tc.accept)
			if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%d %s: %v", w.Code, w.Body, err)
			}
			for ek, gk := range tc.pairs {
				es, gs := shape(example[ek]), shape(got[gk])
				if !reflect.DeepEqual(es, gs) {
					t.Errorf("%s: %s is %v, the example's %s %v\n%s", tc.target, gk, gs, ek, es, w.Body)
				}
			}
			if tc.every {
				for gk, gv := range got {
					found := false
					for _, ev := range example {
						if reflect.DeepEqual(shape(gv), shape(ev)) {
							found = true
						}
					}
					if !found && gk != "id" && gk != "type" {
						t.Errorf("%s: %s has the shape %v, which no member of the example has", tc.target, gk, shape(gv))
					}
				}
			}
		})
	}
}
