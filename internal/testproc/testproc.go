// Package testproc helps the tests that run the real citymesh binary as a
// separate process: it builds the binary once per test process and collects
// a process's output safely.
package testproc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Binary builds cmd/citymesh from the module the test runs in, on its first
// call in this test process, and returns the binary's path. A test package
// that uses it removes the build with Cleanup from its TestMain.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		start := time.Now()
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		gomod := strings.TrimSpace(string(out))
		if gomod == "" || gomod == os.DevNull {
			buildErr = fmt.Errorf("go env GOMOD gave %q: not inside the citymesh module", gomod)
			return
		}
		if buildDir, err = os.MkdirTemp("", "citymesh-test-bin-"); err != nil {
			buildErr = err
			return
		}
		bin := filepath.Join(buildDir, "citymesh")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/citymesh/citymesh/cmd/citymesh")
		cmd.Dir = filepath.Dir(gomod)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build citymesh: %w\n%s", err, out)
			return
		}
		buildBin = bin
		t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Cleanup removes the binary Binary built, if any. Call it from TestMain
// after m.Run.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Buffer collects the output of a process (or of several runs of one); it is
// safe for concurrent writers and readers. Its zero value is empty and ready.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
