package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/store"
	"github.com/citymesh/citymesh/store/disk"
)

func TestStoreCheck(t *testing.T) {
	data := t.TempDir()
	st, err := disk.Open(filepath.Join(data, "store"))
	if err != nil {
		t.Fatal(err)
	}
	var b store.Batch
	b.PutSession(&store.Session{ClientID: "c", Expiry: 60})
	b.PutEntry("c", &store.Entry{Seq: 1, Message: store.Message{Topic: "t", Payload: []byte("q"), QoS: 1}})
	b.PutRetained(&store.Message{Topic: "t", Payload: []byte("x")})
	if err := st.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := runStore(context.Background(), []string{"check", "--data", data}); err != nil {
		t.Fatalf("check of a sound store: %v", err)
	}
	if err := runStore(context.Background(), []string{"check", "--data", t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no store") {
		t.Fatalf("check of an empty directory: %v", err)
	}
	if err := runStore(context.Background(), []string{"verify"}); err == nil {
		t.Fatal("unknown subcommand accepted")
	}
}

func TestStoreCheckReportsDamage(t *testing.T) {
	e := store.NewMemoryEngine()
	st, err := store.Open(e)
	if err != nil {
		t.Fatal(err)
	}
	var b store.Batch
	b.PutSession(&store.Session{ClientID: "gw", Expiry: 60})
	for seq := uint64(1); seq <= 3; seq++ {
		b.PutEntry("gw", &store.Entry{Seq: seq, Message: store.Message{Topic: "v/1", Payload: []byte("reading"), QoS: 1}})
	}
	if err := st.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
	e.Corrupt([]byte("qgw\x00\x00\x00\x00\x00\x00\x00\x00\x02"), func(v []byte) []byte { v[3] ^= 0xff; return v })
	var out bytes.Buffer
	err = checkStore(context.Background(), &out, "mem", st)
	if err == nil {
		t.Fatalf("damage not reported; output:\n%s", &out)
	}
	if !strings.Contains(out.String(), `damaged: store: record queue entry 2 of "gw" is corrupt: checksum mismatch`) ||
		!strings.Contains(out.String(), "2 queued messages") {
		t.Fatalf("output does not name the damaged record:\n%s", &out)
	}
}
