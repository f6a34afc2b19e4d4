package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/citymesh/citymesh/api"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/internal/testproc"
)

// TestRunTwinProcess: `citymesh run twin` against a `citymesh serve`
// process with users: events published with mosquitto_pub appear in its
// twin API and its Prometheus API, each tenant's user sees its tenant's
// points only (HTTP) and reads its tenant's retained snapshots under twin/#
// (mosquitto_sub), and SIGTERM ends it cleanly.
func TestRunTwinProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	needMosquitto(t)
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	for _, u := range []struct{ user, extra string }{
		{"ops", "--groups=admin"}, {"cs", "--tenant=campus-service"}, {"grower", "--tenant=wartberg-growers"},
	} {
		args := []string{"-b", u.extra, passwd, u.user, "pw"}
		if _, err := os.Stat(passwd); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if err := runPasswd(context.Background(), args); err != nil {
			t.Fatal(err)
		}
	}
	pwFile := filepath.Join(dir, "ops.pw")
	os.WriteFile(pwFile, []byte("pw\n"), 0o600)
	security := fmt.Sprintf(`auth:
  password_file: %s
acl:
  rules:
    - allow: [read]
      topics: ["twin/#"]
      tenants: [campus-service, wartberg-growers]
`, passwd)
	serveAddr := freePort(t)
	serveConfig := filepath.Join(dir, "serve.yaml")
	os.WriteFile(serveConfig, []byte(fmt.Sprintf("mqtt: %s\nws: \"off\"\nhttp: \"off\"\nstore: memory\n", serveAddr)+security), 0o600)
	serveProc(t, "--config", serveConfig)

	campusFile, _ := filepath.Abs("../../examples/campus/small/campus.yaml")
	twinConfig := filepath.Join(dir, "twin.yaml")
	os.WriteFile(twinConfig, []byte(fmt.Sprintf("data: %s\ntwin:\n  enabled: true\n  campus: %s\n  publish_every: 100ms\n",
		filepath.Join(dir, "twin-data"), campusFile)+security), 0o600)
	httpAddr := freePort(t)
	out := new(testproc.Buffer)
	cmd := exec.Command(testproc.Binary(t), "run", "twin", "--config", twinConfig, "--broker", "mqtt://"+serveAddr,
		"--username", "ops", "--password-file", pwFile, "--http", httpAddr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("citymesh run twin:\n%s", out)
		}
	}()
	waitUntil(t, "the twin to run", func() bool { return strings.Contains(out.String(), `msg="twin running"`) }, out.String)

	at := time.Now().Add(-time.Minute)
	room := event.NewTopic(event.DomainBuilding, "campus", event.AssetRoom, "b01-0.01", event.EventMeasurement)
	m := event.NewMeasurement("b01-0.01", at, event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"},
		event.Value{Point: "b01-0.01/temperature", Value: 21.5, Unit: event.Celsius})
	st := event.NewStatus("soil-probe-01", at, event.Source{Type: event.SourceService, Service: "citymesh-connector"}, event.Online, event.ReasonUplink)
	st.Battery = &event.Value{Point: "soil-probe-01/battery", Value: 3.58, Unit: event.Volt}
	dev := event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-01", event.EventStatus)
	for _, e := range []struct {
		topic event.Topic
		ev    event.Event
	}{{room, m}, {dev, st}} {
		msg, err := event.NewMessage(e.topic, e.ev)
		if err != nil {
			t.Fatal(err)
		}
		if o, code := mosquitto(t, "mosquitto_pub", "-h", "127.0.0.1", "-p", portOf(serveAddr), "-V", "mqttv5", "-u", "ops", "-P", "pw",
			"-q", "1", "-t", msg.Topic, "-m", string(msg.Payload)); code != 0 {
			t.Fatalf("mosquitto_pub: %d %s", code, o)
		}
	}

	get := func(user, path string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	points := func(user string) []string {
		code, body := get(user, "/prometheus/api/v1/query?query="+url.QueryEscape("citymesh_point_value"))
		if code != 200 {
			return []string{fmt.Sprint(code)}
		}
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		json.Unmarshal([]byte(body), &r)
		var out []string
		for _, s := range r.Data.Result {
			out = append(out, s.Metric["point"])
		}
		sort.Strings(out)
		return out
	}
	waitUntil(t, "both series in the Prometheus API", func() bool { return len(points("ops")) == 2 }, out.String)
	for _, tc := range []struct {
		user, path string
		code       int
	}{
		{"", "/api/v1/twin/points", 401},
		{"ops", "/api/v1/twin/points/b01-0.01/temperature", 200},
		{"ops", "/api/v1/twin/points/soil-probe-01/battery", 200},
		{"cs", "/api/v1/twin/points/b01-0.01/temperature", 200},
		{"cs", "/api/v1/twin/points/soil-probe-01/battery", 404},
		{"grower", "/api/v1/twin/points/soil-probe-01/battery", 200},
		{"grower", "/api/v1/twin/points/b01-0.01/temperature", 404},
	} {
		if code, body := get(tc.user, tc.path); code != tc.code {
			t.Errorf("GET %s as %q: %d %s, want %d", tc.path, tc.user, code, body, tc.code)
		}
	}
	// citymesh run twin's listener carries the browsers' security headers.
	if resp, err := http.Get("http://" + httpAddr + "/api/v1/twin/points"); err != nil {
		t.Error(err)
	} else {
		resp.Body.Close()
		if resp.Header.Get("Content-Security-Policy") != api.CSP || resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("security headers: %v", resp.Header)
		}
	}
	if got := points("cs"); strings.Join(got, ",") != "b01-0.01/temperature" {
		t.Errorf("cs's PromQL: %v", got)
	}
	if got := points("grower"); strings.Join(got, ",") != "soil-probe-01/battery" {
		t.Errorf("grower's PromQL: %v", got)
	}
	// The tenant's retained snapshots, read with mosquitto_sub: -W ends it
	// once the retained messages are in (it gets no others).
	for _, tc := range []struct{ user, want string }{
		{"cs", "twin/campus/room/b01-0.01"},
		{"grower", "twin/wartberg/device/soil-probe-01"},
	} {
		o, _ := mosquitto(t, "mosquitto_sub", "-h", "127.0.0.1", "-p", portOf(serveAddr), "-V", "mqttv5", "-u", tc.user, "-P", "pw",
			"-t", "twin/#", "-F", "%t", "--retained-only", "-W", "2")
		var got []string
		for _, l := range strings.Fields(o) {
			if strings.HasPrefix(l, "twin/") {
				got = append(got, l)
			}
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("mosquitto_sub twin/# as %s: %q, want %s", tc.user, o, tc.want)
		}
	}

	stop := func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			exited = true
			if err != nil {
				t.Errorf("run twin after SIGTERM: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run twin did not end within 15 s of SIGTERM")
		}
	}
	stop(cmd)

	// Started again, it recovers the state from the broker's retained
	// snapshots through the remote bus, before anything new is published.
	exited = false
	out = new(testproc.Buffer)
	cmd = exec.Command(testproc.Binary(t), "run", "twin", "--config", twinConfig, "--broker", "mqtt://"+serveAddr,
		"--username", "ops", "--password-file", pwFile, "--http", httpAddr)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the twin to run again", func() bool { return strings.Contains(out.String(), `msg="twin running"`) }, out.String)
	if !strings.Contains(out.String(), "recovered_assets=2 recovered_points=2") {
		t.Errorf("the restarted twin did not recover both assets:\n%s", out)
	}
	for _, p := range []string{"b01-0.01/temperature", "soil-probe-01/battery"} {
		if code, body := get("ops", "/api/v1/twin/points/"+p); code != 200 || !strings.Contains(body, `"value":`) {
			t.Errorf("after the restart, %s: %d %s", p, code, body)
		}
	}
	stop(cmd)
}

