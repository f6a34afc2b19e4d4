package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/internal/testproc"
)

// TestServeConfigErrors: citymesh serve refuses a bad configuration before
// it starts anything, in the words of the file.
func TestServeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, config string
		args         []string
		want         string
	}{
		{"unknown key", "mqtt: 127.0.0.1:0\nhttp: \"off\"\nsync: batch\nlog_level: debug\n", nil,
			"unknown key log_level at line 4 (did you mean log?)"},
		{"a mosquitto.conf", "listener 1883\nallow_anonymous true\n", nil,
			"this looks like a mosquitto.conf; citymesh reads YAML"},
		{"a wrong value", "limits:\n  max_inflight: lots\n", nil,
			"max_inflight at line 2: lots is not a whole number from 0 to 65535"},
		{"every mistake, each named", "sync: fast\nlog: loud\n", nil,
			"sync: \"fast\": want batch, always or none\nlog: \"loud\": want debug, info, warn or error"},
		{"a flag's mistake", "", []string{"--mqtt", "0.0.0.0:1883"},
			"mqtt: refusing to listen on 0.0.0.0:1883 without authentication"},
		{"every listener off", "", []string{"--mqtt", "off", "--ws", "off", "--http", "off"},
			"every listener is off"},
		{"a sync interval that is no duration", "", []string{"--sync-interval", "soon"},
			`--sync-interval "soon": want a duration such as 500us, 2ms or 0`},
		{"a sync interval too long", "sync_interval: 5s\n", nil,
			"sync_interval: 5s: want a duration from 0 to 1s"},
		{"a tile template without {y}", "dashboard:\n  map_tiles: https://tiles.example.org/{z}/{x}.png\n", nil,
			`dashboard.map_tiles: "https://tiles.example.org/{z}/{x}.png" has no {y}`},
		{"a tile flag that is no URL", "", []string{"--map-tiles", "ftp://tiles.example.org/{z}/{x}/{y}.png"},
			"dashboard.map_tiles: \"ftp://tiles.example.org/{z}/{x}/{y}.png\": want an https:// or http:// URL"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "c"+strconv.Itoa(i)+".yaml")
			if err := os.WriteFile(path, []byte(tc.config), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--config", path, "--data", filepath.Join(dir, "data")}, tc.args...)
			err := runServe(context.Background(), args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("runServe: %v\nwant %q in it", err, tc.want)
			}
		})
	}
}

// serveProc runs `citymesh serve` with args and waits for its MQTT
// listener's log line.
func serveProc(t *testing.T, args ...string) (*exec.Cmd, *testproc.Buffer) {
	t.Helper()
	out := new(testproc.Buffer)
	cmd := exec.Command(testproc.Binary(t), append([]string{"serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("citymesh serve %v:\n%s", args, out)
		}
	})
	waitUntil(t, "the node to listen", func() bool { return strings.Contains(out.String(), `msg="MQTT listening"`) })
	return cmd, out
}

// TestStoreInUseByAnotherProcess: a second citymesh on a data directory in
// use says which process holds it, and what to do.
func TestStoreInUseByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	data := filepath.Join(t.TempDir(), "data")
	first, _ := serveProc(t, "--mqtt", "127.0.0.1:0", "--ws", "off", "--http", "off", "--data", data)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, testproc.Binary(t), "serve", "--mqtt", "127.0.0.1:0", "--ws", "off", "--http", "off", "--data", data).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("second process: %v\n%s", err, out)
	}
	want := "citymesh serve: " + filepath.Join(data, "store") + " is in use by another citymesh process (pid " +
		strconv.Itoa(first.Process.Pid) + "); stop it or use --data DIR"
	if !strings.Contains(string(out), want) {
		t.Fatalf("second process said:\n%s\nwant %s", out, want)
	}
	// Once the first is gone, even by SIGKILL, the store is free.
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	serveProc(t, "--mqtt", "127.0.0.1:0", "--ws", "off", "--http", "off", "--data", data)
}

// TestSIGHUPNamesWhatNeedsRestart: after SIGHUP the node names the changed
// settings it did not apply; the listener stays where it was.
func TestSIGHUPNamesWhatNeedsRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	addr := freePort(t)
	config := filepath.Join(dir, "citymesh.yaml")
	base := "ws: \"off\"\nhttp: \"off\"\nstore: memory\nlog: info\n"
	if err := os.WriteFile(config, []byte("mqtt: "+addr+"\n"+base), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, out := serveProc(t, "--config", config)
	if err := os.WriteFile(config, []byte("mqtt: "+freePort(t)+"\n"+base+"limits:\n  max_inflight: 8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the reload's warning", func() bool {
		return strings.Contains(out.String(), `level=WARN msg="not applied until restart: mqtt, limits.max_inflight"`)
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the listener moved away after SIGHUP: %v", err)
	}
	c.Close()
}
