package auth

// The cache of password verifications, and the bound on verifications that
// run at once.

import (
	"container/list"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"
)

// Cache defaults.
const (
	defaultCacheEntries = 10000
	defaultCacheTTL     = 5 * time.Minute
)

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
