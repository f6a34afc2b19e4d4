package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/connector/chirpstack"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/internal/testproc"
	"github.com/citymesh/citymesh/sim"
)

const smallCampus = "../../examples/campus/small/campus.yaml"

// TestSimBadFlags: every bad command line is refused before anything is
// published, with what is wrong.
func TestSimBadFlags(t *testing.T) {
	dir := t.TempDir()
	badFaults := filepath.Join(dir, "faults.yaml")
	if err := os.WriteFile(badFaults, []byte("faults:\n  - kind: meltdown\n    asset: b01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--campus", smallCampus, "--broker", "discard"}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--campus", filepath.Join(dir, "missing.yaml")}, "--campus"},
		{append(base, "--start", "yesterday"), `--start "yesterday"`},
		{append(base, "--speed", "0"), "give --duration or --until"},
		{append(base, "--speed", "-2"), "--speed -2"},
		{append(base, "--start", "2026-05-12T07:00:00Z", "--until", "2026-05-12T06:00:00Z"), "is not after the start"},
		{append(base, "--until", "2026-05-12T08:00:00Z", "--duration", "1h"), "give one"},
		{append(base, "--duration", "forever"), `--duration "forever"`},
		{append(base, "--duration", "-1h"), `--duration "-1h"`},
		{append(base, "--until", "soon"), `--until "soon"`},
		{[]string{"--campus", smallCampus, "--mqtt-version", "4"}, "--mqtt-version"},
		{[]string{"--campus", smallCampus, "--broker", "http://x:1"}, `scheme "http"`},
		{[]string{"--campus", smallCampus, "--broker", "discard", "--tts", "::bad"}, "--tts"},
		{[]string{"--campus", smallCampus, "--broker", "mqtt://127.0.0.1:1"}, "--broker"},
		{append(base, "stray"), `unexpected argument "stray"`},
		{append(base, "--fault", "kind=silent"), "asset is empty"},
		{append(base, "--fault", "kind=silent,asset=b01"), "start is missing"},
		{append(base, "--fault", "kind=silent,asset=nowhere,start=2026-05-12T06:00:00Z,duration=1h"), `"nowhere" is not an asset`},
		{append(base, "--faults", filepath.Join(dir, "nothing.yaml")), "--faults"},
		{append(base, "--faults", badFaults), "meltdown"},
		{append(base, "--copies", "0"), "--copies 0"},
		{append(base, "--load-rate", "-1"), "load rate"},
		{append(base, "--duplicate-every", "-1"), "duplicate"},
		{append(base, "--truth", filepath.Join(dir, "no", "such", "dir", "t.jsonl")), "--truth"},
		{append(base, "--pictures-listen", "nonsense"), "--pictures-listen"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runSim(context.Background(), c.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q\n%s%s", err, c.want, stdout.String(), stderr.String())
			}
		})
	}
}

// TestSimDiscard plays the small campus at full speed into outputs that
// only count, with the ground truth in a file and the pictures in a
// directory.
func TestSimDiscard(t *testing.T) {
	dir := t.TempDir()
	truth := filepath.Join(dir, "truth.jsonl")
	pics := filepath.Join(dir, "pictures")
	var stdout, stderr bytes.Buffer
	err := runSim(context.Background(), []string{"--campus", smallCampus, "--broker", "discard", "--speed", "0", "--seed", "9",
		"--start", "2026-05-12T07:00:00+02:00", "--duration", "3h", "--truth", truth, "--pictures", pics,
		"--fault", "kind=check_fails,asset=b01-escape,start=2026-05-12T07:00:00+02:00,duration=3h"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"sim: done 2026-05-12T10:00:00+02:00", "building+robot", "tts", "seed 9", "pictures 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	f, err := os.Open(truth)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := sim.ReadTruth(f)
	if err != nil || len(recs) < 1000 {
		t.Fatalf("%d truth records: %v", len(recs), err)
	}
	files, _ := filepath.Glob(filepath.Join(pics, "*.png"))
	if len(files) == 0 {
		t.Fatal("no picture written")
	}
}

// mosquittoBroker starts a Mosquitto broker on a free loopback port; the test is
// skipped when Mosquitto is not installed.
func mosquittoBroker(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("mosquitto is not installed (apt-get install mosquitto): skipping the test with a real TTS-like endpoint")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	cfg := fmt.Sprintf("per_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\nlistener %d 127.0.0.1\n", port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pahoCollector subscribes with Eclipse Paho (MQTT 3.1.1) and keeps what
// arrives.
type pahoCollector struct {
	mu   sync.Mutex
	msgs []pahov3.Message
}

func pahoSubscribe(t *testing.T, addr string, filters ...string) *pahoCollector {
	t.Helper()
	col := &pahoCollector{}
	c := pahov3.NewClient(pahov3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("sim-checker").SetProtocolVersion(4).
		SetAutoReconnect(false).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ pahov3.Client, m pahov3.Message) {
			col.mu.Lock()
			col.msgs = append(col.msgs, m)
			col.mu.Unlock()
		}))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	subs := map[string]byte{}
	for _, f := range filters {
		subs[f] = 1
	}
	if tok := c.SubscribeMultiple(subs, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("paho subscribe: %v", tok.Error())
	}
	return col
}

func (c *pahoCollector) snapshot() []pahov3.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]pahov3.Message(nil), c.msgs...)
}

