package store

import (
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
)

// FuzzRecordDecode feeds arbitrary record bodies to every value decoder: none may
// panic, and whatever decodes must encode back to a value that decodes the
// same. The fuzzer gives the body and the test seals it with its checksum,
// so that mutations reach the decoders behind the checksum (which is tested
// on its own in TestCorruptRecordsReported).
func FuzzRecordDecode(f *testing.F) {
	var b Batch
	props := &mqtt.Properties{ContentType: "c", CorrelationData: []byte{9}, User: []mqtt.UserProperty{{Key: "k", Value: "v"}}}
	b.PutEntry("c", &Entry{Seq: 1, Message: Message{Topic: "a/b", Payload: []byte("p"), QoS: 2, Props: props, Expires: time.Unix(5, 0)}, SubIDs: []uint32{1}, Share: "$share/g/a/#", Retain: true})
	b.PutEntry("c", &Entry{Seq: 2, Released: true})
	b.PutRetained(&Message{Topic: "r", Payload: []byte("x"), QoS: 1})
	b.PutWill(&Will{ClientID: "c", Message: Message{Topic: "w", Payload: []byte("bye")}, Delay: 5, At: time.Unix(9, 0)})
	b.PutSession(&Session{ClientID: "c", Expiry: 9, Subscriptions: []Subscription{{Subscription: mqtt.Subscription{Filter: "#", QoS: 1}, ID: 3}}})
	b.Each(func(_ Op, _, v []byte) error { f.Add(v[:len(v)-4]); return nil })
	f.Add([]byte{})
	f.Add([]byte{flagReleased, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		v := sealValue(append([]byte(nil), body...), 0)
		if e, err := decodeEntry(1, v); err == nil {
			out, err := encodeEntry(nil, &e)
			if err != nil {
				t.Fatalf("decoded entry does not encode: %v", err)
			}
			e2, err := decodeEntry(1, out)
			if err != nil || e2.Message.Topic != e.Message.Topic || string(e2.Message.Payload) != string(e.Message.Payload) || e2.Released != e.Released || e2.Share != e.Share {
				t.Fatalf("entry changed in a round trip: %+v → %+v (%v)", e, e2, err)
			}
		}
		if m, err := decodeRetained(v); err == nil {
			if _, err := encodeRetained(nil, &m); err != nil {
				t.Fatalf("decoded retained message does not encode: %v", err)
			}
		}
		if w, err := decodeWill("c", v); err == nil {
			if _, err := encodeWill(nil, &w); err != nil {
				t.Fatalf("decoded will does not encode: %v", err)
			}
		}
		decodeSession(v)
	})
}
