package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"

	"github.com/citymesh/citymesh/internal/testproc"
)

// testBroker starts an in-process citymesh broker on a loopback port and
// returns its host and port.
func testBroker(t *testing.T) (host, port string) {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go b.Serve(ctx, ln)
	t.Cleanup(func() { cancel(); b.Close() })
	host, port, _ = net.SplitHostPort(ln.Addr().String())
	return host, port
}

// startSub runs citymesh sub in the background and waits until it has
// subscribed (a retained marker published beforehand arrives).
func startSub(t *testing.T, ctx context.Context, args ...string) (*testproc.Buffer, <-chan error) {
	t.Helper()
	out, errOut := &testproc.Buffer{}, &testproc.Buffer{}
	done := make(chan error, 1)
	go func() { done <- runSub(ctx, args, out, errOut) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sub stderr: %s", errOut.String())
		}
	})
	return out, done
}

// waitFor polls until cond holds, failing the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func pub(t *testing.T, ctx context.Context, stdin string, args ...string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if err := runPub(ctx, args, strings.NewReader(stdin), &out, &errOut); err != nil {
		t.Fatalf("pub %v: %v\n%s", args, err, errOut.String())
	}
}

func TestPubSubCommands(t *testing.T) {
	host, port := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, v := range []string{"311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			conn := []string{"-h", host, "-p", port, "-V", v}
			// A retained marker tells when the subscriber is in place.
			pub(t, ctx, "", append(conn, "-t", "cli/"+v+"/ready", "-m", "ready", "-r", "-q", "1")...)
			out, done := startSub(t, ctx, append(conn, "-t", "cli/"+v+"/#", "-q", "2", "-v", "-C", "6", "-W", "10")...)
			waitFor(t, "the subscriber", func() bool { return strings.Contains(out.String(), "ready") })

			pub(t, ctx, "", append(conn, "-t", "cli/"+v+"/m", "-m", "hello", "-q", "1")...)
			pub(t, ctx, "line one\nline two\n", append(conn, "-t", "cli/"+v+"/l", "-l", "-q", "2")...)
			file := filepath.Join(t.TempDir(), "payload")
			os.WriteFile(file, []byte("from a file"), 0o600)
			pub(t, ctx, "", append(conn, "-t", "cli/"+v+"/f", "-f", file)...)
			pub(t, ctx, "", append(conn, "-t", "cli/"+v+"/n", "-n", "-q", "1")...)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-ctx.Done():
				t.Fatalf("sub did not exit after -C 6; printed:\n%s", out.String())
			}
			want := "cli/" + v + "/ready ready\ncli/" + v + "/m hello\ncli/" + v + "/l line one\ncli/" + v + "/l line two\ncli/" + v + "/f from a file\ncli/" + v + "/n \n"
			// Separate publishers: each one's messages arrive in order, but
			// not necessarily in the order the publishers ran.
			sorted := func(s string) string {
				l := strings.Split(s, "\n")
				slices.Sort(l)
				return strings.Join(l, "\n")
			}
			if sorted(out.String()) != sorted(want) || !strings.Contains(out.String(), "line one\ncli/"+v+"/l line two") {
				t.Fatalf("sub printed:\n%s\nwant:\n%s", out.String(), want)
			}
		})
	}
}

func TestPubV5PropertiesAndURL(t *testing.T) {
	host, port := testBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "mqtt://" + net.JoinHostPort(host, port) + "/props/x"
	pub(t, ctx, "", "-L", url, "-V", "5", "-m", "marker", "-r", "-q", "1")
	subCtx, stopSub := context.WithCancel(ctx)
	defer stopSub()
	out, done := startSub(t, subCtx, "-L", url, "-V", "5", "-R")
	// -R hides the retained marker: probe until the subscriber prints.
	waitFor(t, "the subscriber", func() bool {
		pub(t, ctx, "", "-L", url, "-V", "5", "-m", "probe")
		return strings.Contains(out.String(), "probe")
	})
	pub(t, ctx, "", "-L", url, "-V", "5", "-m", "with properties", "-q", "1",
		"-D", "publish", "user-property", "unit", "kWh", "--user-property", "site=campus",
		"-D", "publish", "content-type", "text/plain", "-D", "publish", "message-expiry-interval", "60")
	waitFor(t, "the message", func() bool { return strings.Contains(out.String(), "with properties") })
	stopSub()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "marker") {
		t.Fatalf("-R printed the retained message: %q", out.String())
	}
}

