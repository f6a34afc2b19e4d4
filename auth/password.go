package auth

// The password file back end and its hashes.
//
// References:
//   - [PHC]: the PHC string format, which the argon2id hashes follow.
//   - [RFC 9106]: Argon2 (section 4 gives the recommended parameters).
//
// [PHC]: https://github.com/P-H-C/phc-string-format/blob/master/phc-sf-spec.md
// [RFC 9106]: https://www.rfc-editor.org/rfc/rfc9106.html

import (
	"bufio"
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

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

// AdminGroup is the group whose members are administrators: a password file
// user in it gets Identity.Admin.
const AdminGroup = "admin"

// PasswordFile is the password file back end: an Authenticator that checks
// user names and passwords against a file of argon2id or bcrypt hashes.
//
// The file has one user per line,
//
//	name:hash
//	name:hash:group1,group2
//	name:hash:group1,group2:tenant
//	name:hash::tenant
//
// like mosquitto's password file with two optional fields: the user's groups
// (for ACL rules; members of the group "admin" are administrators, see
// Identity.Admin) and the user's tenant. Blank lines and lines starting with
// '#' are comments. A name is non-empty UTF-8 without ':', control
// characters or leading or trailing white space, and does not start with '#';
// group names have no ',', ':', white space or control characters either;
// a tenant, one topic level, has no '/', '+', '#', ':', white space or
// control characters. A hash is what HashPassword makes (see
// VerifyPassword). Each user appears once.
//
// Make one with NewPasswordFile, LoadPasswordFile or ParsePasswordFile; the
// zero value is not usable. A PasswordFile is safe for concurrent use. It
// bounds the hash verifications it runs at once (to GOMAXPROCS, at most 8),
// which bounds their memory, and caches the outcome of a verification for a
// while: see SetCache.
type PasswordFile struct {
	path string

	mu   sync.RWMutex
	data *passwordData

	sem   chan struct{}
	cache verifyCache

	// verify is VerifyPassword, replaced by tests to count verifications.
	verify func(hash string, password []byte) (bool, error)
	// now is time.Now, replaced by tests.
	now func() time.Time
}

// passwordData is the contents of a password file.
type passwordData struct {
	users map[string]*passwordUser
	// lines are the file's lines in order: users (user set) and comments
	// or blank lines (text set), kept to write the file back.
	lines []fileLine
}

// passwordUser is one user of a password file.
type passwordUser struct {
	name   string
	hash   string
	groups []string
	tenant string
}

type fileLine struct {
	user string // a user's name, or "" for text
	text string
}

// Cache defaults.
const (
	defaultCacheEntries = 10000
	defaultCacheTTL     = 5 * time.Minute
)

// NewPasswordFile returns an empty password file to be saved at path.
func NewPasswordFile(path string) *PasswordFile {
	f := &PasswordFile{
		path:   path,
		data:   &passwordData{users: map[string]*passwordUser{}},
		sem:    make(chan struct{}, min(runtime.GOMAXPROCS(0), 8)),
		verify: VerifyPassword,
		now:    time.Now,
	}
	rand.Read(f.cache.hmacKey[:])
	f.cache.init(defaultCacheEntries, defaultCacheTTL)
	return f
}

// LoadPasswordFile reads the password file at path. The errors of a bad
// file name the path and line.
func LoadPasswordFile(path string) (*PasswordFile, error) {
	d, err := readPasswordFile(path)
	if err != nil {
		return nil, err
	}
	f := NewPasswordFile(path)
	f.data = d
	return f, nil
}

// ParsePasswordFile reads a password file from r. The PasswordFile has no
// path: Reload and Save fail. The errors of a bad file name the line.
func ParsePasswordFile(r io.Reader) (*PasswordFile, error) {
	d, err := parsePasswordData("", r)
	if err != nil {
		return nil, err
	}
	f := NewPasswordFile("")
	f.data = d
	return f, nil
}

// Path returns the path of the file, "" for one from ParsePasswordFile.
func (f *PasswordFile) Path() string { return f.path }

// Reload reads the file again from its path and replaces the contents, all
// at once, and clears the verification cache. On error (a bad file) the
// contents stay as they were. Changes made with Set or Delete and not saved
// are lost.
func (f *PasswordFile) Reload() error {
	if f.path == "" {
		return errors.New("auth: password file has no path to reload from")
	}
	d, err := readPasswordFile(f.path)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.data = d
	f.cache.clear()
	f.mu.Unlock()
	return nil
}

func readPasswordFile(path string) (*passwordData, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: password file: %w", err)
	}
	defer fd.Close()
	return parsePasswordData(path, fd)
}

