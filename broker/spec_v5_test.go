package broker_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/store"
)

// These tests drive the broker over real TCP sockets with Eclipse Paho
// (paho.golang), an MQTT 5 client independent of citymesh, one test per
// feature. Clause numbers refer to MQTT 5.0.

const wait = 5 * time.Second

// startBroker runs a broker with opts on a loopback port until the test ends.
func startBroker(t *testing.T, opts broker.Options) (*broker.Broker, string) {
	t.Helper()
	if opts.SysInterval == 0 {
		opts.SysInterval = -1
	}
	if opts.Logger == nil && !testing.Verbose() {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := broker.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() {
		cancel()
		b.Close()
		<-done
	})
	return b, ln.Addr().String()
}

// v5client is a Paho MQTT 5 client with its received messages on a channel.
type v5client struct {
	*paho.Client
	nc   net.Conn
	msgs chan *paho.Publish
	disc chan *paho.Disconnect
}

func dialV5(t *testing.T, addr string, cp *paho.Connect) (*v5client, *paho.Connack) {
	t.Helper()
	c, ack, err := tryDialV5(addr, cp)
	if err != nil {
		t.Fatalf("connect %q: %v", cp.ClientID, err)
	}
	t.Cleanup(func() { c.nc.Close() })
	return c, ack
}

func tryDialV5(addr string, cp *paho.Connect) (*v5client, *paho.Connack, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	c := &v5client{nc: nc, msgs: make(chan *paho.Publish, 10000), disc: make(chan *paho.Disconnect, 1)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID: cp.ClientID,
		Conn:     nc,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { c.msgs <- pr.Packet; return true, nil },
		},
		OnServerDisconnect: func(d *paho.Disconnect) { c.disc <- d },
	})
	if cp.KeepAlive == 0 {
		cp.KeepAlive = 30
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Connect(ctx, cp)
	if err != nil {
		nc.Close()
		return nil, ack, err
	}
	return c, ack, nil
}

func (c *v5client) subscribe(t *testing.T, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	return c.subscribeProps(t, nil, opts...)
}

func (c *v5client) subscribeProps(t *testing.T, props *paho.SubscribeProperties, opts ...paho.SubscribeOptions) *paho.Suback {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts, Properties: props})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return ack
}

func (c *v5client) publish(t *testing.T, p *paho.Publish) *paho.PublishResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := c.Publish(ctx, p)
	if err != nil {
		t.Fatalf("publish %s: %v", p.Topic, err)
	}
	return r
}

// expect returns the next message or fails after a deadline.
func (c *v5client) expect(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message within the deadline")
	}
	return nil
}

