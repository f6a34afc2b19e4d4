package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/internal/testproc"
	"github.com/citymesh/citymesh/service"
)

// tallyConfig configures the tally, a service registered for these tests
// only.
type tallyConfig struct {
	In  string `yaml:"in"`
	Out string `yaml:"out"`
}

func (c *tallyConfig) Check() error {
	if c.In == "" || c.Out == "" {
		return fmt.Errorf("in and out are required")
	}
	return nil
}

// tally counts the distinct payloads published to its in filter, durably,
// and publishes the count retained on out; its HTTP API answers GET
// /api/v1/tally/count.
type tally struct {
	name string
	c    tallyConfig
}

func init() {
	service.Register("tally", "counts distinct payloads (a test service)", func(name string, c tallyConfig) (service.Service, error) {
		return &tally{name: name, c: c}, nil
	})
}

func (s *tally) Name() string { return s.name }

func (s *tally) count(st service.State) int {
	n := 0
	st.Scan("seen/", func(string, []byte) error { n++; return nil })
	return n
}

func (s *tally) Run(ctx context.Context, env *service.Env) error {
	err := env.Bus.Subscribe(ctx, s.c.In, 1, func(ctx context.Context, m bus.Message) {
		var b service.Batch
		b.Set(env.State, "seen/"+string(m.Payload), nil)
		if err := env.State.Apply(&b); err != nil {
			env.Error(err)
			return
		}
		env.Error(env.Bus.Publish(ctx, bus.Message{Topic: s.c.Out, Payload: []byte(strconv.Itoa(s.count(env.State))), QoS: 1, Retain: true}))
	})
	if err != nil {
		return err
	}
	env.Running()
	<-ctx.Done()
	return nil
}

func (s *tally) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"service":"` + s.name + `"}`))
	})
}

// TestRunServiceProcess: `citymesh run tally` (the test binary as
// citymesh, with the tally registered) against a `citymesh serve` process
// counts what mosquitto_pub publishes, serves /healthz, /metrics,
// /api/v1/services and its own API, exits 0 on SIGTERM, and started again
// finds its state: the count goes on from where it was.
func TestRunServiceProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs processes")
	}
	needMosquitto(t)
	dir := t.TempDir()
	serveAddr := freePort(t)
	serveProc(t, "--mqtt", serveAddr, "--ws", "off", "--http", "off", "--data", filepath.Join(dir, "broker"))
	config := filepath.Join(dir, "services.yaml")
	os.WriteFile(config, []byte(fmt.Sprintf("data: %s\nservices:\n  counter:\n    kind: tally\n    config:\n      in: tally/in/#\n      out: tally/out\n", filepath.Join(dir, "data"))), 0o600)
	httpAddr := freePort(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := func() (*exec.Cmd, *testproc.Buffer) {
		out := new(testproc.Buffer)
		cmd := exec.Command(self, "run", "tally", "--config", config, "--broker", "mqtt://"+serveAddr, "--http", httpAddr)
		cmd.Env = append(os.Environ(), "CITYMESH_TEST_MAIN=1")
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				cmd.Wait()
			}
			if t.Failed() {
				t.Logf("citymesh run tally:\n%s", out)
			}
		})
		waitUntil(t, "the service to run", func() bool { return strings.Contains(out.String(), `msg="service running"`) }, out.String)
		waitUntil(t, "the service to subscribe", func() bool {
			resp, err := http.Get("http://" + httpAddr + "/api/v1/services")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var l service.ServiceList
			json.NewDecoder(resp.Body).Decode(&l)
			return len(l.Services) == 1 && l.Services[0].Name == "counter" && l.Services[0].Status == service.StatusRunning
		}, out.String)
		return cmd, out
	}
	pub := func(payloads ...string) {
		for _, p := range payloads {
			if o, code := mosquitto(t, "mosquitto_pub", "-h", "127.0.0.1", "-p", portOf(serveAddr), "-q", "1", "-t", "tally/in/x", "-m", p); code != 0 {
				t.Fatalf("mosquitto_pub: %d %s", code, o)
			}
		}
	}
	count := func() string {
		o, _ := mosquitto(t, "mosquitto_sub", "-h", "127.0.0.1", "-p", portOf(serveAddr), "-t", "tally/out", "-C", "1", "-W", "2")
		return strings.TrimSpace(o)
	}
	stop := func(cmd *exec.Cmd) {
		t.Helper()
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run tally after SIGTERM: %v, want exit status 0", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("run tally did not end within 15 s of SIGTERM")
		}
	}

	cmd, out := start()
	pub("a", "b", "a", "c")
	waitUntil(t, "a count of 3", func() bool { return count() == "3" }, out.String)
	for _, tc := range []struct{ path, want string }{
		{"/healthz", "ok"},
		{"/metrics", `citymesh_service_events_received_total{service="counter"} 4`},
		{"/api/v1/tally/count", `{"service":"counter"}`},
	} {
		resp, err := http.Get("http://" + httpAddr + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 1<<16)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(b.String(), tc.want) {
			t.Errorf("GET %s: %d, want %q in\n%s", tc.path, resp.StatusCode, tc.want, b.String())
		}
	}
	stop(cmd)
	if _, err := os.Stat(filepath.Join(dir, "data", "services")); err != nil {
		t.Errorf("the state directory: %v", err)
	}

	// Started again on the same state: a, b and c were seen.
	cmd, out = start()
	pub("b", "d")
	waitUntil(t, "a count of 4", func() bool { return count() == "4" }, out.String)
	stop(cmd)
}

// TestRunServiceErrors: run KIND refuses what it cannot run, naming the
// setting, before it connects to the broker.
func TestRunServiceErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	two := write("two.yaml", "services:\n  t1: {kind: tally, config: {in: a, out: b}}\n  t2: {kind: tally, config: {in: a, out: b}}\n")
	var usage strings.Builder
	runUsage(&usage)
	if !strings.Contains(usage.String(), "tally      counts distinct payloads (a test service)") {
		t.Errorf("run help does not list the registered kind:\n%s", usage.String())
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no configuration, and the empty one fails its check", []string{"--broker", "mqtt://127.0.0.1:1"}, "in and out are required"},
		{"unknown key", []string{"--config", write("typo.yaml", "services:\n  t1:\n    kind: tally\n    config:\n      inn: a\n")}, "services.t1.config: unknown key inn at line 5"},
		{"two of the kind", []string{"--config", two}, "choose one with --name"},
		{"a name of another kind", []string{"--config", write("other.yaml", "services:\n  t1: {kind: toy}\n")}, "unknown kind"},
		{"bad name", []string{"--name", "a/b"}, "--name"},
		{"bad broker", []string{"--config", two, "--name", "t1", "--broker", "127.0.0.1:1883"}, "--broker"},
		{"open HTTP on another host", []string{"--config", two, "--name", "t2", "--http", "0.0.0.0:8091"}, "without authentication"},
		{"extra argument", []string{"extra"}, "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runRun(context.Background(), append([]string{"tally"}, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run tally = %v, want %q in it", err, tc.want)
			}
		})
	}
}
