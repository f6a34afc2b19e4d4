// Package e2e holds the end-to-end test of the LoRaWAN path with real
// processes: `citymesh sim` publishes The Things Stack's and ChirpStack's
// uplinks to a Mosquitto that plays both network servers' MQTT
// endpoints, the connectors read them there — in a `citymesh serve`
// process with a connectors section, or as `citymesh run connector` —
// and an Eclipse Paho subscriber of citymesh checks every event against
// its schema, the campus model and the simulator's ground truth.
//
// It needs Mosquitto (Debian package mosquitto) and is skipped, with a
// message, without it.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/lorawantest"
	"github.com/citymesh/citymesh/internal/pahotest"
	"github.com/citymesh/citymesh/internal/testproc"
	"github.com/citymesh/citymesh/sim"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testproc.Cleanup()
	os.Exit(code)
}

var (
	smallCampus = abs("../../examples/campus/small/campus.yaml")
	codecDir    = abs("../../examples/campus/codecs")
	faultsFile  = abs("../../examples/sim/campus-faults.yaml")
)

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

// The simulated span: 12 hours of the small campus from 7 o'clock on the
// day of the example fault scenario (gateway outages, a silent device,
// duplicates through another gateway, rejoins on both servers), with an
// out-of-order device besides and every third uplink of every device
// sent twice.
const (
	simStart    = "2026-05-12T07:00:00+02:00"
	simDuration = "12h"
)

// proc is a citymesh process of the test.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *testproc.Buffer
	done chan error
}

// start runs the citymesh binary with args; the process is killed when
// the test ends, and its output shown if the test failed.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(testproc.Binary(t), args...), out: new(testproc.Buffer), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s:\n%s", name, p.out)
		}
	})
	return p
}

