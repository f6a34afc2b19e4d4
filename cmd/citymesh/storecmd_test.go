package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/store"
)

func TestStoreCheck(t *testing.T) {
	data := t.TempDir()
	st, err := store.OpenDisk(filepath.Join(data, "store"))
	if err != nil {
		t.Fatal(err)
	}
	st.PutSession(store.Session{ClientID: "c", Expiry: 60})
	st.PutRetained(store.Message{Topic: "t", Payload: []byte("x")})
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