// expectNone checks that no message arrives within d.
func (c *v5client) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-c.msgs:
		t.Fatalf("unexpected message on %s: %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

func u32(v uint32) *uint32 { return &v }

// waitClients waits until the broker counts n connected clients.
func waitClients(t *testing.T, b *broker.Broker, n int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for b.Stats().Clients != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d clients connected, want %d", b.Stats().Clients, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFor waits until cond holds, failing the test after the deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ptr[T any](v T) *T { return &v }

func subOpt(filter string, qos byte) paho.SubscribeOptions {
	return paho.SubscribeOptions{Topic: filter, QoS: qos}
}

func TestSpecQoSRoundTripV5(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	sub, _ := dialV5(t, addr, &paho.Connect{ClientID: "sub", CleanStart: true})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	for _, subQoS := range []byte{0, 1, 2} {
		for _, pubQoS := range []byte{0, 1, 2} {
			topic := fmt.Sprintf("qos/%d/%d", subQoS, pubQoS)
			sub.subscribe(t, paho.SubscribeOptions{Topic: topic, QoS: subQoS})
			pub.publish(t, &paho.Publish{Topic: topic, QoS: pubQoS, Payload: []byte(topic)})
			m := sub.expect(t)
			if string(m.Payload) != topic || m.QoS != min(subQoS, pubQoS) {
				t.Fatalf("%s: got %q at QoS %d, want QoS %d", topic, m.Payload, m.QoS, min(subQoS, pubQoS)) // [MQTT-3.8.4-8]
			}
		}
	}
}

func TestSpecRetainedMessages(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "ret/a", QoS: 1, Retain: true, Payload: []byte("A")})
	pub.publish(t, &paho.Publish{Topic: "ret/b", QoS: 1, Retain: true, Payload: []byte("B")})
	pub.publish(t, &paho.Publish{Topic: "ret/b", QoS: 1, Retain: true, Payload: []byte("B2")}) // replaces [MQTT-3.3.1-5]

	t.Run("late subscriber gets retained with RETAIN set", func(t *testing.T) {
		s, _ := dialV5(t, addr, &paho.Connect{ClientID: "late", CleanStart: true})
		s.subscribe(t, paho.SubscribeOptions{Topic: "ret/#", QoS: 1})
		got := map[string]string{}
		for range 2 {
			m := s.expect(t)
			if !m.Retain {
				t.Fatalf("retained message %s without RETAIN flag", m.Topic) // [MQTT-3.3.1-8]
			}
			got[m.Topic] = string(m.Payload)
		}
		if got["ret/a"] != "A" || got["ret/b"] != "B2" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("retain handling 2 sends none", func(t *testing.T) {
		s, _ := dialV5(t, addr, &paho.Connect{ClientID: "rh2", CleanStart: true})
		s.subscribe(t, paho.SubscribeOptions{Topic: "ret/#", QoS: 1, RetainHandling: 2}) // [MQTT-3.3.1-11]
		s.expectNone(t, 300*time.Millisecond)
	})
	t.Run("retain handling 1 sends only for a new subscription", func(t *testing.T) {
		s, _ := dialV5(t, addr, &paho.Connect{ClientID: "rh1", CleanStart: true})
		s.subscribe(t, paho.SubscribeOptions{Topic: "ret/a", QoS: 1, RetainHandling: 1}) // [MQTT-3.3.1-10]
		if m := s.expect(t); string(m.Payload) != "A" {
			t.Fatalf("got %q", m.Payload)
		}
		s.subscribe(t, paho.SubscribeOptions{Topic: "ret/a", QoS: 1, RetainHandling: 1})
		s.expectNone(t, 300*time.Millisecond)
		s.subscribe(t, paho.SubscribeOptions{Topic: "ret/a", QoS: 1, RetainHandling: 0}) // [MQTT-3.3.1-9]
		if m := s.expect(t); string(m.Payload) != "A" {
			t.Fatalf("retain handling 0 on an existing subscription: got %q", m.Payload)
		}
	})
	t.Run("retain as published", func(t *testing.T) {
		s, _ := dialV5(t, addr, &paho.Connect{ClientID: "rap", CleanStart: true})
		s.subscribe(t, paho.SubscribeOptions{Topic: "rap/1", QoS: 1, RetainAsPublished: true, RetainHandling: 2},
			paho.SubscribeOptions{Topic: "rap/0", QoS: 1, RetainHandling: 2})
		pub.publish(t, &paho.Publish{Topic: "rap/1", QoS: 1, Retain: true, Payload: []byte("x")})
		if m := s.expect(t); !m.Retain {
			t.Fatal("retain as published: RETAIN cleared") // [MQTT-3.3.1-13]
		}
		pub.publish(t, &paho.Publish{Topic: "rap/0", QoS: 1, Retain: true, Payload: []byte("x")})
		if m := s.expect(t); m.Retain {
			t.Fatal("without retain as published: RETAIN set on a live message") // [MQTT-3.3.1-12]
		}
	})
	t.Run("empty payload deletes", func(t *testing.T) {
		pub.publish(t, &paho.Publish{Topic: "ret/a", QoS: 1, Retain: true}) // [MQTT-3.3.1-6]
		s, _ := dialV5(t, addr, &paho.Connect{ClientID: "after-delete", CleanStart: true})
		s.subscribe(t, paho.SubscribeOptions{Topic: "ret/a", QoS: 1})
		s.expectNone(t, 300*time.Millisecond)
	})
}

func TestSpecWillMessages(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	watcher, _ := dialV5(t, addr, &paho.Connect{ClientID: "watcher", CleanStart: true})
	watcher.subscribe(t, paho.SubscribeOptions{Topic: "will/#", QoS: 1})
	will := func(id string, delay uint32) *paho.Connect {
		cp := &paho.Connect{ClientID: id, CleanStart: true, WillMessage: &paho.WillMessage{Topic: "will/" + id, QoS: 1, Payload: []byte("gone " + id)}}
		if delay > 0 {
			cp.WillProperties = &paho.WillProperties{WillDelayInterval: u32(delay)}
			cp.Properties = &paho.ConnectProperties{SessionExpiryInterval: u32(60)}
		}
		return cp
	}
	t.Run("abrupt close publishes the will", func(t *testing.T) {
		c, _ := dialV5(t, addr, will("abrupt", 0))
		c.nc.Close()
		if m := watcher.expect(t); m.Topic != "will/abrupt" {
			t.Fatalf("got %s", m.Topic)
		}
	})
	t.Run("normal DISCONNECT discards the will", func(t *testing.T) {
		c, _ := dialV5(t, addr, will("polite", 0))
		c.Disconnect(&paho.Disconnect{ReasonCode: 0}) // [MQTT-3.14.4-3]
		watcher.expectNone(t, 300*time.Millisecond)
	})
	t.Run("DISCONNECT 0x04 publishes the will", func(t *testing.T) {
		c, _ := dialV5(t, addr, will("with-will", 0))
		c.Disconnect(&paho.Disconnect{ReasonCode: 0x04})
		if m := watcher.expect(t); m.Topic != "will/with-will" {
			t.Fatalf("got %s", m.Topic)
		}
	})
	t.Run("will delay: reconnect within the delay cancels it", func(t *testing.T) {
		c, _ := dialV5(t, addr, will("delayed", 2))
		c.nc.Close()
		c2, _ := dialV5(t, addr, &paho.Connect{ClientID: "delayed", CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(60)}})
		watcher.expectNone(t, 2500*time.Millisecond) // [MQTT-3.1.3-9]
		c2.Disconnect(&paho.Disconnect{})
	})
	t.Run("will delay: published after the delay", func(t *testing.T) {
		c, _ := dialV5(t, addr, will("late-will", 1))
		start := time.Now()
		c.nc.Close()
		m := watcher.expect(t)
		if m.Topic != "will/late-will" || time.Since(start) < 900*time.Millisecond {
			t.Fatalf("got %s after %v, want it after about 1 s", m.Topic, time.Since(start))
		}
	})
}

func TestSpecPersistentSessionV5(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	cp := func(clean bool) *paho.Connect {
		return &paho.Connect{ClientID: "persist", CleanStart: clean, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(60)}}
	}
	s, ack := dialV5(t, addr, cp(true))
	if ack.SessionPresent {
		t.Fatal("session present on clean start") // [MQTT-3.2.2-2]
	}
	s.subscribe(t, paho.SubscribeOptions{Topic: "queue/#", QoS: 1})
	s.Disconnect(&paho.Disconnect{})
	waitClients(t, b, 0) // the broker has seen the DISCONNECT
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "pub", CleanStart: true})
	for i := range 5 {
		pub.publish(t, &paho.Publish{Topic: "queue/x", QoS: 1, Payload: []byte{byte('0' + i)}})
	}
	pub.publish(t, &paho.Publish{Topic: "queue/x", QoS: 0, Payload: []byte("q0")}) // not queued offline
	// A QoS 1 publish on the same connection is acknowledged only after the
	// QoS 0 one before it has been routed.
	pub.publish(t, &paho.Publish{Topic: "barrier", QoS: 1, Payload: []byte("b")})
	s2, ack := dialV5(t, addr, cp(false))
	if !ack.SessionPresent {
		t.Fatal("session not present on resume") // [MQTT-3.2.2-3]
	}
	for i := range 5 {
		if m := s2.expect(t); m.Payload[0] != byte('0'+i) || m.QoS != 1 {
			t.Fatalf("message %d: got %q QoS %d", i, m.Payload, m.QoS)
		}
	}
	s2.expectNone(t, 200*time.Millisecond)
	s2.Disconnect(&paho.Disconnect{})
	s3, ack := dialV5(t, addr, cp(true)) // clean start discards [MQTT-3.1.2-4]
	if ack.SessionPresent {
		t.Fatal("clean start kept the session")
	}
	pub.publish(t, &paho.Publish{Topic: "queue/x", QoS: 1, Payload: []byte("after")})
	s3.expectNone(t, 200*time.Millisecond)
}

