package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestVerificationCache(t *testing.T) {
	f := testFile(t)
	n := countVerify(f)
	now := time.Unix(1e9, 0)
	f.now = func() time.Time { return now }
	auth := func(user, password string) error {
		_, err := f.Authenticate(context.Background(), &ConnectRequest{Username: user, HasUsername: true, Password: []byte(password), HasPassword: true})
		return err
	}
	expect := func(what string, user, password string, wantErr error, verifys int32) {
		t.Helper()
		n.Store(0)
		if err := auth(user, password); !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", what, err, wantErr)
		}
		if n.Load() != verifys {
			t.Fatalf("%s: %d verifications, want %d", what, n.Load(), verifys)
		}
	}
	expect("first", "alice", "alice-pw", nil, 1)
	expect("again", "alice", "alice-pw", nil, 0)
	expect("wrong", "alice", "nope", ErrBadCredentials, 1)
	expect("wrong again", "alice", "nope", ErrBadCredentials, 0)
	expect("unknown", "zed", "alice-pw", ErrBadCredentials, 1)
	expect("unknown again", "zed", "alice-pw", ErrBadCredentials, 0)
	// The key covers the user name and the password unambiguously.
	expect("other user, same password", "carol", "alice-pw", ErrBadCredentials, 1)
	expect("shifted boundary", "alic", "ealice-pw", ErrBadCredentials, 1)

	now = now.Add(defaultCacheTTL - time.Second)
	expect("before expiry", "alice", "alice-pw", nil, 0)
	now = now.Add(time.Second)
	expect("expired", "alice", "alice-pw", nil, 1)

	// Set, Delete and Reload clear the cache.
	expect("carol", "carol", "carol-pw", nil, 1)
	hash, groups, tenant, _ := f.Lookup("carol")
	if err := f.Set("carol", hash, groups, tenant); err != nil {
		t.Fatal(err)
	}
	expect("after Set", "carol", "carol-pw", nil, 1)
	f.Delete("carol")
	expect("after Delete", "carol", "carol-pw", ErrBadCredentials, 1)

	path := filepath.Join(t.TempDir(), "passwd")
	g := NewPasswordFile(path)
	g.Set("alice", mustHash(t, "alice-pw", fastParams), nil, "")
	if err := g.Save(); err != nil {
		t.Fatal(err)
	}
	if f, _ = LoadPasswordFile(path); f == nil {
		t.Fatal("cannot load")
	}
	n = countVerify(f)
	expect("loaded", "alice", "alice-pw", nil, 1)
	expect("loaded, again", "alice", "alice-pw", nil, 0)
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	expect("after Reload", "alice", "alice-pw", nil, 1)

	// The cache is bounded; the oldest entries go first.
	f.SetCache(2, time.Hour)
	for _, pw := range []string{"1", "2", "3"} {
		expect("fill "+pw, "alice", pw, ErrBadCredentials, 1)
	}
	expect("evicted", "alice", "1", ErrBadCredentials, 1)
	expect("kept", "alice", "3", ErrBadCredentials, 0)
	if l := len(f.cache.entries); l != 2 {
		t.Fatalf("%d cache entries, want 2", l)
	}
	// And can be turned off.
	f.SetCache(0, time.Hour)
	expect("off", "alice", "alice-pw", nil, 1)
	expect("off, again", "alice", "alice-pw", nil, 1)
}

// TestCacheStaleGeneration checks that an outcome computed before a change
// is not cached after it.
func TestCacheStaleGeneration(t *testing.T) {
	f := testFile(t)
	n := countVerify(f)
	inVerify, release := make(chan struct{}), make(chan struct{})
	verify := f.verify
	f.verify = func(hash string, password []byte) (bool, error) {
		close(inVerify)
		<-release
		return verify(hash, password)
	}
	done := make(chan error)
	go func() {
		_, err := f.Authenticate(context.Background(), &ConnectRequest{Username: "alice", HasUsername: true, Password: []byte("alice-pw"), HasPassword: true})
		done <- err
	}()
	<-inVerify
	f.Set("alice", mustHash(t, "new-pw", fastParams), nil, "")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	f.verify = verify
	n.Store(0)
	if _, err := f.Authenticate(context.Background(), &ConnectRequest{Username: "alice", HasUsername: true, Password: []byte("alice-pw"), HasPassword: true}); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("old password after the change: %v", err)
	}
}
