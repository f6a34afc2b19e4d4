package auth

import (
	"bytes"
	"context"
	"encoding/base64"
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

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// fastParams make argon2id hashes cheap enough for tests.
var fastParams = HashParams{Memory: 64, Time: 1, Threads: 1}

func mustHash(t testing.TB, password string, p HashParams) string {
	t.Helper()
	h, err := HashPassword([]byte(password), p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHashVerifyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params HashParams
		prefix string
	}{
		{"argon2id m=64 t=1 p=1", fastParams, "$argon2id$v=19$m=64,t=1,p=1$"},
		{"argon2id m=256 t=2 p=4", HashParams{Memory: 256, Time: 2, Threads: 4}, "$argon2id$v=19$m=256,t=2,p=4$"},
		{"bcrypt min cost", HashParams{Bcrypt: true, Cost: bcrypt.MinCost}, "$2a$04$"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, pw := range []string{"s3cret", "", "pässwörd ✓", strings.Repeat("x", 72)} {
				h := mustHash(t, pw, tc.params)
				if !strings.HasPrefix(h, tc.prefix) {
					t.Fatalf("hash %q does not start with %q", h, tc.prefix)
				}
				if err := checkHash(h); err != nil {
					t.Fatalf("hash %q refused: %v", h, err)
				}
				if h2 := mustHash(t, pw, tc.params); h2 == h {
					t.Fatalf("two hashes of %q are equal (%q): no random salt", pw, h)
				}
				for _, try := range []struct {
					password string
					want     bool
				}{{pw, true}, {pw + "x", false}, {"wrong", false}} {
					ok, err := VerifyPassword(h, []byte(try.password))
					if err != nil || ok != try.want {
						t.Errorf("VerifyPassword(%q, %q) = %v, %v; want %v", h, try.password, ok, err, try.want)
					}
				}
			}
		})
	}
}

func TestHashPasswordDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("a default argon2id hash takes 64 MiB")
	}
	h := mustHash(t, "pw", HashParams{})
	a, err := parseArgon2(h)
	if err != nil {
		t.Fatal(err)
	}
	if a.memory != 65536 || a.time != 3 || a.threads != 4 || len(a.salt) != 16 || len(a.tag) != 32 {
		t.Fatalf("default hash %q: m=%d t=%d p=%d, %d-byte salt, %d-byte tag", h, a.memory, a.time, a.threads, len(a.salt), len(a.tag))
	}
	if h := mustHash(t, "pw", HashParams{Bcrypt: true}); !strings.HasPrefix(h, "$2a$10$") {
		t.Fatalf("default bcrypt hash %q has not cost 10", h)
	}
}

func TestHashPasswordRefuses(t *testing.T) {
	for _, tc := range []struct {
		params   HashParams
		password string
		want     string
	}{
		{HashParams{Memory: 4, Time: 1, Threads: 1}, "pw", "below 8×p"},
		{HashParams{Memory: 64, Time: 1, Threads: 65}, "pw", "parallelism p=65"},
		{HashParams{Memory: 2 << 20, Time: 1, Threads: 1}, "pw", "exceeds the limit"},
		{HashParams{Memory: 64, Time: 100, Threads: 1}, "pw", "passes t=100"},
		{HashParams{Bcrypt: true, Cost: 3}, "pw", "cost 3"},
		{HashParams{Bcrypt: true, Cost: 17}, "pw", "cost 17"},
		{HashParams{Bcrypt: true, Cost: 4}, strings.Repeat("x", 73), "longer than 72"},
	} {
		if h, err := HashPassword([]byte(tc.password), tc.params); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("HashPassword(%+v) = %q, %v; want an error with %q", tc.params, h, err, tc.want)
		}
	}
}

