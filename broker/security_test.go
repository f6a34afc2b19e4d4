package broker_test

// Security tests over real sockets: authentication refusals, limits, access
// control on every path, tenant isolation. The authenticator and authorizer
// here are small fakes; package auth has the real back ends and ACL, tested
// on their own and end to end in cmd/citymesh.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/auth"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/topic"
)

// fakeUser is one account of fakeAuth.
type fakeUser struct {
	password string
	tenant   string
	admin    bool
	banned   bool
}

// fakeAuth authenticates user name and password against a table.
type fakeAuth map[string]fakeUser

func (f fakeAuth) Authenticate(_ context.Context, r *auth.ConnectRequest) (*auth.Identity, error) {
	if !r.HasUsername {
		return nil, auth.ErrNoCredentials
	}
	u, ok := f[r.Username]
	if !ok || string(r.Password) != u.password {
		return nil, auth.ErrBadCredentials
	}
	if u.banned {
		return nil, auth.ErrNotAuthorized
	}
	return &auth.Identity{User: r.Username, Tenant: u.tenant, Admin: u.admin, Method: "password"}, nil
}

// fakeACL denies what its deny function says, for everyone.
type fakeACL struct {
	deny func(id *auth.Identity, a auth.Action, t string) bool
}

func (f fakeACL) For(id *auth.Identity) auth.Access { return fakeAccess{f, id} }

type fakeAccess struct {
	acl fakeACL
	id  *auth.Identity
}

func (a fakeAccess) Allow(act auth.Action, t string) bool { return !a.acl.deny(a.id, act, t) }

// login connects with user name and password and returns the client and
// its CONNACK reason code.
func login(t *testing.T, addr, id, user, password string, version byte) (*raw, mqtt.ReasonCode) {
	t.Helper()
	c := dialRaw(t, addr)
	ack := c.connect(&mqtt.Connect{Version: version, ClientID: id, CleanStart: true, Username: user, HasUsername: user != "",
		Password: []byte(password), HasPassword: password != ""})
	return c, ack.ReasonCode
}

func TestAuthenticationRefusals(t *testing.T) {
	users := fakeAuth{"meter-7": {password: "s3cret"}, "banned": {password: "x", banned: true}}
	// Three wrong passwords in a row would start the login back-off
	// (TestLoginBackoff); this test is about the codes alone.
	_, addr := startBroker(t, broker.Options{Authenticator: &auth.Chain{Backends: []auth.Authenticator{users}},
		Limits: broker.Limits{LoginFailures: -1}})
	tests := []struct {
		name, user, password string
		version              byte
		want                 mqtt.ReasonCode
	}{
		{"right password v5", "meter-7", "s3cret", mqtt.V5, mqtt.Success},
		{"right password 3.1.1", "meter-7", "s3cret", mqtt.V311, mqtt.Success},
		{"wrong password v5", "meter-7", "guess", mqtt.V5, mqtt.BadUserNameOrPassword},
		{"wrong password 3.1.1", "meter-7", "guess", mqtt.V311, mqtt.ReasonCode(mqtt.V3BadUserNameOrPassword)},
		{"unknown user", "nobody", "x", mqtt.V5, mqtt.BadUserNameOrPassword},
		{"not authorized v5", "banned", "x", mqtt.V5, mqtt.NotAuthorized},
		{"not authorized 3.1.1", "banned", "x", mqtt.V311, mqtt.ReasonCode(mqtt.V3NotAuthorized)},
		{"anonymous when it is off", "", "", mqtt.V5, mqtt.NotAuthorized},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, code := login(t, addr, fmt.Sprint("c", i), tc.user, tc.password, tc.version)
			if code != tc.want {
				t.Fatalf("CONNACK %#x, want %#x", code, tc.want)
			}
		})
	}
}

