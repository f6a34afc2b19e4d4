// Package scripts holds the tests of the repository's shell scripts.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo stands in for the go command: each `go test -fuzz` does what the
// next line of $FAKE_STATE/plan says (pass; deadline: the engine's own
// failure, no input written; crash: a failing input written), and a plain
// run of a corpus entry exits with the status in $FAKE_STATE/rerun.
const fakeGo = `#!/usr/bin/env bash
state=$FAKE_STATE
if printf '%s\n' "$@" | grep -q -- '^-fuzz='; then
  n=$(( $(cat "$state/n" 2>/dev/null || echo 0) + 1 ))
  echo $n >"$state/n"
  case $(sed -n "${n}p" "$state/plan") in
  pass) echo "ok  	example/pkg	10.1s"; exit 0 ;;
  deadline) echo "--- FAIL: FuzzX (10.02s)"; echo "    context deadline exceeded"; exit 1 ;;
  crash)
    mkdir -p pkg/testdata/fuzz/FuzzX
    printf 'go test fuzz v1\n[]byte("boom")\n' >pkg/testdata/fuzz/FuzzX/0123abcd
    echo "    Failing input written to testdata/fuzz/FuzzX/0123abcd"
    exit 1 ;;
  esac
  exit 3
fi
if printf '%s\n' "$@" | grep -q -- '^-run=^FuzzX/0123abcd\$$'; then
  exit "$(cat "$state/rerun")"
fi
echo "unexpected: go $*" >&2
exit 4
`

// TestFuzzScript runs scripts/fuzz.sh against a fake go command: it fails
// on a failing input that reproduces as a plain test, and only warns on
// the fuzzing engine's own failures, after one retry.
func TestFuzzScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script, err := filepath.Abs("fuzz.sh")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		plan     string // one line per go test -fuzz run
		rerun    string // exit status of the plain run of the written input
		wantFail bool
		want     []string
		kept     bool // the written input is still there afterwards
	}{
		{"pass", "pass", "0", false, []string{"no failing input found"}, false},
		{"engine deadline, then pass", "deadline\npass", "0", false,
			[]string{"retrying once", "warning: ./pkg FuzzX (the fuzzing engine failed once without a failing input; the retry passed)"}, false},
		{"engine deadline twice", "deadline\ndeadline", "0", false,
			[]string{"warning: ./pkg FuzzX (the fuzzing engine failed twice without a failing input)"}, false},
		{"a crasher that reproduces", "crash", "1", true,
			[]string{"reproduce with: go test -run='FuzzX/0123abcd' ./pkg", "FAIL: ./pkg FuzzX"}, true},
		{"a failing input that does not reproduce", "crash", "0", false,
			[]string{"passes as a plain test (not kept)"}, false},
		{"engine deadline, then a crasher", "deadline\ncrash", "1", true, []string{"FAIL: ./pkg FuzzX"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root, state, bin := t.TempDir(), t.TempDir(), t.TempDir()
			corpus := filepath.Join(root, "pkg", "testdata", "fuzz", "FuzzX")
			for path, content := range map[string]string{
				filepath.Join(root, "pkg", "x_test.go"): "package pkg\n\nimport \"testing\"\n\nfunc FuzzX(f *testing.F) {}\n",
				filepath.Join(corpus, "seed"):           "go test fuzz v1\n[]byte(\"\")\n",
				filepath.Join(state, "plan"):            tc.plan + "\n",
				filepath.Join(state, "rerun"):           tc.rerun,
			} {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(bin, "go"), []byte(fakeGo), 0o755); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("bash", script)
			cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"FUZZ_ROOT="+root, "FAKE_STATE="+state, "FUZZTIME=1s")
			out, err := cmd.CombinedOutput()
			if failed := err != nil; failed != tc.wantFail {
				t.Fatalf("fuzz.sh failed: %v, want %v; output:\n%s", err, tc.wantFail, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			_, err = os.Stat(filepath.Join(corpus, "0123abcd"))
			if kept := err == nil; kept != tc.kept {
				t.Errorf("written input kept: %v, want %v", kept, tc.kept)
			}
		})
	}
}
