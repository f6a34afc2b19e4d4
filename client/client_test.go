package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

func startBroker(t *testing.T) string {
	t.Helper()
	b := broker.New(broker.Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(served) }()
	t.Cleanup(func() { cancel(); b.Close(); <-served })
	return ln.Addr().String()
}

func TestPublishSubscribeAllQoS(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, v := range []byte{mqtt.V311, mqtt.V5} {
		got := make(chan string, 10)
		sub, err := client.Dial(ctx, client.Options{Addr: addr, Version: v, CleanStart: true,
			OnMessage: func(p *mqtt.Publish) { got <- string(p.Payload) }})
		if err != nil {
			t.Fatal(err)
		}
		ack, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "c/#", QoS: 2})
		if err != nil || len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] != 2 {
			t.Fatalf("subscribe: %v %v", ack, err)
		}
		pub, err := client.Dial(ctx, client.Options{Addr: "mqtt://" + addr, Version: v, CleanStart: true})
		if err != nil {
			t.Fatal(err)
		}
		for qos := range byte(3) {
			if err := pub.Publish(ctx, &mqtt.Publish{Topic: "c/x", QoS: qos, Payload: []byte{'0' + qos}}); err != nil {
				t.Fatalf("QoS %d: %v", qos, err)
			}
			select {
			case m := <-got:
				if m != string([]byte{'0' + qos}) {
					t.Fatalf("got %q", m)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("QoS %d message not received", qos)
			}
		}
		if _, err := sub.Unsubscribe(ctx, "c/#"); err != nil {
			t.Fatal(err)
		}
		if err := sub.Disconnect(ctx, 0); err != nil {
			t.Fatal(err)
		}
		pub.Close()
		<-sub.Done()
	}
}

func TestPipelinedPublishes(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{Addr: addr, Version: mqtt.V5, CleanStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 5000
	done := make(chan error, n)
	for i := range n {
		p := &mqtt.Publish{Topic: "pipe", QoS: byte(1 + i%2), Payload: []byte("x")}
		c.PublishAsync(p, func(err error) { done <- err })
	}
	for range n {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("acknowledgements missing")
		}
	}
}

func TestRefusedConnection(t *testing.T) {
	addr := startBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, client.Options{Addr: addr, Version: mqtt.V5, Props: mqtt.Properties{AuthMethod: "SCRAM-SHA-1"}})
	var se *client.ServerError
	if !errors.As(err, &se) || se.Code != mqtt.BadAuthenticationMethod {
		t.Fatalf("got %v, want a ServerError with 0x8C", err)
	}
	if _, err := client.Dial(ctx, client.Options{Addr: "ftp://" + addr}); err == nil {
		t.Fatal("dialed an unsupported scheme")
	}
}
