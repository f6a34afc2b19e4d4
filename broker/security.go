package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/topic"
)

// ConnInfo says how a connection reached the broker.
type ConnInfo struct {
	// Listener names the listener: "mqtt", "mqtts", "ws" or "wss".
	Listener string
	// TLS is the TLS state of a connection whose TLS the caller
	// terminated (MQTT over WebSocket behind an HTTPS server); a *tls.Conn
	// passed to ServeConnInfo is read directly.
	TLS *tls.ConnectionState
	// Identity, when set, is who the connection is: the caller
	// authenticated it before it reached the broker (a browser's session
	// cookie on the WebSocket upgrade). Its CONNECT's user name and
	// password are then not checked; the ACL, tenant and limits apply as
	// to any client of that identity.
	Identity *auth.Identity
}

// ServeConnInfo is ServeConn for a connection that came through a named
// listener, possibly over TLS that the caller terminated.
func (b *Broker) ServeConnInfo(nc net.Conn, info ConnInfo) {
	b.serveConn(nc, info)
}

// tenantPrefix is the first level of every tenant's namespace: a tenant's
// client that publishes to a/b publishes to $tenant/{tenant}/a/b. Topics
// starting with '$' are not matched by wildcards at the first level
// [MQTT-4.7.2-1], so a `#` subscription outside the tenant sees none of them.
const tenantPrefix = "$tenant/"

// validTenant reports whether name can be a tenant: one topic level without
// wildcards.
func validTenant(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/+#\x00")
}