// maxLine is the longest line of a password file, in bytes.
const maxLine = 1 << 20

// parsePasswordData parses a password file; name, its path, is for errors.
func parsePasswordData(name string, r io.Reader) (*passwordData, error) {
	prefix := "auth: password file"
	if name != "" {
		prefix += " " + name
	}
	d := &passwordData{users: map[string]*passwordUser{}}
	first := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		t := strings.TrimSpace(line)
		if t == "" || t[0] == '#' {
			// Trailing white space would not survive writing back.
			d.lines = append(d.lines, fileLine{text: strings.TrimRightFunc(line, unicode.IsSpace)})
			continue
		}
		u, err := parseUserLine(t)
		if err != nil {
			return nil, fmt.Errorf("%s: line %d: %w", prefix, n, err)
		}
		if l, dup := first[u.name]; dup {
			return nil, fmt.Errorf("%s: line %d: duplicate user %q (first on line %d)", prefix, n, u.name, l)
		}
		first[u.name] = n
		d.users[u.name] = u
		d.lines = append(d.lines, fileLine{user: u.name})
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s: line %d: longer than %d bytes", prefix, n+1, maxLine)
		}
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	return d, nil
}

// parseUserLine parses name:hash[:groups[:tenant]].
func parseUserLine(line string) (*passwordUser, error) {
	f := strings.Split(line, ":")
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	if len(f) < 2 {
		return nil, errors.New("no hash: want name:hash[:groups[:tenant]]")
	}
	if len(f) > 4 {
		return nil, fmt.Errorf("%d ':'-separated fields, want name:hash[:groups[:tenant]]", len(f))
	}
	u := &passwordUser{name: f[0], hash: f[1]}
	if len(f) > 2 && f[2] != "" {
		for g := range strings.SplitSeq(f[2], ",") {
			u.groups = append(u.groups, strings.TrimSpace(g))
		}
	}
	if len(f) > 3 {
		u.tenant = f[3]
	}
	if err := u.check(); err != nil {
		return nil, err
	}
	return u, nil
}

// check validates u's fields.
func (u *passwordUser) check() error {
	if err := checkUserName(u.name); err != nil {
		return err
	}
	if u.hash == "" {
		return fmt.Errorf("user %q: no hash", u.name)
	}
	if err := checkHash(u.hash); err != nil {
		return fmt.Errorf("user %q: %w", u.name, err)
	}
	for _, g := range u.groups {
		if err := checkWord("group", g, ",:"); err != nil {
			return fmt.Errorf("user %q: %w", u.name, err)
		}
	}
	if u.tenant != "" {
		if err := checkWord("tenant", u.tenant, ":/+#"); err != nil {
			return fmt.Errorf("user %q: %w", u.name, err)
		}
	}
	return nil
}

// maxName is the longest user name: an MQTT UTF-8 string has at most 65535
// bytes.
const maxName = 65535

// checkUserName validates a user name: MQTT user names are UTF-8 strings
// [MQTT-1.5.4], and the file format adds its own restrictions.
func checkUserName(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > maxName:
		return fmt.Errorf("user name of %d bytes, longer than MQTT's %d", len(name), maxName)
	case !utf8.ValidString(name):
		return fmt.Errorf("user name %q is not valid UTF-8", name)
	case strings.ContainsRune(name, ':'):
		return fmt.Errorf("user name %q contains ':'", name)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return fmt.Errorf("user name %q contains a control character", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("user name %q has leading or trailing white space", name)
	case name[0] == '#':
		return fmt.Errorf("user name %q starts with '#', which would make its line a comment", name)
	}
	return nil
}

// checkWord validates a group or tenant name: non-empty UTF-8 without white
// space, control characters or any of bad.
func checkWord(what, s, bad string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s name", what)
	case len(s) > maxName:
		return fmt.Errorf("%s name of %d bytes, longer than %d", what, len(s), maxName)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s name %q is not valid UTF-8", what, s)
	case strings.ContainsAny(s, bad):
		return fmt.Errorf("%s name %q contains one of %q", what, s, bad)
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("%s name %q contains white space or a control character", what, s)
	}
	return nil
}

// Users returns the names of the file's users, in file order.
func (f *PasswordFile) Users() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var names []string
	for _, l := range f.data.lines {
		if l.user != "" {
			names = append(names, l.user)
		}
	}
	return names
}

