// Package storetest is a conformance suite for store.Store over any
// store.Engine: every engine runs the same round trips of every kind of
// record.
package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/citymesh/citymesh/mqtt"
	"github.com/citymesh/citymesh/store"
)

// neverExpire is the Session Expiry Interval that means never.
const neverExpire = 0xFFFFFFFF

// Run runs the suite; open returns a fresh, empty store for each test.
func Run(t *testing.T, open func(t *testing.T) *store.Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, *store.Store)
	}{
		{"SessionsRoundTrip", testSessionsRoundTrip},
		{"QueueAndInbound", testQueueAndInbound},
		{"DeleteSessionTakesQueueNotWill", testDeleteSessionTakesQueueNotWill},
		{"OrphansCounted", testOrphansCounted},
		{"Retained", testRetained},
		{"LinkSeq", testLinkSeq},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func apply(t *testing.T, st *store.Store, fill func(b *store.Batch) error) {
	t.Helper()
	var b store.Batch
	if err := fill(&b); err != nil {
		t.Fatal(err)
	}
	if err := st.Apply(&b, true); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, st *store.Store) *store.Snapshot {
	t.Helper()
	snap, err := st.Load()
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return snap
}

func sessionOf(snap *store.Snapshot, id string) *store.StoredSession {
	for i := range snap.Sessions {
		if snap.Sessions[i].ClientID == id {
			return &snap.Sessions[i]
		}
	}
	return nil
}

func testSessionsRoundTrip(t *testing.T, st *store.Store) {
	{
		{
			left := time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC)
			subs := []store.Subscription{{Subscription: mqtt.Subscription{Filter: "vineyard/+/device/#", QoS: 2, NoLocal: true, RetainHandling: 1}, ID: 7}}
			apply(t, st, func(b *store.Batch) error {
				if err := b.PutSession(&store.Session{ClientID: "gw-7", Expiry: 3600, Subscriptions: subs, DisconnectedAt: left}); err != nil {
					return err
				}
				b.PutSession(&store.Session{ClientID: "c2", Expiry: 10})
				return b.PutSession(&store.Session{ClientID: "c2", Expiry: 20}) // replaces
			})
			snap := load(t, st)
			if len(snap.Sessions) != 2 {
				t.Fatalf("%d sessions, want 2", len(snap.Sessions))
			}
			gw := sessionOf(snap, "gw-7")
			if gw == nil || gw.Expiry != 3600 || !gw.DisconnectedAt.Equal(left) || !slices.Equal(gw.Subscriptions, subs) {
				t.Fatalf("gw-7 read back as %+v", gw)
			}
			if c2 := sessionOf(snap, "c2"); c2 == nil || c2.Expiry != 20 {
				t.Fatalf("c2 read back as %+v, want the replacement's expiry 20", c2)
			}
		}
	}
}

