package auth

// The password file back end: the file's format, reading and writing it,
// and authentication against it. The hashes are in hash.go, the cache of
// verifications in verifycache.go.

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

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
