package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

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
