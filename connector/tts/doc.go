// Package tts reads and writes the messages of The Things Stack v3 MQTT API
// (and so of The Things Network): the application server's upstream
// messages (uplinks, joins, downlink events, solved locations, service
// data), their topics, and the downlink queue requests a client publishes.
//
// The JSON is the protocol buffers JSON mapping of the stack's
// ttn.lorawan.v3 messages with the original snake_case field names, as the
// stack writes it: empty fields are left out (a missing f_port is 0, a
// missing decoded_payload is none), 64-bit integers are strings
// ("frequency": "867500000"), bytes are base64 except identifiers, which are
// upper-case hexadecimal ("dev_eui": "A84041000181C61F"), and durations are
// strings ("consumed_airtime": "0.205824s"). Unknown fields are ignored, so
// newer releases' additions do not break the parser. Field names and types
// follow api/ttn/lorawan/v3/{messages,lorawan,metadata,identifiers}.proto of
// github.com/TheThingsNetwork/lorawan-stack (v3.32); the topics follow
// pkg/applicationserver/io/mqtt/topics/v3.go.
//
// Parse turns a payload into a Message; Decode does the same and checks it
// against its topic. Marshal writes a Message back as the stack would, so
// the simulator can publish uplinks exactly as The Things Stack does.
// MarshalDownlinks writes a down/push or down/replace request.
//
// The package is pure: bytes in, Go values out. Parse reads the messages of
// an uplink with a hand-written reader over the tokens of
// github.com/go-json-experiment/json (the prototype of encoding/json/v2)
// and the rarer kinds through its reflection: the reference uplink parses
// in about 11 µs on the project's shared two-core machine, against 35 to 48
// µs with encoding/json (fast.go says why; docs/benchmarks.md has the
// figures).
package tts
