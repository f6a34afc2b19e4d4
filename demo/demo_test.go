package demo_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/pahotest"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/sim"
)

// watchConfig configures the watch, a kind of service registered for these
// tests only, with a demo configuration.
type watchConfig struct {
	Site string `yaml:"site"`
	// model is the campus, given by the demo configuration as it is:
	// YAML does not carry it.
	model *campus.Model
}

func (c *watchConfig) Check() error {
	if c.Site == "" || c.model == nil {
		return errors.New("site and the model are required")
	}
	return nil
}

// watch runs until it is stopped; watchSite is the site of its
// configuration.
type watch struct{ name string }

var watchSite atomic.Value

func (w *watch) Name() string { return w.name }
func (w *watch) Run(ctx context.Context, env *service.Env) error {
	env.Running()
	<-ctx.Done()
	return nil
}

func init() {
	service.Register("watch", "watches (a test service)", func(name string, c watchConfig) (service.Service, error) {
		watchSite.Store(c.Site)
		return &watch{name: name}, nil
	})
	service.RegisterDemo("watch", func(m *campus.Model) any { return watchConfig{Site: m.Sites[0].ID, model: m} })
}

// waitDemo polls cond until it holds, for 30 s at most.
func waitDemo(t *testing.T, what string, cond func() bool, explain func() string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%s)", what, explain())
		}
	}
}

var (
	smallCampus = filepath.Join("..", "examples", "campus", "small", "campus.yaml")
	codecs      = filepath.Join("..", "examples", "campus", "codecs")
	start       = time.Date(2026, 5, 12, 7, 0, 0, 0, sim.Berlin)
)

