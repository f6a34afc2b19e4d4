package auth

// Password hashes: argon2id in the PHC string format, and bcrypt.
//
// References:
//   - [PHC]: the PHC string format, which the argon2id hashes follow.
//   - [RFC 9106]: Argon2 (section 4 gives the recommended parameters).
//
// [PHC]: https://github.com/P-H-C/phc-string-format/blob/master/phc-sf-spec.md
// [RFC 9106]: https://www.rfc-editor.org/rfc/rfc9106.html

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// HashParams are the parameters of a new password hash. Zero fields take the
// values of DefaultHashParams (and bcrypt.DefaultCost for Cost).
type HashParams struct {
	// Memory is argon2id's memory size m, in KiB.
	Memory uint32
	// Time is argon2id's number of passes t over the memory.
	Time uint32
	// Threads is argon2id's degree of parallelism p (the number of lanes).
	Threads uint8
	// Bcrypt selects bcrypt instead of argon2id; Memory, Time and Threads
	// are then ignored.
	Bcrypt bool
	// Cost is bcrypt's cost, the base-2 logarithm of its number of rounds,
	// from bcrypt.MinCost to 16.
	Cost int
}

// DefaultHashParams are the argon2id parameters of new hashes: the second
// recommended option of RFC 9106 section 4 (t=3, p=4, m=64 MiB, with a
// 128-bit salt and a 256-bit tag), for hosts that cannot spend the 2 GiB of
// the first. A verification takes in the order of 100 ms of CPU and 64 MiB
// of memory.
var DefaultHashParams = HashParams{Memory: 64 * 1024, Time: 3, Threads: 4}

// ErrInvalidHash is wrapped by the errors of malformed, unsupported or
// unreasonably expensive password hashes; the wrapping error says what is
// wrong.
var ErrInvalidHash = errors.New("auth: invalid password hash")

// Limits on the hashes accepted, so that a hostile or mistyped hash cannot
// make a verification allocate or compute without bound. They are checked
// before anything is allocated.
const (
	// maxArgon2Memory is the largest argon2id m, in KiB (1 GiB).
	maxArgon2Memory = 1 << 20
	// maxArgon2Time is the largest argon2id t.
	maxArgon2Time = 64
	// maxArgon2Threads is the largest argon2id p.
	maxArgon2Threads = 64
	// maxArgon2Work bounds m×t, in KiB: the memory filled over all passes
	// (4 GiB, e.g. 1 GiB × 4 passes or 64 MiB × 64 passes), which bounds a
	// verification's time to seconds.
	maxArgon2Work = 4 << 20
	// Salt and tag lengths, in bytes. RFC 9106 section 3.1 allows tags of 4
	// bytes and up; the reference implementation requires salts of 8 bytes
	// and up.
	minArgon2Salt, maxArgon2Salt = 8, 64
	minArgon2Tag, maxArgon2Tag   = 4, 64
	// argon2SaltLen and argon2TagLen are the lengths of new hashes (RFC 9106
	// section 4: 128-bit salt, 256-bit tag).
	argon2SaltLen, argon2TagLen = 16, 32

	// maxBcryptCost is the largest bcrypt cost accepted (2^16 rounds, a few
	// seconds); bcrypt itself goes to 31 (days).
	maxBcryptCost = 16
	// maxBcryptPassword is bcrypt's password limit: it ignores what follows
	// the first 72 bytes.
	maxBcryptPassword = 72
)