// TestSimToMosquitto runs citymesh sim as a real process against a real
// Mosquitto that plays The Things Stack's and ChirpStack's MQTT servers;
// an Eclipse Paho subscriber checks that every uplink the ground truth
// says was sent arrives and parses as the network servers' messages.
func TestSimToMosquitto(t *testing.T) {
	addr := mosquittoBroker(t)
	col := pahoSubscribe(t, addr, "v3/#", "application/#")
	truth := filepath.Join(t.TempDir(), "truth.jsonl")
	cmd := exec.Command(testproc.Binary(t), "sim", "--campus", smallCampus, "--broker", "none", "--tts", "mqtt://"+addr, "--chirpstack", "mqtt://"+addr,
		"--speed", "0", "--start", "2026-05-12T07:00:00+02:00", "--duration", "4h", "--truth", truth, "--duplicate-every", "5")
	var out testproc.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("citymesh sim: %v\n%s", err, out.String())
	}
	f, err := os.Open(truth)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := sim.ReadTruth(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		eui  string
		fcnt uint32
	}
	want := map[key]int{}
	for _, r := range recs {
		if r.FCnt != nil {
			want[key{r.DevEUI, *r.FCnt}] = r.Published
		}
	}
	total := 0
	for _, n := range want {
		total += n
	}
	m, err := campus.Load(smallCampus)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var msgs []pahov3.Message
	for {
		msgs = col.snapshot()
		ups := 0
		for _, m := range msgs {
			if strings.HasSuffix(m.Topic(), "/up") {
				ups++
			}
		}
		if ups >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := map[key]int{}
	for _, msg := range msgs {
		switch {
		case strings.HasPrefix(msg.Topic(), "v3/"):
			_, u, err := tts.Decode(msg.Topic(), msg.Payload())
			if err != nil {
				t.Fatalf("%s: %v\n%s", msg.Topic(), err, msg.Payload())
			}
			if u.Uplink == nil {
				continue
			}
			d, ok := m.DeviceByEUI(u.EndDeviceIDs.DevEUI.String())
			if !ok || d.NetworkID != u.EndDeviceIDs.DeviceID || len(u.Uplink.RxMetadata) == 0 || len(u.Uplink.FRMPayload) == 0 {
				t.Fatalf("%s: %s", msg.Topic(), msg.Payload())
			}
			got[key{u.EndDeviceIDs.DevEUI.String(), u.Uplink.FCnt}]++
		case strings.HasPrefix(msg.Topic(), "application/"):
			ev, err := chirpstack.Decode(msg.Topic(), msg.Payload())
			if err != nil {
				t.Fatalf("%s: %v\n%s", msg.Topic(), err, msg.Payload())
			}
			if ev.Up != nil {
				got[key{strings.ToUpper(ev.Up.DeviceInfo.DevEUI.String()), ev.Up.FCnt}]++
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the truth lists no uplink")
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("uplink %s f_cnt %d arrived %d times, want %d", k.eui, k.fcnt, got[k], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d uplinks arrived, the truth lists %d", len(got), len(want))
	}
	t.Logf("%d uplinks (%d with duplicates) through Mosquitto", len(want), total)
}

// TestSimStopsOnInterrupt: citymesh sim in real time stops cleanly on
// SIGINT (Ctrl-C), with its final counts and exit status 0.
func TestSimStopsOnInterrupt(t *testing.T) {
	addr := mosquittoBroker(t)
	col := pahoSubscribe(t, addr, "robot/#")
	cmd := exec.Command(testproc.Binary(t), "sim", "--campus", smallCampus, "--broker", "mqtt://"+addr, "--tts", "none", "--chirpstack", "none",
		"--mqtt-version", "311")
	var out testproc.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for len(col.snapshot()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no robot event within 15 s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("citymesh sim did not stop on SIGINT:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "sim: done") || !strings.Contains(out.String(), "positions ") {
		t.Errorf("no final counts:\n%s", out.String())
	}
}

// TestSimTLSAndCredentials: citymesh sim publishes to a citymesh node
// over TLS with a password, one connection per building gateway and
// robot; a wrong password is refused before the run.
func TestSimTLSAndCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := newTestPKI(t)
	n := secureNode(t, p)
	args := []string{"--campus", smallCampus, "--broker", "mqtts://" + n.mqtts, "--cafile", p.ca.file, "--username", "tenant-alice",
		"--tts", "none", "--chirpstack", "none", "--speed", "0", "--start", "2026-05-12T07:00:00+02:00", "--duration", "30m", "--stats", "0"}
	var stdout, stderr bytes.Buffer
	if err := runSim(context.Background(), append(args, "--password", "alice-pw"), &stdout, &stderr); err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	if out := stdout.String(); !strings.Contains(out, "building+robot") || strings.Contains(out, "errors") {
		t.Errorf("output:\n%s", out)
	}
	stdout.Reset()
	err := runSim(context.Background(), append(args, "--password", "wrong"), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--broker") {
		t.Fatalf("a wrong password: %v", err)
	}
}
