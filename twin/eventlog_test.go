package twin

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin/history"
)

// TestRecorder: status, check, picture, position and uplink events
// published on a broker's bus land in the history's event log with their
// asset, asset kind, site, tenant, type, time and topic; measurements do
// not; events of unknown assets and invalid payloads are counted, not
// kept; and the history's retention per asset kind removes them as it
// removes samples.
func TestRecorder(t *testing.T) {
	now := t0
	db, err := history.Open(t.TempDir(), history.Options{Logger: discard, KindRetention: map[string]time.Duration{"robot": time.Hour},
		RetentionInterval: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := broker.New(broker.Options{SysInterval: -1})
	defer b.Close()
	rb, err := bus.NewLocal(b, "recorder")
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	if _, err := NewRecorder(RecorderOptions{Model: small(t), Bus: rb, Log: db.Events(), Kinds: []event.Kind{event.KindMeasurement}}); err == nil {
		t.Error("a recorder of measurements was not refused")
	}
	if _, err := NewRecorder(RecorderOptions{Model: small(t), Bus: rb}); err == nil {
		t.Error("a recorder without a log was not refused")
	}
	rec, err := NewRecorder(RecorderOptions{Model: small(t), Bus: rb, Log: db.Events(), FlushEvery: 10 * time.Millisecond, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	<-rec.Ready()

	pb, err := bus.NewLocal(b, "publisher")
	if err != nil {
		t.Fatal(err)
	}
	defer pb.Close()
	robot := event.Source{Type: event.SourceRobot}
	robotTopic := func(ev string) event.Topic {
		return event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "loomi", ev)
	}
	old := t0.Add(-3 * time.Hour)
	probe := event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-01", event.EventStatus)
	ok := false
	pubs := []struct {
		topic event.Topic
		e     event.Event
	}{
		{robotTopic(event.EventStatus), event.NewStatus("loomi", old, robot, event.Online, event.ReasonRouteStarted)},
		{robotTopic(event.EventCheck), &event.Check{Header: event.Header{Time: t0, Asset: "loomi", Source: robot},
			Point: "loomi/check/b01-light", Route: "campus-patrol", Waypoint: "wp1", Check: "b01-light", CheckKind: event.CheckLighting,
			Target: "b01", Observed: "off", Expected: "on", OK: &ok, Anomaly: &event.Anomaly{Kind: "lighting_wrong_state", Severity: "low"},
			Picture: "sha256:" + strings.Repeat("ab", 32)}},
		{robotTopic(event.EventPicture), &event.Picture{Header: event.Header{Time: t0.Add(time.Second), Asset: "loomi", Source: robot},
			Hash: "sha256:" + strings.Repeat("ab", 32), ContentType: "image/jpeg", Size: 1000, URL: "http://127.0.0.1/pictures/a.jpg", Check: "b01-light"}},
		{robotTopic(event.EventPosition), &event.Position{Header: event.Header{Time: t0.Add(2 * time.Second), Asset: "loomi", Source: robot},
			Point: "loomi/position", Lat: 49.1494, Lon: 9.2083}},
		{probe, event.NewStatus("soil-probe-01", old, event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"}, event.Offline, event.ReasonSilent)},
		// Not kept: a measurement (a number), an unknown asset.
		{roomTopic("b01-0.01"), event.NewMeasurement("b01-0.01", t0, building, event.Value{Point: "b01-0.01/temperature", Value: 21, Unit: event.Celsius})},
		{event.NewTopic(event.DomainRobot, "campus", event.AssetRobot, "ghost", event.EventStatus), event.NewStatus("ghost", t0, robot, event.Online, event.ReasonStarted)},
	}
	for _, p := range pubs {
		m, err := event.NewMessage(p.topic, p.e)
		if err != nil {
			t.Fatal(err)
		}
		if err := pb.Publish(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := pb.Publish(context.Background(), bus.Message{Topic: robotTopic(event.EventStatus).String(), Payload: []byte("{"), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := rec.Stats(); st.Written < 5 || st.Invalid+st.Unknown < 2; st = rec.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: want 5 written, 1 invalid, 1 unknown", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st := rec.Stats(); st.Written != 5 || st.Invalid != 1 || st.Unknown != 1 || st.Received != 7 {
		t.Errorf("stats %+v: want 7 received, 5 written, 1 invalid, 1 unknown", st)
	}
	evs, err := db.Events().Query(context.Background(), "loomi", old, t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
		if e.AssetKind != "robot" || e.Site != "campus" || e.Tenant != "campus-service" || !strings.HasPrefix(e.Source, "robot/campus/robot/loomi/") {
			t.Errorf("event %+v", e)
		}
	}
	if strings.Join(types, ",") != "status,check,picture,position" {
		t.Fatalf("loomi's events: %v", types)
	}
	var check event.Check
	if err := json.Unmarshal(evs[1].Data, &check); err != nil || check.Anomaly == nil || check.Anomaly.Kind != "lighting_wrong_state" || !evs[1].Time.Equal(t0) {
		t.Errorf("the check's data %s: %v", evs[1].Data, err)
	}
	probeEvs, _ := db.Events().Query(context.Background(), "soil-probe-01", old, t0, 0)
	if len(probeEvs) != 1 || probeEvs[0].Tenant != "wartberg-growers" || probeEvs[0].Site != "wartberg" || probeEvs[0].AssetKind != "device" {
		t.Fatalf("the probe's events: %+v", probeEvs)
	}

	// Retention: the robots' events are kept an hour, the devices' the
	// history's retention.
	now = t0.Add(30 * time.Minute)
	if err := db.ApplyRetention(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs, _ = db.Events().Query(context.Background(), "loomi", old, t0.Add(time.Hour), 0)
	if len(evs) != 3 || evs[0].Type != "check" {
		t.Errorf("after the robots' retention: %d events of loomi, want the 3 of the last hour", len(evs))
	}
	if probeEvs, _ = db.Events().Query(context.Background(), "soil-probe-01", old, t0, 0); len(probeEvs) != 1 {
		t.Errorf("after the robots' retention: %d events of the probe, want 1", len(probeEvs))
	}
}