// portOf returns the port of host:port.
func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// TestRunTwinErrors: the command refuses what it cannot run, naming the
// setting, before it connects to the broker.
func TestRunTwinErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	campusFile, _ := filepath.Abs("../../examples/campus/small/campus.yaml")
	ok := write("ok.yaml", "data: "+filepath.Join(dir, "data")+"\ntwin:\n  enabled: true\n  campus: "+campusFile+"\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no config", nil, "--config is required"},
		{"no twin", []string{"--config", write("empty.yaml", "log: info\n")}, "twin.enabled is not true"},
		{"bad key", []string{"--config", write("typo.yaml", "twin:\n  enabled: true\n  publish_evry: 1s\n")}, "publish_evry"},
		{"bad value", []string{"--config", write("short.yaml", "twin:\n  enabled: true\n  campus: c.yaml\n  publish_every: 1ms\n")}, "twin.publish_every"},
		{"campus missing, before connecting", []string{"--config", write("nocampus.yaml", "twin:\n  enabled: true\n  campus: /nonexistent/campus.yaml\n"),
			"--broker", "mqtt://127.0.0.1:1", "--http", "off"}, "twin.campus"},
		{"bad broker", []string{"--config", ok, "--broker", "127.0.0.1:1883"}, "--broker"},
		{"open HTTP on another host", []string{"--config", ok, "--http", "0.0.0.0:8090"}, "without authentication"},
		{"extra argument", []string{"--config", ok, "extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runTwin(context.Background(), tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("runTwin = %v, want %q in it", err, tc.want)
			}
		})
	}
}
