package devices_test

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/connector/codec/devices"
)

// Encode a reading of a soil probe and decode it with the probe's codec.
func ExampleEncode() {
	payload, fPort, err := devices.Encode(devices.DraginoLSE01, map[string]float64{
		"soilMoisture": 31.6, "soilTemperature": -1.3, "soilConductivity": 412, "battery": 3.098})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("FPort %d, % X\n", fPort, payload)

	reg, err := codec.LoadDir(filepath.Join("..", "..", "..", "examples", "campus", "codecs"), codec.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Close()
	c, _ := reg.Get(devices.DraginoLSE01)
	out, err := c.DecodeUplink(context.Background(), codec.UplinkInput{Bytes: payload, FPort: fPort})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Data["soilMoisture"], out.Data["soilTemperature"], out.Data["soilConductivity"], out.Data["battery"])
	// Output:
	// FPort 2, 0C 1A 00 00 0C 58 FF 7E 01 9C 00
	// 31.6 -1.3 412 3.098
}
