package alarm_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/alarm"
	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/service"
)

// localBus returns an in-process client of b, closed when the test ends.
func localBus(t *testing.T, b *broker.Broker, id string) *bus.Local {
	t.Helper()
	l, err := bus.NewLocal(b, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestBoard: the board follows the retained alarm topics (not their
// command topics, nor what is not an alarm of its topic), keeps no older
// copy of an alarm it saw closed, answers ErrNotFound for an alarm no
// manager holds (after the managers of every type said so) and ErrTimeout
// when nobody answers.
func TestBoard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := broker.New(broker.Options{SysInterval: -1})
	defer b.Close()
	pub := localBus(t, b, "publisher")
	key := alarm.Key{Site: "campus", Kind: "room", Asset: "r1", Type: "co2-high"}
	orphan := alarm.Key{Site: "campus", Kind: "room", Asset: "r2", Type: "co2-high"}
	put := func(k alarm.Key, a *alarm.Alarm, raw string) {
		t.Helper()
		payload := []byte(raw)
		if a != nil {
			payload, _ = json.Marshal(a)
		}
		if err := pub.Publish(ctx, bus.Message{Topic: k.Topic("alarm"), Payload: payload, QoS: 1, Retain: true}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	// Retained before the board starts: an orphan alarm (no manager holds
	// it) and a message that is not an alarm of its topic.
	put(orphan, &alarm.Alarm{ID: "alarm:campus:room:r2:co2-high:1", Key: orphan, Severity: alarm.Minor, Status: alarm.Active, DateModified: now}, "")
	put(alarm.Key{Site: "campus", Kind: "room", Asset: "r3", Type: "co2-high"}, nil, `{"id": "alarm:campus:room:r1:co2-high:1"}`)

	// A manager of every type, holding nothing of the orphan.
	st := service.NewMemoryStore()
	mb := localBus(t, b, "svc-any")
	m, err := alarm.NewManager(alarm.Options{Bus: mb, State: st.State("any").Sub("alarm"), Originator: "any"})
	if err != nil {
		t.Fatal(err)
	}
	bb := localBus(t, b, "citymesh-alarms")
	board, err := alarm.NewBoard(alarm.BoardOptions{Bus: bb, Timeout: 3 * time.Second,
		TenantOf: func(k alarm.Key) string { return map[string]string{"r1": "t1"}[k.Asset] }})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop()
	wg.Go(func() { m.Run(rctx) })
	wg.Go(func() { board.Run(rctx) })
	<-m.Ready()
	<-board.Ready()

	a, _, err := m.Raise(ctx, alarm.Condition{Key: key, Severity: alarm.Major, Time: now})
	if err != nil {
		t.Fatal(err)
	}
	waitBoard(t, "two alarms", func() bool { return len(board.List(alarm.Filter{})) == 2 })
	list := board.List(alarm.Filter{})
	if list[0].ID != a.ID || list[0].Tenant != "t1" || list[1].Key != orphan || list[1].Tenant != "" {
		t.Fatalf("list: %+v", list)
	}
	if got := board.List(alarm.Filter{Tenant: "t1"}); len(got) != 1 {
		t.Errorf("tenant t1: %d alarms", len(got))
	}

	// Acknowledged, then cleared through the board: closed; an older
	// retained copy arriving late does not bring it back.
	if _, res, err := board.Command(ctx, a.ID, alarm.VerbAck, "anna", ""); err != nil || res != alarm.Acknowledged {
		t.Fatalf("ack: %v %v", res, err)
	}
	closed, res, err := board.Command(ctx, a.ID, alarm.VerbClear, "anna", "")
	if err != nil || res != alarm.ClearedNow || !closed.Closed() {
		t.Fatalf("clear: %v %v %+v", res, err, closed)
	}
	if _, ok := board.Get(a.ID); ok {
		t.Error("the closed alarm is still on the board")
	}
	old := a
	put(key, &old, "")
	// A marker published after it: once the board has it, it has had the
	// older copy (one publisher, one subscriber: in order).
	marker := alarm.Key{Site: "campus", Kind: "room", Asset: "r9", Type: "marker"}
	put(marker, &alarm.Alarm{ID: "alarm:campus:room:r9:marker:1", Key: marker, Severity: alarm.Warning, Status: alarm.Active, DateModified: now}, "")
	waitBoard(t, "the marker", func() bool { _, ok := board.Get("alarm:campus:room:r9:marker:1"); return ok })
	if _, ok := board.Get(a.ID); ok {
		t.Error("an older copy brought the closed alarm back")
	}

	// The orphan: the manager of every type says it holds none.
	if _, _, err := board.Command(ctx, list[1].ID, alarm.VerbAck, "anna", ""); !errors.Is(err, alarm.ErrNotFound) {
		t.Errorf("ack of the orphan with a manager of every type: %v, want ErrNotFound", err)
	}
	stop()
	wg.Wait()
	// Nobody answers.
	rctx, stop = context.WithCancel(ctx)
	defer stop()
	board2, _ := alarm.NewBoard(alarm.BoardOptions{Bus: localBus(t, b, "board-2"), Timeout: 300 * time.Millisecond})
	wg.Go(func() { board2.Run(rctx) })
	<-board2.Ready()
	waitBoard(t, "the orphan", func() bool { _, ok := board2.Get(list[1].ID); return ok })
	if _, _, err := board2.Command(ctx, list[1].ID, alarm.VerbAck, "anna", ""); !errors.Is(err, alarm.ErrTimeout) {
		t.Errorf("ack with no manager: %v, want ErrTimeout", err)
	}
	for _, tc := range []struct{ id, verb, by string }{
		{list[1].ID, "close", "anna"}, {list[1].ID, alarm.VerbAck, ""}, {"alarm:x", alarm.VerbAck, "anna"},
	} {
		if _, _, err := board2.Command(ctx, tc.id, tc.verb, tc.by, ""); err == nil {
			t.Errorf("Command(%q, %q, %q): no error", tc.id, tc.verb, tc.by)
		}
	}
}

func waitBoard(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
