package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParsePasswordFile(t *testing.T) {
	alice, bob, carol := mustHash(t, "a", fastParams), mustHash(t, "b", HashParams{Bcrypt: true, Cost: 4}), mustHash(t, "c", fastParams)
	src := "\uFEFF# citymesh users\r\n" +
		"alice:" + alice + "\r\n" +
		"\n" +
		"   # indented comment\n" +
		"bob:" + bob + ":admin, ops\n" +
		"  carol : " + carol + " :: acme \n" +
		"dave:" + alice + "::\n" +
		"érin:" + alice + ":g\n"
	f, err := ParsePasswordFile(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.Users(), []string{"alice", "bob", "carol", "dave", "érin"}; !slices.Equal(got, want) {
		t.Fatalf("users %q, want %q", got, want)
	}
	for _, tc := range []struct {
		user, hash string
		groups     []string
		tenant     string
	}{
		{"alice", alice, nil, ""},
		{"bob", bob, []string{"admin", "ops"}, ""},
		{"carol", carol, nil, "acme"},
		{"dave", alice, nil, ""},
		{"érin", alice, []string{"g"}, ""},
	} {
		hash, groups, tenant, ok := f.Lookup(tc.user)
		if !ok || hash != tc.hash || !slices.Equal(groups, tc.groups) || tenant != tc.tenant {
			t.Errorf("Lookup(%q) = %q, %q, %q, %v; want %q, %q, %q", tc.user, hash, groups, tenant, ok, tc.hash, tc.groups, tc.tenant)
		}
	}
	if _, _, _, ok := f.Lookup("mallory"); ok {
		t.Error("Lookup of an unknown user succeeded")
	}
	var out bytes.Buffer
	if _, err := f.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	want := "# citymesh users\n" +
		"alice:" + alice + "\n" +
		"\n" +
		"   # indented comment\n" +
		"bob:" + bob + ":admin,ops\n" +
		"carol:" + carol + "::acme\n" +
		"dave:" + alice + "\n" +
		"érin:" + alice + ":g\n"
	if out.String() != want {
		t.Fatalf("written back as\n%s\nwant\n%s", &out, want)
	}
}

func TestParsePasswordFileErrors(t *testing.T) {
	h := mustHash(t, "pw", fastParams)
	long := strings.Repeat("x", maxLine+1)
	for _, tc := range []struct {
		name, src, want string
	}{
		{"duplicate user", "# users\nalice:" + h + "\nbob:" + h + "\nalice:" + h + "\n", `line 4: duplicate user "alice" (first on line 2)`},
		{"missing hash", "alice:" + h + "\nbob\n", "line 2: no hash"},
		{"empty hash", "alice:\n", `line 1: user "alice": no hash`},
		{"empty name", "\n:" + h + "\n", "line 2: empty user name"},
		{"name with control", "al\x01ice:" + h + "\n", "line 1: user name \"al\\x01ice\" contains a control character"},
		{"name with C1 control", "al\u0085ice:" + h + "\n", "line 1: user name \"al\\u0085ice\" contains a control character"},
		{"name not UTF-8", "al\xffice:" + h + "\n", "line 1: user name \"al\\xffice\" is not valid UTF-8"},
		{"too many fields", "alice:" + h + ":g:t:x\n", "line 1: 5 ':'-separated fields"},
		{"bad hash", "alice:" + h + "\nbob:$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n", `line 2: user "bob": auth: invalid password hash: argon2id memory`},
		{"plain password", "alice:hunter2\n", `line 1: user "alice": auth: invalid password hash: not a PHC or bcrypt string`},
		{"empty group", "alice:" + h + ":a,,b\n", "line 1: user \"alice\": empty group name"},
		{"group with space", "alice:" + h + ":a b\n", `line 1: user "alice": group name "a b" contains white space`},
		{"tenant with slash", "alice:" + h + "::a/b\n", `line 1: user "alice": tenant name "a/b" contains one of ":/+#"`},
		{"tenant with wildcard", "alice:" + h + "::#\n", `line 1: user "alice": tenant name "#" contains one of ":/+#"`},
		{"long line", "alice:" + h + "\n" + long + "\n", "line 2: longer than 1048576 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParsePasswordFile(strings.NewReader(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParsePasswordFile = %v, %v; want an error with %q", f, err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "auth: password file: line ") {
				t.Fatalf("error %q does not start with the line", err)
			}
		})
	}
	// A file's errors name it.
	path := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(path, []byte("alice\n"), 0o600)
	if _, err := LoadPasswordFile(path); err == nil || !strings.Contains(err.Error(), path+": line 1: no hash") {
		t.Fatalf("LoadPasswordFile: %v", err)
	}
	if _, err := LoadPasswordFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadPasswordFile of a missing file: %v", err)
	}
}

