package meshfail_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mesh"

	"github.com/citymesh/citymesh/internal/testproc"
)

// The ports every node listens on, on all its addresses: each node has a
// namespace of its own, so they never collide.
const (
	mqttPort = 1883
	httpPort = 8080
)

// readyTimeout bounds how long a (re)started node may take to answer
// /healthz; exitTimeout how long a killed one may take to exit.
const (
	readyTimeout = 20 * time.Second
	exitTimeout  = 10 * time.Second
)

// The binary is built once for the whole package, into a directory that
// TestMain removes.
// TestMain removes the built binary after the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	testproc.Cleanup()
	os.Exit(code)
}

// nodeSpec is what a node's configuration says.
type nodeSpec struct {
	name, role string
	// peers are a core's other cores, upstream an edge's cores: node
	// names with the address to dial.
	peers, upstream []peerAddr
	// keepAlive, when set, caps the keep alive of every connection to the
	// node (limits.max_keep_alive_seconds), links included: a cut link is
	// then noticed within one and a half of it.
	keepAlive int
}

// peerAddr is a node to dial and the address it is reached at.
type peerAddr struct {
	name string
	addr netip.Addr
}

// yaml returns the node's configuration file.
func (s nodeSpec) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mqtt: 0.0.0.0:%d\nws: \"off\"\nhttp: 0.0.0.0:%d\nallow_remote_anonymous: true\n", mqttPort, httpPort)
	if s.keepAlive > 0 {
		fmt.Fprintf(&b, "limits:\n  max_keep_alive_seconds: %d\n", s.keepAlive)
	}
	fmt.Fprintf(&b, "mesh:\n  node: %s\n  role: %s\n", s.name, s.role)
	list := func(key string, ps []peerAddr) {
		if len(ps) == 0 {
			return
		}
		fmt.Fprintf(&b, "  %s:\n", key)
		for _, p := range ps {
			fmt.Fprintf(&b, "    - {name: %s, url: \"mqtt://%s\"}\n", p.name, netip.AddrPortFrom(p.addr, mqttPort))
		}
	}
	list("peers", s.peers)
	list("upstream", s.upstream)
	if s.role == "core" {
		b.WriteString("  accept:\n    edges: [\"*\"]\n")
	}
	return b.String()
}

