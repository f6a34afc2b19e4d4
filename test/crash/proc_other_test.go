//go:build !linux

package crash_test

import "syscall"

// brokerProcAttr returns the process attributes of a broker subprocess. Only
// Linux can tie the broker's life to the test process; elsewhere the test's
// cleanup is the only guard.
func brokerProcAttr() *syscall.SysProcAttr {
	return nil
}
