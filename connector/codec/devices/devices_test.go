package devices_test

import (
	"context"
	"encoding/hex"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/connector/codec/devices"
)

// codecDir holds the campus's codecs and their example vectors.
var codecDir = filepath.Join("..", "..", "..", "examples", "campus", "codecs")

func loadCodecs(t testing.TB) *codec.Registry {
	t.Helper()
	r, err := codec.LoadDir(codecDir, codec.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// vectorFile is the form of examples/campus/codecs/{id}_test.yaml.
type vectorFile struct {
	Vectors []struct {
		Description string         `yaml:"description"`
		Source      string         `yaml:"source"`
		FPort       uint8          `yaml:"fPort"`
		Bytes       string         `yaml:"bytes"`
		Data        map[string]any `yaml:"data"`
		Warnings    []string       `yaml:"warnings"`
		Errors      []string       `yaml:"errors"`
	} `yaml:"vectors"`
}

// TestVectors runs every codec's example vectors through the sandbox.
func TestVectors(t *testing.T) {
	t.Parallel()
	reg := loadCodecs(t)
	files, _ := filepath.Glob(filepath.Join(codecDir, "*_test.yaml"))
	if len(files) != len(devices.Types()) {
		t.Errorf("%d vector files for %d device types", len(files), len(devices.Types()))
	}
	for _, name := range files {
		id := strings.TrimSuffix(filepath.Base(name), "_test.yaml")
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			c, ok := reg.Get(id)
			if !ok {
				t.Fatalf("no codec %s.js", id)
			}
			raw, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			var f vectorFile
			if err := yaml.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			if len(f.Vectors) == 0 {
				t.Fatal("no vectors")
			}
			for _, v := range f.Vectors {
				b, err := hex.DecodeString(v.Bytes)
				if err != nil {
					t.Fatalf("%s: %v", v.Description, err)
				}
				out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: b, FPort: v.FPort})
				if len(v.Errors) > 0 {
					ce, ok := err.(*codec.Error)
					if !ok || ce.Reason != codec.ReasonErrors || !reflect.DeepEqual(ce.Errors, v.Errors) {
						t.Errorf("%s: err = %v, want errors %q", v.Description, err, v.Errors)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", v.Description, err)
					continue
				}
				if !sameData(out.Data, v.Data) {
					t.Errorf("%s:\ndata %v\nwant %v", v.Description, out.Data, v.Data)
				}
				if len(out.Warnings) != len(v.Warnings) || (len(v.Warnings) > 0 && !reflect.DeepEqual(out.Warnings, v.Warnings)) {
					t.Errorf("%s: warnings %q, want %q", v.Description, out.Warnings, v.Warnings)
				}
			}
		})
	}
}

// sameData compares decoded data with YAML's: numbers by value.
func sameData(got, want map[string]any) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return false
		}
		switch w := w.(type) {
		case int:
			if g != float64(w) {
				return false
			}
		case float64:
			gf, ok := g.(float64)
			if !ok || math.Abs(gf-w) > 1e-9 {
				return false
			}
		default:
			if g != w {
				return false
			}
		}
	}
	return true
}

// TestRoundTrip encodes random values in range for every device type,
// decodes the bytes with the type's JavaScript codec in the sandbox, and
// checks that each value comes back within half its resolution.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	reg := loadCodecs(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, typ := range devices.Types() {
		t.Run(typ.ID, func(t *testing.T) {
			c, ok := reg.Get(typ.ID)
			if !ok {
				t.Fatalf("no codec %s.js", typ.ID)
			}
			for i := range 300 {
				values := map[string]float64{}
				optional := i%2 == 0
				for _, f := range typ.Fields {
					if f.Optional && !optional {
						continue
					}
					v := f.Min + rng.Float64()*(f.Max-f.Min)
					switch i {
					case 1:
						v = f.Min
					case 3:
						v = f.Max
					}
					values[f.Name] = v
				}
				b, port, err := devices.Encode(typ.ID, values)
				if err != nil {
					t.Fatal(err)
				}
				if port != typ.FPort {
					t.Fatalf("FPort %d, want %d", port, typ.FPort)
				}
				out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: b, FPort: port})
				if err != nil {
					t.Fatalf("%x (%v): %v", b, values, err)
				}
				for name, v := range values {
					f, _ := typ.Field(name)
					got, ok := out.Data[name].(float64)
					if !ok {
						if name == "externalTemperature" && math.Round(v/f.Resolution) == 0 {
							continue // 0 means no probe
						}
						t.Fatalf("%s missing from %v (bytes %x)", name, out.Data, b)
					}
					if math.Abs(got-v) > f.Resolution/2+1e-9 {
						t.Fatalf("%s = %v, encoded %v (resolution %v, bytes %x)", name, got, v, f.Resolution, b)
					}
				}
				if len(out.Warnings) > 0 {
					t.Fatalf("warnings %q for values in range %v", out.Warnings, values)
				}
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	t.Parallel()
	good := map[string]float64{"soilMoisture": 30, "soilTemperature": 12, "soilConductivity": 400, "battery": 3.6}
	if _, _, err := devices.Encode(devices.DraginoLSE01, good); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(map[string]float64){
		"unknown field": func(v map[string]float64) { v["soilMoisutre"] = 30 },
		"missing field": func(v map[string]float64) { delete(v, "battery") },
		"above range":   func(v map[string]float64) { v["soilMoisture"] = 100.5 },
		"below range":   func(v map[string]float64) { v["soilTemperature"] = -41 },
		"NaN":           func(v map[string]float64) { v["soilConductivity"] = math.NaN() },
	} {
		v := map[string]float64{}
		for k, x := range good {
			v[k] = x
		}
		change(v)
		if _, _, err := devices.Encode(devices.DraginoLSE01, v); err == nil {
			t.Errorf("%s: Encode succeeded", name)
		}
	}
	if _, _, err := devices.Encode("acme-x1", good); err == nil {
		t.Error("unknown type accepted")
	}
	s2120 := map[string]float64{"airTemperature": 20, "relativeHumidity": 50, "lightIntensity": 1000, "uvIndex": 1,
		"windSpeed": 2, "windDirection": 90, "rainfall": 0, "barometricPressure": 101300, "battery": 90, "peakWindGust": 5}
	if _, _, err := devices.Encode(devices.SenseCAPS2120, s2120); err == nil {
		t.Error("a gust without an accumulation accepted")
	}
}

