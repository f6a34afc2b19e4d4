// Package pahotest is what citymesh's tests use Eclipse Paho for most: an
// independent MQTT 5 subscriber over TCP that keeps every message it
// receives, for a test to look at.
package pahotest

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/paho"
)

// Options say who a Subscriber is: its client id, and its user and
// password ("" user: no credentials).
type Options struct {
	ClientID, User, Password string
}

// Subscriber is a Paho MQTT 5 client subscribed to some filters at QoS 1;
// it keeps what arrives. Client is the Paho client itself.
type Subscriber struct {
	Client *paho.Client
	mu     sync.Mutex
	msgs   []*paho.Publish
}

// Subscribe connects a Subscriber to the broker at addr (host:port) with
// a clean start, subscribes it to filters, and disconnects it when the
// test ends. ctx bounds the connect and the subscribe. A refused CONNECT,
// or a SUBSCRIBE that fails, fails the test.
func Subscribe(t testing.TB, ctx context.Context, addr string, o Options, filters ...string) *Subscriber {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &Subscriber{}
	s.Client = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			s.mu.Lock()
			s.msgs = append(s.msgs, pr.Packet)
			s.mu.Unlock()
			return true, nil
		}}})
	cp := &paho.Connect{ClientID: o.ClientID, CleanStart: true, KeepAlive: 30}
	if o.User != "" {
		cp.Username, cp.UsernameFlag, cp.Password, cp.PasswordFlag = o.User, true, []byte(o.Password), true
	}
	if ack, err := s.Client.Connect(ctx, cp); err != nil || ack.ReasonCode != 0 {
		conn.Close()
		t.Fatalf("connect %s: %v %+v", o.ClientID, err, ack)
	}
	subs := make([]paho.SubscribeOptions, 0, len(filters))
	for _, f := range filters {
		subs = append(subs, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	if _, err := s.Client.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		s.Client.Disconnect(&paho.Disconnect{})
		t.Fatalf("subscribe %s to %v: %v", o.ClientID, filters, err)
	}
	t.Cleanup(s.Close)
	return s
}

// Messages returns what arrived so far, in order.
func (s *Subscriber) Messages() []*paho.Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Close disconnects the subscriber (if still connected) and waits until
// its client has stopped.
func (s *Subscriber) Close() {
	s.Client.Disconnect(&paho.Disconnect{})
	<-s.Client.Done()
}
