package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/storetest"
)

func open(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) *store.Store {
		st := open(t, t.TempDir())
		t.Cleanup(func() { st.Close() })
		return st
	})
}

func TestSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	var b store.Batch
	b.PutSession(&store.Session{ClientID: "gateway-7", Expiry: 3600, Subscriptions: []store.Subscription{{Subscription: mqtt.Subscription{Filter: "v/#", QoS: 2}}}})
	b.PutEntry("gateway-7", &store.Entry{Seq: 41, Message: store.Message{Topic: "v/1", Payload: []byte("queued"), QoS: 2}})
	b.PutRetained(&store.Message{Topic: "twin/b1", Payload: []byte("on"), QoS: 1, Props: &mqtt.Properties{ContentType: "text/plain"}})
	if err := st.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = open(t, dir)
	defer st.Close()
	snap, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sessions) != 1 || snap.Sessions[0].Subscriptions[0].QoS != 2 || snap.Sessions[0].Queue.Count != 1 || snap.Sessions[0].Queue.First != 41 {
		t.Fatalf("session after reopen: %+v", snap.Sessions)
	}
	if len(snap.Retained) != 1 || snap.Retained[0].Props.ContentType != "text/plain" {
		t.Fatalf("retained after reopen: %+v", snap.Retained)
	}
	if err := st.Engine().(*Engine).Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
}

func TestOpenFailsClearly(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("opening a file as a store: %v", err)
	}
}

// fill writes n batches, each a session with 100 queue entries, to a store
// in dir, the way a running broker does, and closes it.
func fill(t *testing.T, dir string, n int) {
	t.Helper()
	st := open(t, dir)
	for k := range n {
		var b store.Batch
		id := fmt.Sprint("gateway-", k)
		b.PutSession(&store.Session{ClientID: id, Expiry: 3600})
		for i := range 100 {
			b.PutEntry(id, &store.Entry{Seq: uint64(i + 1), Message: store.Message{Topic: "vineyard/w/soil", Payload: make([]byte, 100), QoS: 1}})
		}
		if err := st.Apply(&b, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// damage changes the first file in dir with extension ext (larger than
// min bytes) with fn.
func damage(t *testing.T, dir, ext string, min int64, fn func([]byte) []byte) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		fi, _ := e.Info()
		if filepath.Ext(e.Name()) == ext && fi.Size() > min {
			p := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, fn(b), 0o600); err != nil {
				t.Fatal(err)
			}
			return e.Name()
		}
	}
	t.Fatalf("no %s file over %d bytes in %s", ext, min, dir)
	return ""
}