// options are a demo of the small campus on ports the system chooses, at
// half an hour a second.
func options(t *testing.T) demo.Options {
	return demo.Options{MQTT: "127.0.0.1:0", WS: "127.0.0.1:0", HTTP: "127.0.0.1:0", NetworkServer: "127.0.0.1:0",
		Data: t.TempDir(), Campus: smallCampus, Codecs: codecs, Seed: 3, Start: start, Speed: 1800, RobotEvery: 30 * time.Second,
		StatsEvery: 500 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
}

// seen is what the subscriber found so far, each event valid by its
// schema and the campus model.
type seen struct {
	deviceTypes map[string]bool // device types with a measurement
	counts      map[string]int  // by the topic's event level
	pictures    []*event.Picture
}

func check(t *testing.T, m *campus.Model, msgs []*paho.Publish) seen {
	t.Helper()
	s := seen{deviceTypes: map[string]bool{}, counts: map[string]int{}}
	for _, p := range msgs {
		tp, err := event.ParseTopic(p.Topic)
		if err != nil {
			t.Fatalf("%s: %v", p.Topic, err)
		}
		k, ok := tp.EventKind()
		if !ok {
			continue // a service's result (an invoice, ESG figures): its own tests check it
		}
		if err := event.ValidateJSON(k, p.Payload); err != nil {
			t.Fatalf("%s: schema: %v\n%s", p.Topic, err, p.Payload)
		}
		e, err := event.Decode(k, p.Payload)
		if err != nil {
			t.Fatalf("%s: %v", p.Topic, err)
		}
		if err := m.Check(tp, e); err != nil {
			t.Fatalf("%s: %v\n%s", p.Topic, err, p.Payload)
		}
		if p.Properties == nil || p.Properties.ContentType != event.ContentType {
			t.Errorf("%s: content type %+v", p.Topic, p.Properties)
		}
		s.counts[tp.Event]++
		switch e := e.(type) {
		case *event.Measurement:
			if d, ok := m.Device(e.Asset); ok {
				s.deviceTypes[d.Type.ID] = true
			}
		case *event.Picture:
			s.pictures = append(s.pictures, e)
		}
	}
	return s
}

// TestDemo runs the demo of the small campus in-process: an Eclipse Paho
// subscriber of the node gets measurements of every device type (decoded
// by the connectors from the network server endpoint's uplinks), the
// uplinks' radio metadata, the devices' statuses, meter readings, room
// measurements, robot positions, checks and a picture whose bytes the
// node's HTTP listener serves, every event valid by its schema and the
// campus model; /metrics has the connectors' counts; cancelling the
// context stops it with every goroutine ended, and no building gateway's
// will published: a node started on its store afterwards has them online.
func TestDemo(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opts := options(t)
	fs, err := sim.NewFaultSet([]sim.Fault{{Kind: sim.FaultCheckFails, Asset: "b01-escape", Start: start, Duration: 6 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	opts.Faults = fs
	d, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.Start(ctx); err != nil {
		d.Close()
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() {
		<-ctx.Done()
		ran <- d.Close()
	}()
	var banner strings.Builder
	if err := d.WriteBanner(&banner); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"mqtt://" + d.Addr(node.ListenerMQTT).String(), "mqtt://" + d.Addr(demo.ListenerNetworkServer).String(),
		"citymesh sub -p ", "dashboard", "http://" + d.Addr(node.ListenerHTTP).String() + "/ ", "/api/v1/twin/", "/api/v1/services", "/api/v1/alarms", "services' health: ", "/ngsi-ld/v1/", "'vineyard/#'", "'energy/+/meter/+/reading'", "v3/hn-wartberg-vineyards@ttn/devices/+/up"} {
		if !strings.Contains(banner.String(), want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner.String())
		}
	}
	// The services section runs every registered kind (here the test's
	// watch), with its demo configuration.
	svcURL := "http://" + d.Addr(node.ListenerHTTP).String() + node.ServicesPrefix
	var health string
	waitDemo(t, "the watch service to run at "+svcURL, func() bool {
		resp, err := http.Get(svcURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var l service.ServiceList
		b, _ := io.ReadAll(resp.Body)
		health = string(b)
		json.Unmarshal(b, &l)
		for _, h := range l.Services {
			if h.Name == "watch" {
				return resp.StatusCode == 200 && h.Status == service.StatusRunning
			}
		}
		return false
	}, func() string { return health })
	resp, err := http.Get("http://" + d.Addr(node.ListenerHTTP).String() + alarm.APIPrefix)
	if err != nil {
		t.Fatal(err)
	}
	alarms, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(alarms), `"alarms":[`) {
		t.Errorf("GET %s: %d %s", alarm.APIPrefix, resp.StatusCode, alarms)
	}
	if !strings.Contains(banner.String(), "watch") {
		t.Errorf("the banner does not name the watch service:\n%s", banner.String())
	}
	m := d.Model()
	if watchSite.Load() != m.Sites[0].ID {
		t.Errorf("the watch service's demo configuration: site %v, want %s", watchSite.Load(), m.Sites[0].ID)
	}
	types := map[string]bool{}
	for _, dev := range m.Devices {
		types[dev.Type.ID] = true
	}

	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	col := pahotest.Subscribe(t, sctx, d.Addr(node.ListenerMQTT).String(), pahotest.Options{ClientID: "dashboard"}, "vineyard/#", "energy/#", "building/#", "robot/#")
	var s seen
	deadline := time.Now().Add(60 * time.Second)
	for {
		s = check(t, m, col.Messages())
		if len(s.deviceTypes) == len(types) && len(s.pictures) > 0 && s.counts[event.EventReading] > 0 && s.counts[event.EventUplink] > 0 &&
			s.counts[event.EventPosition] > 0 && s.counts[event.EventCheck] > 0 && s.counts[event.EventStatus] > 0 && s.counts[event.EventMeasurement] > len(m.Devices) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60 s: device types %v of %d, events %v, %d pictures", s.deviceTypes, len(types), s.counts, len(s.pictures))
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The picture's bytes, at its URL on the node's HTTP listener.
	pic := s.pictures[0]
	if !strings.HasPrefix(pic.URL, "http://"+d.Addr(node.ListenerHTTP).String()+"/pictures/") {
		t.Errorf("picture URL %s is not on the node's HTTP listener", pic.URL)
	}
	resp, err = http.Get(pic.URL)
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(png)
	if resp.StatusCode != 200 || "sha256:"+hex.EncodeToString(sum[:]) != pic.Hash || int64(len(png)) != pic.Size {
		t.Errorf("GET %s: %d, %d bytes, hash %x, want %s", pic.URL, resp.StatusCode, len(png), sum, pic.Hash)
	}
	resp, err = http.Get("http://" + d.Addr(node.ListenerHTTP).String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"citymesh_connector_uplinks_received_total", "citymesh_connector_connected", "citymesh_messages_received_total"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The twin holds the campus's values, on the node's HTTP listener;
	// asked with Debian's curl where it is installed.
	twinURL := "http://" + d.Addr(node.ListenerHTTP).String() + "/api/v1/twin/points?kind=meter&limit=5"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var body []byte
		if curl, err := exec.LookPath("curl"); err == nil {
			body, err = exec.Command(curl, "-sS", "--fail", twinURL).Output()
			if err != nil {
				t.Fatalf("curl %s: %v", twinURL, err)
			}
		} else {
			resp, err := http.Get(twinURL)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		var l struct {
			Count  int `json:"count"`
			Points []struct {
				Value *float64 `json:"value"`
			} `json:"points"`
		}
		if err := json.Unmarshal(body, &l); err != nil || l.Count != 5 {
			t.Fatalf("GET %s: %s (%v)", twinURL, body, err)
		}
		if l.Points[0].Value != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the twin has no meter value after 30 s: %s", body)
		}
	}
	// The twin in NGSI-LD, asked as a FIWARE client would, with curl: the
	// main electricity meter as a Device entity whose activeEnergyImport
	// is a Property with observedAt and unitCode, the JSON-LD @context in
	// the body.
	ngsiURL := "http://" + d.Addr(node.ListenerHTTP).String() + "/ngsi-ld/v1/entities?type=Device&q=" +
		url.QueryEscape("activeEnergyImport>=0") + "&limit=1&count=true"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var body []byte
		var count string
		if curl, err := exec.LookPath("curl"); err == nil {
			out, err := exec.Command(curl, "-sS", "--fail", "-i", "-H", "Accept: application/ld+json", ngsiURL).Output()
			if err != nil {
				t.Fatalf("curl %s: %v", ngsiURL, err)
			}
			head, b, _ := strings.Cut(strings.ReplaceAll(string(out), "\r\n", "\n"), "\n\n")
			body = []byte(b)
			for _, line := range strings.Split(head, "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "NGSILD-Results-Count") {
					count = strings.TrimSpace(v)
				}
			}
		} else {
			req, _ := http.NewRequest("GET", ngsiURL, nil)
			req.Header.Set("Accept", "application/ld+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			count = resp.Header.Get("NGSILD-Results-Count")
		}
		var list []struct {
			ID      string   `json:"id"`
			Type    string   `json:"type"`
			Context []string `json:"@context"`
			Energy  struct {
				Type       string   `json:"type"`
				Value      *float64 `json:"value"`
				ObservedAt string   `json:"observedAt"`
				UnitCode   string   `json:"unitCode"`
			} `json:"activeEnergyImport"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			t.Fatalf("GET %s: %s (%v)", ngsiURL, body, err)
		}
		if len(list) == 1 {
			e := list[0]
			if !strings.HasPrefix(e.ID, "urn:ngsi-ld:Device:") || e.Type != "Device" || e.Energy.Type != "Property" || e.Energy.Value == nil ||
				e.Energy.ObservedAt == "" || e.Energy.UnitCode != "KWH" || len(e.Context) != 2 || count == "" || count == "0" {
				t.Fatalf("GET %s: count %q, %s", ngsiURL, count, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("NGSI-LD has no meter with a value after 30 s: %s", body)
		}
	}
	// The twin's history answers PromQL under /prometheus, as a Grafana
	// data source asks it.
	promURL := "http://" + d.Addr(node.ListenerHTTP).String() + demo.HistoryPrefix + "/api/v1/series?match[]=" +
		url.QueryEscape(`citymesh_point_value{asset_kind="meter"}`) + "&start=" + strconv.FormatInt(start.Unix(), 10) +
		"&end=" + strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(promURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var r struct {
			Status string              `json:"status"`
			Data   []map[string]string `json:"data"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
			t.Fatalf("GET %s: %d %s (%v)", promURL, resp.StatusCode, body, err)
		}
		if len(r.Data) > 0 && r.Data[0]["asset_kind"] == "meter" && r.Data[0]["point"] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the history has no meter series after 30 s: %s", body)
		}
	}
	http.DefaultClient.CloseIdleConnections()

	st := d.Stats()
	if st.Connectors.Decoded == 0 || st.Connectors.Online == 0 || st.Events[event.EventReading] == 0 || st.Events[event.EventPosition] == 0 ||
		st.Sim.Uplinks == 0 || !st.SimTime.After(start) {
		t.Errorf("stats %+v", st)
	}
	if n := st.Connectors.Failed["codec"] + st.Connectors.Failed["parse"] + st.Connectors.Failed["unknown_device"]; n != 0 {
		t.Errorf("the connectors failed %d uplinks: %v", n, st.Connectors.Failed)
	}
	col.Close()

	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30 s")
	}

	// The store was closed cleanly, and the building gateways and the
	// robot disconnected: their retained statuses say online.
	cfg := node.Default()
	cfg.MQTT, cfg.WS, cfg.HTTP, cfg.Data, cfg.SysIntervalSeconds = "127.0.0.1:0", "off", "off", opts.Data, -1
	n, err := node.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	l, err := bus.NewLocal(n.Broker(), "after")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	statuses := make(chan bus.Message, 16)
	if err := l.Subscribe(context.Background(), "+/+/gateway/+/status", 0, func(_ context.Context, m bus.Message) { statuses <- m }); err != nil {
		t.Fatal(err)
	}
	if err := l.Subscribe(context.Background(), "+/+/robot/+/status", 0, func(_ context.Context, m bus.Message) { statuses <- m }); err != nil {
		t.Fatal(err)
	}
	want := len(m.Robots)
	for _, g := range m.Gateways {
		if g.GatewayKind == campus.GatewayBuilding {
			want++
		}
	}
	for range want {
		select {
		case msg := <-statuses:
			var st event.Status
			if err := json.Unmarshal(msg.Payload, &st); err != nil || st.State != event.Online {
				t.Errorf("%s after the demo stopped: %s", msg.Topic, msg.Payload)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("fewer than %d retained statuses", want)
		}
	}
}

// TestDemoRunEndsWithContext: Run returns nil when its context ends, with
// every goroutine ended, also at full speed (a virtual clock, until a
// simulated end).
func TestDemoRunEndsWithContext(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opts := options(t)
	opts.Store, opts.HTTP, opts.WS = "memory", "off", "off"
	opts.Clock = sim.NewVirtualClock(start)
	opts.Until = start.Add(2 * time.Hour)
	d, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for !d.Stats().SimTime.Equal(opts.Until) && !d.Stats().SimTime.After(opts.Until.Add(-time.Minute)) {
		if time.Now().After(deadline) {
			t.Fatalf("the simulation reached %v, not %v", d.Stats().SimTime, opts.Until)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := d.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// TestDemoRefuses: options that cannot run are refused, each saying what
// is wrong; a busy port and a store in use too.
func TestDemoRefuses(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(*demo.Options)
		want   string
	}{
		{"no campus", func(o *demo.Options) { o.Campus = "nowhere.yaml" }, "campus"},
		{"no codecs", func(o *demo.Options) { o.Codecs = "nowhere" }, "codecs"},
		{"negative speed", func(o *demo.Options) { o.Speed = -1 }, "speed"},
		{"no copies", func(o *demo.Options) { o.Copies = -1 }, "copies"},
		{"until before start", func(o *demo.Options) { o.Until = start.Add(-time.Hour) }, "not after the start"},
		{"virtual clock without end", func(o *demo.Options) { o.Clock = sim.NewVirtualClock(start) }, "give Until"},
		{"no network server", func(o *demo.Options) { o.NetworkServer = "off" }, "cannot be off"},
		{"bad address", func(o *demo.Options) { o.MQTT = "nonsense" }, "mqtt"},
		{"bad store", func(o *demo.Options) { o.Store = "tape" }, "store"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := options(t)
			c.change(&o)
			d, err := demo.New(o)
			if err == nil {
				d.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v, want %q in it", err, c.want)
			}
		})
	}
	t.Run("store in use", func(t *testing.T) {
		o := options(t)
		d, err := demo.New(o)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		_, err = demo.New(o)
		var inUse *node.StoreInUseError
		if !errors.As(err, &inUse) {
			t.Fatalf("a second demo on the same data: %v", err)
		}
	})
	t.Run("network server port busy", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		o := options(t)
		o.NetworkServer = ln.Addr().String()
		d, err := demo.New(o)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "network server") {
			t.Fatalf("Start on a busy port: %v", err)
		}
	})
}