func TestSpecSessionExpiry(t *testing.T) {
	b, addr := startBroker(t, broker.Options{})
	s, _ := dialV5(t, addr, &paho.Connect{ClientID: "short", CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(1)}})
	s.subscribe(t, paho.SubscribeOptions{Topic: "e/#", QoS: 1})
	s.Disconnect(&paho.Disconnect{})
	deadline := time.Now().Add(wait)
	for b.Stats().Sessions > 0 {
		if time.Now().After(deadline) {
			t.Fatal("session did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, ack := dialV5(t, addr, &paho.Connect{ClientID: "short", CleanStart: false})
	if ack.SessionPresent {
		t.Fatal("expired session still present")
	}
	if b.Stats().Subscriptions != 0 {
		t.Fatalf("expired session left %d subscriptions", b.Stats().Subscriptions)
	}
}

func TestSpecSessionTakeover(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	old, _ := dialV5(t, addr, &paho.Connect{ClientID: "same", CleanStart: true})
	dialV5(t, addr, &paho.Connect{ClientID: "same", CleanStart: false})
	select {
	case d := <-old.disc:
		if d.ReasonCode != 0x8E {
			t.Fatalf("old connection got DISCONNECT 0x%02X, want 0x8E", d.ReasonCode) // [MQTT-3.1.4-3]
		}
	case <-time.After(wait):
		t.Fatal("old connection not disconnected")
	}
}

func TestSpecAssignedClientIdentifier(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	_, ack := dialV5(t, addr, &paho.Connect{ClientID: "", CleanStart: true})
	if ack.Properties == nil || ack.Properties.AssignedClientID == "" {
		t.Fatal("no Assigned Client Identifier for an empty ClientID") // [MQTT-3.2.2-16]
	}
}

func TestSpecServerKeepAlive(t *testing.T) {
	_, addr := startBroker(t, broker.Options{MaxKeepAlive: 5})
	_, ack := dialV5(t, addr, &paho.Connect{ClientID: "ka", CleanStart: true, KeepAlive: 60})
	if ack.Properties == nil || ack.Properties.ServerKeepAlive == nil || *ack.Properties.ServerKeepAlive != 5 {
		t.Fatalf("Server Keep Alive = %v, want 5", ack.Properties) // [MQTT-3.2.2-21]
	}
}

func TestSpecNoLocal(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c, _ := dialV5(t, addr, &paho.Connect{ClientID: "self", CleanStart: true})
	c.subscribe(t, paho.SubscribeOptions{Topic: "nl/a", QoS: 1, NoLocal: true}, paho.SubscribeOptions{Topic: "nl/b", QoS: 1})
	c.publish(t, &paho.Publish{Topic: "nl/a", QoS: 1, Payload: []byte("own")}) // [MQTT-3.8.3-3]
	c.publish(t, &paho.Publish{Topic: "nl/b", QoS: 1, Payload: []byte("echo")})
	if m := c.expect(t); m.Topic != "nl/b" {
		t.Fatalf("got %s, want only nl/b", m.Topic)
	}
	c.expectNone(t, 200*time.Millisecond)
}

func TestSpecSubscriptionIdentifiersAndOverlap(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c, _ := dialV5(t, addr, &paho.Connect{ClientID: "ids", CleanStart: true})
	id7, id9 := 7, 9
	c.subscribeProps(t, &paho.SubscribeProperties{SubscriptionIdentifier: &id7}, paho.SubscribeOptions{Topic: "ov/+", QoS: 0})
	c.subscribeProps(t, &paho.SubscribeProperties{SubscriptionIdentifier: &id9}, paho.SubscribeOptions{Topic: "ov/#", QoS: 2})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "ov/x", QoS: 2, Payload: []byte("once")})
	m := c.expect(t)
	if m.QoS != 2 {
		t.Fatalf("overlapping subscriptions delivered at QoS %d, want the maximum 2", m.QoS) // [MQTT-3.3.4-2]
	}
	c.expectNone(t, 200*time.Millisecond) // delivered once
	if m.Properties == nil || m.Properties.SubscriptionIdentifier == nil {
		t.Fatal("no subscription identifier in PUBLISH") // [MQTT-3.3.4-3]
	}
}

