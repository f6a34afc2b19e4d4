// Package api is the core of citymesh's HTTP API for browsers and tools:
// browser sessions (a cookie with a server-side session and a CSRF token),
// the one authentication rule every HTTP API of the node shares (session
// cookie, HTTP Basic with a broker user, or a Bearer JWT), the security
// headers of everything the node's HTTP listener serves, and the broker's
// routes under /api/v1/broker/. See docs/api.md.
package api

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"

	"github.com/citymesh/citymesh/auth"
)

// Session is a browser's login: who it is, and the token its
// state-changing requests must carry in X-CSRF-Token.
type Session struct {
	// ID is the session id, the value of the session cookie.
	ID string
	// CSRF is the session's anti-CSRF token.
	CSRF string
	// Identity is the user the session was opened for.
	Identity *auth.Identity
	// Created is when the session was opened.
	Created time.Time
	// Seen is the time of the session's last request.
	Seen time.Time
}

// Sessions is an in-memory store of browser sessions. A session ends when
// it was idle for longer than Idle or is older than Max, or on logout.
// Sessions do not outlive the process: a restarted node asks its users to
// log in again.
type Sessions struct {
	idle, max time.Duration
	now       func() time.Time

	mu    sync.Mutex
	m     map[string]*Session
	onEnd []func(sid string)
}

// OnEnd adds f to the functions called, outside the store's lock, with
// the id of every session that ends: by logout (Delete) or found expired.
// A node closes the session's MQTT over WebSocket connections there.
func (s *Sessions) OnEnd(f func(sid string)) {
	s.mu.Lock()
	s.onEnd = append(s.onEnd, f)
	s.mu.Unlock()
}

// ended calls the OnEnd functions for the sessions ids; the caller does
// not hold the lock.
func (s *Sessions) ended(ids []string, fs []func(string)) {
	for _, id := range ids {
		for _, f := range fs {
			f(id)
		}
	}
}

// Default session lifetimes.
const (
	DefaultIdle = time.Hour
	DefaultMax  = 12 * time.Hour
)

// NewSessions returns an empty store whose sessions end after idle
// without a request or max after login (DefaultIdle and DefaultMax when
// zero).
func NewSessions(idle, max time.Duration) *Sessions {
	if idle <= 0 {
		idle = DefaultIdle
	}
	if max <= 0 {
		max = DefaultMax
	}
	return &Sessions{idle: idle, max: max, now: time.Now, m: make(map[string]*Session)}
}

// randomToken returns 32 random bytes, base64url encoded.
func randomToken() string {
	var b [32]byte
	rand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Create opens a session for id; expired sessions are swept.
func (s *Sessions) Create(id *auth.Identity) *Session {
	now := s.now()
	x := &Session{ID: randomToken(), CSRF: randomToken(), Identity: id, Created: now, Seen: now}
	var gone []string
	s.mu.Lock()
	for k, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, k)
			gone = append(gone, k)
		}
	}
	s.m[x.ID] = x
	fs := s.onEnd
	s.mu.Unlock()
	s.ended(gone, fs)
	return x
}

func (s *Sessions) expired(x *Session, now time.Time) bool {
	return now.Sub(x.Seen) > s.idle || now.Sub(x.Created) > s.max
}

// Get returns a copy of the live session sid and marks it used; an
// expired session is removed.
func (s *Sessions) Get(sid string) (Session, bool) {
	now := s.now()
	s.mu.Lock()
	x, ok := s.m[sid]
	if !ok {
		s.mu.Unlock()
		return Session{}, false
	}
	if s.expired(x, now) {
		delete(s.m, sid)
		fs := s.onEnd
		s.mu.Unlock()
		s.ended([]string{sid}, fs)
		return Session{}, false
	}
	x.Seen = now
	out := *x
	s.mu.Unlock()
	return out, true
}

// Delete ends session sid.
func (s *Sessions) Delete(sid string) {
	s.mu.Lock()
	_, ok := s.m[sid]
	delete(s.m, sid)
	fs := s.onEnd
	s.mu.Unlock()
	if ok {
		s.ended([]string{sid}, fs)
	}
}

// Len is the number of sessions held, expired ones not yet swept
// included.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