// TestEncodeMatchesVendorExample: Encode writes the Device Repository's
// LSNPK01 example payload byte for byte (its values are out of the
// probe's range, so only the layout is compared, from a value in range).
func TestEncodeMatchesVectors(t *testing.T) {
	t.Parallel()
	b, _, err := devices.Encode(devices.DraginoLSNPK01, map[string]float64{"battery": 3.098, "nitrogen": 55, "phosphorus": 82, "potassium": 282})
	if err != nil || hex.EncodeToString(b) != "0c1a000000370052011a00" {
		t.Errorf("LSNPK01 = %x, %v", b, err)
	}
	b, _, err = devices.Encode(devices.DraginoLLMS01, map[string]float64{"battery": 3.363, "leafMoisture": 59.6, "leafTemperature": 24.9})
	if err != nil || hex.EncodeToString(b) != "0d230000025400f9000001" {
		t.Errorf("LLMS01 = %x, want the Device Repository example 0d230000025400f9000001", b)
	}
	b, _, err = devices.Encode(devices.DraginoLSPH01, map[string]float64{"battery": 3.363, "soilPh": 5.96, "soilTemperature": 24.9})
	if err != nil || hex.EncodeToString(b) != "0d230000025400f9000001" {
		t.Errorf("LSPH01 = %x, want the Device Repository example 0d230000025400f9000001", b)
	}
	b, _, err = devices.Encode(devices.SenseCAPS2120, map[string]float64{"airTemperature": 23.4, "relativeHumidity": 61, "lightIntensity": 35120,
		"uvIndex": 4.2, "windSpeed": 3.1, "windDirection": 228, "rainfall": 1.2, "barometricPressure": 101320, "peakWindGust": 7.8, "rainAccumulation": 12.75, "battery": 87})
	if err != nil || strings.ToUpper(hex.EncodeToString(b)) != "4A00EA3D000089302A001F4B00E4000004B027944C004E000031CE0357" {
		t.Errorf("S2120 = %X, %v", b, err)
	}
}

// FuzzDecodeDevices feeds random bytes and ports to every campus codec:
// each call must return data or a reported error, never hang or crash.
func FuzzDecodeDevices(f *testing.F) {
	reg, err := codec.LoadDir(codecDir, codec.Limits{})
	if err != nil {
		f.Fatal(err)
	}
	ids := reg.IDs()
	for i := range ids {
		f.Add(uint8(i), uint8(2), []byte{0xce, 0x29, 0x00, 0xf1, 0x07, 0xa5, 0x09, 0x9b, 0x6e, 0x28, 0x90})
	}
	f.Add(uint8(0), uint8(3), []byte{0x4a, 0, 0xea, 0x3d, 0, 0, 0x89, 0x30, 0x2a, 0, 0x1f, 0x03, 0x57})
	f.Fuzz(func(t *testing.T, which, port uint8, payload []byte) {
		c, _ := reg.Get(ids[int(which)%len(ids)])
		out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: payload, FPort: port})
		if err != nil {
			ce, ok := err.(*codec.Error)
			if !ok {
				t.Fatalf("not a *codec.Error: %v", err)
			}
			if len(payload) <= 255 && ce.Reason != codec.ReasonErrors {
				t.Fatalf("a campus codec failed other than by errors[]: %v (payload %x)", err, payload)
			}
			return
		}
		if out.Data == nil {
			t.Fatal("no data and no error")
		}
	})
}
