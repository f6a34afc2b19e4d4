//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pty is a pseudo-terminal: the program reads tty; the test types into and
// reads the screen from ptmx, as a terminal emulator would.
type pty struct {
	ptmx, tty *os.File

	mu     sync.Mutex
	screen bytes.Buffer // everything the terminal showed (its echo)
	done   chan struct{}
}

// openPTY opens a pseudo-terminal and copies what it shows into screen
// until the test ends. It skips the test where there are none.
func openPTY(t *testing.T) *pty {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(ptmx.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		ptmx.Close()
		t.Skipf("unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		ptmx.Close()
		t.Skipf("pseudo-terminal number: %v", err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		ptmx.Close()
		t.Skipf("open the pseudo-terminal: %v", err)
	}
	p := &pty{ptmx: ptmx, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 1024)
		for {
			n, err := ptmx.Read(buf)
			p.mu.Lock()
			p.screen.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return // EIO once the terminal side is closed
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		<-p.done
		ptmx.Close()
	})
	return p
}

// shown returns what the terminal has shown so far.
func (p *pty) shown() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.screen.String()
}

// echoes reports whether the terminal echoes what is typed.
func (p *pty) echoes(t *testing.T) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(p.tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatalf("terminal settings: %v", err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// typeIn types s on the keyboard.
func (p *pty) typeIn(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.ptmx, s); err != nil {
		t.Fatalf("type: %v", err)
	}
}

// waitUntilPTY waits for cond, failing the test after ten seconds.
func waitUntilPTY(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer for one writer and one reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPasswdPromptsOnTerminal types passwords into a real pseudo-terminal:
// passwd asks twice, shows neither, and refuses passwords that differ or
// are empty.
func TestPasswdPromptsOnTerminal(t *testing.T) {
	cheapPasswd(t)
	path := filepath.Join(t.TempDir(), "passwd")
	if err := passwd([]string{"-c", "-b", path, "alice", "one"}, stdinLine{strings.NewReader("")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		typed   string // both lines, typed once echo is off
		want    string // error; "" for success
		prompts string
	}{
		{"the same twice", "s3cret-pw\ns3cret-pw\n", "", "Password: \nReenter password: \n"},
		{"different", "s3cret-pw\ns3cret-pX\n", "the passwords do not match", "Password: \nReenter password: \n"},
		{"empty", "\n", "empty password", "Password: \n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := openPTY(t)
			before, _ := os.ReadFile(path)
			var prompts lockedBuffer
			res := make(chan error, 1)
			go func() {
				res <- passwd([]string{path, "bob"}, terminalPrompt{fd: int(p.tty.Fd()), prompts: &prompts})
			}()
			waitUntilPTY(t, "the prompt with echo off", func() bool {
				return strings.Contains(prompts.String(), "Password: ") && !p.echoes(t)
			})
			p.typeIn(t, tc.typed)
			var err error
			select {
			case err = <-res:
			case <-time.After(20 * time.Second):
				t.Fatal("passwd did not return")
			}
			// Echo is back on: a line typed now shows, and what was typed
			// before did not.
			if !p.echoes(t) {
				t.Fatal("echo still off after passwd returned")
			}
			p.typeIn(t, "visible\n")
			waitUntilPTY(t, "the echo of a line typed afterwards", func() bool { return strings.Contains(p.shown(), "visible") })
			if strings.Contains(p.shown(), "s3cret") {
				t.Fatalf("the terminal showed the password: %q", p.shown())
			}
			if got := prompts.String(); got != tc.prompts {
				t.Errorf("prompts %q, want %q", got, tc.prompts)
			}
			after, _ := os.ReadFile(path)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("passwd: %v, want an error with %q", err, tc.want)
				}
				if !bytes.Equal(before, after) {
					t.Fatal("a refused password changed the file")
				}
				return
			}
			if err != nil {
				t.Fatalf("passwd: %v", err)
			}
			if _, err := login(t, path, "bob", "s3cret-pw"); err != nil {
				t.Fatalf("bob with the password typed: %v", err)
			}
		})
	}

	// runPasswd itself notices a terminal on standard input.
	t.Run("standard input", func(t *testing.T) {
		p := openPTY(t)
		old := os.Stdin
		os.Stdin = p.tty
		defer func() { os.Stdin = old }()
		res := make(chan error, 1)
		go func() { res <- runPasswd(context.Background(), []string{path, "carol"}) }()
		waitUntilPTY(t, "echo off", func() bool { return !p.echoes(t) })
		p.typeIn(t, "carol-pw\ncarol-pw\n")
		select {
		case err := <-res:
			if err != nil {
				t.Fatalf("passwd: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("passwd did not return")
		}
		if _, err := login(t, path, "carol", "carol-pw"); err != nil {
			t.Fatalf("carol: %v", err)
		}
	})
}
