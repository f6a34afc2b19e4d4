package lorawantest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is a Mosquitto process of a test: it stands for The Things
// Stack's MQTT server, or for the broker ChirpStack's integration
// publishes to.
type Mosquitto struct {
	t    testing.TB
	bin  string
	conf string
	// Addr is host:port.
	Addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
}

// StartMosquitto starts Mosquitto on a free loopback port, anonymous
// access allowed, and stops it when the test ends. The test is skipped
// when Mosquitto is not installed (Debian package mosquitto).
func StartMosquitto(t testing.TB) *Mosquitto {
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
		t.Skip("mosquitto is not installed (apt-get install mosquitto): skipping the test against a real MQTT server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	m := &Mosquitto{t: t, bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), Addr: addr}
	cfg := fmt.Sprintf("per_listener_settings false\nallow_anonymous true\nlog_dest none\npersistence false\n"+
		"max_queued_messages 0\nlistener %s 127.0.0.1\n", port)
	if os.Geteuid() == 0 {
		cfg += "user root\n"
	}
	if err := os.WriteFile(m.conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(m.Stop)
	return m
}

// Start runs Mosquitto (again) and waits until it listens.
func (m *Mosquitto) Start() {
	m.t.Helper()
	cmd := exec.Command(m.bin, "-c", m.conf)
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.mu.Lock()
	m.cmd = cmd
	m.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto does not listen on %s: %v", m.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends Mosquitto with SIGTERM and waits for it.
func (m *Mosquitto) Stop() {
	m.mu.Lock()
	cmd := m.cmd
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