// Lookup returns the hash, groups and tenant of user, and whether it is in
// the file.
func (f *PasswordFile) Lookup(user string) (hash string, groups []string, tenant string, ok bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	u := f.data.users[user]
	if u == nil {
		return "", nil, "", false
	}
	return u.hash, slices.Clone(u.groups), u.tenant, true
}

// Set adds user, or replaces its entry where it is in the file, with the
// given hash (from HashPassword), groups and tenant ("" for none). It
// returns an error, and changes nothing, when one of them cannot be in a
// password file. It clears the verification cache; Save writes the change.
func (f *PasswordFile) Set(user, hash string, groups []string, tenant string) error {
	u := &passwordUser{name: user, hash: hash, groups: slices.Clone(groups), tenant: tenant}
	if err := u.check(); err != nil {
		return fmt.Errorf("auth: password file: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.data.clone()
	if _, ok := d.users[user]; !ok {
		d.lines = append(d.lines, fileLine{user: user})
	}
	d.users[user] = u
	f.data = d
	f.cache.clear()
	return nil
}

// Delete removes user and reports whether it was in the file. It clears the
// verification cache; Save writes the change.
func (f *PasswordFile) Delete(user string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.data.users[user]; !ok {
		return false
	}
	d := f.data.clone()
	delete(d.users, user)
	d.lines = slices.DeleteFunc(d.lines, func(l fileLine) bool { return l.user == user })
	f.data = d
	f.cache.clear()
	return true
}

// clone returns a copy of d that can be changed without changing d, which
// readers may hold.
func (d *passwordData) clone() *passwordData {
	c := &passwordData{users: make(map[string]*passwordUser, len(d.users)), lines: slices.Clone(d.lines)}
	for k, v := range d.users {
		c.users[k] = v
	}
	return c
}

// WriteTo writes the file, comments included, to w. It implements
// io.WriterTo.
func (f *PasswordFile) WriteTo(w io.Writer) (int64, error) {
	f.mu.RLock()
	d := f.data
	f.mu.RUnlock()
	var b strings.Builder
	for _, l := range d.lines {
		if l.user == "" {
			b.WriteString(l.text)
			b.WriteByte('\n')
			continue
		}
		u := d.users[l.user]
		b.WriteString(u.name)
		b.WriteByte(':')
		b.WriteString(u.hash)
		if len(u.groups) > 0 || u.tenant != "" {
			b.WriteByte(':')
			b.WriteString(strings.Join(u.groups, ","))
		}
		if u.tenant != "" {
			b.WriteByte(':')
			b.WriteString(u.tenant)
		}
		b.WriteByte('\n')
	}
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}

// Save writes the file to its path atomically: to a temporary file in the
// same directory, synced, then renamed over the old one, with mode 0600. A
// symbolic link at the path is replaced by the file.
func (f *PasswordFile) Save() (err error) {
	if f.path == "" {
		return errors.New("auth: password file has no path to save to")
	}
	dir, base := filepath.Split(f.path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("auth: save password file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("auth: save password file %s: %w", f.path, err)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	w := bufio.NewWriter(tmp)
	if _, err = f.WriteTo(w); err != nil {
		return err
	}
	if err = w.Flush(); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), f.path); err != nil {
		return err
	}
	// Make the rename durable; not every system can sync a directory.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// SetCache sets the size and lifetime of the verification cache, and
// clears it; entries <= 0 or ttl <= 0 turns caching off. The default is
// 10,000 entries for 5 minutes.
//
// The outcome of a verification, success or failure, is remembered for ttl
// under an HMAC-SHA-256 of the user name and password (with a random key of
// the process), so that a storm of reconnecting clients, or one client
// retrying a wrong password, costs one argon2id computation per credential
// instead of one per attempt. The price: for ttl, whoever can read the
// process's memory can test guesses of a cached password at the speed of
// HMAC-SHA-256 instead of argon2id. Set, Delete and Reload clear the cache,
// so that changes take effect at once.
func (f *PasswordFile) SetCache(entries int, ttl time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if entries <= 0 || ttl <= 0 {
		entries, ttl = 0, 0
	}
	f.cache.init(entries, ttl)
}

// Authenticate implements Authenticator. A request without a user name, or
// with one not in the file and no password, is not for this back end
// (ErrNoCredentials). A known user without a password, an unknown user, or a
// wrong password is ErrBadCredentials; an unknown user's password is still
// verified, against another user's hash, so that the time taken does not
// tell which users exist. Otherwise the identity has the user's groups and
// tenant, Admin if the user is in group "admin", and Method "password".
func (f *PasswordFile) Authenticate(ctx context.Context, req *ConnectRequest) (*Identity, error) {
	if !req.HasUsername {
		return nil, ErrNoCredentials
	}
	f.mu.RLock()
	d, gen := f.data, f.cache.generation()
	f.mu.RUnlock()
	u := d.users[req.Username]
	if !req.HasPassword {
		if u == nil {
			return nil, ErrNoCredentials
		}
		return nil, fmt.Errorf("%w: no password for user %q", ErrBadCredentials, u.name)
	}
	hash := ""
	if u != nil {
		hash = u.hash
	} else if len(d.lines) > 0 {
		// Spend the time of a real user's verification.
		for _, l := range d.lines {
			if l.user != "" {
				hash = d.users[l.user].hash
				break
			}
		}
	}
	ok, err := f.check(ctx, gen, req.Username, hash, req.Password)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, fmt.Errorf("%w: unknown user %q", ErrBadCredentials, req.Username)
	}
	if !ok {
		return nil, fmt.Errorf("%w: wrong password for user %q", ErrBadCredentials, u.name)
	}
	return &Identity{
		User:     u.name,
		ClientID: req.ClientID,
		Groups:   slices.Clone(u.groups),
		Tenant:   u.tenant,
		Admin:    slices.Contains(u.groups, AdminGroup),
		Method:   "password",
	}, nil
}

// check verifies password against hash, through the cache of generation
// gen. An empty hash verifies nothing.
func (f *PasswordFile) check(ctx context.Context, gen uint64, user, hash string, password []byte) (bool, error) {
	key := f.cache.key(user, password)
	if ok, hit := f.cache.get(key, gen, f.now()); hit {
		return ok, nil
	}
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("auth: password check: %w", ctx.Err())
	}
	defer func() { <-f.sem }()
	// Another check of the same credentials may have finished meanwhile.
	if ok, hit := f.cache.get(key, gen, f.now()); hit {
		return ok, nil
	}
	if hash == "" {
		return false, nil
	}
	ok, err := f.verify(hash, password)
	if err != nil {
		// The file's hashes are checked when it is read, so this is
		// unexpected; the client cannot be let in either way.
		return false, fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	f.cache.put(key, gen, ok, f.now())
	return ok, nil
}

// verifyCache remembers the outcomes of verifications: see SetCache.
type verifyCache struct {
	hmacKey [32]byte

	mu      sync.Mutex
	gen     uint64
	max     int
	ttl     time.Duration
	entries map[[32]byte]*list.Element
	order   list.List // of *cacheEntry, oldest first
}

type cacheEntry struct {
	key     [32]byte
	ok      bool
	expires time.Time
}

// init sets the cache's limits and clears it.
func (c *verifyCache) init(max int, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.max, c.ttl = max, ttl
	c.clearLocked()
}

// key returns the cache key of user and password.
func (c *verifyCache) key(user string, password []byte) [32]byte {
	m := hmac.New(sha256.New, c.hmacKey[:])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(user)))
	m.Write(n[:])
	io.WriteString(m, user)
	m.Write(password)
	var k [32]byte
	m.Sum(k[:0])
	return k
}

