package broker

import (
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/citymesh/citymesh/mqtt"
)

// Limits protect the broker and its clients from clients that take too much.
// The zero value of each field takes the default documented on it. The yaml
// tags are the keys of the limits section of a node's configuration file
// (package node).
type Limits struct {
	// MaxConnections caps the connections the broker serves at once; more
	// are refused with CONNACK 0x97 Quota exceeded (3.1.1: 3 Server
	// unavailable). Default 0: no cap.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerAddress caps the connections from one source IP
	// address, refused like MaxConnections. Default 0: no cap.
	MaxConnectionsPerAddress int `yaml:"max_connections_per_address"`
	// ConnectRate is how many connections per second one source IP address
	// may open, with bursts of ConnectBurst; more are refused with CONNACK
	// 0x9F Connection rate exceeded (3.1.1: 3). Default 0: no limit.
	ConnectRate  float64 `yaml:"connect_rate_per_address"`
	ConnectBurst int     `yaml:"connect_burst_per_address"`
	// LoginFailures is how many failed logins in a row from one address
	// make it wait: the LoginFailures-th failure starts a wait of one
	// second, each further failure doubles it up to MaxLoginBackoff, and
	// connections from the address are refused with 0x9F until it has
	// passed. With the default of 3, the fourth attempt within a second of
	// the third failure is refused. A success forgives everything.
	// Negative disables the back-off.
	LoginFailures   int           `yaml:"login_failures_before_backoff"`
	MaxLoginBackoff time.Duration `yaml:"max_login_backoff"` // default 1 minute
	// PublishRate is how many PUBLISH packets per second one client may
	// send (bursts of PublishBurst), and PublishBandwidth how many payload
	// bytes per second. A client over its limit is slowed down: the broker
	// stops reading from it until it is within the limit again, so TCP
	// holds it back and other clients are unaffected. Default 0: no limit.
	PublishRate      float64 `yaml:"publish_rate"`
	PublishBurst     int     `yaml:"publish_burst"`
	PublishBandwidth int     `yaml:"publish_bandwidth"`
	// MaxSubscriptions caps the subscriptions of one session; more are
	// refused in SUBACK with 0x97 Quota exceeded (3.1.1: 0x80). Default 0:
	// no cap.
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// MaxTopicLength and MaxTopicLevels bound topic names and filters: a
	// longer PUBLISH topic is refused with 0x90 Topic Name invalid, a longer
	// filter in SUBACK with 0x8F Topic Filter invalid. Defaults 1024 bytes
	// and 32 levels.
	MaxTopicLength int `yaml:"max_topic_length"`
	MaxTopicLevels int `yaml:"max_topic_levels"`
}

func (l *Limits) setDefaults() {
	if l.LoginFailures == 0 {
		l.LoginFailures = 3
	}
	if l.MaxLoginBackoff == 0 {
		l.MaxLoginBackoff = time.Minute
	}
	if l.ConnectRate > 0 && l.ConnectBurst == 0 {
		l.ConnectBurst = max(1, int(l.ConnectRate))
	}
	if l.PublishRate > 0 && l.PublishBurst == 0 {
		l.PublishBurst = max(1, int(l.PublishRate))
	}
	if l.MaxTopicLength == 0 {
		l.MaxTopicLength = 1024
	}
	if l.MaxTopicLevels == 0 {
		l.MaxTopicLevels = 32
	}
}

// topicTooLong reports whether a topic name or filter is beyond the limits.
func (l *Limits) topicTooLong(t string) bool {
	if len(t) > l.MaxTopicLength {
		return true
	}
	levels := 1
	for i := 0; i < len(t); i++ {
		if t[i] == '/' {
			levels++
			if levels > l.MaxTopicLevels {
				return true
			}
		}
	}
	return false
}

// guard keeps the per-address state behind the connection limits.
type guard struct {
	limits *Limits
	stats  *Stats

	mu    sync.Mutex
	total int
	addrs map[string]*addrState
}

type addrState struct {
	conns        int
	connects     *rate.Limiter
	failures     int
	backoff      time.Duration
	blockedUntil time.Time
	lastSeen     time.Time
}

func newGuard(l *Limits, st *Stats) *guard {
	return &guard{limits: l, stats: st, addrs: make(map[string]*addrState)}
}

// addrKey is the source IP address of a remote address, the unit of the
// per-address limits.
func addrKey(a net.Addr) string {
	if a == nil {
		return ""
	}
	s := a.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		return host
	}
	return s
}

func (g *guard) state(key string, now time.Time) *addrState {
	st := g.addrs[key]
	if st == nil {
		st = &addrState{}
		if g.limits.ConnectRate > 0 {
			st.connects = rate.NewLimiter(rate.Limit(g.limits.ConnectRate), g.limits.ConnectBurst)
		}
		g.addrs[key] = st
	}
	st.lastSeen = now
	return st
}

