package chirpstack_test

import (
	"errors"
	"testing"

	"github.com/citymesh/citymesh/connector"
	"github.com/citymesh/citymesh/connector/chirpstack"
)

func TestDownlinkCommand(t *testing.T) {
	t.Parallel()
	dev := connector.EUI64{1, 2, 3, 4, 5, 6, 7, 8}
	got, err := chirpstack.MarshalDownlink(chirpstack.NewDownlinkCommand(dev, 10, []byte{1, 2}))
	if want := `{"devEui":"0102030405060708","confirmed":false,"fPort":10,"data":"AQI="}`; err != nil || string(got) != want {
		t.Errorf("MarshalDownlink = %s, %v; want %s", got, err, want)
	}
	obj := chirpstack.DownlinkCommand{DevEUI: chirpstack.EUI64(dev), Confirmed: true, FPort: 10, Object: map[string]any{"interval": 600}}
	got, err = chirpstack.MarshalDownlink(obj)
	if want := `{"devEui":"0102030405060708","confirmed":true,"fPort":10,"object":{"interval":600}}`; err != nil || string(got) != want {
		t.Errorf("MarshalDownlink = %s, %v; want %s", got, err, want)
	}
	// The documentation's example (src/chirpstack/integrations/mqtt.md).
	c, err := chirpstack.ParseDownlink([]byte(`{"devEui":"0102030405060708","confirmed":true,"fPort":10,"data":"AQI=","object":null}`))
	if err != nil || !c.Confirmed || c.FPort != 10 || string(c.Data) != "\x01\x02" || connector.EUI64(c.DevEUI) != dev {
		t.Errorf("ParseDownlink = %+v, %v", c, err)
	}
	for name, bad := range map[string]chirpstack.DownlinkCommand{
		"no DevEUI":       {FPort: 1, Data: []byte{1}},
		"FPort 0":         {DevEUI: chirpstack.EUI64(dev), Data: []byte{1}},
		"FPort 256":       {DevEUI: chirpstack.EUI64(dev), FPort: 256, Data: []byte{1}},
		"data and object": {DevEUI: chirpstack.EUI64(dev), FPort: 1, Data: []byte{1}, Object: map[string]any{}},
		"too long":        {DevEUI: chirpstack.EUI64(dev), FPort: 1, Data: make([]byte, 256)},
		"bad ID":          {ID: "42", DevEUI: chirpstack.EUI64(dev), FPort: 1, Data: []byte{1}},
	} {
		if _, err := chirpstack.MarshalDownlink(bad); !errors.Is(err, chirpstack.ErrInvalid) {
			t.Errorf("%s: MarshalDownlink = %v, want ErrInvalid", name, err)
		}
	}
	for _, bad := range []string{``, `{`, `{"devEui":"01","fPort":1}`, `{"devEui":"0102030405060708","fPort":0}`, `{"devEui":"0102030405060708","fPort":1,"data":"*"}`} {
		if _, err := chirpstack.ParseDownlink([]byte(bad)); err == nil {
			t.Errorf("ParseDownlink(%s) succeeded", bad)
		}
	}
}