// generation returns the cache's generation, which clear increments.
func (c *verifyCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// clear empties the cache, and makes puts of earlier generations no-ops.
func (c *verifyCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clearLocked()
}

func (c *verifyCache) clearLocked() {
	c.gen++
	c.entries = map[[32]byte]*list.Element{}
	c.order.Init()
}

// get returns the cached outcome of key, if there is one of generation gen
// that has not expired at now.
func (c *verifyCache) get(key [32]byte, gen uint64, now time.Time) (ok, hit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return false, false
	}
	e := c.entries[key]
	if e == nil {
		return false, false
	}
	ce := e.Value.(*cacheEntry)
	if !now.Before(ce.expires) {
		c.order.Remove(e)
		delete(c.entries, key)
		return false, false
	}
	return ce.ok, true
}

// put caches outcome ok of key, computed in generation gen, at now.
func (c *verifyCache) put(key [32]byte, gen uint64, ok bool, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.max <= 0 {
		return
	}
	if e := c.entries[key]; e != nil {
		c.order.Remove(e)
		delete(c.entries, key)
	}
	// Entries expire in the order they were put: drop the expired ones
	// and, when full, the oldest.
	for e := c.order.Front(); e != nil && (len(c.entries) >= c.max || !now.Before(e.Value.(*cacheEntry).expires)); e = c.order.Front() {
		c.order.Remove(e)
		delete(c.entries, e.Value.(*cacheEntry).key)
	}
	c.entries[key] = c.order.PushBack(&cacheEntry{key: key, ok: ok, expires: now.Add(c.ttl)})
}