// TestLoginBackoff counts attempts: with login_failures_before_backoff N,
// the first N attempts with a wrong password are answered 0x86, and the
// N+1-th, even with the right password, is refused 0x9F until the first
// back-off of one second has passed (docs/security.md).
func TestLoginBackoff(t *testing.T) {
	tests := []struct {
		name     string
		failures int // Limits.LoginFailures; 0 takes the default
		want     int // failures answered 0x86 before the back-off
	}{
		{"default", 0, 3},
		{"one", 1, 1},
		{"five", 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var audit bytes.Buffer
			var mu sync.Mutex
			b, addr := startBroker(t, broker.Options{
				Authenticator: &auth.Chain{Backends: []auth.Authenticator{fakeAuth{"u": {password: "p"}}}},
				Limits:        broker.Limits{LoginFailures: tc.failures, MaxLoginBackoff: 2 * time.Second},
				Audit:         slog.New(slog.NewJSONHandler(lockedWriter{&mu, &audit}, nil)),
			})
			for i := range tc.want {
				if _, code := login(t, addr, "c", "u", "wrong", mqtt.V5); code != mqtt.BadUserNameOrPassword {
					t.Fatalf("attempt %d, a wrong password: %#x, want 0x86", i+1, code)
				}
			}
			// Now the address waits, even with the right password.
			if _, code := login(t, addr, "c", "u", "p", mqtt.V5); code != mqtt.ConnectionRateExceeded {
				t.Fatalf("attempt %d, during the back-off: %#x, want 0x9F", tc.want+1, code)
			}
			// The first back-off is one second; refused attempts meanwhile
			// do not lengthen it.
			waitFor(t, "the back-off to end", func() bool {
				_, code := login(t, addr, "c", "u", "p", mqtt.V5)
				return code == mqtt.Success
			})
			st := b.Stats()
			if st.Refused["bad_credentials"] != uint64(tc.want) || st.Refused["login_backoff"] < 1 {
				t.Fatalf("refusals counted %v", st.Refused)
			}
			mu.Lock()
			defer mu.Unlock()
			if !strings.Contains(audit.String(), `"reason":"login_backoff"`) || !strings.Contains(audit.String(), `"msg":"connect","client":"c","user":"u"`) {
				t.Fatalf("audit log:\n%s", audit.String())
			}
		})
	}
}

// lockedWriter serialises writes of concurrent loggers into one buffer.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestConnectionLimits(t *testing.T) {
	t.Run("per address", func(t *testing.T) {
		_, addr := startBroker(t, broker.Options{Limits: broker.Limits{MaxConnectionsPerAddress: 2}})
		for i := range 2 {
			if _, code := login(t, addr, fmt.Sprint("c", i), "", "", mqtt.V5); code != 0 {
				t.Fatalf("connection %d refused: %#x", i, code)
			}
		}
		if _, code := login(t, addr, "c3", "", "", mqtt.V5); code != mqtt.QuotaExceeded {
			t.Fatalf("third connection: %#x, want 0x97", code)
		}
		if _, code := login(t, addr, "c4", "", "", mqtt.V311); code != mqtt.ReasonCode(mqtt.V3ServerUnavailable) {
			t.Fatalf("third connection, 3.1.1: %#x, want 3", code)
		}
	})
	t.Run("global", func(t *testing.T) {
		b, addr := startBroker(t, broker.Options{Limits: broker.Limits{MaxConnections: 3}})
		var first *raw
		for i := range 3 {
			c, code := login(t, addr, fmt.Sprint("c", i), "", "", mqtt.V5)
			if code != 0 {
				t.Fatalf("connection %d refused: %#x", i, code)
			}
			if i == 0 {
				first = c
			}
		}
		if _, code := login(t, addr, "over", "", "", mqtt.V5); code != mqtt.QuotaExceeded {
			t.Fatalf("fourth connection: %#x, want 0x97", code)
		}
		// A connection that ends frees its place.
		first.send(&mqtt.Disconnect{})
		waitFor(t, "the first connection to end", func() bool { return b.Stats().Clients == 2 })
		if _, code := login(t, addr, "again", "", "", mqtt.V5); code != 0 {
			t.Fatalf("after one left: %#x", code)
		}
	})
	t.Run("connect rate", func(t *testing.T) {
		_, addr := startBroker(t, broker.Options{Limits: broker.Limits{ConnectRate: 5, ConnectBurst: 5}})
		refused := 0
		for i := range 8 {
			if _, code := login(t, addr, fmt.Sprint("c", i), "", "", mqtt.V5); code == mqtt.ConnectionRateExceeded {
				refused++
			}
		}
		if refused < 2 {
			t.Fatalf("%d of 8 quick connections refused with 0x9F, want at least 2 beyond the burst of 5", refused)
		}
	})
}