func testQueueAndInbound(t *testing.T, st *store.Store) {
	props := &mqtt.Properties{ContentType: "application/json", ResponseTopic: "r/1", CorrelationData: []byte{1, 2},
		User: []mqtt.UserProperty{{Key: "site", Value: "heilbronn"}}, MessageExpiry: 60}
	props.Set(mqtt.PropMessageExpiry)
	exp := time.Unix(0, 1798761600123456789)
	queued := time.Unix(0, 1798761000987654321)
	{
		{
			apply(t, st, func(b *store.Batch) error {
				b.PutSession(&store.Session{ClientID: "sub", Expiry: neverExpire})
				for seq := uint64(1); seq <= 5; seq++ {
					e := &store.Entry{Seq: seq, Message: store.Message{Topic: "energy/b1/meter/el-1/reading", Payload: []byte{byte(seq)}, QoS: 1}}
					if seq == 2 {
						e.Message = store.Message{Topic: "t/2", Payload: []byte("x"), QoS: 2, Props: props, Expires: exp}
						e.Retain, e.SubIDs, e.Share, e.Queued = true, []uint32{3, 9}, "$share/g/t/#", queued
					}
					if err := b.PutEntry("sub", e); err != nil {
						return err
					}
				}
				b.PutInbound("sub", 17)
				b.PutInbound("sub", 65535)
				return nil
			})
			snap := load(t, st)
			s := sessionOf(snap, "sub")
			if s == nil {
				t.Fatal("session missing")
			}
			if s.Queue.Count != 5 || s.Queue.First != 1 || s.Queue.Last != 5 || s.Queue.Bytes == 0 {
				t.Fatalf("queue summary %+v", s.Queue)
			}
			if !slices.Equal(s.Inbound, []uint16{17, 65535}) {
				t.Fatalf("inbound %v", s.Inbound)
			}
			got, next, err := st.Queue(nil, "sub", 2, 2)
			if err != nil || next != 4 || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 {
				t.Fatalf("page from 2: %+v next %d err %v", got, next, err)
			}
			e := got[0]
			if e.Message.Topic != "t/2" || string(e.Message.Payload) != "x" || e.Message.QoS != 2 || !e.Retain || e.Share != "$share/g/t/#" ||
				!slices.Equal(e.SubIDs, []uint32{3, 9}) || !e.Message.Expires.Equal(exp) || !e.Queued.Equal(queued) {
				t.Fatalf("entry 2 read back as %+v", e)
			}
			p := e.Message.Props
			if p == nil || p.ContentType != "application/json" || p.ResponseTopic != "r/1" || string(p.CorrelationData) != "\x01\x02" ||
				len(p.User) != 1 || p.User[0].Value != "heilbronn" || !p.Has(mqtt.PropMessageExpiry) || p.MessageExpiry != 60 || len(p.SubscriptionIDs) != 0 {
				t.Fatalf("entry 2 properties %+v", p)
			}
			if got[1].Message.Props != nil || !got[1].Queued.IsZero() {
				t.Fatalf("entry without properties or queue time read back with %+v, queued %v", got[1].Message.Props, got[1].Queued)
			}
			// Released replaces the entry, and the PUBLISH goes.
			apply(t, st, func(b *store.Batch) error {
				b.DeleteEntry("sub", 1)
				return b.PutEntry("sub", &store.Entry{Seq: 2, Released: true, Share: "$share/g/t/#", Queued: queued})
			})
			got, next, err = st.Queue(nil, "sub", 0, 100)
			if err != nil || next != 6 || len(got) != 4 || got[0].Seq != 2 || !got[0].Released || got[0].Message.Topic != "" || !got[0].Queued.Equal(queued) {
				t.Fatalf("after release: %+v next %d err %v", got, next, err)
			}
			// The end of the queue.
			if got, next, err := st.Queue(nil, "sub", 6, 10); err != nil || len(got) != 0 || next != 6 {
				t.Fatalf("past the end: %+v %d %v", got, next, err)
			}
		}
	}
}

func testDeleteSessionTakesQueueNotWill(t *testing.T, st *store.Store) {
	{
		{
			apply(t, st, func(b *store.Batch) error {
				for _, id := range []string{"a", "ab", "b"} { // "a" must not take "ab" with it
					b.PutSession(&store.Session{ClientID: id, Expiry: 60})
					b.PutEntry(id, &store.Entry{Seq: 1, Message: store.Message{Topic: "t", Payload: []byte(id), QoS: 1}})
					b.PutInbound(id, 1)
				}
				return b.PutWill(&store.Will{ClientID: "a", Message: store.Message{Topic: "status/a", Payload: []byte("offline"), QoS: 1}, Retain: true, Delay: 30})
			})
			apply(t, st, func(b *store.Batch) error { b.DeleteSession("a"); return nil })
			snap := load(t, st)
			if sessionOf(snap, "a") != nil || len(snap.Sessions) != 2 {
				t.Fatalf("sessions after delete: %+v", snap.Sessions)
			}
			for _, id := range []string{"ab", "b"} {
				if s := sessionOf(snap, id); s.Queue.Count != 1 || len(s.Inbound) != 1 {
					t.Fatalf("%s lost state with a's: %+v", id, s)
				}
			}
			if snap.Orphans != 0 {
				t.Fatalf("%d orphans", snap.Orphans)
			}
			if len(snap.Wills) != 1 || snap.Wills[0].ClientID != "a" || !snap.Wills[0].Retain || snap.Wills[0].Delay != 30 ||
				string(snap.Wills[0].Message.Payload) != "offline" || !snap.Wills[0].At.IsZero() {
				t.Fatalf("wills %+v", snap.Wills)
			}
			due := time.Unix(1798761600, 0)
			apply(t, st, func(b *store.Batch) error {
				return b.PutWill(&store.Will{ClientID: "a", Message: store.Message{Topic: "status/a", Payload: []byte("gone")}, At: due})
			})
			if w := load(t, st).Wills; len(w) != 1 || !w[0].At.Equal(due) || string(w[0].Message.Payload) != "gone" {
				t.Fatalf("replaced will %+v", w)
			}
			apply(t, st, func(b *store.Batch) error {
				b.DeleteWill("a")
				b.DeleteInbound("b", 1)
				b.DeleteEntry("b", 1)
				return nil
			})
			snap = load(t, st)
			if len(snap.Wills) != 0 || sessionOf(snap, "b").Queue.Count != 0 || len(sessionOf(snap, "b").Inbound) != 0 {
				t.Fatalf("after deletes: %+v", snap)
			}
		}
	}
}

