package main

// End-to-end mesh tests: real citymesh processes on 127.0.0.2, .3 and .4
// (one core, two edges), linked over TLS with a password and with a client
// certificate, driven by `citymesh pub`, `citymesh mesh status` and the
// client package; killed with SIGKILL and restarted on their stores.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mesh"
	"github.com/citymesh/citymesh/mqtt"

	"github.com/citymesh/citymesh/internal/testproc"
)

// meshProc is one citymesh serve process of a mesh test, restartable on the
// same configuration and data directory.
type meshProc struct {
	t          *testing.T
	name       string
	config     string
	mqtt, http string
	mu         sync.Mutex
	cmd        *exec.Cmd
	out        *testproc.Buffer
}

// freePortOn returns an address on ip with a port that was free a moment
// ago.
func freePortOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s (%v): the multi-process mesh test needs the 127.0.0.0/8 loopback range", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func newMeshProc(t *testing.T, name, dir, mqttAddr, httpAddr, config string) *meshProc {
	t.Helper()
	p := &meshProc{t: t, name: name, config: filepath.Join(dir, name+".yaml"), mqtt: mqttAddr, http: httpAddr, out: new(testproc.Buffer)}
	config = fmt.Sprintf("mqtt: %s\nws: \"off\"\nhttp: %s\ndata: %s\n", mqttAddr, httpAddr, filepath.Join(dir, name+"-data")) + config
	if err := os.WriteFile(p.config, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	p.start()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out)
		}
	})
	return p
}

// start runs the process and waits for its HTTP listener.
func (p *meshProc) start() {
	p.t.Helper()
	cmd := exec.Command(testproc.Binary(p.t), "serve", "--config", p.config, "--log", "info")
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.mu.Unlock()
	waitUntil(p.t, p.name+" to serve /api/mesh", func() bool {
		_, err := p.status()
		return err == nil
	})
}

