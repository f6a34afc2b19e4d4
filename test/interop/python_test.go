// Package interop runs independent MQTT clients (Eclipse Paho for Python)
// against a citymesh broker on loopback.
package interop

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/store/disk"
)

// python returns Debian's Python 3 with Paho MQTT, or skips the test.
func python(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(py); err == nil && exec.Command(path, "-c", "import paho.mqtt.client").Run() == nil {
			return path
		}
	}
	t.Skip("Python 3 with paho-mqtt not installed (apt-get install python3-paho-mqtt); .ci/run installs it")
	return ""
}

// startBroker runs a broker with a store in a temporary directory on a
// loopback port until the test ends, and returns its host and port.
func startBroker(t *testing.T, opts broker.Options) (string, string) {
	t.Helper()
	st, err := disk.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts.Store, opts.SysInterval = st, -1
	if opts.Logger == nil && !testing.Verbose() {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := broker.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		b.Close()
		<-done
		st.Close()
	})
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	return host, port
}

// runScript runs testdata/name with args and decodes its JSON output into v.
func runScript(t *testing.T, py, name string, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, append([]string{"testdata/" + name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// A session resumed with no Session Expiry Interval keeps its queue (MQTT
// 5.0 §3.1.2.11.2): QoS 1 and 2 messages queued while it was offline
// arrive, the one with a Message Expiry Interval with what is left of it.
func TestPythonResumeWithOtherExpiry(t *testing.T) {
	py := python(t)
	for run := range 5 {
		host, port := startBroker(t, broker.Options{})
		var res struct {
			Present bool
			Got     []struct {
				Topic  string
				QoS    int
				Expiry *int
			}
		}
		runScript(t, py, "resume_expiry.py", &res, host, port, strconv.Itoa(run))
		if !res.Present {
			t.Fatalf("run %d: Session Present 0 on resume", run)
		}
		// Paho for Python hands a QoS 2 message over at PUBREL, after a
		// QoS 1 message sent behind it: compare what arrived, not when.
		got := map[string]*int{}
		for _, m := range res.Got {
			got[m.Topic] = m.Expiry
		}
		if len(res.Got) != 3 || len(got) != 3 {
			t.Fatalf("run %d: got %+v, want pyresume/1, pyresume/2 and pyresume/e once each", run, res.Got)
		}
		for _, topic := range []string{"pyresume/1", "pyresume/2", "pyresume/e"} {
			if _, ok := got[topic]; !ok {
				t.Fatalf("run %d: %s missing from %+v", run, topic, res.Got)
			}
		}
		if e := got["pyresume/e"]; e == nil || *e <= 0 || *e > 600 {
			t.Fatalf("run %d: pyresume/e expiry %v, want the remaining interval", run, e)
		}
	}
}

// A client that exceeds the server's Receive Maximum with QoS 2 publishes
// receives DISCONNECT 0x93 [MQTT-3.3.4-9], not a connection reset.
func TestPythonReceiveMaximumExceeded(t *testing.T) {
	py := python(t)
	for run := range 5 {
		host, port := startBroker(t, broker.Options{ReceiveMaximum: 2})
		var res struct {
			RC     int
			Reason string
		}
		runScript(t, py, "receive_maximum.py", &res, host, port)
		if res.RC != 0x93 {
			t.Fatalf("run %d: on_disconnect saw %d (%s), want 0x93 Receive Maximum exceeded", run, res.RC, res.Reason)
		}
	}
}