// countVerify counts the verifications of f.
func countVerify(f *PasswordFile) *atomic.Int32 {
	var n atomic.Int32
	f.verify = func(hash string, password []byte) (bool, error) {
		n.Add(1)
		return VerifyPassword(hash, password)
	}
	return &n
}

func testFile(t *testing.T) *PasswordFile {
	t.Helper()
	src := fmt.Sprintf("alice:%s\nbob:%s:ops,admin\ncarol:%s:sensors:acme\n",
		mustHash(t, "alice-pw", fastParams), mustHash(t, "bob-pw", HashParams{Bcrypt: true, Cost: 4}), mustHash(t, "carol-pw", fastParams))
	f, err := ParsePasswordFile(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestAuthenticate(t *testing.T) {
	f := testFile(t)
	var _ Authenticator = f
	req := func(user, password string) *ConnectRequest {
		return &ConnectRequest{ClientID: "c1", Username: user, HasUsername: true, Password: []byte(password), HasPassword: true}
	}
	for _, tc := range []struct {
		name    string
		req     *ConnectRequest
		want    *Identity
		err     error
		verifys int32
	}{
		{"right password", req("alice", "alice-pw"), &Identity{User: "alice", ClientID: "c1", Method: "password"}, nil, 1},
		{"bcrypt, groups, admin", req("bob", "bob-pw"), &Identity{User: "bob", ClientID: "c1", Groups: []string{"ops", "admin"}, Admin: true, Method: "password"}, nil, 1},
		{"tenant", req("carol", "carol-pw"), &Identity{User: "carol", ClientID: "c1", Groups: []string{"sensors"}, Tenant: "acme", Method: "password"}, nil, 1},
		{"wrong password", req("alice", "bob-pw"), nil, ErrBadCredentials, 1},
		{"empty password", req("alice", ""), nil, ErrBadCredentials, 1},
		{"unknown user", req("mallory", "alice-pw"), nil, ErrBadCredentials, 1},
		{"empty user name", req("", "alice-pw"), nil, ErrBadCredentials, 1},
		{"other user's password", req("carol", "alice-pw"), nil, ErrBadCredentials, 1},
		{"known user, no password", &ConnectRequest{Username: "alice", HasUsername: true}, nil, ErrBadCredentials, 0},
		{"unknown user, no password", &ConnectRequest{Username: "mallory", HasUsername: true}, nil, ErrNoCredentials, 0},
		{"no user name", &ConnectRequest{Password: []byte("alice-pw"), HasPassword: true}, nil, ErrNoCredentials, 0},
		{"nothing", &ConnectRequest{}, nil, ErrNoCredentials, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := countVerify(f)
			f.SetCache(0, 0)
			id, err := f.Authenticate(context.Background(), tc.req)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if fmt.Sprintf("%+v", id) != fmt.Sprintf("%+v", tc.want) {
				t.Fatalf("identity %+v, want %+v", id, tc.want)
			}
			if n.Load() != tc.verifys {
				t.Fatalf("%d verifications, want %d", n.Load(), tc.verifys)
			}
		})
	}
	// The identity's groups are the caller's to change.
	id, _ := f.Authenticate(context.Background(), req("bob", "bob-pw"))
	id.Groups[0] = "changed"
	if _, groups, _, _ := f.Lookup("bob"); groups[0] != "ops" {
		t.Fatal("changing an identity's groups changed the file's")
	}
	// Through a Chain.
	c := &Chain{Backends: []Authenticator{f}}
	if id, err := c.Authenticate(context.Background(), req("alice", "alice-pw")); err != nil || id.User != "alice" || id.Method != "password" {
		t.Fatalf("chain: %+v, %v", id, err)
	}
	// A cancelled context while verifications are saturated.
	for range cap(f.sem) {
		f.sem <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := f.Authenticate(ctx, req("alice", "other")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("saturated: %v", err)
	}
}

// TestUnknownUserCost checks that an unknown user costs a verification
// against a real user's hash.
func TestUnknownUserCost(t *testing.T) {
	f := testFile(t)
	f.SetCache(0, 0)
	alice, _, _, _ := f.Lookup("alice")
	var hashes []string
	f.verify = func(hash string, password []byte) (bool, error) {
		hashes = append(hashes, hash)
		return VerifyPassword(hash, password)
	}
	// Even with alice's password, which matches the hash verified.
	if _, err := f.Authenticate(context.Background(), &ConnectRequest{Username: "nobody", HasUsername: true, Password: []byte("alice-pw"), HasPassword: true}); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if !slices.Equal(hashes, []string{alice}) {
		t.Fatalf("verified %q, want alice's hash", hashes)
	}
	// An empty file has no users to hide.
	e := NewPasswordFile("")
	n := countVerify(e)
	if _, err := e.Authenticate(context.Background(), &ConnectRequest{Username: "nobody", HasUsername: true, Password: []byte("x"), HasPassword: true}); !errors.Is(err, ErrBadCredentials) || n.Load() != 0 {
		t.Fatalf("empty file: %v, %d verifications", err, n.Load())
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("alice:" + mustHash(t, "one", fastParams) + "\n")
	f, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	try := func(user, password string) error {
		_, err := f.Authenticate(context.Background(), &ConnectRequest{Username: user, HasUsername: true, Password: []byte(password), HasPassword: true})
		return err
	}
	if err := try("alice", "one"); err != nil {
		t.Fatal(err)
	}
	write("alice:" + mustHash(t, "two", fastParams) + "\nbob:nohash\n")
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), path+": line 2:") {
		t.Fatalf("Reload of a bad file: %v", err)
	}
	if err := try("alice", "one"); err != nil {
		t.Fatalf("old contents lost after a failed reload: %v", err)
	}
	os.Remove(path)
	if err := f.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Reload of a missing file: %v", err)
	}
	write("alice:" + mustHash(t, "two", fastParams) + "\nbob:" + mustHash(t, "b", fastParams) + "\n")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if try("alice", "one") == nil || try("alice", "two") != nil || try("bob", "b") != nil {
		t.Fatal("new contents not in use")
	}
	if err := NewPasswordFile("").Reload(); err == nil {
		t.Fatal("Reload without a path succeeded")
	}
}

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(path, []byte("# users\nold:"+mustHash(t, "x", fastParams)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ha, hb := mustHash(t, "a", fastParams), mustHash(t, "b", HashParams{Bcrypt: true, Cost: 4})
	for _, s := range []struct {
		user, hash string
		groups     []string
		tenant     string
	}{
		{"alice", ha, nil, ""},
		{"bob", hb, []string{"admin", "ops"}, ""},
		{"carol", ha, nil, "acme"},
		{"dave", hb, []string{"g"}, "t"},
		{"old", hb, nil, ""},
	} {
		if err := f.Set(s.user, s.hash, s.groups, s.tenant); err != nil {
			t.Fatal(err)
		}
	}
	if !f.Delete("carol") || f.Delete("carol") {
		t.Fatal("Delete")
	}
	for _, bad := range []struct {
		user, hash string
		groups     []string
		tenant     string
		want       string
	}{
		{"", ha, nil, "", "empty user name"},
		{"a:b", ha, nil, "", "contains ':'"},
		{"#a", ha, nil, "", "starts with '#'"},
		{" a", ha, nil, "", "white space"},
		{"a\n", ha, nil, "", "control character"},
		{"a", "", nil, "", "no hash"},
		{"a", "plain", nil, "", "not a PHC"},
		{"a", ha, []string{"x,y"}, "", "contains one of"},
		{"a", ha, []string{""}, "", "empty group"},
		{"a", ha, nil, "a/b", "contains one of"},
	} {
		if err := f.Set(bad.user, bad.hash, bad.groups, bad.tenant); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Set(%q, %q, %q, %q) = %v; want an error with %q", bad.user, bad.hash, bad.groups, bad.tenant, err, bad.want)
		}
	}
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	want := "# users\nold:" + hb + "\nalice:" + ha + "\nbob:" + hb + ":admin,ops\ndave:" + hb + ":g:t\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Fatalf("saved\n%s\nwant\n%s", b, want)
	}
	g, err := LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b1, b2 bytes.Buffer
	f.WriteTo(&b1)
	if n, err := g.WriteTo(&b2); err != nil || n != int64(b2.Len()) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if b1.String() != b2.String() {
		t.Fatalf("loaded back as\n%s\nwant\n%s", &b2, &b1)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
	if err := NewPasswordFile(filepath.Join(t.TempDir(), "missing", "passwd")).Save(); err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
	if err := (&PasswordFile{}).Save(); err == nil {
		t.Fatal("Save without a path succeeded")
	}
}

