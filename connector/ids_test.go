package connector_test

import (
	"encoding/json"
	"testing"

	"github.com/citymesh/citymesh/connector"
)

func TestEUI64Text(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"A84041000181C61F", "A84041000181C61F", false},
		{"a84041000181c61f", "A84041000181C61F", false},
		{"", "0000000000000000", false},
		{"A84041000181C6", "", true},
		{"A84041000181C61FAA", "", true},
		{"G84041000181C61F", "", true},
		{"A8-40-41-00-01-81", "", true},
	}
	for _, tt := range tests {
		var e connector.EUI64
		err := e.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalText(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && e.String() != tt.want {
			t.Errorf("UnmarshalText(%q) = %s, want %s", tt.in, e, tt.want)
		}
	}
	e, _ := connector.ParseEUI64("0101010101010101")
	if e.Lower() != "0101010101010101" {
		t.Errorf("Lower = %s", e.Lower())
	}
	b, _ := json.Marshal(struct{ E connector.EUI64 }{e})
	if string(b) != `{"E":"0101010101010101"}` {
		t.Errorf("Marshal = %s", b)
	}
}

func TestDevAddrText(t *testing.T) {
	t.Parallel()
	a, err := connector.ParseDevAddr("260b1a2c")
	if err != nil || a.String() != "260B1A2C" || a.Lower() != "260b1a2c" {
		t.Fatalf("ParseDevAddr = %v, %v", a, err)
	}
	for _, bad := range []string{"260B1A", "260B1A2C00", "zz0B1A2C"} {
		if _, err := connector.ParseDevAddr(bad); err == nil {
			t.Errorf("ParseDevAddr(%q) succeeded", bad)
		}
	}
}
