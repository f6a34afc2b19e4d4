package client_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// fakeConn is the server side of one connection in a scripted test: the
// test reads what the client sends and writes the server's packets.
type fakeConn struct {
	t       *testing.T
	nc      net.Conn
	r       *mqtt.Reader
	version byte
}

// fakeServer listens on loopback and returns the address and a function
// that accepts the next connection.
func fakeServer(t *testing.T) (string, func() *fakeConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), func() *fakeConn {
		t.Helper()
		nc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return &fakeConn{t: t, nc: nc, r: mqtt.NewReader(nc, 4096)}
	}
}

// read returns the next packet from the client, failing the test after 5 s.
func (f *fakeConn) read() mqtt.Packet {
	f.t.Helper()
	f.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := f.r.ReadPacket()
	if err != nil {
		f.t.Fatalf("fake server read: %v", err)
	}
	return p
}

// write sends p to the client.
func (f *fakeConn) write(p mqtt.Packet) {
	f.t.Helper()
	b, err := p.AppendTo(nil, f.version)
	if err != nil {
		f.t.Fatalf("fake server encode %s: %v", p.Type(), err)
	}
	if _, err := f.nc.Write(b); err != nil {
		f.t.Fatalf("fake server write: %v", err)
	}
}

// handshake reads CONNECT and answers with ack.
func (f *fakeConn) handshake(ack *mqtt.Connack) mqtt.Connect {
	f.t.Helper()
	p := f.read()
	c, ok := p.(*mqtt.Connect)
	if !ok {
		f.t.Fatalf("got %s, want CONNECT", p.Type())
	}
	f.version = c.Version
	f.r.Version = c.Version
	f.write(ack)
	return *c
}

type dialResult struct {
	c   *client.Client
	err error
}

// dialAsync dials in the background, so the test can play the server.
func dialAsync(ctx context.Context, o client.Options) <-chan dialResult {
	res := make(chan dialResult, 1)
	go func() {
		c, err := client.Dial(ctx, o)
		res <- dialResult{c, err}
	}()
	return res
}

func (d dialResult) must(t *testing.T) *client.Client {
	t.Helper()
	if d.err != nil {
		t.Fatal(d.err)
	}
	t.Cleanup(func() { d.c.Close() })
	return d.c
}

func TestConnectOptionsAndServerLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, accept := fakeServer(t)
	res := dialAsync(ctx, client.Options{Addr: "mqtt://" + addr, Version: mqtt.V5, CleanStart: true, KeepAlive: 30 * time.Second,
		Username: "u", Password: []byte("pw"), SessionExpiry: 120, ReceiveMaximum: 10, MaximumPacketSize: 4096,
		TopicAliasMaximum: 4, UserProperties: []mqtt.UserProperty{{Key: "site", Value: "campus"}},
		Will: &mqtt.Will{Topic: "w", Payload: []byte("gone"), QoS: 1}})
	f := accept()
	ack := &mqtt.Connack{Props: mqtt.Properties{ReceiveMaximum: 2, MaximumPacketSize: 200, AssignedClientID: "srv-1",
		ServerKeepAlive: 7, MaximumQoS: 1}}
	ack.Props.Set(mqtt.PropMaximumQoS)
	conn := f.handshake(ack)
	c := (<-res).must(t)

	if !conn.CleanStart || conn.KeepAlive != 30 || conn.Username != "u" || string(conn.Password) != "pw" ||
		conn.Props.SessionExpiry != 120 || conn.Props.ReceiveMaximum != 10 || conn.Props.MaximumPacketSize != 4096 ||
		conn.Props.TopicAliasMaximum != 4 || len(conn.Props.User) != 1 || conn.Props.User[0].Value != "campus" ||
		conn.Will == nil || conn.Will.Topic != "w" || conn.Will.QoS != 1 {
		t.Fatalf("CONNECT does not carry the options: %+v", conn)
	}
	s := c.Server()
	if c.ClientID() != "srv-1" || s.KeepAlive != 7*time.Second || s.ReceiveMaximum != 2 || s.MaximumPacketSize != 200 || s.MaximumQoS != 1 {
		t.Fatalf("server info %+v, client id %q", s, c.ClientID())
	}

	// Refused locally: too large for the server, QoS above its maximum, an
	// alias above its Topic Alias Maximum (0).
	var se *client.ServerError
	if err := c.Publish(ctx, &mqtt.Publish{Topic: "big", Payload: make([]byte, 300)}); !errors.As(err, &se) || se.Code != mqtt.PacketTooLarge {
		t.Fatalf("large publish: %v", err)
	}
	if err := c.Publish(ctx, &mqtt.Publish{Topic: "q2", QoS: 2}); !errors.As(err, &se) || se.Code != mqtt.QoSNotSupported {
		t.Fatalf("QoS 2 publish: %v", err)
	}
	if err := c.Publish(ctx, &mqtt.Publish{Topic: "a", Props: mqtt.Properties{TopicAlias: 1}}); !errors.As(err, &se) || se.Code != mqtt.TopicAliasInvalid {
		t.Fatalf("aliased publish: %v", err)
	}

	// Receive Maximum 2: five QoS 1 publishes, but only two inflight.
	acked := make(chan error, 5)
	go func() {
		for i := range 5 {
			c.PublishAsync(&mqtt.Publish{Topic: "flow", QoS: 1, Payload: []byte{byte(i)}}, func(err error) { acked <- err })
		}
	}()
	var ids []uint16
	for range 2 {
		p, ok := f.read().(*mqtt.Publish)
		if !ok {
			t.Fatal("want PUBLISH")
		}
		ids = append(ids, p.PacketID)
	}
	f.nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if p, err := f.r.ReadPacket(); err == nil {
		t.Fatalf("a third publish (%s) went out beyond Receive Maximum 2", p.Type())
	}
	// Acknowledge one at a time; each frees room for one more.
	for n := 0; n < 5; n++ {
		f.write(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: ids[0]})
		ids = ids[1:]
		if n < 3 {
			p, ok := f.read().(*mqtt.Publish)
			if !ok {
				t.Fatal("want PUBLISH")
			}
			ids = append(ids, p.PacketID)
		}
		if err := <-acked; err != nil {
			t.Fatal(err)
		}
	}
}

func TestAckReasonCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, accept := fakeServer(t)
	res := dialAsync(ctx, client.Options{Addr: addr, Version: mqtt.V5})
	f := accept()
	f.handshake(&mqtt.Connack{})
	c := (<-res).must(t)

	errc := make(chan error, 1)
	go func() { errc <- c.Publish(ctx, &mqtt.Publish{Topic: "x", QoS: 1}) }()
	p := f.read().(*mqtt.Publish)
	f.write(&mqtt.Ack{Kind: mqtt.PUBACK, PacketID: p.PacketID, ReasonCode: mqtt.NotAuthorized, Props: mqtt.Properties{ReasonString: "acl"}})
	var se *client.ServerError
	if err := <-errc; !errors.As(err, &se) || se.Code != mqtt.NotAuthorized || se.Reason != "acl" || se.Packet != mqtt.PUBACK {
		t.Fatalf("PUBACK 0x87: %v", err)
	}

	go func() { errc <- c.Publish(ctx, &mqtt.Publish{Topic: "x", QoS: 2}) }()
	p = f.read().(*mqtt.Publish)
	f.write(&mqtt.Ack{Kind: mqtt.PUBREC, PacketID: p.PacketID, ReasonCode: mqtt.QuotaExceeded})
	if err := <-errc; !errors.As(err, &se) || se.Code != mqtt.QuotaExceeded {
		t.Fatalf("PUBREC 0x97: %v", err)
	}

	// A successful QoS 2 exchange: PUBREC → PUBREL → PUBCOMP.
	go func() { errc <- c.Publish(ctx, &mqtt.Publish{Topic: "x", QoS: 2}) }()
	p = f.read().(*mqtt.Publish)
	id := p.PacketID
	f.write(&mqtt.Ack{Kind: mqtt.PUBREC, PacketID: id})
	if a, ok := f.read().(*mqtt.Ack); !ok || a.Kind != mqtt.PUBREL || a.PacketID != id {
		t.Fatalf("want PUBREL %d", id)
	}
	f.write(&mqtt.Ack{Kind: mqtt.PUBCOMP, PacketID: id})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// SUBACK refusing everything is an error carrying the code.
	subc := make(chan error, 1)
	go func() {
		_, err := c.Subscribe(ctx, mqtt.Properties{SubscriptionIDs: []uint32{9}}, mqtt.Subscription{Filter: "secret/#", QoS: 1})
		subc <- err
	}()
	sp := f.read().(*mqtt.Subscribe)
	if len(sp.Props.SubscriptionIDs) != 1 || sp.Props.SubscriptionIDs[0] != 9 || sp.Subscriptions[0].Filter != "secret/#" {
		t.Fatalf("SUBSCRIBE %+v", sp)
	}
	f.write(&mqtt.Suback{PacketID: sp.PacketID, ReasonCodes: []mqtt.ReasonCode{mqtt.NotAuthorized}})
	if err := <-subc; !errors.As(err, &se) || se.Code != mqtt.NotAuthorized {
		t.Fatalf("refused SUBACK: %v", err)
	}

	// A DISCONNECT from the server ends the connection with its reason.
	f.write(&mqtt.Disconnect{ReasonCode: mqtt.ServerShuttingDown})
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection did not end on DISCONNECT")
	}
	if !errors.As(c.Err(), &se) || se.Code != mqtt.ServerShuttingDown {
		t.Fatalf("Err() = %v", c.Err())
	}
	if err := c.Publish(ctx, &mqtt.Publish{Topic: "x", QoS: 1}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
}

