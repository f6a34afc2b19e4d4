//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// pidFile is the file in the data directory that a node holds locked while
// it runs, with its process id in it, so that a second node on the same
// store is refused with the first one's pid.
const pidFile = "citymesh.pid"

// dataLock is a held lock on a data directory.
type dataLock struct{ f *os.File }

// lockData locks data directory dir, whose store is store (for the error),
// or returns a *StoreInUseError naming the process that holds it. The lock
// is flock(2)'s: the system releases it when the process ends, however it
// ends, and a second open file of the same process conflicts too.
func lockData(dir, store string) (*dataLock, error) {
	path := filepath.Join(dir, pidFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, &FieldError{Field: "data", Err: err}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &StoreInUseError{Store: store, PID: readPID(f)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataLock{f: f}, nil
}

// readPID reads the process id in a pid file, 0 if there is none.
func readPID(f *os.File) int {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 32))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// release empties the pid file and unlocks it.
func (l *dataLock) release() {
	l.f.Truncate(0)
	l.f.Close()
}

// inUse reports whether err is the store engine's refusal of a store that
// another process has open (its LOCK file is locked).
func inUse(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK)
}
