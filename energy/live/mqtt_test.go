package live_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

var clientSeq atomic.Int64

// observer is an independent MQTT 5 client (Eclipse Paho) that records
// what it receives.
type observer struct {
	c    *paho.Client
	msgs chan *paho.Publish
}

func newObserver(t testing.TB, addr string, filters ...string) *observer {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o := &observer{msgs: make(chan *paho.Publish, 10000)}
	o.c = paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(pr paho.PublishReceived) (bool, error) {
			select {
			case o.msgs <- pr.Packet:
			default:
			}
			return true, nil
		},
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	id := "observer-" + time.Now().Format("150405") + "-" + string(rune('a'+clientSeq.Add(1)%26))
	if ack, err := o.c.Connect(ctx, &paho.Connect{ClientID: id, CleanStart: true, KeepAlive: 30}); err != nil || ack.ReasonCode != 0 {
		t.Fatalf("connect: %v %+v", err, ack)
	}
	t.Cleanup(func() { o.c.Disconnect(&paho.Disconnect{}) })
	for _, f := range filters {
		if _, err := o.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: f, QoS: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// next returns the next message on topic that satisfies ok, within d.
func (o *observer) next(t testing.TB, topic string, d time.Duration, ok func(p *paho.Publish) bool) *paho.Publish {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-o.msgs:
			if p.Topic == topic && ok(p) {
				return p
			}
		case <-deadline:
			t.Fatalf("no such message on %s within %v", topic, d)
		}
	}
}

// retained returns the retained message on topic, as a new subscriber
// receives it.
func retained(t testing.TB, addr, topic string) []byte {
	t.Helper()
	o := newObserver(t, addr, topic)
	return o.next(t, topic, 5*time.Second, func(p *paho.Publish) bool { return p.Retain }).Payload
}