// admit counts a new connection from key and decides whether it may go on
// to authentication; on refusal it returns the reason code to answer with
// and the limit's name, and the connection is not counted.
func (g *guard) admit(key string, now time.Time) (mqtt.ReasonCode, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.state(key, now)
	switch {
	case now.Before(st.blockedUntil):
		return mqtt.ConnectionRateExceeded, "login_backoff"
	case g.limits.MaxConnections > 0 && g.total >= g.limits.MaxConnections:
		return mqtt.QuotaExceeded, "connections"
	case g.limits.MaxConnectionsPerAddress > 0 && st.conns >= g.limits.MaxConnectionsPerAddress:
		return mqtt.QuotaExceeded, "connections_per_address"
	case st.connects != nil && !st.connects.AllowN(now, 1):
		return mqtt.ConnectionRateExceeded, "connect_rate"
	}
	g.total++
	st.conns++
	return mqtt.Success, ""
}

// release uncounts an admitted connection.
func (g *guard) release(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if st := g.addrs[key]; st != nil {
		st.conns--
	}
}

// loginFailed records a failed login from key and starts or lengthens its
// back-off from the LoginFailures-th failure on.
func (g *guard) loginFailed(key string, now time.Time) {
	if g.limits.LoginFailures < 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.state(key, now)
	st.failures++
	if st.failures < g.limits.LoginFailures {
		return
	}
	st.backoff = min(max(2*st.backoff, time.Second), g.limits.MaxLoginBackoff)
	st.blockedUntil = now.Add(st.backoff)
}

// loginSucceeded forgives the address its failures.
func (g *guard) loginSucceeded(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st := g.addrs[key]; st != nil {
		st.failures, st.backoff, st.blockedUntil = 0, 0, time.Time{}
	}
}

// sweep forgets addresses without connections that have not been seen for
// a while, so the table does not grow with every address ever seen.
func (g *guard) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, st := range g.addrs {
		if st.conns == 0 && now.Sub(st.lastSeen) > 2*g.limits.MaxLoginBackoff && now.After(st.blockedUntil) {
			delete(g.addrs, k)
		}
	}
}

// publishLimiter slows one client's publishing to its limits.
type publishLimiter struct {
	msgs  *rate.Limiter
	bytes *rate.Limiter
}

func newPublishLimiter(l *Limits) *publishLimiter {
	if l.PublishRate <= 0 && l.PublishBandwidth <= 0 {
		return nil
	}
	p := &publishLimiter{}
	if l.PublishRate > 0 {
		p.msgs = rate.NewLimiter(rate.Limit(l.PublishRate), l.PublishBurst)
	}
	if l.PublishBandwidth > 0 {
		p.bytes = rate.NewLimiter(rate.Limit(l.PublishBandwidth), l.PublishBandwidth)
	}
	return p
}

// wait returns how long the client must pause before this PUBLISH of n
// payload bytes is within its limits (0: at once).
func (p *publishLimiter) wait(n int, now time.Time) time.Duration {
	var d time.Duration
	if p.msgs != nil {
		d = p.msgs.ReserveN(now, 1).DelayFrom(now)
	}
	if p.bytes != nil && n > 0 {
		n = min(n, p.bytes.Burst()) // a payload above the burst waits for a full bucket
		d = max(d, p.bytes.ReserveN(now, n).DelayFrom(now))
	}
	return d
}

// blocked returns how long logins from key must still wait (0: none).
func (g *guard) blocked(key string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if st := g.addrs[key]; st != nil && now.Before(st.blockedUntil) {
		return st.blockedUntil.Sub(now)
	}
	return 0
}

// remoteKey is the source IP address of a remote address in host:port
// form, the unit of the per-address limits.
func remoteKey(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// LoginWait returns how long logins from remote (host:port, as
// http.Request.RemoteAddr) must still wait after failed ones: the back-off
// of Limits.LoginFailures and MaxLoginBackoff, which other ways of logging
// in with the broker's users (the HTTP API) share with MQTT's CONNECT. 0:
// none.
func (b *Broker) LoginWait(remote string) time.Duration {
	return b.guard.blocked(remoteKey(remote), time.Now())
}

// LoginFailed records a failed login of user from remote by way of via
// ("http" for the HTTP API), in the audit log and in the back-off of the
// address, which counts failures over MQTT and the other ways alike.
func (b *Broker) LoginFailed(remote, via, user string) {
	b.guard.loginFailed(remoteKey(remote), time.Now())
	b.opts.Audit.Info("login refused", "via", via, "user", user, "remote", remote, "reason", "bad_credentials")
}

// LoginRefused audits a login of user from remote by way of via refused
// because the address is waiting after failed logins (LoginWait).
func (b *Broker) LoginRefused(remote, via, user string) {
	b.opts.Audit.Info("login refused", "via", via, "user", user, "remote", remote, "reason", "login_backoff")
}

// LoginForgive forgives remote its failed logins without auditing: a
// request with right credentials of a way of logging in that is checked on
// every request (HTTP Basic), which would fill the audit log.
func (b *Broker) LoginForgive(remote string) {
	b.guard.loginSucceeded(remoteKey(remote))
}

// LoginSucceeded forgives remote its failed logins, as a successful
// CONNECT does, and audits the login.
func (b *Broker) LoginSucceeded(remote, via, user string) {
	b.guard.loginSucceeded(remoteKey(remote))
	b.opts.Audit.Info("login", "via", via, "user", user, "remote", remote)
}