// kill ends the process with SIGKILL: no shutdown, as in a power cut.
func (p *meshProc) kill() {
	p.mu.Lock()
	cmd := p.cmd
	p.cmd = nil
	p.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

func (p *meshProc) status() (*mesh.Status, error) {
	resp, err := http.Get("http://" + p.http + "/api/mesh")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st mesh.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return &st, nil
}

// link returns the state of p's link to peer (zero if it has none or p is
// unreachable).
func (p *meshProc) link(peer string) mesh.LinkStatus {
	st, err := p.status()
	if err != nil {
		return mesh.LinkStatus{}
	}
	for _, l := range st.Links {
		if l.Peer == peer {
			return l
		}
	}
	return mesh.LinkStatus{}
}

// meshClient connects a client to a process; persistent clients keep their
// session for an hour.
func meshClient(t *testing.T, addr, id, user, password string, persistent bool, onMessage func(*mqtt.Publish)) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := client.Options{Addr: addr, ClientID: id, Version: mqtt.V5, CleanStart: !persistent, Username: user,
		Password: []byte(password), HasPassword: password != "", OnMessage: onMessage}
	if persistent {
		opts.SessionExpiry = 3600
	}
	c, err := client.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("connect %s to %s: %v", id, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recorder collects the payloads a subscriber receives.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(p *mqtt.Publish) {
	r.mu.Lock()
	r.got = append(r.got, p.Topic+" "+string(p.Payload))
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func TestMeshOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	pki := newTestPKI(t)
	vineCert, vineKey, _ := pki.ca.issue(t, dir, "vineyard-wartberg", "", false)
	passwd := filepath.Join(dir, "passwd")
	for i, u := range []struct{ user, pw, groups string }{
		{"ops", "ops-pw", "admin"}, {"campus-b1", "campus-pw", "mesh"}, {"meter", "meter-pw", "meters"},
	} {
		args := []string{"-b", "--groups=" + u.groups, passwd, u.user, u.pw}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if err := runPasswd(context.Background(), args); err != nil {
			t.Fatal(err)
		}
	}

	coreMQTT, coreMQTTS, coreHTTP := freePortOn(t, "127.0.0.2"), freePortOn(t, "127.0.0.2"), freePortOn(t, "127.0.0.2")
	core := newMeshProc(t, "core", dir, coreMQTT, coreHTTP, fmt.Sprintf(`mqtts: %s
tls: {cert: %s, key: %s, client_ca: %s, client_auth: request}
auth:
  password_file: %s
  certificates: {username_from: cn, groups: {vineyard-wartberg: [mesh]}}
mesh:
  node: core
  role: core
  accept: {edges: [campus-b1, vineyard-wartberg, rogue, meter-gw]}
`, coreMQTTS, pki.serverCert, pki.serverKey, pki.ca.file, passwd))
	upstream := "mqtts://" + coreMQTTS
	campus := newMeshProc(t, "campus", dir, freePortOn(t, "127.0.0.3"), freePortOn(t, "127.0.0.3"), fmt.Sprintf(`mesh:
  node: campus-b1
  role: edge
  upstream: [{name: core, url: %q, cafile: %s, username: campus-b1, password: campus-pw}]
`, upstream, pki.ca.file))
	vineyard := newMeshProc(t, "vineyard", dir, freePortOn(t, "127.0.0.4"), freePortOn(t, "127.0.0.4"), fmt.Sprintf(`mesh:
  node: vineyard-wartberg
  role: edge
  upstream: [{name: core, url: %q, cafile: %s, cert: %s, key: %s}]
`, upstream, pki.ca.file, vineCert, vineKey))
	// Two nodes the core must refuse: a wrong password, and a user who is
	// not in the mesh group.
	rogue := newMeshProc(t, "rogue", dir, freePortOn(t, "127.0.0.4"), freePortOn(t, "127.0.0.4"), fmt.Sprintf(`mesh:
  node: rogue
  role: edge
  upstream: [{name: core, url: %q, cafile: %s, username: campus-b1, password: guessed}]
`, upstream, pki.ca.file))
	meter := newMeshProc(t, "meter", dir, freePortOn(t, "127.0.0.4"), freePortOn(t, "127.0.0.4"), fmt.Sprintf(`mesh:
  node: meter-gw
  role: edge
  upstream: [{name: core, url: %q, cafile: %s, username: meter, password: meter-pw}]
`, upstream, pki.ca.file))

	for _, p := range []*meshProc{campus, vineyard} {
		waitUntil(t, p.name+"'s link to the core", func() bool { l := p.link("upstream"); return l.Up && l.Remote == "core" })
	}
	waitUntil(t, "the refusals", func() bool {
		return strings.Contains(rogue.link("upstream").LastError, "Bad User Name or Password") &&
			strings.Contains(meter.link("upstream").LastError, `not in the group "mesh"`)
	}, func() string {
		return fmt.Sprintf("rogue: %q; meter: %q", rogue.link("upstream").LastError, meter.link("upstream").LastError)
	})

	// A persistent subscriber on the campus edge and an operator on the
	// core; a reading published with `citymesh pub` at the vineyard edge
	// reaches both.
	atCampus, atCore := new(recorder), new(recorder)
	twin := meshClient(t, campus.mqtt, "twin", "", "", true, atCampus.add)
	ops := meshClient(t, core.mqtt, "ops-console", "ops", "ops-pw", false, atCore.add)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := twin.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "vineyard/+/soil/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := ops.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "vineyard/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the interest to reach the vineyard", func() bool {
		return core.link("campus-b1").Interest > 0 && vineyard.link("upstream").Interest > 0
	})
	host, port := hostPort(vineyard.mqtt)
	pubCmd := exec.Command(testproc.Binary(t), "pub", "-h", host, "-p", port, "-q", "1", "-t", "vineyard/wartberg/soil/probe-7", "-m", "31.5")
	if out, err := pubCmd.CombinedOutput(); err != nil {
		t.Fatalf("citymesh pub: %v\n%s", err, out)
	}
	first := "vineyard/wartberg/soil/probe-7 31.5"
	waitUntil(t, "the reading on the core and the campus", func() bool {
		return len(atCampus.list()) == 1 && len(atCore.list()) == 1
	})
	if atCampus.list()[0] != first || atCore.list()[0] != first {
		t.Fatalf("got %q on the campus and %q on the core", atCampus.list(), atCore.list())
	}
	out, err := exec.Command(testproc.Binary(t), "mesh", "status", "--http", core.http).CombinedOutput()
	if err != nil {
		t.Fatalf("citymesh mesh status: %v\n%s", err, out)
	}
	for _, want := range []string{"node core (core), ", "campus-b1", "vineyard-wartberg", " up "} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("mesh status lacks %q:\n%s", want, out)
		}
	}

	st, err := core.status()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, nd := range st.Nodes {
		nodes = append(nodes, fmt.Sprintf("%s/%s/%v", nd.Name, nd.Role, nd.Up))
	}
	if got := strings.Join(nodes, " "); got != "core/core/true campus-b1/edge/true vineyard-wartberg/edge/true" {
		t.Fatalf("the core's /api/mesh names the nodes %s", got)
	}
	resp, err := http.Get("http://" + core.http + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`citymesh_mesh_link_up{peer="campus-b1",role="edge"} 1`, `citymesh_mesh_link_forwarded_total{peer="campus-b1"} 1`,
		`citymesh_mesh_link_received_total{peer="vineyard-wartberg"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}

	// The core loses power; the vineyard keeps taking readings (its link's
	// queue holds them), then loses power too. Both come back, the vineyard
	// first: every reading reaches the campus once, in order.
	core.kill()
	waitUntil(t, "the vineyard to see the core gone", func() bool { return !vineyard.link("upstream").Up })
	probe := meshClient(t, vineyard.mqtt, "probe-7", "", "", false, nil)
	const n = 30
	for k := range n {
		if err := probe.Publish(ctx, &mqtt.Publish{Topic: "vineyard/wartberg/soil/probe-7", Payload: fmt.Appendf(nil, "reading-%02d", k), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if l := vineyard.link("upstream"); l.Queued+l.Inflight != n {
		t.Fatalf("the vineyard's link holds %d queued and %d inflight, want %d", l.Queued, l.Inflight, n)
	}
	probe.Close()
	vineyard.kill()
	vineyard.start()
	if l := vineyard.link("upstream"); l.Queued+l.Inflight != n {
		t.Fatalf("after its restart the vineyard's link holds %d queued and %d inflight, want %d", l.Queued, l.Inflight, n)
	}
	core.start()
	waitUntil(t, "the backlog on the campus", func() bool { return len(atCampus.list()) >= n+1 })
	waitUntil(t, "the vineyard's queue to drain", func() bool {
		l := vineyard.link("upstream")
		return l.Up && l.Queued+l.Inflight == 0
	})
	got := atCampus.list()
	if len(got) != n+1 {
		t.Fatalf("the campus got %d readings, want %d: %q", len(got), n+1, got)
	}
	for k := range n {
		if want := fmt.Sprintf("vineyard/wartberg/soil/probe-7 reading-%02d", k); got[k+1] != want {
			t.Fatalf("reading %d on the campus is %q, want %q: lost, duplicated or out of order", k, got[k+1], want)
		}
	}
}

func TestMeshExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three nodes")
	}
	for _, port := range []string{"1901", "1902", "1903", "8901", "8902", "8903"} {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			t.Skipf("port %s is taken (%v): the example uses fixed ports", port, err)
		} else {
			ln.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "../../examples/mesh/run.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("examples/mesh/run.sh: %v\n%s", err, out)
	}
	want := `vineyard/wartberg/device/probe-7/soil {"moisture_pct":31.5,"temp_c":14.2}`
	for _, where := range []string{"at the core:", "at the campus edge:"} {
		if !strings.Contains(string(out), where) || !strings.Contains(string(out), where+strings.Repeat(" ", 22-len(where))+want) {
			t.Fatalf("the example's output lacks the reading %s:\n%s", where, out)
		}
	}
}

// signal sends sig to the running process.
func (p *meshProc) signal(sig os.Signal) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		if err := p.cmd.Process.Signal(sig); err != nil {
			p.t.Fatal(err)
		}
		if sig == syscall.SIGSTOP {
			// kill(2) returns before every thread has stopped: on a busy
			// machine a thread of the process ran on for a while and took
			// in (and acknowledged) messages sent after it.
			waitStopped(p.t, p.cmd.Process.Pid)
		}
	}
}

// waitStopped waits until every thread of process pid is stopped (state T
// in /proc/PID/task/*/stat).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("process %d to stop", pid), func() bool {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil || len(tasks) == 0 {
			return false
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				return false
			}
			// pid (comm) state ...: the state follows the last ')'.
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				return false
			}
		}
		return true
	})
}

// TestLinkQueueKeepsWhatTheCoreHasNotAcknowledged checks the edge's durable
// link queue across SIGKILL now that entries the core acknowledges while
// their batch is open are cancelled, never written: the messages the core
// acknowledged are gone from the edge's store (most of them never reached
// it: the edge counts them as cancelled), and the messages the edge
// acknowledged to its publisher while the core could not acknowledge them
// (its process stopped) are in the queue after the edge is killed and
// restarted, and reach the core's persistent subscriber when the core, also
// killed, is back.
func TestLinkQueueKeepsWhatTheCoreHasNotAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	core := newMeshProc(t, "core", dir, freePortOn(t, "127.0.0.1"), freePortOn(t, "127.0.0.1"), `mesh:
  node: core
  role: core
  accept: {edges: ["*"]}
`)
	edge := newMeshProc(t, "edge", dir, freePortOn(t, "127.0.0.1"), freePortOn(t, "127.0.0.1"), fmt.Sprintf(`mesh:
  node: edge
  role: edge
  upstream: [{name: core, url: "mqtt://%s"}]
`, core.mqtt))
	waitUntil(t, "the edge's link", func() bool { return edge.link("upstream").Up })

	got := new(recorder)
	sub := meshClient(t, core.mqtt, "archive", "", "", true, got.add)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "v/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the interest to reach the edge", func() bool { return edge.link("upstream").Interest > 0 })
	pub := meshClient(t, edge.mqtt, "probe", "", "", false, nil)
	const acked, unacked = 200, 30
	for k := range acked + unacked {
		if k == acked {
			// The core stops acknowledging (its process stopped): what
			// the edge acknowledges now, it holds in its link queue.
			core.signal(syscall.SIGSTOP)
		}
		if err := pub.Publish(ctx, &mqtt.Publish{Topic: "v/1", Payload: fmt.Appendf(nil, "m-%03d", k), QoS: 1}); err != nil {
			t.Fatalf("publish %d: %v", k, err)
		}
		if k == acked-1 {
			waitUntil(t, "the core to acknowledge the first messages", func() bool {
				l := edge.link("upstream")
				return l.Queued+l.Inflight == 0
			})
			if n := metric(t, edge.http, "citymesh_store_writes_cancelled_total"); n == 0 {
				t.Fatal("the edge cancelled no store write of an acknowledged message")
			}
		}
	}
	pub.Close()
	edge.kill()
	core.kill() // stopped, it never took the last messages in
	edge.start()
	if l := edge.link("upstream"); l.Queued+l.Inflight != unacked {
		t.Fatalf("after SIGKILL and restart the edge's link holds %d queued and %d inflight, want the %d the core had not acknowledged",
			l.Queued, l.Inflight, unacked)
	}
	sub.Close()
	// What the subscriber had before the core's SIGKILL: the core may have
	// taken in and delivered the first message sent after SIGSTOP before it
	// stopped (seen in about one run in ten), without its record, or its
	// PUBACK to the edge, being durable; the edge then sends it again after
	// the restart and the subscriber gets it twice, as QoS 1 allows after a
	// crash of the node that delivered it.
	early := make(map[string]bool)
	for _, m := range got.list() {
		early[m] = true
	}
	core.start()
	meshClient(t, core.mqtt, "archive", "", "", true, got.add) // the subscriber's session resumes
	want := make(map[string]bool)
	for k := range acked + unacked {
		want[fmt.Sprintf("v/1 m-%03d", k)] = true
	}
	waitUntil(t, "every message at the subscriber", func() bool {
		seen := 0
		have := make(map[string]bool)
		for _, m := range got.list() {
			if want[m] && !have[m] {
				have[m] = true
				seen++
			}
		}
		return seen == len(want)
	}, func() string { return fmt.Sprintf("%d received", len(got.list())) })
	// The last ones, which only the edge's queue held, arrive once each
	// and in order (the first ones may come twice: the core's SIGKILL may
	// lose the deletion of a delivered entry, as QoS 1 allows; and so may
	// one the core delivered before it was stopped, see early).
	var tail []string
	seen := make(map[string]bool)
	for _, m := range got.list() {
		var k int
		if _, err := fmt.Sscanf(m, "v/1 m-%d", &k); err == nil && k >= acked {
			if seen[m] && early[m] {
				continue // delivered before the core's crash, and again after it
			}
			seen[m] = true
			tail = append(tail, m)
		}
	}
	if len(tail) != unacked {
		t.Fatalf("the messages held by the edge's queue arrived %d times, want %d: %q", len(tail), unacked, tail)
	}
	for i, m := range tail {
		if m != fmt.Sprintf("v/1 m-%03d", acked+i) {
			t.Fatalf("message %d from the edge's queue is %q: out of order", i, m)
		}
	}
}

// metric reads one counter or gauge without labels from a node's /metrics.
func metric(t *testing.T, httpAddr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f
			}
		}
	}
	t.Fatalf("/metrics of %s has no %s", httpAddr, name)
	return 0
}