// HashPassword hashes password for a password file. By default it makes an
// argon2id hash in the PHC string format,
//
//	$argon2id$v=19$m=65536,t=3,p=4$<salt>$<tag>
//
// with a random 16-byte salt and a 32-byte tag, both in the PHC "B64"
// encoding (standard base64 without padding). With p.Bcrypt it makes a
// bcrypt hash ($2a$), refusing passwords longer than bcrypt's 72 bytes.
func HashPassword(password []byte, p HashParams) (string, error) {
	if p.Bcrypt {
		cost := p.Cost
		if cost == 0 {
			cost = bcrypt.DefaultCost
		}
		if cost < bcrypt.MinCost || cost > maxBcryptCost {
			return "", fmt.Errorf("auth: bcrypt cost %d is outside %d..%d", cost, bcrypt.MinCost, maxBcryptCost)
		}
		if len(password) > maxBcryptPassword {
			return "", fmt.Errorf("auth: bcrypt cannot hash passwords longer than %d bytes; use argon2id", maxBcryptPassword)
		}
		h, err := bcrypt.GenerateFromPassword(password, cost)
		if err != nil {
			return "", fmt.Errorf("auth: bcrypt: %w", err)
		}
		return string(h), nil
	}
	a := argon2Hash{memory: p.Memory, time: p.Time, threads: uint32(p.Threads)}
	if a.memory == 0 {
		a.memory = DefaultHashParams.Memory
	}
	if a.time == 0 {
		a.time = DefaultHashParams.Time
	}
	if a.threads == 0 {
		a.threads = uint32(DefaultHashParams.Threads)
	}
	if err := a.checkParams(); err != nil {
		return "", err
	}
	a.salt = make([]byte, argon2SaltLen)
	rand.Read(a.salt) // never fails: see crypto/rand.Read
	a.tag = argon2.IDKey(password, a.salt, a.time, a.memory, uint8(a.threads), argon2TagLen)
	return a.String(), nil
}

// VerifyPassword reports whether password matches hash, an argon2id PHC
// string or a bcrypt hash ($2a$, $2b$ or $2y$), comparing in constant time.
// It returns an error wrapping ErrInvalidHash when hash is malformed, of
// another algorithm, or has parameters beyond the limits (argon2id: m up to
// 1 GiB, t up to 64, p up to 64 and m×t up to 4 GiB; bcrypt: cost up to
// 16), which it checks before allocating anything. A password longer than
// 72 bytes never matches a bcrypt hash, as bcrypt would look at its first 72
// bytes only.
func VerifyPassword(hash string, password []byte) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2"):
		a, err := parseArgon2(hash)
		if err != nil {
			return false, err
		}
		tag := argon2.IDKey(password, a.salt, a.time, a.memory, uint8(a.threads), uint32(len(a.tag)))
		return subtle.ConstantTimeCompare(tag, a.tag) == 1, nil
	case strings.HasPrefix(hash, "$2"):
		if err := checkBcrypt(hash); err != nil {
			return false, err
		}
		if len(password) > maxBcryptPassword {
			return false, nil
		}
		err := bcrypt.CompareHashAndPassword([]byte(hash), password)
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%w: bcrypt: %v", ErrInvalidHash, err)
		}
		return true, nil
	}
	return false, checkHash(hash)
}

// checkHash returns an error when VerifyPassword cannot use hash.
func checkHash(hash string) error {
	switch {
	case strings.HasPrefix(hash, "$argon2"):
		_, err := parseArgon2(hash)
		return err
	case strings.HasPrefix(hash, "$2"):
		return checkBcrypt(hash)
	case hash == "":
		return fmt.Errorf("%w: empty", ErrInvalidHash)
	case strings.HasPrefix(hash, "$6$"), strings.HasPrefix(hash, "$7$"):
		return fmt.Errorf("%w: mosquitto's SHA-512 hashes ($6$, $7$) are not supported; hash the password again with argon2id", ErrInvalidHash)
	case hash[0] != '$':
		return fmt.Errorf("%w: not a PHC or bcrypt string (it does not start with '$'; a plain-text password?)", ErrInvalidHash)
	}
	id, _, _ := strings.Cut(hash[1:], "$")
	return fmt.Errorf("%w: unsupported algorithm %s (want argon2id or bcrypt)", ErrInvalidHash, quoteShort(id))
}

