package chirpstack_test

import (
	"errors"
	"testing"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/chirpstack"
)

func TestParseTopic(t *testing.T) {
	t.Parallel()
	const app = "17c82e96-be03-4f38-aef3-f83d48582d97"
	dev := connector.EUI64{1, 1, 1, 1, 1, 1, 1, 1}
	good := map[string]chirpstack.Topic{
		"application/" + app + "/device/0101010101010101/event/up":          {ApplicationID: app, DevEUI: dev, Event: chirpstack.EventUp},
		"application/" + app + "/device/0101010101010101/event/txack":       {ApplicationID: app, DevEUI: dev, Event: chirpstack.EventTxAck},
		"application/" + app + "/device/0101010101010101/command/down":      {ApplicationID: app, DevEUI: dev, Command: "down"},
		"application/" + app + "/device/0101010101010101/event/integration": {ApplicationID: app, DevEUI: dev, Event: chirpstack.EventIntegration},
	}
	for in, want := range good {
		got, err := chirpstack.ParseTopic(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseTopic(%q) = %+v, %v", in, got, err)
		}
	}
	if got, err := chirpstack.ParseTopic("application/" + app + "/device/A840410001810006/event/up"); err != nil || got.String() != "application/"+app+"/device/a840410001810006/event/up" {
		t.Errorf("upper-case DevEUI: %v, %v", got, err)
	}
	for _, bad := range []string{
		"", "application", "application/" + app + "/device/0101010101010101/event",
		"application/" + app + "/device/0101010101010101/event/up/extra",
		"application/" + app + "/device/0101010101010101/event/uplink",
		"application/" + app + "/device/0101010101010101/command/up",
		"application/" + app + "/device/0101010101010101/status/up",
		"application/" + app + "/device/01010101010101/event/up",
		"application/" + app + "/device/+/event/up",
		"application/+/device/0101010101010101/event/up",
		"application/my-app/device/0101010101010101/event/up",
		"application/" + app + "/devices/0101010101010101/event/up",
		"app/" + app + "/device/0101010101010101/event/up",
	} {
		if _, err := chirpstack.ParseTopic(bad); !errors.Is(err, chirpstack.ErrTopic) {
			t.Errorf("ParseTopic(%q) = %v, want ErrTopic", bad, err)
		}
	}
	if f := chirpstack.EventFilter(app, chirpstack.EventUp); f != "application/"+app+"/device/+/event/up" {
		t.Errorf("EventFilter = %s", f)
	}
	if f := chirpstack.EventFilter("", ""); f != "application/+/device/+/event/+" {
		t.Errorf("EventFilter = %s", f)
	}
	if c, err := chirpstack.CommandTopic(app, dev); err != nil || c != "application/"+app+"/device/0101010101010101/command/down" {
		t.Errorf("CommandTopic = %s, %v", c, err)
	}
	if _, err := chirpstack.CommandTopic("#", dev); !errors.Is(err, chirpstack.ErrTopic) {
		t.Errorf("CommandTopic(#) = %v", err)
	}
}
