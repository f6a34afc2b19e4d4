package client_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// clientGoroutines returns the stacks of goroutines running the client's
// code, other than the test's own.
func clientGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "citymesh/client.") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return out
}

// Close and Disconnect return once the client's goroutines (reader,
// flusher, OnClose) have ended; Close from inside a callback does not wait
// for itself.
func TestCloseWaitsForGoroutines(t *testing.T) {
	before := goleak.IgnoreCurrent()
	// Registered first, so it runs after the broker's cleanup.
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
	addr := startBroker(t)
	ends := []struct {
		name string
		end  func(c *client.Client) error
	}{
		{"Close", func(c *client.Client) error { return c.Close() }},
		{"Disconnect", func(c *client.Client) error { return c.Disconnect(context.Background(), mqtt.NormalDisconnection) }},
	}
	for _, e := range ends {
		t.Run(e.name, func(t *testing.T) {
			closed := make(chan struct{})
			c, err := client.Dial(context.Background(), client.Options{Addr: addr, ClientID: "leak-" + e.name, CleanStart: true,
				KeepAlive: time.Second,
				OnClose: func(error) {
					time.Sleep(20 * time.Millisecond) // a slow OnClose is waited for too
					close(closed)
				}})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Publish(context.Background(), &mqtt.Publish{Topic: "leak/t", QoS: 1, Payload: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if err := e.end(c); err != nil {
				t.Fatal(err)
			}
			select {
			case <-closed:
			default:
				t.Fatal("returned before OnClose ended")
			}
			if g := clientGoroutines(); len(g) > 0 {
				t.Fatalf("%d goroutines of the client still running:\n\n%s", len(g), strings.Join(g, "\n\n"))
			}
		})
	}
	t.Run("Close inside OnMessage", func(t *testing.T) {
		var c *client.Client
		ready := make(chan struct{})
		done := make(chan error, 1)
		c, err := client.Dial(context.Background(), client.Options{Addr: addr, ClientID: "leak-handler", CleanStart: true,
			OnMessage: func(*mqtt.Publish) { <-ready; done <- c.Close() }})
		if err != nil {
			t.Fatal(err)
		}
		close(ready)
		if _, err := c.Subscribe(context.Background(), mqtt.Properties{}, mqtt.Subscription{Filter: "leak/h", QoS: 0}); err != nil {
			t.Fatal(err)
		}
		if err := c.Publish(context.Background(), &mqtt.Publish{Topic: "leak/h", Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close inside OnMessage did not return")
		}
		c.Close()
	})
}
