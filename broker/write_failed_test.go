package broker

import (
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// failingConn is a connection whose writes fail with errInjected once fail
// is set.
type failingConn struct {
	net.Conn
	fail atomic.Bool
}

var errInjected = errors.New("injected write failure")

func (f *failingConn) Write(p []byte) (int, error) {
	if f.fail.Load() {
		return 0, errInjected
	}
	return f.Conn.Write(p)
}

// TestWriteFailedReason: when the broker cannot write to a client (not
// because the client closed the connection), it closes the connection,
// and the client event gives the write's error as the reason, not
// "closed"; a client that closed its end is still "closed".
func TestWriteFailedReason(t *testing.T) {
	events := make(chan ClientEvent, 8)
	b := New(Options{SysInterval: -1, Logger: slog.New(slog.DiscardHandler), OnClient: func(e ClientEvent) {
		if !e.Connected {
			events <- e
		}
	}})
	defer b.Close()
	for _, tc := range []struct {
		name, id string
		inject   bool
		want     string
	}{
		{"the write fails", "w-fails", true, "write failed: " + errInjected.Error()},
		{"the client closes", "w-closes", false, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			fc := &failingConn{Conn: server}
			b.ServeConn(fc)
			client.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := client.Write(connectBytes(mqtt.V5, tc.id)); err != nil {
				t.Fatal(err)
			}
			r := mqtt.NewReader(client, 0)
			r.Version = mqtt.V5
			if p, err := r.ReadPacket(); err != nil {
				t.Fatalf("CONNACK: %v", err)
			} else if _, ok := p.(*mqtt.Connack); !ok {
				t.Fatalf("got %T, want CONNACK", p)
			}
			if tc.inject {
				fc.fail.Store(true)
				ping, _ := (&mqtt.Pingreq{}).AppendTo(nil, mqtt.V5)
				if _, err := client.Write(ping); err != nil { // the PINGRESP's write fails
					t.Fatal(err)
				}
				if _, err := r.ReadPacket(); err == nil {
					t.Fatal("the connection is still open after a failed write")
				}
			} else {
				client.Close()
			}
			select {
			case e := <-events:
				if e.Reason != tc.want {
					t.Errorf("reason %q, want %q", e.Reason, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no client event")
			}
		})
	}
}