// stop ends the process with SIGTERM and checks that it exits 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if err != nil {
			t.Errorf("%s: exit %v", p.name, err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("%s: no exit within 20 s of SIGTERM", p.name)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrape returns the sum of a metric's series on a /metrics page whose
// labels contain every one of labels ("kind=\"uplink\"").
func scrape(addr, name string, labels ...string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, sc.Err()
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool, explain func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (%s)", timeout, what, explain())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectorsConfig writes a configuration file whose connectors section
// reads both network servers at the Mosquitto at addr.
func connectorsConfig(t *testing.T, addr string) string {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "ttn.key")
	if err := os.WriteFile(key, []byte("NNSXS.E2E\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`connectors:
  campus: %s
  codecs: %s
  reconnect_min: 100ms
  reconnect_max: 1s
  tts:
    - application: wartberg-ttn
      url: tcp://%s
      api_key_file: %s
  chirpstack:
    - application: soil-twin
      url: tcp://%s
`, smallCampus, codecDir, addr, key, addr)
	path := filepath.Join(dir, "citymesh.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// uplinkKey identifies one uplink: a device's frame counter restarts at a
// rejoin, so the network server's receive time is part of it.
type uplinkKey struct {
	devEUI string
	fCnt   uint32
	at     int64
}

func (k uplinkKey) String() string {
	return fmt.Sprintf("%s f_cnt %d at %s", k.devEUI, k.fCnt, time.Unix(0, k.at).UTC().Format(time.RFC3339Nano))
}

// expected is what the truth says of one uplink.
type expected struct {
	published int
	lost      string
	gateways  []string
	values    map[string]sim.Truth // by point
}

// readTruth reads the simulator's ground truth into uplinks.
func readTruth(t *testing.T, path string) map[uplinkKey]*expected {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := sim.ReadTruth(f)
	if err != nil {
		t.Fatal(err)
	}
	ups := map[uplinkKey]*expected{}
	for _, r := range recs {
		if r.FCnt == nil {
			if r.DevEUI != "" {
				continue // a silent device's value: no uplink at all
			}
			t.Fatalf("a truth record of %s without a device: the simulator played more than the network servers", r.Point)
		}
		k := uplinkKey{r.DevEUI, *r.FCnt, r.Time.UnixNano()}
		e := ups[k]
		if e == nil {
			e = &expected{published: r.Published, lost: r.Lost, gateways: r.Gateways, values: map[string]sim.Truth{}}
			ups[k] = e
		}
		if e.published != r.Published {
			t.Fatalf("uplink %s: records disagree on how often it was published", k)
		}
		e.values[r.Point] = r
	}
	return ups
}

// TestLoRaWANEndToEnd: the simulator's uplinks through a real Mosquitto
// playing The Things Stack and ChirpStack, through the connectors in a
// `citymesh serve` process and, second, as a `citymesh run connector`
// process, arrive at a subscriber of citymesh as events that are valid by
// their schemas and the campus model, once each — copies through another
// gateway dropped —, with the values the devices measured within their
// resolution and the gateways that heard them; what the faults lost (the
// truth marks it) never arrives, and nothing else does.
func TestLoRaWANEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the citymesh binary and Mosquitto")
	}
	for _, mode := range []string{"serve", "run connector"} {
		t.Run(mode, func(t *testing.T) { lorawanEndToEnd(t, mode) })
	}
}

func lorawanEndToEnd(t *testing.T, mode string) {
	mosq := lorawantest.StartMosquitto(t)
	config := connectorsConfig(t, mosq.Addr)
	mqttAddr, httpAddr := freePort(t), freePort(t)
	serveArgs := []string{"serve", "--mqtt", mqttAddr, "--ws", "off", "--http", httpAddr, "--store", "memory", "--log", "warn"}
	metrics := httpAddr // where the connectors' metrics are
	var procs []*proc
	if mode == "serve" {
		procs = append(procs, start(t, "citymesh serve", append(serveArgs, "--config", config)...))
	} else {
		procs = append(procs, start(t, "citymesh serve", serveArgs...))
	}
	serve := procs[0]
	waitUntil(t, "citymesh serve", 20*time.Second, func() bool { v, err := scrape(httpAddr, "citymesh_build_info"); return err == nil && v == 1 }, serve.out.String)
	subCtx, subCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer subCancel()
	sub := pahotest.Subscribe(t, subCtx, mqttAddr, pahotest.Options{ClientID: "e2e-checker"}, "+/+/device/+/measurement", "+/+/device/+/uplink", "+/+/device/+/status")
	if mode == "run connector" {
		metrics = freePort(t)
		procs = append(procs, start(t, "citymesh run connector", "run", "connector", "--config", config, "--broker", "mqtt://"+mqttAddr,
			"--client-id", "e2e-connectors", "--http", metrics, "--log", "warn"))
	}
	conns := procs[len(procs)-1]
	metric := func(name string, labels ...string) float64 {
		v, _ := scrape(metrics, name, labels...)
		return v
	}
	// An uplink published before the connectors subscribe would be lost,
	// as at a real server: the simulator starts once both read.
	waitUntil(t, "the connectors to connect", 20*time.Second, func() bool { return metric("citymesh_connector_connected") == 2 }, conns.out.String)

	truthFile := filepath.Join(t.TempDir(), "truth.jsonl")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	simCmd := exec.CommandContext(ctx, testproc.Binary(t), "sim", "--campus", smallCampus, "--broker", "none",
		"--tts", "mqtt://"+mosq.Addr, "--chirpstack", "mqtt://"+mosq.Addr, "--speed", "0", "--start", simStart, "--duration", simDuration,
		"--faults", faultsFile, "--fault", "kind=out_of_order,asset=soil-probe-03,start=2026-05-12T10:00:00+02:00,duration=3h,every=2",
		"--duplicate-every", "3", "--truth", truthFile, "--stats", "0")
	simOut, err := simCmd.CombinedOutput()
	if err != nil {
		t.Fatalf("citymesh sim: %v\n%s", err, simOut)
	}
	ups := readTruth(t, truthFile)
	var published, copies, delivered, lost int
	for _, e := range ups {
		published += e.published
		switch e.published {
		case 0:
			lost++
		case 2:
			copies++
		}
		if e.published > 0 {
			delivered++
		}
	}
	if lost == 0 || copies == 0 || delivered < 200 {
		t.Fatalf("the truth has %d uplinks delivered, %d lost and %d sent twice: the scenario should have some of each", delivered, lost, copies)
	}

	// Every message the simulator published reached the connectors, and
	// each uplink that arrived became its events once.
	explain := func() string {
		return fmt.Sprintf("received %v of %d, duplicates %v of %d, measurements %v, uplinks %v of %d; subscriber %d messages",
			metric("citymesh_connector_uplinks_received_total"), published, metric("citymesh_connector_uplinks_duplicate_total"), copies,
			metric("citymesh_connector_events_published_total", `kind="measurement"`), metric("citymesh_connector_events_published_total", `kind="uplink"`),
			delivered, len(sub.Messages()))
	}
	waitUntil(t, "every uplink's events", 30*time.Second, func() bool {
		return metric("citymesh_connector_uplinks_received_total") == float64(published) &&
			metric("citymesh_connector_events_published_total", `kind="uplink"`) == float64(delivered) &&
			metric("citymesh_connector_events_published_total", `kind="measurement"`) == float64(delivered)
	}, explain)
	statuses := metric("citymesh_connector_events_published_total", `kind="status"`)
	waitUntil(t, "the subscriber to receive them", 30*time.Second, func() bool { return len(sub.Messages()) == 2*delivered+int(statuses) }, explain)
	if got := metric("citymesh_connector_uplinks_duplicate_total"); got != float64(copies) {
		t.Errorf("%v copies dropped, the truth sent %d uplinks twice", got, copies)
	}
	if got := metric("citymesh_connector_failures_total"); got != 0 {
		t.Errorf("%v failures", got)
	}

	m, err := campus.Load(smallCampus)
	if err != nil {
		t.Fatal(err)
	}
	meas := map[uplinkKey]int{}
	upl := map[uplinkKey]int{}
	reasons := map[string]map[string]bool{} // device → status reasons
	for _, p := range sub.Messages() {
		tp, err := event.ParseTopic(p.Topic)
		if err != nil {
			t.Fatalf("%s: %v", p.Topic, err)
		}
		k, _ := tp.EventKind()
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
		if p.QoS != 1 || p.Properties == nil || p.Properties.ContentType != event.ContentType {
			t.Errorf("%s: QoS %d, properties %+v", p.Topic, p.QoS, p.Properties)
		}
		h := e.Head()
		var key uplinkKey
		if h.Source.FCnt != nil {
			key = uplinkKey{h.Source.DevEUI, *h.Source.FCnt, h.Time.UnixNano()}
		}
		switch e := e.(type) {
		case *event.Measurement:
			meas[key]++
			want := ups[key]
			if want == nil {
				t.Errorf("%s: a measurement of uplink %s, which the simulator never produced", p.Topic, key)
				continue
			}
			if len(e.Values) != len(want.values) {
				t.Errorf("%s: %d values of uplink %s, the device measured %d", p.Topic, len(e.Values), key, len(want.values))
			}
			for _, v := range e.Values {
				tr, ok := want.values[v.Point]
				if !ok || tr.Value == nil {
					t.Errorf("%s: point %s was not in uplink %s", p.Topic, v.Point, key)
					continue
				}
				if tol := tr.Resolution/2 + 1e-9; math.Abs(v.Value-*tr.Value) > tol || v.Unit != tr.Unit {
					t.Errorf("%s, uplink %s: %s = %v %s, the device measured %v %s (resolution %v)", p.Topic, key, v.Point, v.Value, v.Unit, *tr.Value, tr.Unit, tr.Resolution)
				}
			}
		case *event.Uplink:
			upl[key]++
			want := ups[key]
			if want == nil {
				t.Errorf("%s: an uplink event of %s, which the simulator never produced", p.Topic, key)
				continue
			}
			// The Things Stack names a gateway by its id, ChirpStack by
			// its EUI.
			var gws []string
			for _, g := range e.Gateways {
				id := g.ID
				for _, cg := range m.Gateways {
					if strings.EqualFold(cg.EUI, id) {
						id = cg.ID
					}
				}
				gws = append(gws, id)
			}
			if !slices.Equal(gws, want.gateways) {
				t.Errorf("%s: uplink %s through %v, the truth says %v", p.Topic, key, gws, want.gateways)
			}
		case *event.Status:
			if reasons[e.Asset] == nil {
				reasons[e.Asset] = map[string]bool{}
			}
			reasons[e.Asset][e.Reason] = true
		}
	}
	for k, e := range ups {
		switch {
		case e.published == 0 && (meas[k] > 0 || upl[k] > 0):
			t.Errorf("uplink %s, lost (%s), arrived", k, e.lost)
		case e.published > 0 && (meas[k] != 1 || upl[k] != 1):
			t.Errorf("uplink %s, published %d times: %d measurements and %d uplink events, want one each", k, e.published, meas[k], upl[k])
		}
	}
	// The rejoins on both servers were seen as joins; every ChirpStack
	// device answered a status request.
	for dev, reason := range map[string]string{"soil-probe-02": event.ReasonJoin, "npk-probe-01": event.ReasonJoin, "ph-probe-01": "device_status"} {
		if !reasons[dev][reason] {
			t.Errorf("%s: no status with reason %s (%v)", dev, reason, reasons[dev])
		}
	}
	t.Logf("%s: %d uplinks delivered (%d sent twice, %d lost to faults), %d statuses", mode, delivered, copies, lost, int(statuses))
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop(t)
	}
}
