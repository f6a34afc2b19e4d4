package bus_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
)

// startBroker runs a broker on a loopback port for the test.
func startBroker(t *testing.T) (*broker.Broker, string) {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go b.Serve(ctx, ln)
	t.Cleanup(func() { cancel(); b.Close() })
	return b, "mqtt://" + ln.Addr().String()
}

// implementations returns a constructor for each Bus implementation, all
// attached to the same broker.
func implementations(t *testing.T) map[string]func(id string) bus.Bus {
	b, url := startBroker(t)
	return map[string]func(id string) bus.Bus{
		"local": func(id string) bus.Bus {
			l, err := bus.NewLocal(b, id)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		},
		"remote": func(id string) bus.Bus {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := bus.DialRemote(ctx, bus.RemoteOptions{URL: url, ClientID: id})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
			return r
		},
	}
}

func receive(t *testing.T, ch <-chan bus.Message) bus.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5 s")
	}
	return bus.Message{}
}

func TestBusPublishSubscribe(t *testing.T) {
	for name, open := range implementations(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			sub := open(name + "-sub")
			pub := open(name + "-pub")
			got := make(chan bus.Message, 10)
			if err := sub.Subscribe(ctx, "energy/+/meter/#", 1, func(_ context.Context, m bus.Message) { got <- m }); err != nil {
				t.Fatal(err)
			}
			want := bus.Message{
				Topic: "energy/campus-b1/meter/el-0042/reading", Payload: []byte(`{"value":1}`), QoS: 1,
				ContentType: "application/json", ResponseTopic: "replies/x", CorrelationData: []byte("c1"),
				Properties: []bus.Property{{Key: "ce-type", Value: "reading"}, {Key: "ce-type", Value: "again"}},
			}
			if err := pub.Publish(ctx, want); err != nil {
				t.Fatal(err)
			}
			m := receive(t, got)
			if m.Topic != want.Topic || string(m.Payload) != string(want.Payload) || m.QoS != 1 ||
				m.ContentType != want.ContentType || m.ResponseTopic != want.ResponseTopic ||
				string(m.CorrelationData) != "c1" || fmt.Sprint(m.Properties) != fmt.Sprint(want.Properties) {
				t.Fatalf("got %+v, want %+v", m, want)
			}
			// A topic outside the filter is not delivered; one inside is.
			pub.Publish(ctx, bus.Message{Topic: "robot/loomi/status", Payload: []byte("x"), QoS: 1})
			pub.Publish(ctx, bus.Message{Topic: "energy/b2/meter/m/reading", Payload: []byte("y"), QoS: 1})
			if m := receive(t, got); m.Topic != "energy/b2/meter/m/reading" {
				t.Fatalf("got %q, want the matching topic", m.Topic)
			}
			if err := sub.Unsubscribe(ctx, "energy/+/meter/#"); err != nil {
				t.Fatal(err)
			}
			if err := sub.Unsubscribe(ctx, "energy/+/meter/#"); err == nil {
				t.Fatal("second unsubscribe succeeded")
			}
		})
	}
}

func TestBusRetainedToLateSubscriber(t *testing.T) {
	for name, open := range implementations(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			pub := open(name + "-rpub")
			tp := "twin/" + name + "/state"
			if err := pub.Publish(ctx, bus.Message{Topic: tp, Payload: []byte("on"), QoS: 1, Retain: true}); err != nil {
				t.Fatal(err)
			}
			sub := open(name + "-rsub")
			got := make(chan bus.Message, 1)
			if err := sub.Subscribe(ctx, tp, 1, func(_ context.Context, m bus.Message) { got <- m }); err != nil {
				t.Fatal(err)
			}
			if m := receive(t, got); string(m.Payload) != "on" || !m.Retain {
				t.Fatalf("got %+v, want retained \"on\"", m)
			}
		})
	}
}

func TestBusRejectsBadInput(t *testing.T) {
	for name, open := range implementations(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := open(name + "-bad")
			if err := c.Subscribe(ctx, "a/#/b", 0, func(context.Context, bus.Message) {}); err == nil {
				t.Error("subscribe to an invalid filter succeeded")
			}
			if name == "local" {
				if err := c.Publish(ctx, bus.Message{Topic: "a/+/b"}); err == nil {
					t.Error("publish to a wildcard topic succeeded")
				}
			}
		})
	}
}
