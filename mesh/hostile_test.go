package mesh_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/client"
	"github.com/citymesh/citymesh/mqtt"
)

// fakeLink connects to node as if it were node peer's end of a link, with
// the role it claims; it fails the test unless the CONNECT is accepted.
func fakeLink(t *testing.T, node *testNode, peer, role string, version byte) (*client.Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opts := client.Options{Addr: node.addr, ClientID: "$mesh/" + peer, Version: version, SessionExpiry: 3600, Logger: quiet}
	if role != "" && version == mqtt.V5 {
		opts.UserProperties = []mqtt.UserProperty{{Key: "citymesh-node", Value: peer}, {Key: "citymesh-role", Value: role}}
	}
	c, err := client.Dial(ctx, opts)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func sendControl(t *testing.T, c *client.Client, topic, payload string) {
	t.Helper()
	if err := trySend(c, topic, payload); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// trySend publishes a control message that may make the node close the
// connection before it acknowledges.
func trySend(c *client.Client, topic, payload string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Publish(ctx, &mqtt.Publish{Topic: topic, Payload: []byte(payload), QoS: 1})
}

func closed(c *client.Client) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

func TestHostileLinks(t *testing.T) {
	core := startNode(t, coreOf("core"), "", nil)

	t.Run("refused at CONNECT", func(t *testing.T) {
		for _, tc := range []struct {
			name, role string
			version    byte
			want       string
		}{
			{"no role", "", mqtt.V5, "Not authorized"},
			{"an unknown role", "leaf", mqtt.V5, "Not authorized"},
			{"a core that is not a peer", "core", mqtt.V5, "Not authorized"},
			{"MQTT 3.1.1", "edge", mqtt.V311, ""},
		} {
			if _, err := fakeLink(t, core, "intruder", tc.role, tc.version); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: connect returned %v, want a refusal", tc.name, err)
			}
		}
	})

	t.Run("a hello that does not parse", func(t *testing.T) {
		c, err := fakeLink(t, core, "garbled", "edge", mqtt.V5)
		if err != nil {
			t.Fatal(err)
		}
		trySend(c, "$mesh/hello", "{not json")
		waitFor(t, "the node to close the link", func() bool { return closed(c) })
		if e := lastError(core, "garbled"); !strings.Contains(e, "bad hello") {
			t.Fatalf("last error %q", e)
		}
	})

	t.Run("a hello with another role", func(t *testing.T) {
		c, err := fakeLink(t, core, "liar", "edge", mqtt.V5)
		if err != nil {
			t.Fatal(err)
		}
		trySend(c, "$mesh/hello", `{"node":"liar","role":"core","version":1}`)
		waitFor(t, "the node to close the link", func() bool { return closed(c) })
		if e := lastError(core, "liar"); !strings.Contains(e, "says it is a core node") {
			t.Fatalf("last error %q", e)
		}
	})

	t.Run("a hello of another protocol version", func(t *testing.T) {
		c, err := fakeLink(t, core, "future", "edge", mqtt.V5)
		if err != nil {
			t.Fatal(err)
		}
		trySend(c, "$mesh/hello", `{"node":"future","role":"edge","version":99}`)
		waitFor(t, "the node to close the link", func() bool { return closed(c) })
		if e := lastError(core, "future"); !strings.Contains(e, "protocol 99") {
			t.Fatalf("last error %q", e)
		}
	})

	t.Run("interest that does not parse, and invalid filters", func(t *testing.T) {
		c, err := fakeLink(t, core, "sloppy", "edge", mqtt.V5)
		if err != nil {
			t.Fatal(err)
		}
		sendControl(t, c, "$mesh/hello", `{"node":"sloppy","role":"edge","version":1}`)
		sendControl(t, c, "$mesh/interest", `[1,2,`)
		waitFor(t, "the bad interest to be recorded", func() bool { return strings.Contains(lastError(core, "sloppy"), "bad interest") })
		sendControl(t, c, "$mesh/interest", `{"epoch":7,"full":true,"filters":["a/#/b","","x+y/#","ok/#","$share/g","$share/g/ok/+"]}`)
		waitFor(t, "the valid filters to be kept", func() bool {
			got := strings.Join(interestOf(core, "sloppy"), " ")
			return got == "$share/g/ok/+ ok/#"
		})
		if closed(c) {
			t.Fatal("bad interest closed the link; it should be logged and ignored")
		}
		// The node's other clients are unharmed.
		s := subscribe(t, core, "ops", 1, "ok/#")
		publish(t, publisher(t, core, "p"), "ok/1", "fine", 1)
		waitFor(t, "an ordinary message", func() bool { return s.count("ok/1 fine") == 1 })
	})
}
