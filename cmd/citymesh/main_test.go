package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/internal/testproc"
)

// TestMain removes the citymesh binary the tests built. With
// CITYMESH_TEST_MAIN=1 in its environment the test binary is citymesh
// itself, with the services only the tests register (runservice_test.go).
func TestMain(m *testing.M) {
	if os.Getenv("CITYMESH_TEST_MAIN") == "1" {
		main()
	}
	code := m.Run()
	testproc.Cleanup()
	os.Exit(code)
}

// TestHelpAndVersion: help and version exit 0 on standard output; a
// command line without a known command exits 2.
func TestHelpAndVersion(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // in standard output
		stderr string // in standard error
	}{
		{[]string{"help"}, 0, "usage: citymesh <command>", ""},
		{[]string{"-h"}, 0, "commands:", ""},
		{[]string{"--help"}, 0, "serve", ""},
		{[]string{"help", "serve"}, 0, "", ""}, // the flags go to the process's standard error
		{[]string{"serve", "-h"}, 0, "", ""},
		{[]string{"version"}, 0, "citymesh ", ""},
		{[]string{"--version"}, 0, runtime.Version(), ""},
		{[]string{"-version"}, 0, "citymesh ", ""},
		{nil, 2, "", "usage: citymesh"},
		{[]string{"nonsense"}, 2, "", `unknown command "nonsense"`},
		{[]string{"help", "nonsense"}, 2, "", `unknown command "nonsense"`},
		{[]string{"serve", "stray"}, 1, "", `unexpected argument "stray"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String()+stdout.String(), tc.stderr) {
				t.Fatalf("citymesh %v: exit %d, stdout %q, stderr %q; want exit %d, %q, %q",
					tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