func TestPubSubFlagErrors(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	for _, args := range [][]string{
		{"-m", "no topic"},
		{"-t", "a"},                  // no message source
		{"-t", "a", "-m", "x", "-n"}, // two sources
		{"-t", "a", "-m", "x", "-q", "3"},
		{"-t", "a", "-m", "x", "-V", "6"},
		{"-t", "a", "-m", "x", "-x", "60"}, // session expiry needs MQTT 5
		{"-L", "ftp://h/t", "-m", "x"},
	} {
		if err := runPub(ctx, args, strings.NewReader(""), &out, &errOut); err == nil {
			t.Errorf("pub %v accepted", args)
		}
	}
	var cf connFlags
	cf.url, cf.version = "ws://127.0.0.1:8083/mqtt/city/+/energy/#", "5"
	if o, topic, err := cf.options(&errOut); err != nil || topic != "city/+/energy/#" || o.Addr != "ws://127.0.0.1:8083/mqtt" {
		t.Errorf("-L %s: addr %q topic %q, %v", cf.url, o.Addr, topic, err)
	}
	cf.url = "mqtt://u:pw@broker/a/#"
	if o, topic, err := cf.options(&errOut); err != nil || topic != "a/#" || o.Addr != "mqtt://broker:1883" || o.Username != "u" || string(o.Password) != "pw" {
		t.Errorf("-L %s: addr %q topic %q user %q, %v", cf.url, o.Addr, topic, o.Username, err)
	}
	if err := runSub(ctx, []string{"-v"}, &out, &errOut); err == nil {
		t.Error("sub without a topic accepted")
	}
	for in, want := range map[string]byte{"5": mqtt.V5, "mqttv5": mqtt.V5, "311": mqtt.V311, "mqttv311": mqtt.V311, "31": mqtt.V31, "mqttv31": mqtt.V31} {
		if v, err := parseVersion(in); err != nil || v != want {
			t.Errorf("parseVersion(%q) = %d, %v", in, v, err)
		}
	}
}

// TestExitStatus checks the exit statuses mosquitto's tools use: the
// CONNACK's return code when the server refuses, 27 on a -W timeout, 1 when
// nothing listens.
func TestExitStatus(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A server that refuses every connection: 3.1.1 "not authorized" (5),
	// or MQTT 5 "Not authorized" (0x87).
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			r := mqtt.NewReader(nc, 1024)
			p, err := r.ReadPacket()
			if err == nil {
				v := p.(*mqtt.Connect).Version
				code := mqtt.NotAuthorized
				if v < mqtt.V5 {
					code = mqtt.ReasonCode(mqtt.V3NotAuthorized)
				}
				b, _ := (&mqtt.Connack{ReasonCode: code}).AppendTo(nil, v)
				nc.Write(b)
			}
			nc.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	var out, errOut bytes.Buffer
	status := func(err error) int {
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		if err != nil {
			return 1
		}
		return 0
	}
	if s := status(runPub(ctx, []string{"-h", "127.0.0.1", "-p", port, "-t", "a", "-m", "x"}, nil, &out, &errOut)); s != 5 {
		t.Errorf("3.1.1 refusal: exit status %d, want 5", s)
	}
	err = runSub(ctx, []string{"-h", "127.0.0.1", "-p", port, "-t", "a", "-V", "5"}, &out, &errOut)
	if s := status(err); s != 0x87 || !strings.Contains(err.Error(), "not authorized") {
		t.Errorf("MQTT 5 refusal: exit status %d (%v), want 135", s, err)
	}

	host, bport := testBroker(t)
	if s := status(runSub(ctx, []string{"-h", host, "-p", bport, "-t", "quiet", "-W", "1"}, &out, &errOut)); s != exitTimeout {
		t.Errorf("-W timeout: exit status %d, want 27", s)
	}
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	_, closedPort, _ := net.SplitHostPort(ln2.Addr().String())
	ln2.Close()
	if s := status(runPub(ctx, []string{"-h", "127.0.0.1", "-p", closedPort, "-t", "a", "-m", "x"}, nil, &out, &errOut)); s != 1 {
		t.Errorf("connection refused: exit status %d, want 1", s)
	}
}
