package twin

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/paulmach/orb"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
)

// referenceFed returns the reference campus's state with a value for every
// numeric point, and the events that gave them (one per asset, as the
// building gateways and connectors publish).
func referenceFed(b *testing.B) (*State, []event.Topic, []event.Event) {
	b.Helper()
	m, err := campus.Load("../examples/campus/campus.yaml")
	if err != nil {
		b.Fatal(err)
	}
	s := NewState(m)
	src := event.Source{Type: event.SourceSimulator, Service: "bench"}
	var topics []event.Topic
	var events []event.Event
	for _, a := range s.assets {
		var vals []event.Value
		for _, pi := range a.points {
			p := s.points[pi].p
			if p.Topic.Event != event.EventMeasurement && p.Topic.Event != event.EventReading {
				continue
			}
			vals = append(vals, event.Value{Point: p.ID, Value: float64(pi), Unit: p.Unit})
		}
		for len(vals) > 0 {
			n := min(len(vals), 1000)
			topics = append(topics, s.points[a.points[0]].p.Topic)
			events = append(events, event.NewMeasurement(a.a.ID, t0, src, vals[:n]...))
			vals = vals[n:]
		}
	}
	for i := range events {
		if _, err := s.Apply(topics[i], events[i], t0, nil); err != nil {
			b.Fatal(err)
		}
	}
	return s, topics, events
}

// BenchmarkApplyCampus applies one value of every numeric point of the
// reference campus (an event per asset): one op is the campus at 1 Hz for
// one second.
func BenchmarkApplyCampus(b *testing.B) {
	s, topics, events := referenceFed(b)
	values := 0
	for _, e := range events {
		values += len(e.(*event.Measurement).Values)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		at := t0.Add(time.Duration(i+1) * time.Second)
		for j, e := range events {
			e.Head().Time = at
			s.Apply(topics[j], e, at, nil)
		}
	}
	b.ReportMetric(float64(values)*float64(b.N)/b.Elapsed().Seconds(), "values/s")
}

// BenchmarkLatest10k asks the HTTP API for the latest state of 10,000
// points in one POST.
func BenchmarkLatest10k(b *testing.B) {
	s, _, _ := referenceFed(b)
	var ids []string
	for i := 0; i < 10000; i++ {
		ids = append(ids, `"`+s.points[i*3].p.ID+`"`)
	}
	body := `{"ids":[` + strings.Join(ids, ",") + `]}`
	h := Handler(s, HandlerOptions{})
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/api/v1/twin/points/query", strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkGeoCampus selects the points within a polygon over the whole
// reference campus (and its vineyards).
func BenchmarkGeoCampus(b *testing.B) {
	s, _, _ := referenceFed(b)
	bd := orb.Bound{Min: orb.Point{180, 90}, Max: orb.Point{-180, -90}}
	for _, p := range s.points {
		bd = bd.Extend(p.p.Location)
	}
	q := Query{Within: bd.Pad(0.001).ToPolygon()}
	n := 0
	for b.Loop() {
		r, err := s.Points(q)
		if err != nil {
			b.Fatal(err)
		}
		n = r.Total
	}
	if n != len(s.points) {
		b.Fatalf("%d of %d points", n, len(s.points))
	}
}

// BenchmarkRecoverCampus recovers the reference campus's state from its
// retained twin messages on an in-process broker.
func BenchmarkRecoverCampus(b *testing.B) {
	s, _, _ := referenceFed(b)
	br := broker.New(broker.Options{SysInterval: -1})
	defer br.Close()
	pub, err := bus.NewLocal(br, "pub")
	if err != nil {
		b.Fatal(err)
	}
	defer pub.Close()
	ctx := context.Background()
	for _, i := range s.takeDirty(nil) {
		topic, payload, err := s.snapshotJSON(DefaultPrefix, i, t0, map[*event.Source][]byte{})
		if err != nil {
			b.Fatal(err)
		}
		if err := pub.Publish(ctx, bus.Message{Topic: topic, Payload: payload, QoS: 1, Retain: true}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		tb, _ := bus.NewLocal(br, "")
		svc, _ := NewService(Options{Model: s.model, Bus: tb, Logger: discard})
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(cctx) }()
		<-svc.Ready()
		cancel()
		<-done
		tb.Close()
		if r := svc.Recovered(); !r.Complete || r.Points == 0 {
			b.Fatalf("recovery %+v", r)
		}
		b.ReportMetric(float64(svc.Recovered().Points), "points")
	}
}

// BenchmarkBuildingQuery selects one building's temperatures in the
// reference campus, as the dashboard and the API's clients do (the twin
// query of docs/benchmarks.md's API latency figures).
func BenchmarkBuildingQuery(b *testing.B) {
	s, _, _ := referenceFed(b)
	building := s.model.Buildings[len(s.model.Buildings)/2].ID
	q := Query{Building: building, Quantity: "temperature"}
	n := 0
	for b.Loop() {
		r, err := s.Points(q)
		if err != nil {
			b.Fatal(err)
		}
		n = r.Total
	}
	if n == 0 {
		b.Fatalf("no temperature in building %s", building)
	}
}