func TestPublishRateLimit(t *testing.T) {
	b, addr := startBroker(t, broker.Options{Limits: broker.Limits{PublishRate: 100, PublishBurst: 10}})
	healthy := healthyPair(t, addr)
	flood := dialRaw(t, addr)
	flood.connect(&mqtt.Connect{ClientID: "flood", CleanStart: true})
	sink := dialRaw(t, addr)
	sink.connect(&mqtt.Connect{ClientID: "sink", CleanStart: true})
	sink.subscribe(mqtt.Subscription{Filter: "flood/#"})
	start := time.Now()
	for range 110 {
		flood.send(&mqtt.Publish{Topic: "flood/x", Payload: []byte("x")})
	}
	for range 110 {
		sink.readPublish()
	}
	// 10 in the burst, 100 more at 100/s: about a second.
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("110 messages over a 100/s limit took %v", d)
	}
	healthy() // others are not slowed
	if b.Stats().Throttled == 0 {
		t.Fatal("throttling not counted")
	}
}

func TestSubscriptionAndTopicLimits(t *testing.T) {
	_, addr := startBroker(t, broker.Options{Limits: broker.Limits{MaxSubscriptions: 2, MaxTopicLength: 20, MaxTopicLevels: 3}})
	c := dialRaw(t, addr)
	c.connect(&mqtt.Connect{ClientID: "c", CleanStart: true})
	ack := c.subscribe(mqtt.Subscription{Filter: "a/1"}, mqtt.Subscription{Filter: "a/2"}, mqtt.Subscription{Filter: "a/3"},
		mqtt.Subscription{Filter: "a/1"}, mqtt.Subscription{Filter: "a/b/c/d"}, mqtt.Subscription{Filter: strings.Repeat("x", 21)})
	want := []mqtt.ReasonCode{0, 0, mqtt.QuotaExceeded, 0, mqtt.TopicFilterInvalid, mqtt.TopicFilterInvalid}
	for i, w := range want {
		if ack.ReasonCodes[i] != w {
			t.Fatalf("SUBACK codes %v, want %v", ack.ReasonCodes, want)
		}
	}
	if code := c.publishAcked(&mqtt.Publish{Topic: "a/b/c/d", QoS: 1, PacketID: 1}); code != mqtt.TopicNameInvalid {
		t.Fatalf("PUBACK for a topic over the level limit: %#x, want 0x90", code)
	}
	if code := c.publishAcked(&mqtt.Publish{Topic: strings.Repeat("y", 21), QoS: 1, PacketID: 2}); code != mqtt.TopicNameInvalid {
		t.Fatalf("PUBACK for a topic over the length limit: %#x, want 0x90", code)
	}
}

func TestAccessControlOnEveryPath(t *testing.T) {
	acl := fakeACL{deny: func(_ *auth.Identity, a auth.Action, t string) bool {
		switch a {
		case auth.Publish:
			return topic.Match("secret/#", t) || t == "will/forbidden"
		case auth.Subscribe:
			return topic.Match("private/#", t)
		default: // Receive
			return topic.Match("hidden/#", t)
		}
	}}
	b, addr := startBroker(t, broker.Options{Authorizer: acl})
	pub := dialRaw(t, addr)
	pub.connect(&mqtt.Connect{ClientID: "pub", CleanStart: true})
	if code := pub.publishAcked(&mqtt.Publish{Topic: "secret/x", QoS: 1, PacketID: 1, Payload: []byte("no")}); code != mqtt.NotAuthorized {
		t.Fatalf("denied publish: PUBACK %#x, want 0x87", code)
	}
	pub.publishAcked(&mqtt.Publish{Topic: "hidden/r", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("retained-hidden")})
	pub.publishAcked(&mqtt.Publish{Topic: "open/r", QoS: 1, PacketID: 3, Retain: true, Payload: []byte("retained-open")})

	sub := dialRaw(t, addr)
	sub.connect(&mqtt.Connect{ClientID: "sub", CleanStart: true})
	ack := sub.subscribe(mqtt.Subscription{Filter: "private/#", QoS: 1}, mqtt.Subscription{Filter: "$share/g/private/x", QoS: 1},
		mqtt.Subscription{Filter: "#", QoS: 1})
	if ack.ReasonCodes[0] != mqtt.NotAuthorized || ack.ReasonCodes[1] != mqtt.NotAuthorized || ack.ReasonCodes[2] != 1 {
		t.Fatalf("SUBACK %v, want [0x87 0x87 1]", ack.ReasonCodes)
	}
	// Retained delivery passes the receive check: only the open one.
	if p := sub.receive(); string(p.Payload) != "retained-open" {
		t.Fatalf("retained: got %q", p.Payload)
	}
	// Live messages too: the hidden one is not delivered, what follows is.
	pub.publishAcked(&mqtt.Publish{Topic: "hidden/live", QoS: 1, PacketID: 4, Payload: []byte("live-hidden")})
	pub.publishAcked(&mqtt.Publish{Topic: "open/live", QoS: 1, PacketID: 5, Payload: []byte("live-open")})
	if p := sub.receive(); string(p.Payload) != "live-open" {
		t.Fatalf("live: got %q", p.Payload)
	}
	// A will the client may not publish refuses the connection.
	w := dialRaw(t, addr)
	if ack := w.connect(&mqtt.Connect{ClientID: "w", CleanStart: true, Will: &mqtt.Will{Topic: "will/forbidden", Payload: []byte("x")}}); ack.ReasonCode != mqtt.NotAuthorized {
		t.Fatalf("forbidden will: CONNACK %#x, want 0x87", ack.ReasonCode)
	}
	st := b.Stats()
	if st.Denied["publish"] < 2 || st.Denied["subscribe"] < 2 || st.Denied["receive"] < 2 {
		t.Fatalf("denials counted %v", st.Denied)
	}
}

