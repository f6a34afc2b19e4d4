package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// mosquitto starts a Mosquitto broker on free loopback ports, with MQTT over
// TCP and over WebSocket, and returns the two addresses. The test is skipped
// when the mosquitto binary is not installed; the broker is killed by PID at
// the end of the test.
func mosquitto(t *testing.T) (tcpAddr, wsURL string) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		t.Skip("mosquitto is not installed (apt-get install mosquitto): skipping the interoperability test")
	}
	port, wsPort := freePort(t), freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("per_listener_settings false\nallow_anonymous true\npersistence false\nlog_dest none\n"+
		"max_queued_messages 0\n"+
		"listener %d 127.0.0.1\nlistener %d 127.0.0.1\nprotocol websockets\n", port, wsPort)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		cmd.Wait()
	})
	tcpAddr = fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", tcpAddr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("mosquitto did not start listening on %s: %v", tcpAddr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return tcpAddr, fmt.Sprintf("ws://127.0.0.1:%d/mqtt", wsPort)
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// receive waits for the next message on ch.
func receive(t *testing.T, ch <-chan *mqtt.Publish, what string) *mqtt.Publish {
	t.Helper()
	select {
	case p := <-ch:
		return p
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: nothing received", what)
		return nil
	}
}

// nothing checks that no message arrives on ch for a short while.
func nothing(t *testing.T, ch <-chan *mqtt.Publish, what string) {
	t.Helper()
	select {
	case p := <-ch:
		t.Fatalf("%s: unexpected message %s %q", what, p.Topic, p.Payload)
	case <-time.After(300 * time.Millisecond):
	}
}

func dial(t *testing.T, ctx context.Context, o client.Options) *client.Client {
	t.Helper()
	c, err := client.Dial(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func versionName(v byte) string {
	if v == mqtt.V5 {
		return "v5"
	}
	return "v311"
}

func TestMosquittoRoundTrip(t *testing.T) {
	tcpAddr, wsURL := mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range []byte{mqtt.V311, mqtt.V5} {
		for _, addr := range []string{tcpAddr, wsURL} {
			transport := "tcp"
			if addr == wsURL {
				transport = "ws"
			}
			t.Run(versionName(v)+"/"+transport, func(t *testing.T) {
				got := make(chan *mqtt.Publish, 10)
				sub := dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, OnMessage: func(p *mqtt.Publish) { got <- p }})
				topic := fmt.Sprintf("rt/%s/%s", versionName(v), transport)
				ack, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: topic + "/#", QoS: 2})
				if err != nil || len(ack.ReasonCodes) != 1 || ack.ReasonCodes[0] != mqtt.GrantedQoS2 {
					t.Fatalf("subscribe: %+v %v", ack, err)
				}
				pub := dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true})
				for qos := range byte(3) {
					payload := fmt.Sprintf("qos %d over %s", qos, addr)
					if err := pub.Publish(ctx, &mqtt.Publish{Topic: topic + "/x", QoS: qos, Payload: []byte(payload)}); err != nil {
						t.Fatalf("publish QoS %d: %v", qos, err)
					}
					p := receive(t, got, payload)
					if string(p.Payload) != payload || p.QoS != qos || p.Topic != topic+"/x" || p.Retain {
						t.Fatalf("got %s QoS %d retain %v %q, want QoS %d %q", p.Topic, p.QoS, p.Retain, p.Payload, qos, payload)
					}
				}
				if _, err := sub.Unsubscribe(ctx, topic+"/#"); err != nil {
					t.Fatal(err)
				}
				pub.Publish(ctx, &mqtt.Publish{Topic: topic + "/x", QoS: 1, Payload: []byte("after unsubscribe")})
				nothing(t, got, "after unsubscribe")
				if err := sub.Disconnect(ctx, mqtt.NormalDisconnection); err != nil {
					t.Fatal(err)
				}
				<-sub.Done()
			})
		}
	}
}