func TestSpecSharedSubscriptions(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	a, _ := dialV5(t, addr, &paho.Connect{ClientID: "member-a", CleanStart: true})
	b, _ := dialV5(t, addr, &paho.Connect{ClientID: "member-b", CleanStart: true})
	for _, c := range []*v5client{a, b} {
		c.subscribe(t, paho.SubscribeOptions{Topic: "$share/workers/jobs/#", QoS: 1})
	}
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	const n = 20
	for i := range n {
		pub.publish(t, &paho.Publish{Topic: "jobs/x", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	seen := map[string]int{}
	var ga, gb int
	deadline := time.After(wait)
	for ga+gb < n {
		select {
		case m := <-a.msgs:
			ga++
			seen[string(m.Payload)]++
		case m := <-b.msgs:
			gb++
			seen[string(m.Payload)]++
		case <-deadline:
			t.Fatalf("received %d of %d", ga+gb, n)
		}
	}
	if len(seen) != n || ga == 0 || gb == 0 {
		t.Fatalf("each message must go to exactly one member, spread over both: a=%d b=%d distinct=%d", ga, gb, len(seen))
	}
	a.expectNone(t, 100*time.Millisecond)
	b.expectNone(t, 100*time.Millisecond)
}

func TestSpecPropertiesPassThrough(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	s, _ := dialV5(t, addr, &paho.Connect{ClientID: "s", CleanStart: true})
	s.subscribe(t, paho.SubscribeOptions{Topic: "req/#", QoS: 1})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	pf := byte(1)
	props := &paho.PublishProperties{ContentType: "application/json", ResponseTopic: "resp/p", CorrelationData: []byte("corr-1"),
		PayloadFormat: &pf, User: paho.UserProperties{{Key: "ce-type", Value: "reading"}, {Key: "ce-type", Value: "twice"}}}
	pub.publish(t, &paho.Publish{Topic: "req/1", QoS: 1, Payload: []byte(`{"a":1}`), Properties: props})
	m := s.expect(t)
	p := m.Properties
	if p == nil || p.ContentType != props.ContentType || p.ResponseTopic != props.ResponseTopic ||
		string(p.CorrelationData) != "corr-1" || p.PayloadFormat == nil || *p.PayloadFormat != 1 ||
		!slices.Equal(p.User, props.User) {
		t.Fatalf("properties not passed through: %+v", p) // [MQTT-3.3.2-4][MQTT-3.3.2-15][MQTT-3.3.2-16][MQTT-3.3.2-17]
	}
}

func TestSpecPubackNoMatchingSubscribers(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	r := pub.publish(t, &paho.Publish{Topic: "nobody/listens", QoS: 1, Payload: []byte("x")})
	if r.ReasonCode != 0x10 {
		t.Fatalf("PUBACK reason 0x%02X, want 0x10 No matching subscribers", r.ReasonCode)
	}
}

func TestSpecUnsubackReasonCodes(t *testing.T) {
	_, addr := startBroker(t, broker.Options{})
	c, _ := dialV5(t, addr, &paho.Connect{ClientID: "u", CleanStart: true})
	c.subscribe(t, paho.SubscribeOptions{Topic: "u/a", QoS: 1})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	ack, err := c.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"u/a", "u/never"}})
	if err != nil && !errors.Is(err, paho.ErrInvalidArguments) {
		// paho reports error reason codes as an error; the codes are in ack.
		t.Logf("unsubscribe: %v", err)
	}
	if ack == nil || !slices.Equal(ack.Reasons, []byte{0x00, 0x11}) {
		t.Fatalf("UNSUBACK reasons %v, want [0 17]", ack) // MQTT 5.0 §3.11.3
	}
}

