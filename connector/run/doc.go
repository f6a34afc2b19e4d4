// Package run runs the LoRaWAN connectors: it turns the traffic of The
// Things Stack v3 (The Things Network) and ChirpStack v4 into citymesh's
// own events on the bus, and the bus's downlink commands into the network
// servers' downlinks.
//
// Each configured application gets one MQTT connection to its network
// server, kept up with back-off. Its messages are parsed (connector/tts,
// connector/chirpstack), deduplicated (connector.Deduplicator), decoded
// (the server's decoded payload, else the device type's codec run in the
// connector/codec sandbox, else The Things Stack's normalized payload),
// mapped onto the campus model's information points
// (campus.Model.DeviceValues) and published at QoS 1: a retained
// measurement, an uplink event with the radio metadata, and a status when
// the device's state changes. A device silent for longer than its expected
// interval allows is declared offline by one timer heap for all devices.
//
// The runtime sees the bus only as a bus.Bus, so the same connectors run
// in-process in `citymesh serve` (bus.Local, where a publish returns once
// the event is stored) and as their own process at an edge node with
// `citymesh run connector` (bus.Remote, where it returns at the PUBACK).
// docs/connectors.md describes the configuration, the command topic, the
// liveness rule and the metrics.
package run