func TestMosquittoPipelined(t *testing.T) {
	addr, _ := mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, v := range []byte{mqtt.V311, mqtt.V5} {
		for _, qos := range []byte{1, 2} {
			const n = 2000
			topic := fmt.Sprintf("pipe/%s/%d", versionName(v), qos)
			got := make(chan *mqtt.Publish, n)
			sub := dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, OnMessage: func(p *mqtt.Publish) { got <- p }})
			if _, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: topic, QoS: 2}); err != nil {
				t.Fatal(err)
			}
			// Mosquitto allows a 3.1.1 client 20 QoS 2 messages inflight.
			pub := dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, MaxInflight: 20})
			acks := make(chan error, n)
			for i := range n {
				// Mosquitto disconnects a v5 client that exceeds its Receive
				// Maximum (20 by default), so this also checks the window.
				pub.PublishAsync(&mqtt.Publish{Topic: topic, QoS: qos, Payload: fmt.Appendf(nil, "%d", i)},
					func(err error) { acks <- err })
			}
			for range n {
				select {
				case err := <-acks:
					if err != nil {
						t.Fatalf("%s: %v", topic, err)
					}
				case <-ctx.Done():
					t.Fatal("acknowledgements missing")
				}
			}
			// One topic, one QoS: the order is kept [MQTT-4.6.0-6].
			for i := range n {
				p := receive(t, got, "pipelined")
				if string(p.Payload) != fmt.Sprint(i) {
					t.Fatalf("%s: message %d is %q: order lost", topic, i, p.Payload)
				}
			}
			t.Logf("%s: server Receive Maximum %d", topic, pub.Server().ReceiveMaximum)
		}
	}
}

func TestMosquittoRetained(t *testing.T) {
	addr, _ := mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, v := range []byte{mqtt.V311, mqtt.V5} {
		topic := "retained/" + versionName(v)
		pub := dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true})
		if err := pub.Publish(ctx, &mqtt.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("21.5")}); err != nil {
			t.Fatal(err)
		}
		got := make(chan *mqtt.Publish, 10)
		sub := dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, OnMessage: func(p *mqtt.Publish) { got <- p }})
		if _, err := sub.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "retained/#", QoS: 1}); err != nil {
			t.Fatal(err)
		}
		if p := receive(t, got, "retained"); !p.Retain || string(p.Payload) != "21.5" || p.Topic != topic {
			t.Fatalf("got %s retain %v %q", p.Topic, p.Retain, p.Payload)
		}
		// A live message to a subscriber is not marked retained.
		pub.Publish(ctx, &mqtt.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("22.0")})
		if p := receive(t, got, "live"); p.Retain || string(p.Payload) != "22.0" {
			t.Fatalf("live message: retain %v %q", p.Retain, p.Payload)
		}
		// An empty retained message clears it.
		pub.Publish(ctx, &mqtt.Publish{Topic: topic, QoS: 1, Retain: true})
		receive(t, got, "clearing message")
		again := make(chan *mqtt.Publish, 10)
		dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, OnMessage: func(p *mqtt.Publish) { again <- p }}).
			Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: topic})
		nothing(t, again, "after clearing")
	}
}

func TestMosquittoWill(t *testing.T) {
	addr, _ := mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan *mqtt.Publish, 10)
	watcher := dial(t, ctx, client.Options{Addr: addr, Version: mqtt.V5, CleanStart: true, OnMessage: func(p *mqtt.Publish) { got <- p }})
	if _, err := watcher.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "will/#", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	for _, v := range []byte{mqtt.V311, mqtt.V5} {
		topic := "will/" + versionName(v)
		will := func() *mqtt.Will { return &mqtt.Will{Topic: topic, QoS: 1, Payload: []byte("robot offline")} }
		// Abrupt close: the will is published.
		c := dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, Will: will()})
		c.Close()
		if p := receive(t, got, "will after abrupt close"); p.Topic != topic || string(p.Payload) != "robot offline" {
			t.Fatalf("got %s %q", p.Topic, p.Payload)
		}
		// Normal DISCONNECT: no will.
		c = dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, Will: will()})
		if err := c.Disconnect(ctx, mqtt.NormalDisconnection); err != nil {
			t.Fatal(err)
		}
		nothing(t, got, "will after DISCONNECT")
		if v == mqtt.V5 {
			// DISCONNECT with reason 0x04 asks for the will.
			c = dial(t, ctx, client.Options{Addr: addr, Version: v, CleanStart: true, Will: will()})
			c.Disconnect(ctx, mqtt.DisconnectWithWill)
			receive(t, got, "will after DISCONNECT 0x04")
		}
	}
}