// node is a citymesh node running in its host's namespace, started with `ip
// netns exec` (which execs the binary in place, so the process ID is the
// node's). It can be killed and started again on the same data directory.
type node struct {
	t       *testing.T
	bin     string
	h       *host
	spec    nodeSpec
	cfgPath string
	dataDir string
	log     *testproc.Buffer

	mu      sync.Mutex
	runs    int
	starts  []time.Time // when each run was executed
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// startNode writes the node's configuration, starts it in host h and waits
// until it answers /healthz. The node is killed, by its process ID, when the
// test ends; its output is logged if the test failed.
func startNode(ctx context.Context, t *testing.T, h *host, spec nodeSpec) *node {
	t.Helper()
	dir := t.TempDir()
	n := &node{t: t, bin: testproc.Binary(t), h: h, spec: spec, cfgPath: filepath.Join(dir, "citymesh.yaml"),
		dataDir: filepath.Join(dir, "data"), log: &testproc.Buffer{}}
	if err := os.WriteFile(n.cfgPath, []byte(spec.yaml()), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.kill(); err != nil {
			t.Errorf("stop node %s: %v", n.spec.name, err)
		}
		if t.Failed() {
			t.Logf("node %s (%d runs) output, last lines:\n%s", n.spec.name, n.runs, tail(n.log.String(), 60))
		}
	})
	if err := n.start(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// mqttAddr is the node's MQTT address, as the test's clients reach it.
func (n *node) mqttAddr() string { return netip.AddrPortFrom(n.h.addr, mqttPort).String() }

// httpURL is the base URL of the node's HTTP listener.
func (n *node) httpURL() string { return "http://" + netip.AddrPortFrom(n.h.addr, httpPort).String() }

// start runs the node and waits until it answers /healthz.
func (n *node) start(ctx context.Context) error {
	n.mu.Lock()
	if n.cmd != nil && !n.hasExited() {
		n.mu.Unlock()
		return fmt.Errorf("node %s is running already", n.spec.name)
	}
	n.runs++
	fmt.Fprintf(n.log, "--- run %d started %s\n", n.runs, time.Now().Format("15:04:05.000"))
	cmd := exec.Command("ip", "netns", "exec", n.h.ns, n.bin, "serve", "--config", n.cfgPath, "--data", n.dataDir, "--log", "info")
	cmd.Stdout, cmd.Stderr = n.log, n.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no node outlives a killed test binary
	cmd.WaitDelay = 2 * time.Second
	n.starts = append(n.starts, time.Now())
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("start node %s: %w", n.spec.name, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.waitErr = err
		n.mu.Unlock()
		close(exited)
	}()
	return n.waitReady(ctx, exited)
}

// hasExited reports whether the current process has exited. Called with
// n.mu held.
func (n *node) hasExited() bool {
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// waitReady polls /healthz until the node answers.
func (n *node) waitReady(ctx context.Context, exited chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	hc := http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(n.httpURL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-exited:
			return fmt.Errorf("node %s run %d exited before it was ready: %v\n%s", n.spec.name, n.runs, n.waitErr, tail(n.log.String(), 20))
		case <-ctx.Done():
			return fmt.Errorf("waiting for node %s: %w", n.spec.name, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not ready after %v: %v", n.spec.name, readyTimeout, err)
		}
	}
}

// kill sends the node's process SIGKILL, by its process ID, and waits for it
// to exit. It does nothing when the node is not running.
func (n *node) kill() error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill node %s pid %d: %w", n.spec.name, cmd.Process.Pid, err)
	}
	select {
	case <-exited:
		fmt.Fprintf(n.log, "--- run %d killed %s\n", n.runs, time.Now().Format("15:04:05.000"))
		return nil
	case <-time.After(exitTimeout):
		return fmt.Errorf("node %s pid %d did not exit within %v of SIGKILL", n.spec.name, cmd.Process.Pid, exitTimeout)
	}
}

// exitedEarly reports, without waiting, whether the node's process has
// exited by itself, and how.
func (n *node) exitedEarly() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || !n.hasExited() {
		return false, nil
	}
	return true, n.waitErr
}

// status asks the node for GET /api/mesh.
func (n *node) status() (mesh.Status, error) {
	var st mesh.Status
	hc := http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(n.httpURL() + "/api/mesh")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/mesh: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("GET /api/mesh: %w", err)
	}
	return st, nil
}

// link returns the node's link to peer from a status (for an edge, peer
// "upstream" is its link to its core).
func link(st mesh.Status, peer string) (mesh.LinkStatus, bool) {
	for _, l := range st.Links {
		if l.Peer == peer {
			return l, true
		}
	}
	return mesh.LinkStatus{}, false
}

// waitFor polls cond every 20 ms until it is true, and fails the test with
// what, and the last reason cond gave, after timeout. It returns how long
// it waited.
func waitFor(ctx context.Context, t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v (%s)", what, ctx.Err(), why)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// linkUp waits until node n reports its link to peer up and the node at
// the other end named (from its hello).
func linkUp(ctx context.Context, t *testing.T, n *node, peer string, timeout time.Duration) time.Duration {
	t.Helper()
	return waitFor(ctx, t, timeout, fmt.Sprintf("%s's link %s to come up", n.spec.name, peer), func() (bool, string) {
		st, err := n.status()
		if err != nil {
			return false, err.Error()
		}
		l, ok := link(st, peer)
		if !ok {
			return false, fmt.Sprintf("no link %s in %+v", peer, st.Links)
		}
		return l.Up && l.Remote != "", fmt.Sprintf("up %v, remote %q, last error %q", l.Up, l.Remote, l.LastError)
	})
}

// tail returns the last n lines of s, indented for the test log.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("(%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return "\t" + strings.Join(lines, "\n\t")
}