// TestArgon2KnownAnswer checks verification against hashes made elsewhere.
func TestArgon2KnownAnswer(t *testing.T) {
	// The reference implementation's test vector for argon2id, version
	// 0x13, t=2, m=2^16, p=1, password "password", salt "somesalt"
	// (phc-winner-argon2, src/test.c). RFC 9106's own vectors (section 5)
	// use a secret and associated data, which golang.org/x/crypto/argon2
	// does not take.
	const reference = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	// A PHC string built here from argon2.IDKey, independently of
	// HashPassword's encoder.
	salt := []byte("0123456789abcdef")
	tag := argon2.IDKey([]byte("hunter2"), salt, 3, 128, 2, 32)
	built := "$argon2id$v=19$m=128,t=3,p=2$" + base64.RawStdEncoding.EncodeToString(salt) + "$" + base64.RawStdEncoding.EncodeToString(tag)
	for _, tc := range []struct {
		hash, password string
		want           bool
	}{
		{reference, "password", true},
		{reference, "Password", false},
		{built, "hunter2", true},
		{built, "hunter3", false},
	} {
		ok, err := VerifyPassword(tc.hash, []byte(tc.password))
		if err != nil || ok != tc.want {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want %v", tc.hash, tc.password, ok, err, tc.want)
		}
		a, err := parseArgon2(tc.hash)
		if err != nil {
			t.Fatal(err)
		}
		if a.String() != tc.hash {
			t.Errorf("%q formats back as %q", tc.hash, a.String())
		}
	}
}