func TestMosquittoV5Features(t *testing.T) {
	addr, _ := mosquitto(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A server-assigned client identifier.
	anon := dial(t, ctx, client.Options{Addr: addr, Version: mqtt.V5, CleanStart: true})
	if anon.ClientID() == "" || anon.Server().AssignedClientID == "" {
		t.Fatalf("no assigned client id: %+v", anon.Server())
	}

	// Subscription identifiers and user properties arrive with the message.
	got := make(chan *mqtt.Publish, 10)
	sub := dial(t, ctx, client.Options{Addr: addr, Version: mqtt.V5, CleanStart: true, OnMessage: func(p *mqtt.Publish) { got <- p }})
	if _, err := sub.Subscribe(ctx, mqtt.Properties{SubscriptionIDs: []uint32{42}}, mqtt.Subscription{Filter: "v5/+/energy", QoS: 1}); err != nil {
		t.Fatal(err)
	}
	err := anon.Publish(ctx, &mqtt.Publish{Topic: "v5/b7/energy", QoS: 1, Payload: []byte("kWh"),
		Props: mqtt.Properties{ContentType: "text/plain", User: []mqtt.UserProperty{{Key: "meter", Value: "m1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := receive(t, got, "v5 message")
	if len(p.Props.SubscriptionIDs) != 1 || p.Props.SubscriptionIDs[0] != 42 || p.Props.ContentType != "text/plain" ||
		len(p.Props.User) != 1 || p.Props.User[0] != (mqtt.UserProperty{Key: "meter", Value: "m1"}) {
		t.Fatalf("properties lost: %+v", p.Props)
	}

	// A persistent session keeps subscriptions and queues QoS 1 messages.
	id := "persist-" + fmt.Sprint(time.Now().UnixNano())
	opts := client.Options{Addr: addr, Version: mqtt.V5, ClientID: id, CleanStart: true, SessionExpiry: 60,
		OnMessage: func(p *mqtt.Publish) { got <- p }}
	c := dial(t, ctx, opts)
	if _, err := c.Subscribe(ctx, mqtt.Properties{}, mqtt.Subscription{Filter: "queued/" + id, QoS: 1}); err != nil {
		t.Fatal(err)
	}
	c.Disconnect(ctx, mqtt.NormalDisconnection)
	if err := anon.Publish(ctx, &mqtt.Publish{Topic: "queued/" + id, QoS: 1, Payload: []byte("while away")}); err != nil {
		t.Fatal(err)
	}
	opts.CleanStart = false
	c = dial(t, ctx, opts)
	if !c.Server().SessionPresent {
		t.Fatal("session not present on reconnect")
	}
	if p := receive(t, got, "queued message"); string(p.Payload) != "while away" {
		t.Fatalf("got %q", p.Payload)
	}

	// A topic name with a wildcard: Mosquitto disconnects, and the publish
	// fails with the server's reason.
	err = anon.Publish(ctx, &mqtt.Publish{Topic: "bad/+/topic", QoS: 1})
	var se *client.ServerError
	if !errors.Is(err, client.ErrClosed) || !errors.As(err, &se) || !se.Code.IsError() {
		t.Fatalf("publish to a wildcard topic name: %v", err)
	}

	// MQTT 3.1 (MQIsdp) still connects.
	old, err := client.Dial(ctx, client.Options{Addr: addr, Version: mqtt.V31, ClientID: "old-client"})
	if err != nil {
		t.Fatalf("MQTT 3.1: %v", err)
	}
	old.Disconnect(ctx, 0)
}
