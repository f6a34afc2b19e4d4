package pbjson_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/citymesh/citymesh/connector/pbjson"
)

func TestUint64(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{`"867500000"`, 867500000, false},
		{`867500000`, 867500000, false},
		{`"18446744073709551615"`, 1<<64 - 1, false},
		{`1e3`, 1000, false},
		{`"-1"`, 0, true},
		{`"1.5"`, 0, true},
		{`"abc"`, 0, true},
		{`""`, 0, true},
		{`true`, 0, true},
		{`"18446744073709551616"`, 0, true},
	}
	for _, tt := range tests {
		var u pbjson.Uint64
		err := json.Unmarshal([]byte(tt.in), &u)
		if (err != nil) != tt.wantErr || (err == nil && uint64(u) != tt.want) {
			t.Errorf("Unmarshal(%s) = %d, %v; want %d, error %v", tt.in, u, err, tt.want, tt.wantErr)
		}
	}
	b, _ := json.Marshal(pbjson.Uint64(867500000))
	if string(b) != `"867500000"` {
		t.Errorf("Marshal = %s", b)
	}
}

func TestInt64(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{`"-2414"`: -2414, `-2414`: -2414, `"9223372036854775807"`: 1<<63 - 1} {
		var i pbjson.Int64
		if err := json.Unmarshal([]byte(in), &i); err != nil || int64(i) != want {
			t.Errorf("Unmarshal(%s) = %d, %v", in, i, err)
		}
	}
	for _, in := range []string{`"9223372036854775808"`, `"x"`, `{}`} {
		var i pbjson.Int64
		if err := json.Unmarshal([]byte(in), &i); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
	b, _ := json.Marshal(pbjson.Int64(-2414))
	if string(b) != `"-2414"` {
		t.Errorf("Marshal = %s", b)
	}
}

func TestBytes(t *testing.T) {
	t.Parallel()
	want := []byte{0xfb, 0xff, 0x01}
	for _, in := range []string{`"+/8B"`, `"-_8B"`, `"+/8B"`} {
		var b pbjson.Bytes
		if err := json.Unmarshal([]byte(in), &b); err != nil || !bytes.Equal(b, want) {
			t.Errorf("Unmarshal(%s) = %x, %v", in, b, err)
		}
	}
	for in, want := range map[string][]byte{`"qg=="`: {0xaa}, `"qg"`: {0xaa}, `""`: nil, `null`: nil} {
		var b pbjson.Bytes
		if err := json.Unmarshal([]byte(in), &b); err != nil || !bytes.Equal(b, want) {
			t.Errorf("Unmarshal(%s) = %x, %v", in, b, err)
		}
	}
	for _, in := range []string{`"qg=x"`, `"!!"`, `12`, `"q\u0067=="`, `"q"`} {
		var b pbjson.Bytes
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
	out, _ := json.Marshal(pbjson.Bytes{0xaa})
	if string(out) != `"qg=="` {
		t.Errorf("Marshal = %s", out)
	}
}

func TestDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"0.205824s", 205824 * time.Microsecond, "0.205824s"},
		{"1s", time.Second, "1s"},
		{"1.5s", 1500 * time.Millisecond, "1.500s"},
		{"-0.000000001s", -1, "-0.000000001s"},
		{"1.000340012s", time.Second + 340012, "1.000340012s"},
	}
	for _, tt := range tests {
		got, err := pbjson.ParseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if s := pbjson.FormatDuration(got); s != tt.out {
			t.Errorf("FormatDuration(%v) = %q, want %q", got, s, tt.out)
		}
	}
	for _, bad := range []string{"1", "1h", "s", ".5s", "1.s", "1.0000000001s", "1e3s", "+1s", "99999999999s", "1 s"} {
		if _, err := pbjson.ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
	var d pbjson.Duration
	if err := json.Unmarshal([]byte(`0.5`), &d); err == nil {
		t.Error("a bare number was accepted as a duration")
	}
}

func TestEnum(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]pbjson.Enum{`"SOURCE_GPS"`: "SOURCE_GPS", `3`: "3", `null`: ""} {
		var e pbjson.Enum
		if err := json.Unmarshal([]byte(in), &e); err != nil || e != want {
			t.Errorf("Unmarshal(%s) = %q, %v", in, e, err)
		}
	}
	for _, in := range []string{`1.5`, `{}`, `true`} {
		var e pbjson.Enum
		if err := json.Unmarshal([]byte(in), &e); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", in)
		}
	}
}
