package live

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// observer is an independent MQTT 5 client (Eclipse Paho).
type observer struct {
	c    *paho.Client
	msgs chan *paho.Publish
}

func newObserver(t testing.TB, addr, id string, filters ...string) *observer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{msgs: make(chan *paho.Publish, 1000)}
	o.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) { o.msgs <- pr.Packet; return true, nil },
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ack, err := o.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 0}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v %+v", err, ack)
	}
	t.Cleanup(func() { o.c.Disconnect(&paho.Disconnect{}) })
	for _, f := range filters {
		if _, err := o.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// next returns the next message that satisfies ok, within d.
func (o *observer) next(t testing.TB, d time.Duration, what string, ok func(p *paho.Publish) bool) *paho.Publish {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-o.msgs:
			if ok(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

// TestSimulatorFaultsEndToEnd runs the simulator's robot over MQTT against
// the service over MQTT (as `citymesh run robot` would), with the robot
// uploading its pictures to the service's HTTP API: the blocked escape
// route and the excursion from the corridor open one incident each, the
// escape route's with the picture, whose bytes the URL serves; an
// acknowledgement over MQTT is answered on the response topic, and an
// independent subscriber (mosquitto_sub) then finds the retained incident
// and its alarm acknowledged.
func TestSimulatorFaultsEndToEnd(t *testing.T) {
	_, addr := testBroker(t)
	cfg := testConfig(t)
	s, err := New("robot", cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.HTTPHandler())
	defer srv.Close()
	s.cfg.PublicURL = srv.URL

	ctx, cancel := context.WithCancel(context.Background())
	rb, err := bus.DialRemote(ctx, bus.RemoteOptions{URL: "mqtt://" + addr, ClientID: "svc-robot"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, service.NewTestEnv("robot", rb, service.NewMemoryStore().State("robot"), nil))
	}()
	defer func() { cancel(); <-done; rb.Close() }()
	waitFor(t, 10*time.Second, "the service running", func() bool { return s.cur.Load() != nil })

	obs := newObserver(t, addr, "watcher", "robot/campus/incident/+/state", "alarm/#")

	// The robot: the first patrol, 20 minutes, over MQTT 5.
	m, err := campus.Load(campusFile)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sim.NewMQTTOutput(sim.MQTTOptions{URL: "mqtt://" + addr, Version: mqtt.V5, PerPublisher: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sim.NewPlayer(sim.PlayerConfig{Campus: m, Seed: 7, Start: simStart, Until: simStart.Add(20 * time.Minute), Faults: simFaults(t),
		Outputs: sim.Outputs{Robot: out}, Pictures: &Uploader{BaseURL: srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if st := p.Stats(); st.Pictures != 1 {
		t.Fatalf("the robot published %d pictures, want 1 (stats %+v)", st.Pictures, st)
	}

	incidents := map[robot.AnomalyKind]Incident{}
	for len(incidents) < 2 {
		msg := obs.next(t, 20*time.Second, "incident", func(p *paho.Publish) bool { return strings.HasSuffix(p.Topic, "/state") })
		var inc Incident
		if err := json.Unmarshal(msg.Payload, &inc); err != nil {
			t.Fatal(err)
		}
		incidents[inc.Kind] = inc
	}
	esc, off := incidents[robot.AnomalyEscapeRouteBlocked], incidents[robot.AnomalyOffCorridor]
	if esc.ID == "" || off.ID == "" {
		t.Fatalf("incidents: %+v", incidents)
	}
	if off.Asset != "loomi" || off.State != robot.StateNew {
		t.Errorf("corridor incident: %+v", off)
	}
	// No third incident: wait until the robot's last position is handled.
	waitFor(t, 20*time.Second, "the last position", func() bool {
		ps := s.cur.Load().lastProgress()
		return len(ps) == 1 && !ps[0].Time.Before(simStart.Add(20*time.Minute-time.Second))
	})
	if n := len(s.cur.Load().book.list(func(*Incident) bool { return true })); n != 2 {
		t.Errorf("%d incidents, want 2", n)
	}

	// The picture, by its URL.
	if len(esc.Pictures) != 1 {
		t.Fatalf("escape route incident's pictures: %+v", esc.Pictures)
	}
	pic := esc.Pictures[0]
	resp, err := http.Get(pic.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(body)
	if resp.StatusCode != 200 || "sha256:"+hex.EncodeToString(sum[:]) != pic.Hash || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s: %s, %s, %d bytes hashing to %x, want %s", pic.URL, resp.Status, resp.Header.Get("Content-Type"), len(body), sum, pic.Hash)
	}
	if etag := resp.Header.Get("ETag"); etag != `"sha256-`+hex.EncodeToString(sum[:])+`"` {
		t.Errorf("ETag %s", etag)
	}
	req, _ := http.NewRequest("GET", pic.URL, nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %v %v", resp.Status, err)
	}

	// Acknowledge over MQTT, with a response topic.
	cmd := newObserver(t, addr, "anna-console", "replies/anna/#")
	_, err = cmd.c.Publish(context.Background(), &paho.Publish{Topic: "robot/campus/incident/" + esc.ID + "/acknowledge", QoS: 1,
		Payload:    []byte(`{"by": "anna", "note": "boxes being moved"}`),
		Properties: &paho.PublishProperties{ResponseTopic: "replies/anna/1", CorrelationData: []byte("c-1")}})
	if err != nil {
		t.Fatal(err)
	}
	rep := cmd.next(t, 10*time.Second, "reply", func(p *paho.Publish) bool { return p.Topic == "replies/anna/1" })
	var reply Reply
	if err := json.Unmarshal(rep.Payload, &reply); err != nil || !reply.OK || reply.Result != "acknowledged" || !bytes.Equal(rep.Properties.CorrelationData, []byte("c-1")) {
		t.Fatalf("reply %s (%v)", rep.Payload, err)
	}
	// The same command again (a redelivery) changes nothing.
	cmd.c.Publish(context.Background(), &paho.Publish{Topic: "robot/campus/incident/" + esc.ID + "/acknowledge", QoS: 1,
		Payload: []byte(`{"by": "anna"}`), Properties: &paho.PublishProperties{ResponseTopic: "replies/anna/2"}})
	rep = cmd.next(t, 10*time.Second, "reply", func(p *paho.Publish) bool { return p.Topic == "replies/anna/2" })
	if err := json.Unmarshal(rep.Payload, &reply); err != nil || !reply.OK || reply.Result != "unchanged" {
		t.Fatalf("reply %s (%v)", rep.Payload, err)
	}
	obs.next(t, 10*time.Second, "acknowledged state", func(p *paho.Publish) bool {
		return p.Topic == IncidentTopic("campus", esc.ID) && bytes.Contains(p.Payload, []byte(`"state":"acknowledged"`))
	})

	// An independent subscriber that comes later finds the retained states.
	host, port, _ := net.SplitHostPort(addr)
	sub := func(topic string) []byte {
		out, err := exec.Command("mosquitto_sub", "-V", "mqttv5", "-h", host, "-p", port, "-t", topic, "-C", "1", "-W", "10").Output()
		if err != nil {
			t.Fatalf("mosquitto_sub %s: %v", topic, err)
		}
		return out
	}
	var got Incident
	if err := json.Unmarshal(sub(IncidentTopic("campus", esc.ID)), &got); err != nil {
		t.Fatal(err)
	}
	last := got.Audit[len(got.Audit)-1]
	if got.State != robot.StateAcknowledged || last.Actor != "anna" || last.Note != "boxes being moved" || len(got.Pictures) != 1 {
		t.Errorf("retained incident: %+v", got)
	}
	// The progress is published at most every 250 ms: the last one, of
	// the last fix, comes within that.
	var pr Progress
	waitFor(t, 10*time.Second, "the last progress retained", func() bool {
		if err := json.Unmarshal(sub(ProgressTopic("campus", "loomi")), &pr); err != nil {
			t.Fatal(err)
		}
		return !pr.Time.Before(simStart.Add(20*time.Minute - time.Second))
	})
	reached := 0
	for _, w := range pr.Waypoints {
		if w.State == robot.WaypointReached {
			reached++
		}
	}
	if pr.Route != "loomi-night-patrol" || len(pr.Waypoints) != len(s.cfg.routes["loomi"].Waypoints) || reached < 5 || pr.Progress <= 0 || pr.CorridorM != 6 {
		t.Errorf("retained progress: route %s, %d waypoints, %d reached, progress %.2f, corridor %v", pr.Route, len(pr.Waypoints), reached, pr.Progress, pr.CorridorM)
	}
	var a alarm.Alarm
	if err := json.Unmarshal(sub(esc.Alarm), &a); err != nil {
		t.Fatal(err)
	}
	if !a.Acknowledged || a.Status != alarm.Active || a.Severity != alarm.Critical {
		t.Errorf("retained alarm: %+v", a)
	}
}
