package tts_test

import (
	"errors"
	"testing"

	"github.com/citymesh/citymesh/connector/tts"
)

func TestMarshalDownlinks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []tts.Downlink
		want string
	}{
		{"one", []tts.Downlink{tts.NewDownlink(10, []byte{0x01, 0x00, 0x00, 0x3c})},
			`{"downlinks":[{"f_port":10,"frm_payload":"AQAAPA==","priority":"NORMAL"}]}`},
		// The test fixture of pkg/applicationserver/io/formatters/json_test.go.
		{"two confirmed", []tts.Downlink{
			{FPort: 42, FRMPayload: []byte{1, 1, 1}, Confirmed: true},
			{FPort: 42, FRMPayload: []byte{2, 2, 2}, Confirmed: true},
		}, `{"downlinks":[{"f_port":42,"frm_payload":"AQEB","confirmed":true},{"f_port":42,"frm_payload":"AgIC","confirmed":true}]}`},
		{"decoded payload for the encoder", []tts.Downlink{{FPort: 3, DecodedPayload: map[string]any{"interval": 600.0}, Priority: tts.PriorityHigh}},
			`{"downlinks":[{"f_port":3,"decoded_payload":{"interval":600},"priority":"HIGH"}]}`},
	}
	for _, tt := range tests {
		got, err := tts.MarshalDownlinks(tt.in...)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: MarshalDownlinks = %s, %v\nwant %s", tt.name, got, err, tt.want)
			continue
		}
		back, err := tts.ParseDownlinks(got)
		if err != nil || len(back) != len(tt.in) {
			t.Errorf("%s: ParseDownlinks = %v, %v", tt.name, back, err)
		}
	}
}

func TestDownlinkValidation(t *testing.T) {
	t.Parallel()
	big := make([]byte, 256)
	tests := []struct {
		name string
		d    tts.Downlink
	}{
		{"FPort 0", tts.Downlink{FRMPayload: []byte{1}}},
		{"FPort 224", tts.Downlink{FPort: 224, FRMPayload: []byte{1}}},
		{"FPort 256", tts.Downlink{FPort: 256, FRMPayload: []byte{1}}},
		{"too long", tts.Downlink{FPort: 1, FRMPayload: big}},
		{"bytes and object", tts.Downlink{FPort: 1, FRMPayload: []byte{1}, DecodedPayload: map[string]any{}}},
		{"unknown priority", tts.Downlink{FPort: 1, FRMPayload: []byte{1}, Priority: "URGENT"}},
	}
	for _, tt := range tests {
		if _, err := tts.MarshalDownlinks(tt.d); !errors.Is(err, tts.ErrInvalid) {
			t.Errorf("%s: MarshalDownlinks = %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, err := tts.MarshalDownlinks(); !errors.Is(err, tts.ErrInvalid) {
		t.Errorf("no downlinks: %v", err)
	}
}

func TestParseDownlinks(t *testing.T) {
	t.Parallel()
	got, err := tts.ParseDownlinks([]byte(`{"downlinks":[{"f_port":15,"frm_payload":"vu8=","priority":3,"confirmed":false}]}`))
	if err != nil || len(got) != 1 || got[0].FPort != 15 || got[0].Priority != tts.PriorityNormal || string(got[0].FRMPayload) != "\xbe\xef" {
		t.Fatalf("ParseDownlinks = %+v, %v", got, err)
	}
	for _, bad := range []string{``, `{`, `{"downlinks":[{"f_port":0,"frm_payload":"AQ=="}]}`, `{"downlinks":[{"f_port":1,"frm_payload":"*"}]}`, `{"downlinks":{}}`} {
		if _, err := tts.ParseDownlinks([]byte(bad)); err == nil {
			t.Errorf("ParseDownlinks(%s) succeeded", bad)
		}
	}
}
