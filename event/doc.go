// Package event is the one format of citymesh's city events: the topic
// names they are published under, one Go type and one JSON schema per kind
// of event, and the publishing policy.
//
// Topics have five levels, general to specific:
//
//	{domain}/{site}/{kind}/{asset}/{event}
//	vineyard/wartberg/device/soil-probe-07/measurement
//	energy/campus/meter/el-b01-main/reading
//	robot/campus/robot/loomi/position
//
// Topic, NewTopic and ParseTopic build and read them; Filter builds
// subscriptions. The site and asset are ids of the campus model (package
// campus).
//
// The kinds are Measurement (values of information points, each with its
// point id and UN/CEFACT unit code), Status (online or offline, battery,
// reason), Uplink (a LoRaWAN uplink's radio metadata), Position (a robot's
// position), Check (what a robot checked and saw) and Picture (a
// reference to a picture stored elsewhere). Each carries a Header: an
// RFC 3339 time, the asset, and the Source it came from (network server
// and gateway with frame counter and signal, building gateway, robot,
// service or simulator). Validate checks an event in Go; ValidateJSON
// checks a JSON document against the kind's JSON schema (draft 2020-12,
// embedded from schema/), the same rules for programs in any language.
//
// Every event is published at QoS 1; measurements, statuses and positions
// are retained (Retained). NewMessage turns an event into a bus.Message
// with that policy and the CloudEvents attributes as MQTT 5 user
// properties; ReadMessage reads one back. docs/events.md describes the
// format for people, including what a building gateway publishes.
package event