func TestBcryptKnownAnswer(t *testing.T) {
	// Openwall crypt_blowfish's test vectors (wrapper.c), the reference
	// implementation's; $2b$ and $2y$ name the same algorithm for them.
	for _, tc := range []struct {
		hash, password string
		want           bool
	}{
		{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", true},
		{"$2b$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", true},
		{"$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U", true},
		{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U*", false},
		{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK", "U*U*", true},
		{"$2a$05$XXXXXXXXXXXXXXXXXXXXXOAcXxm9kjPGEMsLznoKqmqw7tc8WCx4a", "U*U*U", true},
		{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", "", true},
		{"$2a$05$CCCCCCCCCCCCCCCCCCCCC.7uG0VCzI2bS7j6ymqJi9CdcdxiRTWNy", "U*U", false},
	} {
		ok, err := VerifyPassword(tc.hash, []byte(tc.password))
		if err != nil || ok != tc.want {
			t.Errorf("VerifyPassword(%q, %q) = %v, %v; want %v", tc.hash, tc.password, ok, err, tc.want)
		}
	}
}

// TestBcryptLongPassword checks that bcrypt's truncation to 72 bytes does
// not let a longer password in.
func TestBcryptLongPassword(t *testing.T) {
	pw := strings.Repeat("a", 72)
	h := mustHash(t, pw, HashParams{Bcrypt: true, Cost: bcrypt.MinCost})
	if ok, err := VerifyPassword(h, []byte(pw+"b")); ok || err != nil {
		t.Fatalf("a 73-byte password whose first 72 bytes match: %v, %v", ok, err)
	}
}

func TestVerifyRefusesBadHashes(t *testing.T) {
	const salt, tag = "c29tZXNhbHQ", "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	const bc = "$2a$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga"
	argon := func(params string) string { return "$argon2id$v=19$" + params + "$" + salt + "$" + tag }
	for _, tc := range []struct {
		hash, want string
	}{
		{"", "empty"},
		{"hunter2", "plain-text"},
		{"$6$salt$hash", "mosquitto"},
		{"$7$101$c2FsdA==$aGFzaA==", "mosquitto"},
		{"$scrypt$ln=16,r=8,p=1$aa$bb", `unsupported algorithm "scrypt"`},
		{"$argon2i$v=19$m=65536,t=2,p=1$" + salt + "$" + tag, `"argon2i"`},
		{"$argon2d$v=19$m=65536,t=2,p=1$" + salt + "$" + tag, `"argon2d"`},
		{"$argon2$v=19$m=65536,t=2,p=1$" + salt + "$" + tag, `"argon2"`},
		{"$argon2id$m=65536,t=2,p=1$" + salt + "$" + tag, "no version"},
		{"$argon2id$v=16$m=65536,t=2,p=1$" + salt + "$" + tag, "unsupported version"},
		{"$argon2id$v=019$m=65536,t=2,p=1$" + salt + "$" + tag, "unsupported version"},
		{"$argon2id$x=19$m=65536,t=2,p=1$" + salt + "$" + tag, "version field"},
		{"$argon2id", "want 5"},
		{"$argon2id$v=19", "want 5"},
		{"$argon2id$v=19$m=64,t=1,p=1", "want 5"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt, "want 5"},
		{argon("m=64,t=1,p=1") + "$extra", "want 5"},
		{argon("m=64,t=1"), "not m=..,t=..,p=.."},
		{argon("m=64,t=1,p=1,keyid=abc"), "not m=..,t=..,p=.."},
		{argon("t=1,m=64,p=1"), "want m="},
		{argon("m=64,t=1,q=1"), "want p="},
		{argon("m=,t=1,p=1"), "empty value"},
		{argon("m=-64,t=1,p=1"), "not a decimal"},
		{argon("m=+64,t=1,p=1"), "not a decimal"},
		{argon("m=0x40,t=1,p=1"), "not a decimal"},
		{argon("m=064,t=1,p=1"), "leading zero"},
		{argon("m=4294967296,t=1,p=1"), "out of range"},
		{argon("m=99999999999999999999,t=1,p=1"), "out of range"},
		{argon("m=4294967295,t=1,p=1"), "exceeds the limit"},
		{argon("m=1048577,t=1,p=1"), "exceeds the limit"},
		{argon("m=1048576,t=5,p=1"), "work"},
		{argon("m=65536,t=4294967295,p=1"), "passes t=4294967295"},
		{argon("m=65536,t=65,p=1"), "passes t=65"},
		{argon("m=65536,t=0,p=1"), "passes t=0"},
		{argon("m=65536,t=1,p=0"), "parallelism p=0"},
		{argon("m=65536,t=1,p=256"), "parallelism p=256"},
		{argon("m=65536,t=1,p=16777215"), "parallelism"},
		{argon("m=7,t=1,p=1"), "below 8×p"},
		{"$argon2id$v=19$m=64,t=1,p=1$$" + tag, "salt of 0 bytes"},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZQ$" + tag, "salt of 4 bytes"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 1<<20) + "$" + tag, "salt of 786432 bytes"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$", "hash of 0 bytes"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 100), "hash of 75 bytes"},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ=$" + tag, "'=' at offset 11"},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZX-hbHQ$" + tag, "'-' at offset 6"},
		{"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + tag[:20] + "\n" + tag[20:], `'\n' at offset 20`},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHR$" + tag, "not canonical"},
		{"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQAA$" + tag[:42], "not canonical"},
		{"$2", "bcrypt variant"},
		{"$2$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga", `bcrypt variant "2"`},
		{"$2x$10$XajjQvNhvvRt5GSeFk1xFeyqRrsxkhBkUiQeg0dt.wU1qD4aFDcga", `bcrypt variant "2x"`},
		{bc[:59], "59 characters"},
		{bc + "a", "61 characters"},
		{"$2a$1x" + bc[6:], "not two digits"},
		{"$2a$100" + bc[7:], "not two digits"},
		{"$2a$03" + bc[6:], "cost 3"},
		{"$2a$17" + bc[6:], "cost 17"},
		{"$2a$31" + bc[6:], "cost 31"},
		{bc[:20] + "+" + bc[21:], "'+' at offset 20"},
	} {
		ok, err := VerifyPassword(tc.hash, []byte("password"))
		if ok || err == nil || !errors.Is(err, ErrInvalidHash) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("VerifyPassword(%.80q) = %v, %v; want ErrInvalidHash saying %q", tc.hash, ok, err, tc.want)
		}
		if err2 := checkHash(tc.hash); fmt.Sprint(err2) != fmt.Sprint(err) {
			t.Errorf("checkHash(%.80q) = %v, VerifyPassword says %v", tc.hash, err2, err)
		}
	}
}

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

// BenchmarkVerifyPassword measures a verification with the default
// parameters, and others for comparison.
func BenchmarkVerifyPassword(b *testing.B) {
	for _, bc := range []struct {
		name   string
		params HashParams
	}{
		{"argon2id/default", DefaultHashParams},
		{"argon2id/m=64MiB,t=3,p=2", HashParams{Memory: 64 * 1024, Time: 3, Threads: 2}},
		{"argon2id/m=64MiB,t=3,p=1", HashParams{Memory: 64 * 1024, Time: 3, Threads: 1}},
		{"bcrypt/cost=10", HashParams{Bcrypt: true, Cost: 10}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := mustHash(b, "correct horse battery staple", bc.params)
			pw := []byte("correct horse battery staple")
			for b.Loop() {
				if ok, err := VerifyPassword(h, pw); !ok || err != nil {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
