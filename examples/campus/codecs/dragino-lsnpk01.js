// Payload codec for the Dragino LSNPK01 LoRaWAN soil NPK sensor.
//
// Byte layout (FPort 2, 11 bytes, big-endian), from Dragino's "LSNPK01
// LoRaWAN Soil NPK Sensor User Manual" (wiki.dragino.com) and the Device
// Repository entry vendor/dragino/lsnpk01.js and lsnpk01-codec.yaml of
// github.com/TheThingsNetwork/lorawan-devices:
//
//   0-1   battery, mV, in the low 14 bits
//   2-3   DS18B20 external probe temperature, signed, 0.1 °C (0 when absent)
//   4-5   soil nitrogen (N), mg/kg
//   6-7   soil phosphorus (P), mg/kg
//   8-9   soil potassium (K), mg/kg
//   10    message type (high nibble), interrupt flag (low nibble)
//
// The probe measures 0 to 1999 mg/kg; a larger value is decoded as sent,
// with a warning.
//
// Decoded fields (lowerCamelCase): battery (V), nitrogen, phosphorus,
// potassium (mg/kg), externalTemperature (°C, only when a probe reports a
// value other than 0).

function u16(b, i) { return (b[i] << 8) | b[i + 1]; }
function s16(b, i) { var v = u16(b, i); return v & 0x8000 ? v - 0x10000 : v; }

function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 2) {
    return { errors: ["unknown FPort " + input.fPort + ", the LSNPK01 sends on 2"] };
  }
  if (b.length < 11) {
    return { errors: ["payload of " + b.length + " bytes, the LSNPK01 sends 11"] };
  }
  var data = {
    battery: (u16(b, 0) & 0x3fff) / 1000,
    nitrogen: u16(b, 4),
    phosphorus: u16(b, 6),
    potassium: u16(b, 8)
  };
  if (s16(b, 2) !== 0) {
    data.externalTemperature = s16(b, 2) / 10;
  }
  var warnings = [];
  var names = ["nitrogen", "phosphorus", "potassium"];
  for (var i = 0; i < names.length; i++) {
    var k = names[i];
    if (data[k] > 1999) warnings.push(k + " " + data[k] + " mg/kg above the probe's range of 1999 mg/kg");
  }
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
