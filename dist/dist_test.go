// Package dist holds the tests of what the repository ships to run
// citymesh: the container image (../Dockerfile) and the systemd unit, its
// user and its configuration (this directory). The files are checked as
// far as this machine allows (systemd-analyze verify, a Docker build when a
// Docker engine is there), and the command each one runs is run here, with
// the real binary, to show that it starts, asks for a login and reloads.
package dist

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/internal/testproc"
	"github.com/citymesh/citymesh/mqtt"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testproc.Cleanup()
	os.Exit(code)
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// node is a citymesh process.
type node struct {
	cmd  *exec.Cmd
	out  *testproc.Buffer
	done chan error
}

// start runs the binary with args.
func start(t *testing.T, bin string, args ...string) *node {
	t.Helper()
	n := &node{cmd: exec.Command(bin, args...), out: &testproc.Buffer{}, done: make(chan error, 1)}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			t.Logf("citymesh %q:\n%s", args, n.out.String())
		}
	})
	return n
}

// exited waits for the process to end by itself and returns its output.
func (n *node) exited(t *testing.T) (string, error) {
	t.Helper()
	select {
	case err := <-n.done:
		n.done <- err // for the cleanup
		return n.out.String(), err
	case <-time.After(20 * time.Second):
		t.Fatalf("citymesh did not exit; output:\n%s", n.out.String())
	}
	return "", nil
}