// quoteShort quotes s for an error message, cut to a sensible length.
func quoteShort(s string) string {
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	return strconv.Quote(s)
}

// argon2Hash is a parsed argon2id PHC string.
type argon2Hash struct {
	memory, time, threads uint32
	salt, tag             []byte
}

// String formats h as a PHC string.
func (h *argon2Hash) String() string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.tag))
}

// checkParams checks h's cost parameters against RFC 9106 section 3.1 and
// the limits.
func (h *argon2Hash) checkParams() error {
	switch {
	case h.threads < 1 || h.threads > maxArgon2Threads:
		return fmt.Errorf("%w: argon2id parallelism p=%d is outside 1..%d", ErrInvalidHash, h.threads, maxArgon2Threads)
	case h.time < 1 || h.time > maxArgon2Time:
		return fmt.Errorf("%w: argon2id passes t=%d is outside 1..%d", ErrInvalidHash, h.time, maxArgon2Time)
	case h.memory < 8*h.threads:
		return fmt.Errorf("%w: argon2id memory m=%d KiB is below 8×p = %d KiB", ErrInvalidHash, h.memory, 8*h.threads)
	case h.memory > maxArgon2Memory:
		return fmt.Errorf("%w: argon2id memory m=%d KiB exceeds the limit of %d KiB (1 GiB)", ErrInvalidHash, h.memory, maxArgon2Memory)
	case uint64(h.memory)*uint64(h.time) > maxArgon2Work:
		return fmt.Errorf("%w: argon2id work m×t = %d×%d KiB exceeds the limit of %d KiB", ErrInvalidHash, h.memory, h.time, maxArgon2Work)
	}
	return nil
}

// parseArgon2 parses an argon2id PHC string,
//
//	$argon2id$v=19$m=<uint32>,t=<uint32>,p=<uint8>$<salt B64>$<tag B64>
//
// The PHC format makes the version optional, but its absence means
// version 0x10, which golang.org/x/crypto/argon2 does not implement; the
// optional keyid and data parameters of the reference implementation are
// refused too.
func parseArgon2(s string) (*argon2Hash, error) {
	f := strings.SplitN(s, "$", 7)
	// f[0] is the empty string before the first '$'.
	if len(f) < 2 || f[0] != "" {
		return nil, fmt.Errorf("%w: not a PHC string", ErrInvalidHash)
	}
	if f[1] != "argon2id" {
		return nil, fmt.Errorf("%w: unsupported algorithm %s (want argon2id)", ErrInvalidHash, quoteShort(f[1]))
	}
	if len(f) > 2 && strings.HasPrefix(f[2], "m=") {
		return nil, fmt.Errorf("%w: argon2id: no version (want v=%d)", ErrInvalidHash, argon2.Version)
	}
	if len(f) != 6 {
		return nil, fmt.Errorf("%w: argon2id: want 5 '$'-separated fields ($argon2id$v=19$m=..,t=..,p=..$salt$hash), have %d", ErrInvalidHash, len(f)-1)
	}
	if v, ok := strings.CutPrefix(f[2], "v="); !ok {
		return nil, fmt.Errorf("%w: argon2id: version field %s is not v=%d", ErrInvalidHash, quoteShort(f[2]), argon2.Version)
	} else if n, err := phcDecimal(v); err != nil || n != argon2.Version {
		return nil, fmt.Errorf("%w: argon2id: unsupported version %s (want v=%d)", ErrInvalidHash, quoteShort(f[2]), argon2.Version)
	}
	h := new(argon2Hash)
	params := strings.Split(f[3], ",")
	names := []string{"m", "t", "p"}
	dst := []*uint32{&h.memory, &h.time, &h.threads}
	if len(params) != len(names) {
		return nil, fmt.Errorf("%w: argon2id: parameters %s are not m=..,t=..,p=..", ErrInvalidHash, quoteShort(f[3]))
	}
	for i, p := range params {
		name, val, _ := strings.Cut(p, "=")
		if name != names[i] {
			return nil, fmt.Errorf("%w: argon2id: parameter %d is %s, want %s= (parameters m, t, p in this order; keyid and data are not supported)",
				ErrInvalidHash, i+1, quoteShort(name), names[i])
		}
		n, err := phcDecimal(val)
		if err != nil {
			return nil, fmt.Errorf("%w: argon2id: parameter %s: %v", ErrInvalidHash, name, err)
		}
		*dst[i] = n
	}
	if err := h.checkParams(); err != nil {
		return nil, err
	}
	var err error
	if h.salt, err = phcBase64("salt", f[4], minArgon2Salt, maxArgon2Salt); err != nil {
		return nil, err
	}
	if h.tag, err = phcBase64("hash", f[5], minArgon2Tag, maxArgon2Tag); err != nil {
		return nil, err
	}
	return h, nil
}

