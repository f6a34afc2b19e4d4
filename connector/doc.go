// Package connector holds what the LoRaWAN connectors share: the identifiers
// of a LoRaWAN end device (EUI64, DevAddr) and the Deduplicator that lets the
// same uplink through two gateways, or again after a reconnect, yield its
// events once.
//
// The network-server formats live in sub-packages, each a pure parser from
// the bytes of an MQTT message to Go values and back:
//
//   - connector/tts: The Things Stack v3 (and The Things Network) MQTT API;
//   - connector/chirpstack: the ChirpStack v4 MQTT integration;
//   - connector/codec: a sandbox that runs The Things Stack's JavaScript
//     payload formatters (decodeUplink, encodeDownlink, decodeDownlink);
//   - connector/codec/devices: the campus's device types and a Go encoder
//     for each, which produces the bytes their codecs decode.
//
// None of them knows the bus or the broker. docs/connectors.md describes the
// formats, the codecs, the sandbox's limits and the deduplication.
package connector
