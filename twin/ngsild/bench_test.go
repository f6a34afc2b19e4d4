package ngsild

import (
	"net/http/httptest"
	"testing"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin"
)

// referenceState returns the reference campus's state (35,666 points) with
// a value for every numeric point.
func referenceState(b *testing.B) *twin.State {
	b.Helper()
	m, err := campus.Load("../../examples/campus/campus.yaml")
	if err != nil {
		b.Fatal(err)
	}
	s := twin.NewState(m)
	src := event.Source{Type: event.SourceSimulator, Service: "bench"}
	byAsset := map[string][]event.Value{}
	topic := map[string]event.Topic{}
	for i, p := range m.Points {
		if p.Topic.Event != event.EventMeasurement && p.Topic.Event != event.EventReading {
			continue
		}
		byAsset[p.Asset] = append(byAsset[p.Asset], event.Value{Point: p.ID, Value: float64(i % 100), Unit: p.Unit})
		topic[p.Asset] = p.Topic
	}
	for a, vals := range byAsset {
		if _, err := s.Apply(topic[a], event.NewMeasurement(a, t0, src, vals...), t0, nil); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkQueryEntities answers NGSI-LD queries over the reference
// campus: a page of 1,000 rooms, a q filter over all rooms, a geo-query
// over every device, one entity.
func BenchmarkQueryEntities(b *testing.B) {
	h := Handler(referenceState(b), nil, Options{})
	for _, bc := range []struct{ name, target string }{
		{"rooms page 1000", "entities?type=IndoorEnvironmentObserved&limit=1000"},
		{"q over all rooms", "entities?type=IndoorEnvironmentObserved&q=temperature>95;co2>=0&limit=1000&count=true"},
		{"near over all assets", "entities?georel=near;maxDistance==200&geometry=Point&coordinates=[9.2125,49.1482]&limit=1000&options=keyValues"},
		{"one entity", "entities/urn:ngsi-ld:Building:b01"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest("GET", Prefix+bc.target, nil))
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
