package crash_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/internal/testproc"
)

// readyTimeout bounds how long a (re)started broker may take to accept TCP
// connections; exitTimeout bounds how long a killed broker may take to exit.
const (
	readyTimeout = 15 * time.Second
	exitTimeout  = 10 * time.Second
)

// freeAddr returns a loopback address with a TCP port that was free a moment
// ago: it listens on port 0 and closes the listener again.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// node is the citymesh broker running as a subprocess. It is started again
// on the same data directory and port after every kill.
type node struct {
	bin, addr, dir string
	syncMode       string           // value for --sync, or "" to leave the flag out
	log            *testproc.Buffer // stdout and stderr of every run, with a header per run

	runs    int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the current process has exited
	waitErr error         // the current process's exit status, valid once exited is closed
	upAt    time.Time     // when the current process started accepting connections
}

// newNode returns a node for binary bin serving MQTT on addr with its data in
// dir. The node is stopped, by its process ID, when the test ends.
func newNode(t *testing.T, bin, addr, dir, syncMode string) *node {
	n := &node{bin: bin, addr: addr, dir: dir, syncMode: syncMode, log: &testproc.Buffer{}}
	t.Cleanup(func() {
		if err := n.kill(); err != nil {
			t.Errorf("stop broker: %v", err)
		}
	})
	return n
}

// args returns the command line of `citymesh serve` for this node.
func (n *node) args() []string {
	args := []string{"serve", "--mqtt", n.addr, "--ws", "off", "--http", "off", "--data", n.dir, "--log", "warn"}
	if n.syncMode != "" {
		args = append(args, "--sync", n.syncMode)
	}
	return args
}

// start starts the broker and waits until its MQTT port accepts TCP
// connections. It fails if the process exits first or readyTimeout passes.
func (n *node) start(ctx context.Context) error {
	if n.running() {
		return errors.New("broker already running")
	}
	n.runs++
	cmdline := "the same command"
	if n.runs == 1 {
		cmdline = n.bin + " " + strings.Join(n.args(), " ")
	}
	fmt.Fprintf(n.log, "--- broker run %d started %s: %s\n", n.runs, time.Now().Format("15:04:05.000"), cmdline)
	cmd := exec.Command(n.bin, n.args()...)
	cmd.Stdout = n.log
	cmd.Stderr = n.log
	cmd.SysProcAttr = brokerProcAttr()
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start broker: %w", err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited = cmd, exited
	go func() {
		n.waitErr = cmd.Wait()
		close(exited)
	}()
	return n.waitReady(ctx)
}

// waitReady polls the MQTT port until it accepts a TCP connection.
func (n *node) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		c, err := net.DialTimeout("tcp", n.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			n.upAt = time.Now()
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("broker run %d exited before accepting connections: %v", n.runs, n.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("waiting for broker run %d to listen on %s: %w", n.runs, n.addr, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("broker run %d not accepting connections on %s after %v (last error: %v)", n.runs, n.addr, readyTimeout, err)
		}
	}
}

// running reports whether the current broker process has not exited.
func (n *node) running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the current broker process, by its process ID, and
// waits for it to exit. It does nothing if no broker is running.
func (n *node) kill() error {
	if !n.running() {
		return nil
	}
	if err := n.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill broker pid %d: %w", n.cmd.Process.Pid, err)
	}
	select {
	case <-n.exited:
		fmt.Fprintf(n.log, "--- broker run %d killed at %s: %v\n", n.runs, time.Now().Format("15:04:05.000"), n.waitErr)
		return nil
	case <-time.After(exitTimeout):
		return fmt.Errorf("broker pid %d did not exit within %v of SIGKILL", n.cmd.Process.Pid, exitTimeout)
	}
}

// storeCheck runs `citymesh store check` on the node's data directory (the
// broker must not be running) and returns its output.
func (n *node) storeCheck(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, n.bin, "store", "check", "--data", n.dir).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s(exit: %v)", out, err)
	}
	return string(out)
}
