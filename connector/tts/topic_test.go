package tts_test

import (
	"errors"
	"testing"

	"github.com/citymesh/citymesh/connector/tts"
)

func TestParseTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    tts.Topic
		wantErr bool
	}{
		{"v3/vineyard-north@ttn/devices/soil-probe-07/up", tts.Topic{ApplicationID: "vineyard-north", TenantID: "ttn", DeviceID: "soil-probe-07", Event: tts.EventUp}, false},
		{"v3/app1@tenant1/devices/dev1/down/queued", tts.Topic{ApplicationID: "app1", TenantID: "tenant1", DeviceID: "dev1", Event: tts.EventDownQueued}, false},
		{"v3/vineyard-north/devices/soil-probe-07/join", tts.Topic{ApplicationID: "vineyard-north", DeviceID: "soil-probe-07", Event: tts.EventJoin}, false},
		{"v3/app1@ttn/devices/dev1/up/normalized", tts.Topic{ApplicationID: "app1", TenantID: "ttn", DeviceID: "dev1", Event: tts.EventUpNormalized}, false},
		{"v3/app1@ttn/devices/dev1/location/solved", tts.Topic{ApplicationID: "app1", TenantID: "ttn", DeviceID: "dev1", Event: tts.EventLocationSolved}, false},
		{"v3/app1@ttn/devices/dev1/service/data", tts.Topic{ApplicationID: "app1", TenantID: "ttn", DeviceID: "dev1", Event: tts.EventServiceData}, false},
		{"v3/app1@ttn/devices/dev1/down/invalidated", tts.Topic{ApplicationID: "app1", TenantID: "ttn", DeviceID: "dev1", Event: tts.EventDownInvalidated}, false},
		{"v3/app1@ttn/devices/dev1/down/push", tts.Topic{ApplicationID: "app1", TenantID: "ttn", DeviceID: "dev1", Event: tts.EventDownPush}, false},
		{"", tts.Topic{}, true},
		{"v3", tts.Topic{}, true},
		{"v3/app1@ttn/devices/dev1", tts.Topic{}, true},
		{"v3/app1@ttn/devices/dev1/", tts.Topic{}, true},
		{"v3/app1@ttn/devices/dev1/uplink", tts.Topic{}, true},
		{"v3/app1@ttn/devices/dev1/up/extra", tts.Topic{}, true},
		{"v2/app1@ttn/devices/dev1/up", tts.Topic{}, true},
		{"v3/app1@ttn/gateways/dev1/up", tts.Topic{}, true},
		{"v3/+/devices/dev1/up", tts.Topic{}, true},
		{"v3/app1@ttn/devices/+/up", tts.Topic{}, true},
		{"v3/app1@ttn/devices/#", tts.Topic{}, true},
		{"v3/@ttn/devices/dev1/up", tts.Topic{}, true},
		{"v3/app1@/devices/dev1/up", tts.Topic{}, true},
		{"v3/app1@ttn@x/devices/dev1/up", tts.Topic{}, true},
		{"v3/App1@ttn/devices/dev1/up", tts.Topic{}, true},
		{"v3/app1@ttn/devices/dev--1/up", tts.Topic{}, true},
		{"v3/app1@ttn/devices/-dev1/up", tts.Topic{}, true},
		{"v3/app1@ttn/devices/dev1-/up", tts.Topic{}, true},
		{"v3/ab@ttn/devices/dev1/up", tts.Topic{}, true},
		{"v3/a234567890123456789012345678901234567@ttn/devices/dev1/up", tts.Topic{}, true},
	}
	for _, tt := range tests {
		got, err := tts.ParseTopic(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, tts.ErrTopic) {
			t.Errorf("ParseTopic(%q) error %v is not ErrTopic", tt.in, err)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestTopicBuilders(t *testing.T) {
	t.Parallel()
	if got := tts.Filter("vineyard-north", "ttn", tts.EventUp); got != "v3/vineyard-north@ttn/devices/+/up" {
		t.Errorf("Filter = %s", got)
	}
	if got := tts.Filter("vineyard-north", "", ""); got != "v3/vineyard-north/devices/#" {
		t.Errorf("Filter = %s", got)
	}
	if got, err := tts.DownlinkTopic("vineyard-north", "ttn", "soil-probe-07", false); err != nil || got != "v3/vineyard-north@ttn/devices/soil-probe-07/down/push" {
		t.Errorf("DownlinkTopic = %s, %v", got, err)
	}
	if got, err := tts.DownlinkTopic("vineyard-north", "", "soil-probe-07", true); err != nil || got != "v3/vineyard-north/devices/soil-probe-07/down/replace" {
		t.Errorf("DownlinkTopic = %s, %v", got, err)
	}
	for _, dev := range []string{"", "+", "#", "a/b", "soil probe"} {
		if _, err := tts.DownlinkTopic("vineyard-north", "ttn", dev, false); !errors.Is(err, tts.ErrTopic) {
			t.Errorf("DownlinkTopic(device %q) = %v, want ErrTopic", dev, err)
		}
	}
	if !tts.EventUp.Upstream() || tts.EventDownPush.Upstream() || tts.Event("bogus").Upstream() {
		t.Error("Upstream")
	}
}