func TestDamagedFilesAreReported(t *testing.T) {
	tests := []struct {
		name string
		// flush moves the records from the log into tables first.
		flush  bool
		ext    string
		damage func([]byte) []byte
		// check inspects the outcome: the error of Open, or the opened
		// engine and the error of Load.
		check func(t *testing.T, file string, openErr error, e *Engine, loadErr error, sessions int)
	}{
		{
			name: "byte flipped in the middle of the log", ext: ".log",
			damage: func(b []byte) []byte { b[len(b)/3] ^= 0xff; return b },
			check: func(t *testing.T, file string, openErr error, _ *Engine, _ error, _ int) {
				if openErr == nil || !strings.Contains(openErr.Error(), "invalid chunk") {
					t.Fatalf("damaged log %s opened: %v", file, openErr)
				}
			},
		},
		{
			name: "log truncated", ext: ".log",
			damage: func(b []byte) []byte { return b[:len(b)-50] },
			check: func(t *testing.T, file string, openErr error, e *Engine, loadErr error, sessions int) {
				if openErr != nil || loadErr != nil {
					t.Fatalf("open %v, load %v", openErr, loadErr)
				}
				if !strings.Contains(e.WALTail(), "incomplete or damaged record after") || !strings.Contains(e.WALTail(), file) {
					t.Fatalf("truncated log not reported: %q", e.WALTail())
				}
				if sessions != 5 {
					t.Fatalf("%d sessions, want the 5 before the cut", sessions)
				}
			},
		},
		{
			name: "byte flipped in a table", flush: true, ext: ".sst",
			damage: func(b []byte) []byte { b[len(b)/3] ^= 0xff; return b },
			check: func(t *testing.T, file string, openErr error, e *Engine, loadErr error, _ int) {
				if openErr != nil {
					t.Fatalf("open: %v", openErr)
				}
				if loadErr == nil || !strings.Contains(loadErr.Error(), "checksum mismatch") {
					t.Fatalf("damaged table %s not reported by Load: %v", file, loadErr)
				}
				if err := e.Check(); err == nil || !strings.Contains(err.Error(), strings.TrimSuffix(file, ".sst")) {
					t.Fatalf("Check does not name %s: %v", file, err)
				}
			},
		},
		{
			// The manifest is a log of version edits; Pebble replays it up to
			// its last whole edit. Either it refuses to open, or nothing is
			// missing: a silent loss fails.
			name: "manifest truncated", flush: true, ext: "",
			damage: func(b []byte) []byte { return b[:len(b)/2] },
			check: func(t *testing.T, file string, openErr error, e *Engine, loadErr error, sessions int) {
				if openErr == nil && (loadErr != nil || sessions != 6) {
					t.Fatalf("store with a truncated %s opened with %d of 6 sessions (load: %v)", file, sessions, loadErr)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fill(t, dir, 6)
			if tc.flush {
				e, err := OpenEngine(dir)
				if err != nil {
					t.Fatal(err)
				}
				if err := e.Flush(); err != nil {
					t.Fatal(err)
				}
				e.Close()
			}
			var file string
			if tc.ext == "" {
				file = damageManifest(t, dir, tc.damage)
			} else {
				file = damage(t, dir, tc.ext, 1000, tc.damage)
			}
			e, err := OpenEngine(dir)
			if err != nil {
				tc.check(t, file, err, nil, nil, 0)
				return
			}
			defer e.Close()
			st, err := store.Open(e)
			if err != nil {
				tc.check(t, file, err, nil, nil, 0)
				return
			}
			snap, loadErr := st.Load()
			tc.check(t, file, nil, e, loadErr, len(snap.Sessions))
		})
	}
}

func damageManifest(t *testing.T, dir string, fn func([]byte) []byte) string {
	t.Helper()
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.HasPrefix(e.Name(), "MANIFEST-") {
			p := filepath.Join(dir, e.Name())
			b, _ := os.ReadFile(p)
			os.WriteFile(p, fn(b), 0o600)
			return e.Name()
		}
	}
	t.Fatal("no manifest")
	return ""
}

func TestCleanLogIsNotReported(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 3)
	e, err := OpenEngine(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.WALTail() != "" {
		t.Fatalf("a cleanly closed store reported: %s", e.WALTail())
	}
}

// BenchmarkApplySynced commits batches of queue entries with fsync, as the
// journal's group commit does: the cost per entry falls as the batch grows.
func BenchmarkApplySynced(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprint(n, "-entries"), func(b *testing.B) {
			st, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			var bt store.Batch
			seq := uint64(0)
			for b.Loop() {
				bt.Reset()
				for range n {
					seq++
					bt.PutEntry("gateway-7", &store.Entry{Seq: seq, Message: store.Message{Topic: "vineyard/w/soil", Payload: make([]byte, 64), QoS: 1}})
				}
				if err := st.Apply(&bt, true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/entry")
		})
	}
}

// TestMinSyncIntervalSpacesSyncs: with a minimum interval between syncs,
// synced commits one after another are at least that far apart, and what
// they wrote is there after a reopen; without it they are not held back.
func TestMinSyncIntervalSpacesSyncs(t *testing.T) {
	const commits = 6
	tests := []struct {
		name     string
		interval time.Duration
		atLeast  time.Duration
	}{
		{"no interval", 0, 0},
		{"50ms", 50 * time.Millisecond, (commits - 1) * 50 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := OpenWith(dir, Options{MinSyncInterval: tc.interval})
			if err != nil {
				t.Fatal(err)
			}
			// The first sync may wait for one interval after the open.
			var b store.Batch
			b.PutRetained(&store.Message{Topic: "warm-up", Payload: []byte("x"), QoS: 1})
			if err := st.Apply(&b, true); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i := range commits {
				var b store.Batch
				b.PutRetained(&store.Message{Topic: fmt.Sprintf("meter/%d", i), Payload: []byte("1"), QoS: 1})
				if err := st.Apply(&b, true); err != nil {
					t.Fatal(err)
				}
			}
			took := time.Since(start)
			if took < tc.atLeast {
				t.Errorf("%d synced commits took %v, want at least %v", commits, took, tc.atLeast)
			}
			if tc.interval == 0 && took > 2*time.Second {
				t.Errorf("%d synced commits without an interval took %v", commits, took)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = open(t, dir)
			defer st.Close()
			snap, err := st.Load()
			if err != nil {
				t.Fatal(err)
			}
			if len(snap.Retained) != commits+1 {
				t.Fatalf("after reopen: %d retained messages, want %d", len(snap.Retained), commits+1)
			}
		})
	}
}