// waitListening waits until the node logs that MQTT listens.
func (n *node) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(n.out.String(), "MQTT listening") {
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("citymesh exited (%v):\n%s", err, n.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("citymesh does not listen:\n%s", n.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// login connects to addr with user and password ("" for none) and returns
// the CONNACK's refusal, or nil.
func login(t *testing.T, addr, user, password string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Addr: addr, Version: mqtt.V5, CleanStart: true, ClientID: "dist-test",
		Username: user, Password: []byte(password)})
	if err != nil {
		return err
	}
	c.Disconnect(ctx, mqtt.NormalDisconnection)
	return nil
}

// refusedWith reports whether err is a CONNACK refusal with code.
func refusedWith(err error, code mqtt.ReasonCode) bool {
	var se *client.ServerError
	return errors.As(err, &se) && se.Packet == mqtt.CONNACK && se.Code == code
}

// rewrite replaces, in every argument, each old string of pairs by its new
// one.
func rewrite(args []string, pairs ...string) []string {
	r := strings.NewReplacer(pairs...)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// checkLoginPolicy runs the node's command as the shipped file gives it:
// without a password file it refuses to start; with one it listens on
// every interface, lets a user with the right password in and refuses
// anonymous clients and wrong passwords.
func checkLoginPolicy(t *testing.T, bin string, args []string, passwd, mqttPort string) *node {
	t.Helper()
	n := start(t, bin, args...)
	out, err := n.exited(t)
	if err == nil || !strings.Contains(out, "password file") {
		t.Fatalf("without a password file: %v, output %q; want a refusal that names the password file", err, out)
	}
	if out, err := exec.Command(bin, "passwd", "-c", "-b", passwd, "ops", "s3cret-pw").CombinedOutput(); err != nil {
		t.Fatalf("citymesh passwd: %v\n%s", err, out)
	}
	n = start(t, bin, args...)
	n.waitListening(t)
	addr := net.JoinHostPort("127.0.0.1", mqttPort)
	if err := login(t, addr, "ops", "s3cret-pw"); err != nil {
		t.Fatalf("ops with the right password: %v", err)
	}
	if err := login(t, addr, "", ""); !refusedWith(err, mqtt.NotAuthorized) {
		t.Fatalf("anonymous: %v, want CONNACK 0x87", err)
	}
	if err := login(t, addr, "ops", "wrong"); !refusedWith(err, mqtt.BadUserNameOrPassword) {
		t.Fatalf("a wrong password: %v, want CONNACK 0x86", err)
	}
	return n
}

// TestDockerfile checks the image's recipe (two stages, a static build, an
// unprivileged user, the volume /data) and runs its default command with
// the real binary, /data a temporary directory.
func TestDockerfile(t *testing.T) {
	src, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var from, user, volume, entry, cmd []string
	sc := bufio.NewScanner(strings.NewReader(string(src)))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		kw, rest, _ := strings.Cut(line, " ")
		switch kw {
		case "FROM":
			from = append(from, rest)
		case "USER":
			user = append(user, rest)
		case "VOLUME":
			volume = append(volume, rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
		case "CMD":
			if err := json.Unmarshal([]byte(rest), &cmd); err != nil {
				t.Fatalf("CMD %s: %v", rest, err)
			}
		}
	}
	switch {
	case len(from) < 2:
		t.Errorf("FROM %q: want a build stage and a runtime stage", from)
	case !strings.Contains(string(src), "CGO_ENABLED=0"):
		t.Error("the build is not static (CGO_ENABLED=0)")
	case len(user) == 0 || strings.HasPrefix(user[len(user)-1], "0") || strings.HasPrefix(user[len(user)-1], "root"):
		t.Errorf("USER %q: want an unprivileged user", user)
	case len(volume) != 1 || volume[0] != "/data":
		t.Errorf("VOLUME %q, want /data", volume)
	case len(entry) != 1 || entry[0] != "/usr/local/bin/citymesh":
		t.Errorf("ENTRYPOINT %q", entry)
	case len(cmd) == 0 || cmd[0] != "serve":
		t.Fatalf("CMD %q: want serve", cmd)
	}

	bin := testproc.Binary(t)
	data := t.TempDir()
	mqttPort, wsPort, httpPort := freePort(t), freePort(t), freePort(t)
	args := rewrite(cmd, "/data", data, ":1883", ":"+mqttPort, ":8083", ":"+wsPort, ":8080", ":"+httpPort)
	if !strings.Contains(strings.Join(args, " "), "0.0.0.0:"+mqttPort) {
		t.Fatalf("CMD %q: want MQTT on every interface, 0.0.0.0:1883", cmd)
	}
	checkLoginPolicy(t, bin, args, filepath.Join(data, "passwd"), mqttPort)
}

// TestDockerImageBuilds builds the image where a Docker engine runs, and
// checks that a container without a password file refuses to start, saying
// why.
func TestDockerImageBuilds(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("skipped: no docker command")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("skipped: no Docker engine to build with (docker info: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	tag := "citymesh-dist-test:" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	build := exec.CommandContext(ctx, "docker", "build", "-t", tag, "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	defer exec.Command("docker", "rmi", "-f", tag).Run()
	out, err := exec.CommandContext(ctx, "docker", "run", "--rm", tag).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "password file") {
		t.Fatalf("a container without /data/passwd: %v, output %q; want a refusal that names the password file", err, out)
	}
}

// TestSystemdUnit checks dist/citymesh.service with systemd-analyze verify
// (the binary's path pointed at a real build) and runs its ExecStart with
// dist/citymesh.yaml, paths moved to temporary directories, and its
// ExecReload signal.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("citymesh.service")
	if err != nil {
		t.Fatal(err)
	}
	bin := testproc.Binary(t)
	var exec0 string
	for line := range strings.Lines(string(unit)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "ExecStart="); ok {
			exec0 = v
		}
	}
	for _, want := range []string{"ProtectSystem=strict", "NoNewPrivileges=yes", "StateDirectory=citymesh", "User=citymesh",
		"ExecReload=/bin/kill -HUP $MAINPID"} {
		if !strings.Contains(string(unit), "\n"+want+"\n") {
			t.Errorf("the unit lacks %s", want)
		}
	}

	t.Run("systemd-analyze verify", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("skipped: no systemd-analyze (Debian package systemd)")
		}
		dir := t.TempDir()
		// A unit known to be good tells whether systemd-analyze can run here.
		good := filepath.Join(dir, "citymesh-probe.service")
		os.WriteFile(good, []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
		if out, err := exec.Command(sa, "verify", good).CombinedOutput(); err != nil || len(out) > 0 {
			t.Skipf("skipped: systemd-analyze verify cannot run here: %v: %s", err, out)
		}
		path := filepath.Join(dir, "citymesh.service")
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/citymesh", bin)), 0o644); err != nil {
			t.Fatal(err)
		}
		// verify exits 0 on settings it ignores, but says so: nothing
		// may be said.
		out, err := exec.Command(sa, "verify", path).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
		}
	})

	t.Run("ExecStart and ExecReload", func(t *testing.T) {
		fields := strings.Fields(exec0)
		if len(fields) < 2 || fields[0] != "/usr/local/bin/citymesh" || fields[1] != "serve" {
			t.Fatalf("ExecStart=%s: want /usr/local/bin/citymesh serve ...", exec0)
		}
		conf, err := os.ReadFile("citymesh.yaml")
		if err != nil {
			t.Fatal(err)
		}
		state, logs := t.TempDir(), t.TempDir()
		mqttPort, httpPort := freePort(t), freePort(t)
		moved := strings.NewReplacer("/var/lib/citymesh", state, "/var/log/citymesh", logs,
			":1883", ":"+mqttPort, ":8080", ":"+httpPort).Replace(string(conf))
		confPath := filepath.Join(t.TempDir(), "citymesh.yaml")
		if err := os.WriteFile(confPath, []byte(moved), 0o640); err != nil {
			t.Fatal(err)
		}
		args := rewrite(fields[1:], "/etc/citymesh/citymesh.yaml", confPath, "/var/lib/citymesh", state)
		passwd := filepath.Join(state, "passwd")
		n := checkLoginPolicy(t, bin, args, passwd, mqttPort)
		if _, err := os.Stat(filepath.Join(logs, "audit.log")); err != nil {
			t.Errorf("audit log: %v", err)
		}
		// ExecReload: a user added to the password file logs in after
		// SIGHUP, without a restart.
		if out, err := exec.Command(bin, "passwd", "-b", passwd, "meter-7", "m7-pw").CombinedOutput(); err != nil {
			t.Fatalf("citymesh passwd: %v\n%s", err, out)
		}
		addr := net.JoinHostPort("127.0.0.1", mqttPort)
		if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for login(t, addr, "meter-7", "m7-pw") != nil {
			if time.Now().After(deadline) {
				t.Fatalf("the new user cannot log in after SIGHUP:\n%s", n.out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
