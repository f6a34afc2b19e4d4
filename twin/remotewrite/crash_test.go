package remotewrite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash child's environment: the queue's directory and the URL.
const (
	crashDirEnv = "CITYMESH_REMOTEWRITE_CRASH_DIR"
	crashURLEnv = "CITYMESH_REMOTEWRITE_CRASH_URL"
)

// crashBatch is the k-th batch the crash child appends: 50 samples of one
// of three points.
func crashBatch(k int) (point string, samples int) {
	return fmt.Sprintf("asset/p%d", k%3), 50
}

func crashSamples(k int) ([]string, []int64) {
	p, n := crashBatch(k)
	s := gen(p, t0.Add(time.Duration(k/3)*50*time.Second), n)
	pts := make([]string, n)
	ms := make([]int64, n)
	for i := range s {
		pts[i], ms[i] = s[i].Point, s[i].Time.UnixMilli()
	}
	return pts, ms
}

// TestCrashChild is the process TestCrashKeepsAcknowledged kills: it
// appends batch after batch, printing "ack k" once batch k's Append has
// returned nil. It does nothing in a normal test run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashKeepsAcknowledged")
	}
	cfg := testConfig(t, os.Getenv(crashURLEnv), dir)
	w, err := Open(cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for k := 0; ; k++ {
		p, n := crashBatch(k)
		if err := w.Append(context.Background(), gen(p, t0.Add(time.Duration(k/3)*50*time.Second), n)); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("ack", k)
	}
}

// TestCrashKeepsAcknowledged runs this test binary as a child that appends
// while a receiver takes one request in two, kills it with SIGKILL, opens
// the queue again and checks that every sample of every acknowledged
// Append reached the receiver (a crash may make some arrive twice: the
// queue deletes what was sent without a sync; it never loses any).
func TestCrashKeepsAcknowledged(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the child")
	}
	for round := range 3 {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			r := newReceiver(t)
			r.setAnswer(func(n int) int {
				if n%2 == 1 {
					return 503
				}
				return 200
			})
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashURLEnv+"="+r.url())
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Kill after a number of acknowledgements that differs per
			// round, so that the kill falls at different points.
			killAt := 150 + 97*round
			acked := -1
			sc := bufio.NewScanner(out)
			deadline := time.AfterFunc(30*time.Second, func() { _ = cmd.Process.Kill() })
			for sc.Scan() {
				line := sc.Text()
				if strings.HasPrefix(line, "error") {
					t.Fatalf("child: %s", line)
				}
				if k, ok := strings.CutPrefix(line, "ack "); ok {
					acked, _ = strconv.Atoi(k)
					if acked >= killAt {
						break
					}
				}
			}
			deadline.Stop()
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			if acked < killAt {
				t.Fatalf("child stopped after %d acknowledged appends", acked+1)
			}
			beforeCrash := 0
			for _, s := range r.takenCopy() {
				beforeCrash += len(s)
			}

			r.setAnswer(nil)
			w, err := Open(testConfig(t, r.url(), dir))
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			flush(t, w, 20*time.Second)
			r.check()
			got := map[string]map[int64]int{}
			total := 0
			for p, ss := range r.takenCopy() {
				got[p] = map[int64]int{}
				for _, s := range ss {
					got[p][s.Timestamp]++
					total++
				}
			}
			missing, dup := 0, 0
			for k := 0; k <= acked; k++ {
				pts, ms := crashSamples(k)
				for i := range pts {
					if got[pts[i]][ms[i]] == 0 {
						missing++
					}
				}
			}
			for _, m := range got {
				for _, c := range m {
					dup += c - 1
				}
			}
			if missing > 0 {
				t.Errorf("%d samples of acknowledged appends never reached the receiver", missing)
			}
			t.Logf("killed after %d acknowledged appends (%d samples); %d samples taken before the kill, %d in all, %d twice",
				acked+1, (acked+1)*50, beforeCrash, total, dup)
		})
	}
}