func TestSpecSysTopics(t *testing.T) {
	_, addr := startBroker(t, broker.Options{SysInterval: 50 * time.Millisecond})
	all, _ := dialV5(t, addr, &paho.Connect{ClientID: "all", CleanStart: true})
	all.subscribe(t, paho.SubscribeOptions{Topic: "#", QoS: 0}, paho.SubscribeOptions{Topic: "+/broker/#", QoS: 0})
	sys, _ := dialV5(t, addr, &paho.Connect{ClientID: "sys", CleanStart: true})
	sys.subscribe(t, paho.SubscribeOptions{Topic: "$SYS/#", QoS: 0})
	if m := sys.expect(t); len(m.Topic) < 5 || m.Topic[:5] != "$SYS/" {
		t.Fatalf("got %s", m.Topic)
	}
	all.expectNone(t, 200*time.Millisecond) // [MQTT-4.7.2-1]
	pub, _ := dialV5(t, addr, &paho.Connect{ClientID: "p", CleanStart: true})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	r, err := pub.Publish(ctx, &paho.Publish{Topic: "$SYS/broker/fake", QoS: 1, Payload: []byte("x")})
	if err == nil || r == nil || r.ReasonCode != 0x87 {
		t.Fatalf("publish to $SYS: %v %v, want reason 0x87 Not authorized", r, err)
	}
}