// TestConcurrent exercises Authenticate against Set, Delete, Reload and
// Save, for the race detector.
func TestConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	f := NewPasswordFile(path)
	hash := mustHash(t, "pw", fastParams)
	f.Set("alice", hash, []string{"g"}, "")
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				user := []string{"alice", "bob"}[j%2]
				id, err := f.Authenticate(context.Background(), &ConnectRequest{Username: user, HasUsername: true, Password: []byte("pw"), HasPassword: true})
				if err == nil && id.User != user {
					t.Errorf("identity %q for %q", id.User, user)
				}
				if i == 0 && j%10 == 0 {
					f.Set("bob", hash, nil, "")
					f.Delete("bob")
					if err := f.Reload(); err != nil {
						t.Error(err)
					}
					f.Users()
					f.SetCache(100, time.Minute)
				}
				if i == 1 && j%10 == 0 {
					if err := f.Save(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	wg.Wait()
}

// cheapHash reports whether verifying h is cheap, for the fuzz target.
func cheapHash(h string) bool {
	if a, err := parseArgon2(h); err == nil {
		return a.memory*a.time <= 4096
	}
	return checkBcrypt(h) == nil && h[4:6] <= "05"
}

func FuzzPasswordFile(f *testing.F) {
	h := mustHash(f, "pw", fastParams)
	f.Add("alice:"+h+"\n", []byte("pw"))
	f.Add("# c\nbob:"+mustHash(f, "x", HashParams{Bcrypt: true, Cost: 4})+":admin:t\n", []byte("x"))
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", []byte("password"))
	f.Fuzz(func(t *testing.T, src string, password []byte) {
		// src as a hash.
		if cheapHash(src) {
			if _, err := VerifyPassword(src, password); err != nil {
				t.Fatalf("VerifyPassword(%q) of a hash checkHash accepts: %v", src, err)
			}
		} else if checkHash(src) == nil && !strings.HasPrefix(src, "$") {
			t.Fatalf("checkHash accepts %q", src)
		}
		// src as a file.
		pf, err := ParsePasswordFile(strings.NewReader(src))
		if err != nil {
			if !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		var b bytes.Buffer
		if _, err := pf.WriteTo(&b); err != nil {
			t.Fatal(err)
		}
		again, err := ParsePasswordFile(bytes.NewReader(b.Bytes()))
		if err != nil {
			t.Fatalf("written back as %q, which does not parse: %v", b.String(), err)
		}
		var b2 bytes.Buffer
		again.WriteTo(&b2)
		if b.String() != b2.String() {
			t.Fatalf("%q written back as %q, then as %q", src, b.String(), b2.String())
		}
		for _, u := range pf.Users() {
			hash, _, _, _ := pf.Lookup(u)
			if !cheapHash(hash) {
				continue
			}
			if _, err := VerifyPassword(hash, password); err != nil {
				t.Fatalf("hash %q of user %q accepted by the parser, refused by VerifyPassword: %v", hash, u, err)
			}
			pf.Authenticate(context.Background(), &ConnectRequest{Username: u, HasUsername: true, Password: password, HasPassword: true})
		}
	})
}