// TestSysIsForAdministrators: once access control is on, $SYS/ is for
// administrators, whatever their tenant (an administrator who belongs to a
// tenant sees the broker's $SYS/ topics under their own names), and for
// nobody else.
func TestSysIsForAdministrators(t *testing.T) {
	users := fakeAuth{
		"ops": {password: "p", admin: true}, "acme-ops": {password: "p", admin: true, tenant: "acme"},
		"meter": {password: "p"}, "acme-meter": {password: "p", tenant: "acme"},
	}
	_, addr := startBroker(t, broker.Options{Authenticator: &auth.Chain{Backends: []auth.Authenticator{users}}, SysInterval: 50 * time.Millisecond})
	tests := []struct {
		user, filter string
		want         mqtt.ReasonCode
	}{
		{"meter", "$SYS/#", mqtt.NotAuthorized},
		{"acme-meter", "$SYS/#", mqtt.NotAuthorized},
		{"ops", "$SYS/#", 0},
		{"acme-ops", "$SYS/#", 0},
		{"acme-ops", "$SYS/broker/clients/+", 0},
		{"acme-ops", "$share/g/$SYS/#", 0},
	}
	for i, tc := range tests {
		t.Run(tc.user+" "+tc.filter, func(t *testing.T) {
			c, code := login(t, addr, fmt.Sprint("c", i), tc.user, "p", mqtt.V5)
			if code != 0 {
				t.Fatalf("login: %#x", code)
			}
			if ack := c.subscribe(mqtt.Subscription{Filter: tc.filter}); ack.ReasonCodes[0] != tc.want {
				t.Fatalf("SUBACK %#x, want %#x", ack.ReasonCodes[0], tc.want)
			}
			if tc.want != 0 {
				if p, err := c.readErr(200 * time.Millisecond); err == nil {
					t.Fatalf("refused, yet got %s %+v", p.Type(), p)
				}
				return
			}
			if p := c.readPublish(); !strings.HasPrefix(p.Topic, "$SYS/") {
				t.Fatalf("got %q, want a $SYS/ topic", p.Topic)
			}
			// Unsubscribing finds the subscription under the same name.
			c.send(&mqtt.Unsubscribe{PacketID: 99, Filters: []string{tc.filter}})
			for {
				p := c.read()
				if a, ok := p.(*mqtt.Unsuback); ok {
					if a.ReasonCodes[0] != 0 {
						t.Fatalf("UNSUBACK %#x", a.ReasonCodes[0])
					}
					break
				}
			}
		})
	}
}

