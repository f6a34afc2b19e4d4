// Payload codec for the Dragino LSE01 LoRaWAN soil moisture & EC sensor.
//
// Byte layout (FPort 2, 11 bytes, big-endian), from Dragino's "LSE01
// LoRaWAN Soil Moisture & EC Sensor User Manual" (wiki.dragino.com) and the
// Device Repository entry vendor/dragino/lse01.js and lse01-codec.yaml of
// github.com/TheThingsNetwork/lorawan-devices:
//
//   0-1   battery, mV, in the low 14 bits
//   2-3   DS18B20 external probe temperature, signed, 0.1 °C (0 when absent)
//   4-5   soil moisture, 0.01 %            (probe range 0 to 100 %)
//   6-7   soil temperature, signed, 0.01 °C (probe range -40 to 85 °C)
//   8-9   soil conductivity, µS/cm          (probe range 0 to 20000 µS/cm)
//   10    flags (interrupt, sensor and mode bits; not decoded)
//
// Negative temperatures are two's complement: the vendor's formula
// (value - 0xFFFF) reads them 0.01 °C high. Firmware 1.2.1 and later can
// send raw dielectric values instead (a mode bit in byte 10); this codec
// follows lse01.js and reads bytes 4 to 9 as calibrated values.
//
// Decoded fields (lowerCamelCase): battery (V), soilMoisture (%),
// soilTemperature (°C), soilConductivity (µS/cm), externalTemperature (°C,
// only when a probe reports a value other than 0).

function u16(b, i) { return (b[i] << 8) | b[i + 1]; }
function s16(b, i) { var v = u16(b, i); return v & 0x8000 ? v - 0x10000 : v; }

function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 2) {
    return { errors: ["unknown FPort " + input.fPort + ", the LSE01 sends on 2"] };
  }
  if (b.length < 11) {
    return { errors: ["payload of " + b.length + " bytes, the LSE01 sends 11"] };
  }
  var data = {
    battery: (u16(b, 0) & 0x3fff) / 1000,
    soilMoisture: u16(b, 4) / 100,
    soilTemperature: s16(b, 6) / 100,
    soilConductivity: u16(b, 8)
  };
  if (s16(b, 2) !== 0) {
    data.externalTemperature = s16(b, 2) / 10;
  }
  var warnings = [];
  if (data.soilMoisture > 100) warnings.push("soil moisture " + data.soilMoisture + " % above 100 %");
  if (data.soilConductivity > 20000) warnings.push("soil conductivity " + data.soilConductivity + " µS/cm above the probe's range");
  return { data: data, warnings: warnings };
}

// Downlink: the transmit interval (Dragino's "Set Transmit Interval Time",
// the TDC command of its soil and leaf sensors' user manuals: command code
// 0x01, then the interval in seconds in 3 bytes, big-endian, on any FPort;
// 01 00 04 B0 is 1200 s). data: {interval: seconds}.
function encodeDownlink(input) {
  var s = input.data.interval;
  if (typeof s !== "number" || s !== Math.floor(s) || s < 1 || s > 0xffffff) {
    return { errors: ["interval: want a whole number of seconds from 1 to 16777215"] };
  }
  return { bytes: [0x01, (s >> 16) & 0xff, (s >> 8) & 0xff, s & 0xff], fPort: input.fPort || 2 };
}

function decodeDownlink(input) {
  var b = input.bytes;
  if (b.length !== 4 || b[0] !== 0x01) {
    return { errors: ["not a transmit interval command (01 and 3 bytes)"] };
  }
  return { data: { interval: (b[1] << 16) | (b[2] << 8) | b[3] } };
}