// admit applies the connection limits and the Authenticator to CONNECT p of
// client id, and sets the connection's identity, access checkers and
// namespace. It returns the reason code to refuse the connection with, or
// Success.
func (c *conn) admit(p *mqtt.Connect, id string) mqtt.ReasonCode {
	b := c.b
	now := time.Now()
	c.addrKey = addrKey(c.nc.RemoteAddr())
	if code, reason := b.guard.admit(c.addrKey, now); code != mqtt.Success {
		b.stats.refused.count(reason)
		b.opts.Audit.Info("connect refused", "client", id, "user", p.Username, "remote", c.remote, "listener", c.listener, "reason", reason)
		return code
	}
	c.admitted = true
	ident := &auth.Identity{ClientID: id, User: p.Username, Method: "anonymous"}
	if pre := c.preIdent; pre != nil {
		cp := *pre
		cp.ClientID = id
		ident = &cp
		b.opts.Audit.Info("connect", "client", id, "user", ident.User, "tenant", ident.Tenant, "method", ident.Method,
			"admin", ident.Admin, "remote", c.remote, "listener", c.listener)
	} else if a := b.opts.Authenticator; a != nil {
		req := &auth.ConnectRequest{ClientID: id, Username: p.Username, HasUsername: p.HasUsername, Password: p.Password,
			HasPassword: p.HasPassword, Remote: c.nc.RemoteAddr(), Listener: c.listener}
		if st := c.tlsConnState(); st != nil && len(st.VerifiedChains) > 0 {
			// Only a chain the handshake verified identifies a client.
			req.Certificates = st.VerifiedChains[0]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := a.Authenticate(ctx, req)
		cancel()
		if err != nil {
			code, reason := mqtt.NotAuthorized, "not_authorized"
			if errors.Is(err, auth.ErrBadCredentials) {
				code, reason = mqtt.BadUserNameOrPassword, "bad_credentials"
				b.guard.loginFailed(c.addrKey, now)
			}
			b.stats.refused.count(reason)
			b.opts.Audit.Info("connect refused", "client", id, "user", p.Username, "remote", c.remote, "listener", c.listener,
				"reason", reason, "err", err.Error())
			return code
		}
		ident = got
		ident.ClientID = id
		b.guard.loginSucceeded(c.addrKey)
		b.opts.Audit.Info("connect", "client", id, "user", ident.User, "tenant", ident.Tenant, "method", ident.Method,
			"admin", ident.Admin, "remote", c.remote, "listener", c.listener)
	}
	if ident.Tenant != "" {
		if !validTenant(ident.Tenant) {
			b.opts.Audit.Info("connect refused", "client", id, "user", ident.User, "remote", c.remote, "reason", "bad_tenant", "tenant", ident.Tenant)
			return mqtt.NotAuthorized
		}
		c.mount = tenantPrefix + ident.Tenant + "/"
	}
	c.ident = ident
	c.controlled = b.opts.Authenticator != nil || b.opts.Authorizer != nil || c.preIdent != nil
	if az := b.opts.Authorizer; az != nil && !ident.Admin {
		// One checker for the reader and one for the writer: each is used
		// by one goroutine. Administrators are not checked: they may do
		// everything, $SYS/ and every tenant's namespace included.
		c.inAccess, c.outAccess = az.For(ident), az.For(ident)
	}
	c.pubLimit = newPublishLimiter(&b.opts.Limits)
	return mqtt.Success
}

// tlsConnState returns the connection's TLS state, if it has one.
func (c *conn) tlsConnState() *tls.ConnectionState {
	if c.tlsState != nil {
		return c.tlsState
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

// admin reports whether the client is an administrator, or access control is
// off.
func (c *conn) admin() bool { return !c.controlled || (c.ident != nil && c.ident.Admin) }

// mayPublish decides whether the client may publish to name (as it sees
// topics), and records a refusal.
func (c *conn) mayPublish(name string) bool {
	switch {
	case hasPrefix(name, "$SYS/") || name == "$SYS":
		// Clients may not publish into the broker's own namespace.
	case c.mount == "" && hasPrefix(name, tenantPrefix) && !c.admin():
		// Tenants' namespaces are theirs.
	case c.inAccess != nil && !c.inAccess.Allow(auth.Publish, name):
	default:
		return true
	}
	c.deny(auth.Publish, name)
	return false
}

// maySubscribe decides whether the client may subscribe to filter (without
// a $share/ prefix, as it sees topics).
func (c *conn) maySubscribe(filter string) bool {
	switch {
	case hasPrefix(filter, "$SYS") && !c.admin():
		// $SYS/ is for administrators once access control is on.
	case c.mount == "" && hasPrefix(filter, "$tenant") && !c.admin():
	case c.inAccess != nil && !c.inAccess.Allow(auth.Subscribe, filter):
	default:
		return true
	}
	c.deny(auth.Subscribe, filter)
	return false
}

// mayReceive decides, on the writer goroutine, whether the client may
// receive a message published to internal topic t, and returns the topic as
// the client sees it.
func (c *conn) mayReceive(t string) (string, bool) {
	if c.mount != "" && !(isSys(t) && c.admin()) {
		if !hasPrefix(t, c.mount) {
			return "", false // outside the tenant's namespace: never
		}
		t = t[len(c.mount):]
	}
	if c.outAccess != nil && !c.outAccess.Allow(auth.Receive, t) {
		c.deny(auth.Receive, t)
		return "", false
	}
	return t, true
}

// deny counts and audits a refused action; the audit keeps at most a few
// lines per second for one connection, so that a client looping on a
// refused topic cannot flood it.
func (c *conn) deny(a auth.Action, t string) {
	switch a {
	case auth.Publish:
		c.b.stats.denied[0].Add(1)
	case auth.Subscribe:
		c.b.stats.denied[1].Add(1)
	default:
		c.b.stats.denied[2].Add(1)
	}
	r := &c.auditIn // the reader's; Receive is decided on the writer
	if a == auth.Receive {
		r = &c.auditOut
	}
	if r.allow(c.b.clock.Load()) {
		user, tenant := "", ""
		if c.ident != nil {
			user, tenant = c.ident.User, c.ident.Tenant
		}
		c.b.opts.Audit.LogAttrs(context.Background(), slog.LevelInfo, "denied", slog.String("action", a.String()),
			slog.String("topic", t), slog.String("client", c.clientID), slog.String("user", user), slog.String("tenant", tenant),
			slog.String("remote", c.remote))
	}
}

// mountFilter returns the broker's filter for a client's subscription
// filter f: inside the tenant's namespace, $share/ kept in front. An
// administrator's $SYS/ filters stay as they are: $SYS/ is the broker's,
// not a tenant's, and administrators see it whatever their tenant.
func (c *conn) mountFilter(f string) string {
	if c.mount == "" {
		return f
	}
	group, inner, shared := topic.ParseShared(f)
	if !shared {
		inner = f
	}
	if isSys(inner) && c.admin() {
		return f
	}
	if shared {
		return "$share/" + group + "/" + c.mount + inner
	}
	return c.mount + f
}

// isSys reports whether a topic name or filter is in the broker's own
// $SYS/ namespace.
func isSys(t string) bool { return t == "$SYS" || hasPrefix(t, "$SYS/") }

// throttle pauses the reader while the client is over its publish limits.
func (c *conn) throttle(payload int) {
	if c.pubLimit == nil {
		return
	}
	if d := c.pubLimit.wait(payload, time.Now()); d > 0 {
		c.b.stats.throttled.Add(1)
		c.flushPending() // what the reader owes others goes out first
		time.Sleep(d)
	}
}

// auditRate lets a few audit lines a second through for one connection.
type auditRate struct {
	second int64 // start of the current second, Unix nanoseconds
	lines  int
}

func (r *auditRate) allow(now int64) bool {
	if now-r.second > int64(time.Second) {
		r.second, r.lines = now, 0
	}
	r.lines++
	return r.lines <= 5
}
