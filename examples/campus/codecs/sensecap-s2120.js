// Payload codec for the SenseCAP S2120 8-in-1 LoRaWAN weather station
// (Seeed Studio).
//
// The payload is a sequence of frames, each a data ID byte and a value of a
// fixed length (big-endian), as in the vendor's decoder
// (github.com/Seeed-Solution/SenseCAP-Decoder S2120/TTN, and the Device
// Repository entry vendor/sensecap/sensecap2120-8-in-1-decoder.js of
// github.com/TheThingsNetwork/lorawan-devices); the vendor's decoder does
// not look at the FPort, and neither does this one:
//
//   0x01, 0x4A  10 bytes: air temperature (signed, 0.1 °C), air humidity
//               (1 %), light intensity (uint32, lux), UV index (0.1), wind
//               speed (0.1 m/s)
//   0x02, 0x4B  8 bytes: wind direction (1°), rainfall (uint32, 0.001 mm;
//               SenseCAP measurement 4113 "rain gauge", the rain of the
//               last hour, mm/h), barometric pressure (uint16, 10 Pa)
//   0x4C        6 bytes: peak wind gust (0.1 m/s), rain accumulation
//               (uint32, 0.001 mm, SenseCAP measurement 4213: accumulated
//               since the counter was last reset), firmware 2.x
//   0x03        1 byte: battery level, %
//   0x04        9 bytes: battery (%), hardware version (2 bytes), firmware
//               version (2 bytes), measurement interval (minutes), GPS
//               interval (minutes)
//   0x05        4 bytes: measurement and GPS intervals (minutes)
//   0x06        1 byte: sensor error code
//   0x10        9 bytes: sensor status and EUI
//
// 0x01/0x02 are the frames of firmware 1.x, 0x4A/0x4B/0x4C those of 2.x.
// Unlike the vendor's decoder, only the temperature is read as signed.
//
// Decoded fields (lowerCamelCase): airTemperature (°C), relativeHumidity
// (%), lightIntensity (lux), uvIndex, windSpeed (m/s), windDirection (°),
// rainfall (mm/h, the last hour), barometricPressure (Pa), peakWindGust
// (m/s), rainAccumulation (mm), battery (%), hardwareVersion,
// firmwareVersion, measurementInterval (s).

var FRAME_LENGTH = { 0x01: 10, 0x4a: 10, 0x02: 8, 0x4b: 8, 0x4c: 6, 0x03: 1, 0x04: 9, 0x05: 4, 0x06: 1, 0x10: 9 };

function u8(b, i) { return b[i]; }
function u16(b, i) { return (b[i] << 8) | b[i + 1]; }
function s16(b, i) { var v = u16(b, i); return v & 0x8000 ? v - 0x10000 : v; }
function u32(b, i) { return ((b[i] << 24) >>> 0) + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]); }
function hex2(v) { return (v < 16 ? "0" : "") + v.toString(16).toUpperCase(); }

function decodeUplink(input) {
  var b = input.bytes, data = {}, warnings = [];
  var i = 0;
  while (i < b.length) {
    var id = b[i], n = FRAME_LENGTH[id];
    if (n === undefined) {
      warnings.push("unknown frame 0x" + hex2(id) + " at byte " + i + ", the rest is ignored");
      break;
    }
    if (i + 1 + n > b.length) {
      return { errors: ["frame 0x" + hex2(id) + " at byte " + i + " needs " + n + " bytes, " + (b.length - i - 1) + " left"] };
    }
    var v = i + 1;
    switch (id) {
      case 0x01:
      case 0x4a:
        data.airTemperature = s16(b, v) / 10;
        data.relativeHumidity = u8(b, v + 2);
        data.lightIntensity = u32(b, v + 3);
        data.uvIndex = u8(b, v + 7) / 10;
        data.windSpeed = u16(b, v + 8) / 10;
        break;
      case 0x02:
      case 0x4b:
        data.windDirection = u16(b, v);
        data.rainfall = u32(b, v + 2) / 1000;
        data.barometricPressure = u16(b, v + 6) * 10;
        break;
      case 0x4c:
        data.peakWindGust = u16(b, v) / 10;
        data.rainAccumulation = u32(b, v + 2) / 1000;
        break;
      case 0x03:
        data.battery = u8(b, v);
        break;
      case 0x04:
        data.battery = u8(b, v);
        data.hardwareVersion = u8(b, v + 1) + "." + u8(b, v + 2);
        data.firmwareVersion = u8(b, v + 3) + "." + u8(b, v + 4);
        data.measurementInterval = u16(b, v + 5) * 60;
        break;
      case 0x05:
        data.measurementInterval = u16(b, v) * 60;
        break;
      case 0x06:
        if (b[v] !== 0) warnings.push("sensor error 0x" + hex2(b[v]));
        break;
      case 0x10:
        break;
    }
    i += 1 + n;
  }
  if (i === 0 && b.length === 0) {
    return { errors: ["empty payload"] };
  }
  if (data.relativeHumidity > 100) warnings.push("relative humidity " + data.relativeHumidity + " % above 100 %");
  if (data.windDirection >= 360) warnings.push("wind direction " + data.windDirection + "° not below 360°");
  return { data: data, warnings: warnings };
}
