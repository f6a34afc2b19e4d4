package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/auth"
)

// cheapPasswd makes passwd's argon2id hashes cheap for the test.
func cheapPasswd(t *testing.T) {
	old := passwdHashParams
	passwdHashParams = auth.HashParams{Memory: 64, Time: 1, Threads: 1}
	t.Cleanup(func() { passwdHashParams = old })
}

// login authenticates user with password against the file at path.
func login(t *testing.T, path, user, password string) (*auth.Identity, error) {
	t.Helper()
	f, err := auth.LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.Authenticate(context.Background(), &auth.ConnectRequest{Username: user, HasUsername: true, Password: []byte(password), HasPassword: true})
}

func TestPasswd(t *testing.T) {
	cheapPasswd(t)
	path := filepath.Join(t.TempDir(), "passwd")
	run := func(args ...string) {
		t.Helper()
		if err := runPasswd(context.Background(), args); err != nil {
			t.Fatalf("passwd %q: %v", args, err)
		}
	}
	pipe := func(stdin string, args ...string) {
		t.Helper()
		if err := passwd(args, stdinLine{strings.NewReader(stdin)}); err != nil {
			t.Fatalf("passwd %q < %q: %v", args, stdin, err)
		}
	}
	expect := func(user, password string, groups []string, tenant string, admin bool) {
		t.Helper()
		id, err := login(t, path, user, password)
		if err != nil {
			t.Fatalf("%s with %q: %v", user, password, err)
		}
		if !slices.Equal(id.Groups, groups) || id.Tenant != tenant || id.Admin != admin {
			t.Fatalf("%s: groups %q, tenant %q, admin %v; want %q, %q, %v", user, id.Groups, id.Tenant, id.Admin, groups, tenant, admin)
		}
	}
	refused := func(user, password string) {
		t.Helper()
		if _, err := login(t, path, user, password); !errors.Is(err, auth.ErrBadCredentials) {
			t.Fatalf("%s with %q: %v, want bad credentials", user, password, err)
		}
	}

	// Create.
	run("-c", "-b", path, "alice", "one")
	expect("alice", "one", nil, "", false)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v, %v", fi, err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "alice:$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("file %q", b)
	}
	// Add, with groups and tenant; from standard input.
	run("-b", "--groups", "ops, admin", "--tenant", "acme", path, "bob", "two")
	pipe("three\r\n", "--groups=sensors", path, "carol")
	pipe("four", "--bcrypt", path, "dave")
	expect("alice", "one", nil, "", false)
	expect("bob", "two", []string{"ops", "admin"}, "acme", true)
	expect("carol", "three", []string{"sensors"}, "", false)
	expect("dave", "four", nil, "", false)
	if hash, _, _, _ := mustLoad(t, path).Lookup("dave"); !strings.HasPrefix(hash, "$2a$10$") {
		t.Fatalf("--bcrypt made %q", hash)
	}
	// Change a password: groups and tenant stay unless given.
	run("-b", path, "bob", "two-b")
	refused("bob", "two")
	expect("bob", "two-b", []string{"ops", "admin"}, "acme", true)
	run("-b", "--groups", "", path, "bob", "two-c")
	expect("bob", "two-c", nil, "acme", false)
	run("-b", "--tenant", "", "--groups", "g", path, "bob", "two-d")
	expect("bob", "two-d", []string{"g"}, "", false)
	// Delete.
	run("-D", path, "carol")
	refused("carol", "three")
	if got := mustLoad(t, path).Users(); !slices.Equal(got, []string{"alice", "bob", "dave"}) {
		t.Fatalf("users %q", got)
	}
	// Comments the operator wrote stay.
	b, _ := os.ReadFile(path)
	os.WriteFile(path, append([]byte("# managed by hand too\n"), b...), 0o600)
	run("-b", path, "erin", "five")
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "# managed by hand too\nalice:") || !strings.Contains(string(b), "\nerin:$argon2id$") {
		t.Fatalf("file %q", b)
	}
	// -c overwrites.
	run("-c", "-b", path, "zoe", "six")
	if got := mustLoad(t, path).Users(); !slices.Equal(got, []string{"zoe"}) {
		t.Fatalf("users after -c: %q", got)
	}
}

func mustLoad(t *testing.T, path string) *auth.PasswordFile {
	t.Helper()
	f, err := auth.LoadPasswordFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPasswdErrors(t *testing.T) {
	cheapPasswd(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	if err := passwd([]string{"-c", "-b", path, "alice", "one"}, stdinLine{strings.NewReader("")}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no arguments", nil, "", "want 2 arguments, have 0"},
		{"no user", []string{path}, "", "want 2 arguments, have 1"},
		{"batch without password", []string{"-b", path, "bob"}, "", "want 3 arguments, have 2"},
		{"password without batch", []string{path, "bob", "pw"}, "", "needs -b"},
		{"too many", []string{"-b", path, "bob", "pw", "extra"}, "", "want 3 arguments, have 4"},
		{"create and delete", []string{"-c", "-D", path, "alice"}, "", "-c and -D"},
		{"delete with groups", []string{"-D", "--groups", "g", path, "alice"}, "", "-D takes no"},
		{"delete unknown", []string{"-D", path, "bob"}, "", `user "bob" is not in`},
		{"missing file", []string{"-b", filepath.Join(dir, "none"), "bob", "pw"}, "", "does not exist (-c creates it)"},
		{"missing directory", []string{"-c", "-b", filepath.Join(dir, "none", "passwd"), "bob", "pw"}, "", "no such file"},
		{"empty stdin", []string{path, "bob"}, "", "no password on standard input"},
		{"empty line", []string{path, "bob"}, "\npw\n", "no password on standard input"},
		{"long line", []string{path, "bob"}, strings.Repeat("x", maxPasswordLine), "longer than"},
		{"empty batch password", []string{"-b", path, "bob", ""}, "", "empty password"},
		{"bad user name", []string{"-b", path, "bo:b", "pw"}, "", `user name "bo:b" contains ':'`},
		{"comment user name", []string{"-b", path, "#bob", "pw"}, "", "starts with '#'"},
		{"bad group", []string{"-b", "--groups", "a,,b", path, "bob", "pw"}, "", "empty group name"},
		{"bad tenant", []string{"-b", "--tenant", "a/b", path, "bob", "pw"}, "", `tenant name "a/b"`},
		{"long bcrypt password", []string{"-b", "--bcrypt", path, "bob", strings.Repeat("x", 73)}, "", "longer than 72 bytes"},
		{"unknown flag", []string{"-U", path}, "", "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := passwd(tc.args, stdinLine{strings.NewReader(tc.stdin)})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("passwd %q: %v; want an error with %q", tc.args, err, tc.want)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Fatal("a failed command changed the file")
			}
		})
	}
	if err := passwd([]string{"-help"}, stdinLine{strings.NewReader("")}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-help: %v", err)
	}
	// A damaged file is refused, naming the line, and left alone.
	os.WriteFile(path, []byte("alice:plaintext\n"), 0o600)
	if err := passwd([]string{"-b", path, "bob", "pw"}, stdinLine{strings.NewReader("")}); err == nil || !strings.Contains(err.Error(), "line 1:") {
		t.Fatalf("damaged file: %v", err)
	}
	if _, ok := commands["passwd"]; !ok {
		t.Fatal("passwd is not registered")
	}
}
