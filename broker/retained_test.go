package broker

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestRetainedStoreMatch(t *testing.T) {
	var r retainedStore
	r.init()
	topics := []string{"sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2",
		"sport", "sport/", "/finance", "$SYS/broker/uptime", "$SYS/x", "a/b/c"}
	for _, tp := range topics {
		r.set(&Message{Topic: tp, Payload: []byte(tp)})
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"sport/tennis/player1/#", []string{"sport/tennis/player1", "sport/tennis/player1/ranking"}},
		{"sport/#", []string{"sport", "sport/", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2"}},
		{"sport/+", []string{"sport/"}},
		{"sport/tennis/+", []string{"sport/tennis/player1", "sport/tennis/player2"}},
		{"+", []string{"sport"}},
		{"+/+", []string{"/finance", "sport/"}},
		{"/+", []string{"/finance"}},
		{"#", []string{"/finance", "a/b/c", "sport", "sport/", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player2"}},
		{"$SYS/#", []string{"$SYS/broker/uptime", "$SYS/x"}},
		{"+/broker/uptime", nil},
		{"$SYS/+", []string{"$SYS/x"}},
		{"a/+/c", []string{"a/b/c"}},
		{"a/b/c/#", []string{"a/b/c"}},
		{"nothing/#", nil},
	}
	for _, tc := range tests {
		t.Run(tc.filter, func(t *testing.T) {
			var got []string
			r.match(tc.filter, func(m *Message) { got = append(got, m.Topic) })
			slices.Sort(got)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("match(%q) = %q, want %q", tc.filter, got, tc.want)
			}
		})
	}
}

func TestRetainedStoreEmptyPayloadDeletesAndPrunes(t *testing.T) {
	var r retainedStore
	r.init()
	r.set(&Message{Topic: "a/b/c", Payload: []byte("1")})
	r.set(&Message{Topic: "a/b", Payload: []byte("2")})
	r.set(&Message{Topic: "a/b/c", Payload: []byte("3")}) // replaces
	if r.len() != 2 {
		t.Fatalf("len = %d, want 2", r.len())
	}
	var got []string
	r.match("a/b/c", func(m *Message) { got = append(got, string(m.Payload)) })
	if fmt.Sprint(got) != "[3]" {
		t.Fatalf("replaced retained message: got %v", got)
	}
	r.set(&Message{Topic: "a/b/c"}) // empty payload deletes [MQTT-3.3.1-6]
	r.set(&Message{Topic: "a/b"})
	r.set(&Message{Topic: "never/was"})
	if r.len() != 0 {
		t.Fatalf("len = %d after deletes, want 0", r.len())
	}
	if len(r.root.children) != 0 {
		t.Fatalf("empty nodes left behind: %v", r.root.children)
	}
}

func TestQueueOrderGrowShrink(t *testing.T) {
	var q queue
	m := &Message{Payload: []byte("xx")}
	for i := range 1000 {
		q.push(delivery{msg: m, seq: uint64(i)}, 0)
	}
	if q.Len() != 1000 || q.bytes != 2000 {
		t.Fatalf("len %d bytes %d", q.Len(), q.bytes)
	}
	for i := range 1000 {
		if d := q.pop(); d.seq != uint64(i) {
			t.Fatalf("pop %d: got seq %d", i, d.seq)
		}
	}
	if q.Len() != 0 || q.bytes != 0 {
		t.Fatalf("queue not empty: len %d bytes %d", q.Len(), q.bytes)
	}
	q.trim(int64(time.Second) - 1)
	if q.buf == nil {
		t.Fatal("trimmed a buffer that grew less than a second ago")
	}
	q.trim(int64(2 * time.Second))
	if q.buf != nil {
		t.Fatal("an idle empty queue kept its large buffer")
	}
}