// TestTenantIsolation tries every path from one tenant to another and finds
// nothing: publish, subscribe with wildcards, shared subscriptions, retained
// messages, wills, client identifiers, and the untenanted namespace.
func TestTenantIsolation(t *testing.T) {
	users := fakeAuth{
		"alice": {password: "p", tenant: "acme"}, "alfred": {password: "p", tenant: "acme"},
		"bob": {password: "p", tenant: "globex"}, "plain": {password: "p"}, "ops": {password: "p", admin: true},
	}
	_, addr := startBroker(t, broker.Options{Authenticator: &auth.Chain{Backends: []auth.Authenticator{users}}})
	// Bob listens everywhere he can think of.
	bob, _ := login(t, addr, "bob", "bob", "p", mqtt.V5)
	ack := bob.subscribe(mqtt.Subscription{Filter: "#"}, mqtt.Subscription{Filter: "$share/g/#"}, mqtt.Subscription{Filter: "+/#"},
		mqtt.Subscription{Filter: "$tenant/acme/#"}, mqtt.Subscription{Filter: "$tenant/#"}, mqtt.Subscription{Filter: "$SYS/#"})
	for i, code := range ack.ReasonCodes[:5] {
		if code != 0 {
			t.Fatalf("subscription %d refused (%#x): inside his namespace it is harmless", i, code)
		}
	}
	plain, _ := login(t, addr, "plain", "plain", "p", mqtt.V5)
	ack = plain.subscribe(mqtt.Subscription{Filter: "#"}, mqtt.Subscription{Filter: "$tenant/acme/#"}, mqtt.Subscription{Filter: "$tenant/#"})
	if ack.ReasonCodes[0] != 0 || ack.ReasonCodes[1] != mqtt.NotAuthorized || ack.ReasonCodes[2] != mqtt.NotAuthorized {
		t.Fatalf("untenanted client's SUBACK %v, want [0 0x87 0x87]", ack.ReasonCodes)
	}
	ops, _ := login(t, addr, "ops", "ops", "p", mqtt.V5)
	if ack := ops.subscribe(mqtt.Subscription{Filter: "$tenant/acme/#"}); ack.ReasonCodes[0] != 0 {
		t.Fatalf("administrator's subscription to a tenant refused: %#x", ack.ReasonCodes[0])
	}
	// Alfred, in Alice's tenant, and a session of Bob's tenant under the
	// same client identifier as Alice's.
	alfred, _ := login(t, addr, "alfred", "alfred", "p", mqtt.V5)
	alfred.subscribe(mqtt.Subscription{Filter: "#"}, mqtt.Subscription{Filter: "$share/g/#"})
	twin, _ := login(t, addr, "alice-phone", "bob", "p", mqtt.V5)

	// Alice publishes, retains, shares and leaves a will.
	alice := dialRaw(t, addr)
	if a := alice.connect(&mqtt.Connect{ClientID: "alice-phone", CleanStart: true, Username: "alice", HasUsername: true,
		Password: []byte("p"), HasPassword: true, Will: &mqtt.Will{Topic: "status/alice", Payload: []byte("gone")}}); a.ReasonCode != 0 {
		t.Fatalf("alice: %#x", a.ReasonCode)
	}
	alice.publishAcked(&mqtt.Publish{Topic: "meters/1", QoS: 1, PacketID: 1, Payload: []byte("acme-live")})
	alice.publishAcked(&mqtt.Publish{Topic: "meters/2", QoS: 1, PacketID: 2, Retain: true, Payload: []byte("acme-retained")})
	if code := alice.publishAcked(&mqtt.Publish{Topic: "$tenant/globex/meters/1", QoS: 1, PacketID: 3, Payload: []byte("acme-into-globex")}); code != 0 {
		t.Fatalf("publish to a name that looks like another tenant: %#x (it stays in her namespace)", code)
	}
	alice.nc.Close() // the will fires

	// Her tenant sees it all, under the topics she used (twice: through
	// `#` and through the shared subscription, of which Alfred is the only
	// member in his tenant).
	got := map[string]string{}
	for len(got) < 4 {
		p := alfred.readPublish()
		got[string(p.Payload)] = p.Topic
	}
	if got["acme-live"] != "meters/1" || got["acme-retained"] != "meters/2" || got["gone"] != "status/alice" ||
		got["acme-into-globex"] != "$tenant/globex/meters/1" {
		t.Fatalf("alfred got %v", got)
	}
	// A late subscriber of another tenant finds no retained message.
	late, _ := login(t, addr, "late", "bob", "p", mqtt.V5)
	late.subscribe(mqtt.Subscription{Filter: "#"})
	for _, c := range []*raw{bob, plain, twin, late} {
		if p, err := c.readErr(300 * time.Millisecond); err == nil {
			t.Fatalf("a packet crossed tenants: %s %+v", p.Type(), p)
		}
	}
	// The administrator sees the tenant's traffic.
	if p := ops.readPublish(); !strings.HasPrefix(p.Topic, "$tenant/acme/") {
		t.Fatalf("administrator got %q", p.Topic)
	}
	// Bob's session under Alice's client identifier was not taken over.
	twin.send(&mqtt.Pingreq{})
	if _, ok := twin.read().(*mqtt.Pingresp); !ok {
		t.Fatal("the same client identifier in another tenant took the session over")
	}
}
