package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/lorawantest"
	"github.com/citymesh/citymesh/internal/testproc"
	"github.com/citymesh/citymesh/mqtt"
)

// connectorConfig writes a configuration file whose connectors section
// reads The Things Stack and ChirpStack at the Mosquitto at addr.
func connectorConfig(t *testing.T, addr string) string {
	t.Helper()
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "ttn.key")
	if err := os.WriteFile(key, []byte("NNSXS.TEST\n"), 0o600); err != nil {
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
`, abs("../../examples/campus/small/campus.yaml"), abs("../../examples/campus/codecs"), addr, key, addr)
	path := filepath.Join(dir, "connectors.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// scrape returns the sum of a metric's series on a /metrics page.
func scrape(addr, name string) (float64, error) {
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
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, sc.Err()
}

// TestRunConnectorProcess: `citymesh run connector` as its own process
// reads The Things Stack and ChirpStack through a real Mosquitto and
// publishes to a `citymesh serve` process through the remote bus; a
// subscriber of the serve process gets every uplink's events once, valid
// and right; a command published there reaches the network server; the
// process stops cleanly on SIGTERM.
func TestRunConnectorProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	mosq := lorawantest.StartMosquitto(t)
	serveAddr := freePort(t)
	serveProc(t, "--mqtt", serveAddr, "--ws", "off", "--http", "off", "--store", "memory")

	var mu sync.Mutex
	got := make(map[string][]string) // topic → payloads
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sub, err := client.Dial(ctx, client.Options{Addr: serveAddr, ClientID: "dashboard", Version: mqtt.V5, CleanStart: true,
		OnMessage: func(p *mqtt.Publish) {
			mu.Lock()
			got[p.Topic] = append(got[p.Topic], string(p.Payload))
			mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "vineyard/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}

	httpAddr := freePort(t)
	out := new(testproc.Buffer)
	cmd := exec.Command(testproc.Binary(t), "run", "connector", "--config", connectorConfig(t, mosq.Addr),
		"--broker", "mqtt://"+serveAddr, "--client-id", "edge-connectors", "--http", httpAddr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("citymesh run connector:\n%s", out)
		}
	}()
	waitUntil(t, "the connectors to connect", func() bool {
		v, err := scrape(httpAddr, "citymesh_connector_connected")
		return err == nil && v == 2
	}, out.String)

	model, err := campus.Load("../../examples/campus/small/campus.yaml")
	if err != nil {
		t.Fatal(err)
	}
	po := pahov3.NewClientOptions().AddBroker("tcp://" + mosq.Addr).SetClientID("network-server").SetProtocolVersion(4).SetAutoReconnect(false)
	pub := pahov3.NewClient(po)
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(100)
	rng := rand.New(rand.NewPCG(5, 5))
	const rounds = 3
	sent := make(map[string]map[uint32]map[string]float64)
	for f := uint32(1); f <= rounds; f++ {
		for _, d := range model.Devices {
			app, _ := model.Application(d.Application)
			vals := lorawantest.RandomValues(rng, d.Type)
			if sent[d.ID] == nil {
				sent[d.ID] = make(map[uint32]map[string]float64)
			}
			sent[d.ID][f] = vals
			up := lorawantest.Uplink{App: app, Device: d, FCnt: f, Values: vals}
			for range 2 { // the same uplink through two gateways
				topic, body, err := up.TTS()
				qos := byte(0)
				if app.Server == campus.ChirpStack {
					topic, body, err = up.ChirpStack()
					qos = 1
				}
				if err != nil {
					t.Fatal(err)
				}
				if tok := pub.Publish(topic, qos, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Fatal(tok.Error())
				}
				up.Gateways = []lorawantest.Gateway{{ID: "hn-wartberg-east", RSSI: -115, SNR: -6}}
			}
		}
	}
	waitUntil(t, "every uplink's events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for topic, ps := range got {
			if strings.HasSuffix(topic, "/uplink") {
				n += len(ps)
			}
		}
		return n == rounds*len(model.Devices)
	})
	mu.Lock()
	for _, d := range model.Devices {
		ms := got[d.Topic(event.EventMeasurement).String()]
		if len(ms) != rounds {
			t.Errorf("%s: %d measurements, want %d", d.ID, len(ms), rounds)
			continue
		}
		for _, p := range ms {
			if err := event.ValidateJSON(event.KindMeasurement, []byte(p)); err != nil {
				t.Fatalf("%s: %v", d.ID, err)
			}
			e, err := event.Decode(event.KindMeasurement, []byte(p))
			if err != nil {
				t.Fatal(err)
			}
			m := e.(*event.Measurement)
			want, tol := lorawantest.Expected(d, sent[d.ID][*m.Source.FCnt])
			for _, v := range m.Values {
				if math.Abs(v.Value-want[v.Point]) > tol[v.Point] {
					t.Errorf("%s: %s = %v, want %v", d.ID, v.Point, v.Value, want[v.Point])
				}
			}
		}
		for _, p := range got[d.Topic(event.EventUplink).String()] {
			if err := event.ValidateJSON(event.KindUplink, []byte(p)); err != nil {
				t.Fatalf("%s: %v", d.ID, err)
			}
		}
	}
	mu.Unlock()
	waitUntil(t, "the copies counted", func() bool {
		v, _ := scrape(httpAddr, "citymesh_connector_uplinks_duplicate_total")
		return v == rounds*float64(len(model.Devices))
	})

	// A command published on the serve process reaches ChirpStack.
	downs := make(chan pahov3.Message, 1)
	if tok := pub.Subscribe("application/+/device/+/command/down", 1, func(_ pahov3.Client, m pahov3.Message) { downs <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	npk, _ := model.Device("npk-probe-01")
	if err := sub.Publish(ctx, &mqtt.Publish{Topic: npk.Topic("command").String(), QoS: 1, Payload: []byte(`{"f_port":2,"payload":"AQAHCA=="}`)}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-downs:
		var c struct {
			DevEUI string `json:"devEui"`
			FPort  int    `json:"fPort"`
			Data   []byte `json:"data"`
		}
		if err := json.Unmarshal(m.Payload(), &c); err != nil || c.DevEUI != strings.ToLower(npk.DevEUI) || c.FPort != 2 || string(c.Data) != "\x01\x00\x07\x08" {
			t.Errorf("command %s (%v)", m.Payload(), err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no command at ChirpStack")
	}

	// SIGTERM: it stops cleanly.
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	if !strings.Contains(out.String(), "connectors stopped") {
		t.Errorf("no clean stop in the log:\n%s", out)
	}
}

// TestRunConnectorInProcess runs the command's function until its context
// ends and checks that every goroutine it started is gone.
func TestRunConnectorInProcess(t *testing.T) {
	mosq := lorawantest.StartMosquitto(t)
	serveAddr := freePort(t)
	serveProc(t, "--mqtt", serveAddr, "--ws", "off", "--http", "off", "--store", "memory")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	httpAddr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runConnector(ctx, []string{"--config", connectorConfig(t, mosq.Addr), "--broker", "mqtt://" + serveAddr,
			"--http", httpAddr, "--log", "error"})
	}()
	waitUntil(t, "the connectors to connect", func() bool {
		v, err := scrape(httpAddr, "citymesh_connector_connected")
		return err == nil && v == 2
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runConnector did not return")
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestRunConnectorErrors: the command refuses what it cannot run, naming
// the setting.
func TestRunConnectorErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	campusFile, _ := filepath.Abs("../../examples/campus/small/campus.yaml")
	codecsDir, _ := filepath.Abs("../../examples/campus/codecs")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no config", nil, "--config is required"},
		{"no connectors", []string{"--config", write("empty.yaml", "log: info\n")}, "names no tts or chirpstack application"},
		{"bad key", []string{"--config", write("typo.yaml", "connectors:\n  campus: c.yaml\n  tts:\n    - aplication: x\n")}, "unknown key aplication"},
		{"no api key", []string{"--config", write("nokey.yaml", "connectors:\n  campus: c.yaml\n  tts:\n    - application: wartberg-ttn\n")},
			"connectors.tts[0].api_key: an API key is required"},
		{"bad broker", []string{"--config", write("ok.yaml", "connectors:\n  campus: "+campusFile+"\n  tts:\n    - {application: wartberg-ttn, api_key: k}\n"),
			"--broker", "127.0.0.1:1883"}, "--broker"},
		{"application on the other server, before connecting", []string{"--config", write("other.yaml", "connectors:\n  campus: "+campusFile+"\n  codecs: "+codecsDir+"\n  tts:\n    - {application: soil-twin, api_key: k}\n"),
			"--broker", "mqtt://127.0.0.1:1"}, `connectors.tts[0].application: "soil-twin" is on chirpstack in the campus model, not tts`},
		{"tls flags on a plain URL", []string{"--config", filepath.Join(dir, "ok.yaml"), "--broker", "mqtt://127.0.0.1:1", "--cafile", "ca.pem"}, "not a TLS URL"},
		{"extra argument", []string{"--config", filepath.Join(dir, "ok.yaml"), "extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runConnector(context.Background(), tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("runConnector = %v, want %q in it", err, tc.want)
			}
		})
	}
	var ee *exitError
	if err := runRun(context.Background(), []string{"nothing"}); !errors.As(err, &ee) || ee.code != 2 {
		t.Errorf("run nothing = %v, want exit status 2", err)
	}

}