// TestStoreRestart restarts the broker on the same store: persistent
// sessions come back with their subscriptions, and retained messages too.
func TestStoreRestart(t *testing.T) {
	st := store.NewMemory()
	b1, addr1 := startBroker(t, broker.Options{Store: st})
	keep, _ := dialV5(t, addr1, &paho.Connect{ClientID: "keep", CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(300)}})
	id := 5
	keep.subscribeProps(t, &paho.SubscribeProperties{SubscriptionIdentifier: &id}, paho.SubscribeOptions{Topic: "r/#", QoS: 1})
	keep.subscribe(t, subOpt("gone/#", 1))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := keep.Unsubscribe(ctx, &paho.Unsubscribe{Topics: []string{"gone/#"}}); err != nil {
		t.Fatal(err)
	}
	keep.Disconnect(&paho.Disconnect{})
	clean, _ := dialV5(t, addr1, &paho.Connect{ClientID: "clean", CleanStart: true})
	clean.subscribe(t, subOpt("r/#", 1)) // not persistent: not stored
	pub, _ := dialV5(t, addr1, &paho.Connect{ClientID: "p", CleanStart: true})
	pub.publish(t, &paho.Publish{Topic: "r/kept", QoS: 1, Retain: true, Payload: []byte("kept")})
	pub.publish(t, &paho.Publish{Topic: "r/deleted", QoS: 1, Retain: true, Payload: []byte("x")})
	pub.publish(t, &paho.Publish{Topic: "r/deleted", QoS: 1, Retain: true}) // deletes
	waitClients(t, b1, 2)
	b1.Close()

	b2, addr2 := startBroker(t, broker.Options{Store: st})
	if got := b2.Stats(); got.Sessions != 1 || got.Subscriptions != 1 || got.Retained != 1 {
		t.Fatalf("restored %d sessions, %d subscriptions, %d retained; want 1, 1, 1", got.Sessions, got.Subscriptions, got.Retained)
	}
	pub2, _ := dialV5(t, addr2, &paho.Connect{ClientID: "p", CleanStart: true})
	keep2, ack := dialV5(t, addr2, &paho.Connect{ClientID: "keep", CleanStart: false, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(300)}})
	if !ack.SessionPresent {
		t.Fatal("persistent session not restored")
	}
	// What was published while it was away waits in its queue, across the
	// restart, in order; an empty retained message is delivered too.
	for _, want := range []string{"kept", "x", ""} {
		if m := keep2.expect(t); string(m.Payload) != want || m.QoS != 1 {
			t.Fatalf("queued before the restart: got %q QoS %d, want %q QoS 1", m.Payload, m.QoS, want)
		}
	}
	pub2.publish(t, &paho.Publish{Topic: "r/live", QoS: 1, Payload: []byte("live")})
	m := keep2.expect(t) // the restored subscription routes without resubscribing
	if string(m.Payload) != "live" || m.Properties == nil || m.Properties.SubscriptionIdentifier == nil || *m.Properties.SubscriptionIdentifier != 5 {
		t.Fatalf("got %q with properties %+v", m.Payload, m.Properties)
	}
	late, _ := dialV5(t, addr2, &paho.Connect{ClientID: "late", CleanStart: true})
	late.subscribe(t, subOpt("r/#", 1))
	if m := late.expect(t); string(m.Payload) != "kept" || !m.Retain {
		t.Fatalf("retained after restart: got %q", m.Payload)
	}
	late.expectNone(t, 200*time.Millisecond) // the deleted one stays deleted
	// Ending the session removes it from the store.
	keep2.Disconnect(&paho.Disconnect{Properties: &paho.DisconnectProperties{SessionExpiryInterval: u32(0)}})
	deadline := time.Now().Add(wait)
	for {
		if recs := storedSessions(t, st); len(recs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("ended session still in the store")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStoreRestartSessionExpiry checks that a session's expiry interval
// counts from when its client left, across a restart.
func TestStoreRestartSessionExpiry(t *testing.T) {
	st := store.NewMemory()
	var bt store.Batch
	bt.PutSession(&store.Session{ClientID: "long-gone", Expiry: 60, DisconnectedAt: time.Now().Add(-2 * time.Minute)})
	bt.PutSession(&store.Session{ClientID: "recent", Expiry: 60, DisconnectedAt: time.Now().Add(-10 * time.Second)})
	bt.PutSession(&store.Session{ClientID: "forever", Expiry: broker.NeverExpire, DisconnectedAt: time.Now().Add(-24 * time.Hour)})
	if err := st.Apply(&bt, true); err != nil {
		t.Fatal(err)
	}
	b, _ := startBroker(t, broker.Options{Store: st})
	if n := b.Stats().Sessions; n != 2 {
		t.Fatalf("%d sessions restored, want 2 (the expired one dropped)", n)
	}
	waitFor(t, "the expired session to leave the store", func() bool {
		for _, r := range storedSessions(t, st) {
			if r.ClientID == "long-gone" {
				return false
			}
		}
		return true
	})
}

// storedSessions returns the sessions in st.
func storedSessions(t *testing.T, st *store.Store) []store.StoredSession {
	t.Helper()
	snap, err := st.Load()
	if err != nil {
		t.Fatal(err)
	}
	return snap.Sessions
}
