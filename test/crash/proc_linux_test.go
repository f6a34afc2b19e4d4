//go:build linux

package crash_test

import "syscall"

// brokerProcAttr returns the process attributes of a broker subprocess. On
// Linux the kernel sends the broker SIGKILL if the test process dies first
// (for example when go test's -timeout panics), so no broker outlives the
// test.
func brokerProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