func testLinkSeq(t *testing.T, st *store.Store) {
	apply(t, st, func(b *store.Batch) error {
		b.PutSession(&store.Session{ClientID: "$mesh/core", Expiry: 0xFFFFFFFF, Link: "edge"})
		b.PutSession(&store.Session{ClientID: "$mesh/core-2", Expiry: 0xFFFFFFFF, Link: "core"})
		b.PutLinkSeq("$mesh/core", 41)
		b.PutLinkSeq("$mesh/core", 42) // the last one counts
		b.PutLinkSeq("$mesh/core-2", 1<<40)
		return nil
	})
	snap := load(t, st)
	if a, b := sessionOf(snap, "$mesh/core"), sessionOf(snap, "$mesh/core-2"); a.LinkSeq != 42 || b.LinkSeq != 1<<40 {
		t.Fatalf("link sequences %d and %d, want 42 and %d", a.LinkSeq, b.LinkSeq, uint64(1)<<40)
	}
	apply(t, st, func(b *store.Batch) error { b.DeleteSession("$mesh/core"); return nil })
	snap = load(t, st)
	if sessionOf(snap, "$mesh/core") != nil || snap.Orphans != 0 || sessionOf(snap, "$mesh/core-2").LinkSeq != 1<<40 {
		t.Fatalf("after deleting one link's session: %+v (orphans %d)", snap.Sessions, snap.Orphans)
	}
}

func testOrphansCounted(t *testing.T, st *store.Store) {
	{
		{
			apply(t, st, func(b *store.Batch) error {
				b.PutInbound("ghost", 3)
				return b.PutEntry("ghost", &store.Entry{Seq: 9, Message: store.Message{Topic: "t", QoS: 1}})
			})
			if snap := load(t, st); snap.Orphans != 2 || len(snap.Sessions) != 0 {
				t.Fatalf("orphans %d sessions %d, want 2 and 0", snap.Orphans, len(snap.Sessions))
			}
		}
	}
}

func testRetained(t *testing.T, st *store.Store) {
	{
		{
			p := []byte("v1")
			apply(t, st, func(b *store.Batch) error {
				b.PutRetained(&store.Message{Topic: "t/1", Payload: p, QoS: 1})
				p[0] = 'X' // the batch holds its own copy
				b.PutRetained(&store.Message{Topic: "t/2", Payload: []byte("other")})
				return b.PutRetained(&store.Message{Topic: "t/2", Payload: []byte("v2"), Props: &mqtt.Properties{PayloadFormat: 1}})
			})
			byTopic := map[string]store.Message{}
			for _, r := range load(t, st).Retained {
				byTopic[r.Topic] = r
			}
			if string(byTopic["t/1"].Payload) != "v1" || byTopic["t/1"].QoS != 1 || string(byTopic["t/2"].Payload) != "v2" ||
				byTopic["t/2"].Props.PayloadFormat != 1 || len(byTopic) != 2 {
				t.Fatalf("retained %+v", byTopic)
			}
			apply(t, st, func(b *store.Batch) error { b.DeleteRetained("t/1"); return nil })
			if got := load(t, st).Retained; len(got) != 1 {
				t.Fatalf("after delete: %d retained", len(got))
			}
		}
	}
}
