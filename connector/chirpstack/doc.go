// Package chirpstack reads and writes the messages of the ChirpStack v4 MQTT
// integration: the device events an application receives
// (application/{application id}/device/{DevEUI}/event/{up,status,join,ack,
// txack,log,location,integration}) and the downlink command it publishes
// (application/{application id}/device/{DevEUI}/command/down).
//
// The JSON is the protocol buffers JSON mapping of ChirpStack's
// integration.proto and gw.proto, as ChirpStack writes it with pbjson:
// lowerCamelCase names ("devEui", "fCnt"), every field of an event present
// even when zero, gateway metadata without its zero fields, bytes as base64,
// enums as names ("CR_4_5"), DevEUIs and DevAddrs as lower-case
// hexadecimal. Parsing accepts the original snake_case names too on the
// uplink (as a protobuf JSON parser must), ignores unknown fields, and
// accepts integers as strings. Field names follow
// github.com/chirpstack/chirpstack api/proto/{integration,gw,common} (v4,
// 2026); the topics are the defaults of chirpstack.toml (event_topic
// "application/{{application_id}}/device/{{dev_eui}}/event/{{event}}"),
// which an operator may change.
//
// The "integration" event was removed from ChirpStack in October 2025
// (it served only the LoRa Cloud integration); it is still parsed, for
// older servers.
package chirpstack
