package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func apply(t *testing.T, st *Store, fill func(b *Batch) error) {
	t.Helper()
	var b Batch
	if err := fill(&b); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, st *Store) *Snapshot {
	t.Helper()
	snap, err := st.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return snap
}

func sessionOf(snap *Snapshot, id string) *StoredSession {
	for i := range snap.Sessions {
		if snap.Sessions[i].ClientID == id {
			return &snap.Sessions[i]
		}
	}
	return nil
}

func TestBadMessageLeavesBatchUnchanged(t *testing.T) {
	var b Batch
	b.DeleteWill("x")
	size, n := b.Size(), b.Len()
	if err := b.PutEntry("c", &Entry{Seq: 1, Message: Message{Topic: strings.Repeat("t", 70000), QoS: 1}}); err == nil {
		t.Fatal("a topic longer than 65535 bytes was encoded")
	}
	if b.Size() != size || b.Len() != n {
		t.Fatalf("failed write left %d bytes and %d ops, want %d and %d", b.Size(), b.Len(), size, n)
	}
}

func TestCorruptRecordsReported(t *testing.T) {
	e := NewMemoryEngine()
	st, err := Open(e)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, st, func(b *Batch) error {
		b.PutSession(&Session{ClientID: "good", Expiry: 60})
		b.PutSession(&Session{ClientID: "torn", Expiry: 60})
		for seq := uint64(1); seq <= 3; seq++ {
			b.PutEntry("good", &Entry{Seq: seq, Message: Message{Topic: "t", Payload: []byte("p"), QoS: 1}})
		}
		b.PutRetained(&Message{Topic: "keep", Payload: []byte("k")})
		return b.PutRetained(&Message{Topic: "flip", Payload: []byte("f")})
	})
	tests := []struct {
		name   string
		prefix string
		damage func([]byte) []byte
		want   string
	}{
		{"truncated session", "storn", func(v []byte) []byte { return v[:len(v)/2] }, `session "torn"`},
		{"flipped retained byte", "rflip", func(v []byte) []byte { v[2] ^= 0x40; return v }, `retained message "flip"`},
		{"flipped entry byte", "qgood\x00\x00\x00\x00\x00\x00\x00\x00\x02", func(v []byte) []byte { v[len(v)-5] ^= 1; return v }, `queue entry 2 of "good"`},
	}
	for _, tc := range tests {
		if n := e.Corrupt([]byte(tc.prefix), tc.damage); n != 1 {
			t.Fatalf("%s: damaged %d records", tc.name, n)
		}
	}
	snap, err := st.Load()
	if err == nil {
		t.Fatal("damaged records were not reported")
	}
	for _, tc := range tests {
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not name %s", tc.name, err, tc.want)
		}
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Errorf("error does not match ErrCorrupt: %v", err)
	}
	if sessionOf(snap, "good") == nil || len(snap.Sessions) != 1 || len(snap.Retained) != 1 || snap.Retained[0].Topic != "keep" {
		t.Fatalf("the readable records were not returned alongside the error: %+v", snap)
	}
	got, next, err := st.Queue(nil, "good", 0, 10)
	if err == nil || !strings.Contains(err.Error(), "queue entry 2") {
		t.Fatalf("damaged entry not reported by Queue: %v", err)
	}
	if len(got) != 2 || got[0].Seq != 1 || got[1].Seq != 3 || next != 4 {
		t.Fatalf("Queue returned %+v next %d; want entries 1 and 3, next 4", got, next)
	}
}

func TestRefusesOtherFormat(t *testing.T) {
	e := NewMemoryEngine()
	if _, err := Open(e); err != nil {
		t.Fatal(err)
	}
	var b Batch
	start := len(b.buf)
	b.buf = append(b.buf, formatKey...)
	k := len(b.buf)
	b.buf = append(b.buf, "citymesh-store/99"...)
	b.commit(OpSet, start, k, nil)
	if err := e.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(e); err == nil || !strings.Contains(err.Error(), "citymesh-store/99") {
		t.Fatalf("a store of another format was opened: %v", err)
	}
}

// TestCancelWithdrawsAWrite checks Batch.Cancel: a cancelled write is
// skipped by Each and Len and never reaches the store, the writes around it
// do; cancelling twice, at a position that holds no write, or after Reset
// does nothing; Append carries cancellations over.
func TestCancelWithdrawsAWrite(t *testing.T) {
	entry := func(seq uint64) *Entry {
		return &Entry{Seq: seq, Message: Message{Topic: "t", Payload: []byte{byte(seq)}, QoS: 1}}
	}
	tests := []struct {
		name   string
		cancel []int // 0-2: entries 1-3 (Mark before each); others: raw positions (op 0 is the session)
		want   []uint64
		ok     []bool
	}{
		{"none", nil, []uint64{1, 2, 3}, nil},
		{"middle", []int{1}, []uint64{1, 3}, []bool{true}},
		{"all", []int{0, 1, 2}, nil, []bool{true, true, true}},
		{"twice", []int{2, 2}, []uint64{1, 2}, []bool{true, false}},
		{"out of range", []int{-1, 4, 99}, []uint64{1, 2, 3}, []bool{false, false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := Open(NewMemoryEngine())
			if err != nil {
				t.Fatal(err)
			}
			var b Batch
			if err := b.PutSession(&Session{ClientID: "c", Expiry: 60}); err != nil {
				t.Fatal(err)
			}
			var pos []int
			for seq := uint64(1); seq <= 3; seq++ {
				pos = append(pos, b.Mark())
				if err := b.PutEntry("c", entry(seq)); err != nil {
					t.Fatal(err)
				}
			}
			cancelled := 0
			for i, p := range tt.cancel {
				at := p
				if p >= 0 && p < len(pos) {
					at = pos[p]
				}
				if got := b.Cancel(at); got != tt.ok[i] {
					t.Fatalf("Cancel(%d) = %v, want %v", at, got, tt.ok[i])
				}
				if tt.ok[i] {
					cancelled++
				}
			}
			if b.Len() != 4-cancelled || b.Cancelled() != cancelled {
				t.Fatalf("Len %d, Cancelled %d; want %d, %d", b.Len(), b.Cancelled(), 4-cancelled, cancelled)
			}
			// Append keeps what was cancelled cancelled.
			var all Batch
			all.Append(&b)
			if all.Len() != b.Len() || all.Cancelled() != cancelled {
				t.Fatalf("appended: Len %d, Cancelled %d; want %d, %d", all.Len(), all.Cancelled(), b.Len(), cancelled)
			}
			if err := st.Apply(&all, true); err != nil {
				t.Fatal(err)
			}
			entries, _, err := st.Queue(nil, "c", 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range entries {
				got = append(got, e.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("stored queue %v, want %v", got, tt.want)
			}
			b.Reset()
			if b.Cancel(pos[0]) || b.Len() != 0 || b.Cancelled() != 0 {
				t.Fatalf("after Reset: Cancel worked or counts kept (Len %d, Cancelled %d)", b.Len(), b.Cancelled())
			}
		})
	}
}