// phcDecimal parses a PHC decimal: digits without a sign or leading zeros,
// that fit 32 bits.
func phcDecimal(s string) (uint32, error) {
	if s == "" {
		return 0, errors.New("empty value")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%s is not a decimal number", quoteShort(s))
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%s has a leading zero", quoteShort(s))
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%s is out of range", quoteShort(s))
	}
	return uint32(n), nil
}

// phcBase64 decodes field what of a PHC string, in the PHC "B64" encoding
// (the standard base64 alphabet without padding, canonical), of min to max
// bytes. The length is checked before decoding.
func phcBase64(what, s string, min, max int) ([]byte, error) {
	enc := base64.RawStdEncoding.Strict()
	if n := len(s) * 6 / 8; n < min || n > max {
		return nil, fmt.Errorf("%w: argon2id: %s of %d bytes, want %d to %d", ErrInvalidHash, what, n, min, max)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return nil, fmt.Errorf("%w: argon2id: %s has %q at offset %d, not base64 (standard alphabet, no padding)", ErrInvalidHash, what, c, i)
		}
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: argon2id: %s is not canonical unpadded base64: %v", ErrInvalidHash, what, err)
	}
	return b, nil
}

// checkBcrypt checks a bcrypt hash: $2a$, $2b$ or $2y$, a two-digit cost,
// '$', and 53 characters of bcrypt's base64 (22 of salt, 31 of hash).
func checkBcrypt(s string) error {
	if !strings.HasPrefix(s, "$2") {
		return fmt.Errorf("%w: not a bcrypt hash", ErrInvalidHash)
	}
	if len(s) < 4 || s[3] != '$' || (s[2] != 'a' && s[2] != 'b' && s[2] != 'y') {
		id, _, _ := strings.Cut(s[1:], "$")
		return fmt.Errorf("%w: unsupported bcrypt variant %s (want 2a, 2b or 2y)", ErrInvalidHash, quoteShort(id))
	}
	if len(s) != 60 {
		return fmt.Errorf("%w: bcrypt: %d characters, want 60", ErrInvalidHash, len(s))
	}
	if s[6] != '$' || s[4] < '0' || s[4] > '9' || s[5] < '0' || s[5] > '9' {
		return fmt.Errorf("%w: bcrypt: cost %s is not two digits followed by '$'", ErrInvalidHash, quoteShort(s[4:7]))
	}
	if cost := int(s[4]-'0')*10 + int(s[5]-'0'); cost < bcrypt.MinCost || cost > maxBcryptCost {
		return fmt.Errorf("%w: bcrypt: cost %d is outside %d..%d", ErrInvalidHash, cost, bcrypt.MinCost, maxBcryptCost)
	}
	for i := 7; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '/') {
			return fmt.Errorf("%w: bcrypt: %q at offset %d is not in bcrypt's base64 alphabet", ErrInvalidHash, c, i)
		}
	}
	return nil
}