func TestIncomingQoS2AliasesAndCopies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, accept := fakeServer(t)
	got := make(chan *mqtt.Publish, 10)
	res := dialAsync(ctx, client.Options{Addr: addr, Version: mqtt.V5, TopicAliasMaximum: 5,
		OnMessage: func(p *mqtt.Publish) { got <- p }})
	f := accept()
	f.handshake(&mqtt.Connack{})
	(<-res).must(t)

	first := &mqtt.Publish{QoS: 2, PacketID: 7, Topic: "campus/b1/energy", Payload: []byte("one"),
		Props: mqtt.Properties{TopicAlias: 3, User: []mqtt.UserProperty{{Key: "k", Value: "v"}}}}
	f.write(first)
	if a := f.read().(*mqtt.Ack); a.Kind != mqtt.PUBREC || a.PacketID != 7 {
		t.Fatalf("want PUBREC 7, got %s %d", a.Kind, a.PacketID)
	}
	dup := *first
	dup.Dup = true
	f.write(&dup) // redelivered before PUBREL: acknowledged, not delivered again
	if a := f.read().(*mqtt.Ack); a.Kind != mqtt.PUBREC || a.PacketID != 7 {
		t.Fatalf("want PUBREC 7 again")
	}
	f.write(&mqtt.Ack{Kind: mqtt.PUBREL, PacketID: 7})
	if a := f.read().(*mqtt.Ack); a.Kind != mqtt.PUBCOMP || a.PacketID != 7 {
		t.Fatalf("want PUBCOMP 7")
	}
	// The alias alone names the topic now.
	f.write(&mqtt.Publish{QoS: 1, PacketID: 8, Payload: []byte("two"), Props: mqtt.Properties{TopicAlias: 3}})
	if a := f.read().(*mqtt.Ack); a.Kind != mqtt.PUBACK || a.PacketID != 8 {
		t.Fatalf("want PUBACK 8")
	}
	f.write(&mqtt.Publish{Topic: "plain", Payload: []byte("three")})

	var msgs []*mqtt.Publish
	for range 3 {
		select {
		case p := <-got:
			msgs = append(msgs, p)
		case <-ctx.Done():
			t.Fatalf("only %d messages delivered", len(msgs))
		}
	}
	select {
	case p := <-got:
		t.Fatalf("duplicate QoS 2 delivered: %q", p.Payload)
	case <-time.After(100 * time.Millisecond):
	}
	// Kept packets are copies: later reads did not overwrite them.
	want := []struct{ topic, payload string }{{"campus/b1/energy", "one"}, {"campus/b1/energy", "two"}, {"plain", "three"}}
	for i, w := range want {
		if msgs[i].Topic != w.topic || !bytes.Equal(msgs[i].Payload, []byte(w.payload)) {
			t.Errorf("message %d: %s %q, want %s %q", i, msgs[i].Topic, msgs[i].Payload, w.topic, w.payload)
		}
	}
	if len(msgs[0].Props.User) != 1 || msgs[0].Props.User[0].Key != "k" {
		t.Errorf("user property lost: %+v", msgs[0].Props.User)
	}

	// An alias above the client's maximum is a protocol error.
	f.write(&mqtt.Publish{Topic: "t", Props: mqtt.Properties{TopicAlias: 6}})
	f.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := f.r.ReadPacket(); err == nil {
		t.Fatal("connection kept after an invalid topic alias")
	}
}

func TestKeepAlive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, accept := fakeServer(t)
	res := dialAsync(ctx, client.Options{Addr: addr, Version: mqtt.V311, KeepAlive: time.Second})
	f := accept()
	if conn := f.handshake(&mqtt.Connack{}); conn.KeepAlive != 1 || conn.ClientID == "" {
		t.Fatalf("keep alive %d, client id %q", conn.KeepAlive, conn.ClientID)
	}
	c := (<-res).must(t)
	start := time.Now()
	if _, ok := f.read().(*mqtt.Pingreq); !ok {
		t.Fatal("want PINGREQ")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("first PINGREQ after %s, beyond the keep alive", d)
	}
	f.write(&mqtt.Pingresp{})
	if _, ok := f.read().(*mqtt.Pingreq); !ok {
		t.Fatal("want a second PINGREQ")
	}
	// No PINGRESP this time: the client gives up.
	select {
	case <-c.Done():
		if c.Err() == nil || errors.Is(c.Err(), client.ErrClosed) {
			t.Fatalf("Err() = %v", c.Err())
		}
	case <-time.After(4 * time.Second):
		t.Fatal("client kept a connection whose server stopped answering")
	}
}

func TestConnectRefusedAndTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, accept := fakeServer(t)
	res := dialAsync(ctx, client.Options{Addr: addr, Version: mqtt.V311})
	f := accept()
	f.handshake(&mqtt.Connack{ReasonCode: mqtt.ReasonCode(mqtt.V3NotAuthorized)})
	var se *client.ServerError
	if err := (<-res).err; !errors.As(err, &se) || se.Code != mqtt.NotAuthorized || client.V3ReturnCode(se.Code) != 5 {
		t.Fatalf("refused: %v", err)
	}

	// A server that never answers CONNECT.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	res = dialAsync(short, client.Options{Addr: addr})
	accept()
	if err := (<-res).err; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v", err)
	}
}
