package run

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/citymesh/citymesh/broker"
	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/connector/chirpstack"
	"github.com/citymesh/citymesh/connector/codec"
	"github.com/citymesh/citymesh/connector/tts"
	"github.com/citymesh/citymesh/event"
)

// startServer starts an MQTT server on loopback that stands for the
// network servers: the connectors connect to it over TCP, and the test
// plays the network server on it through an in-process client.
func startServer(t *testing.T) (addr string, b *broker.Broker) {
	t.Helper()
	b = broker.New(broker.Options{SysInterval: -1, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() { b.Serve(ctx, ln); close(served) }()
	t.Cleanup(func() { cancel(); b.Close(); <-served })
	return ln.Addr().String(), b
}

// command publishes a downlink command on the citymesh bus with a
// response topic.
func command(t *testing.T, b *broker.Broker, topic, body, correlation string) {
	t.Helper()
	l, err := bus.NewLocal(b, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Publish(context.Background(), bus.Message{Topic: topic, Payload: []byte(body), QoS: 1,
		ResponseTopic: "replies/app", CorrelationData: []byte(correlation)}); err != nil {
		t.Fatal(err)
	}
}

// results returns the command results with correlation data c.
func results(t *testing.T, ms []bus.Message, c string) []CommandResult {
	var out []CommandResult
	for _, m := range ms {
		if string(m.CorrelationData) != c {
			continue
		}
		var r CommandResult
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func states(rs []CommandResult) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.State)
	}
	return strings.Join(s, ",")
}

func TestDownlinkCommands(t *testing.T) {
	addr, server := startServer(t)
	tr := newTestRuntime(t, func(c *Config) {
		c.TTS[0].URL = "tcp://" + addr
		c.ChirpStack[0].URL = "tcp://" + addr
		c.ReconnectMin = 50 * time.Millisecond
	})
	waitStats(t, tr, func(st Stats) bool { return st.Connected == 2 })
	down := record(t, server, "#")
	replies := record(t, tr.b, "replies/#")
	probe, app := tr.device(t, "soil-probe-01")
	ph, csApp := tr.device(t, "ph-probe-01")
	probeCmd, phCmd := probe.Topic(CommandEvent).String(), ph.Topic(CommandEvent).String()

	// The Things Stack: a confirmed downlink of bytes.
	command(t, tr.b, probeCmd, `{"id":"cmd-1","f_port":2,"payload":"AQAEsA==","confirmed":true,"priority":"high"}`, "c1")
	pushTopic, _ := tts.DownlinkTopic(app.ApplicationID, app.TenantID, probe.NetworkID, false)
	ms := down.waitFor("the down/push", func(ms []bus.Message) bool { return len(onTopic(ms, pushTopic)) == 1 })
	dls, err := tts.ParseDownlinks(onTopic(ms, pushTopic)[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	dl := dls[0]
	if dl.FPort != 2 || string(dl.FRMPayload) != "\x01\x00\x04\xb0" || !dl.Confirmed || dl.Priority != "HIGH" || len(dl.CorrelationIDs) != 1 {
		t.Fatalf("downlink %+v", dl)
	}
	rs := results(t, replies.waitFor("queued", func(ms []bus.Message) bool { return len(results(t, ms, "c1")) == 1 }), "c1")
	if r := rs[0]; r.State != "queued" || r.ID != "cmd-1" || r.Device != "soil-probe-01" || r.FPort != 2 {
		t.Errorf("result %+v", r)
	}
	// The stack reports it sent, then acknowledged.
	eui := tr.byID["soil-probe-01"].eui
	for _, ev := range []tts.Event{tts.EventDownSent, tts.EventDownAck} {
		m := &tts.Message{EndDeviceIDs: tts.EndDeviceIdentifiers{DeviceID: probe.NetworkID,
			ApplicationIDs: tts.ApplicationIdentifiers{ApplicationID: app.ApplicationID}, DevEUI: eui},
			CorrelationIDs: []string{"as:downlink:01ABC"}}
		copyDL := dl
		if ev == tts.EventDownSent {
			m.DownlinkSent = &copyDL
		} else {
			m.DownlinkAck = &copyDL
		}
		body, err := tts.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		publishOn(t, server, m.Topic(app.TenantID).String(), body)
	}

	rs = results(t, replies.waitFor("sent and acknowledged", func(ms []bus.Message) bool { return len(results(t, ms, "c1")) == 3 }), "c1")
	if states(rs) != "queued,sent,acknowledged" {
		t.Errorf("results %s", states(rs))
	}

	// ChirpStack: data encoded by the device type's codec.
	command(t, tr.b, phCmd, `{"id":"cmd-2","data":{"interval":1200}}`, "c2")
	cmdTopic, _ := chirpstack.CommandTopic(csApp.ApplicationID, tr.byID["ph-probe-01"].eui)
	ms = down.waitFor("the command/down", func(ms []bus.Message) bool { return len(onTopic(ms, cmdTopic)) == 1 })
	cmd, err := chirpstack.ParseDownlink(onTopic(ms, cmdTopic)[0].Payload)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.FPort != 2 || string(cmd.Data) != "\x01\x00\x04\xb0" || cmd.ID == "" || cmd.Confirmed {
		t.Fatalf("command %+v", cmd)
	}
	txack := &chirpstack.Event{TxAck: &chirpstack.TxAckEvent{Time: time.Now(), DeviceInfo: devInfo(tr, "ph-probe-01"), QueueItemID: cmd.ID, GatewayID: "a84041ffff24a438"}}
	topic, body := csEvent(t, tr, "ph-probe-01", chirpstack.EventTxAck, txack)
	publishOn(t, server, topic, body)

	rs = results(t, replies.waitFor("sent", func(ms []bus.Message) bool { return len(results(t, ms, "c2")) == 2 }), "c2")
	if states(rs) != "queued,sent" || rs[0].FPort != 2 || string(rs[0].Payload) != "\x01\x00\x04\xb0" {
		t.Errorf("results %+v", rs)
	}

	// Refusals.
	for i, tc := range []struct{ topic, body, detail string }{
		{probeCmd, `not json`, "command"},
		{probeCmd, `{"f_port":2,"payload":"AQ==","data":{"interval":1}}`, "not both"},
		{probeCmd, `{"payload":"AQ=="}`, "f_port 0"},
		{probeCmd, `{"f_port":2}`, "is required"},
		{probeCmd, `{"f_port":2,"payload":"AQ==","priority":"urgent"}`, "priority"},
		{probeCmd, `{"f_port":2,"payload":"AQ==","colour":"red"}`, "unknown field"},
		{probeCmd, `{"data":{"interval":-5}}`, "interval"},
		{phCmd, `{"f_port":2,"payload":"AQ==","replace":true}`, "replace"},
		{"vineyard/campus/device/soil-probe-01/command", `{"f_port":2,"payload":"AQ=="}`, "command topic is"},
	} {
		c := "r" + string(rune('a'+i))
		command(t, tr.b, tc.topic, tc.body, c)
		rs := results(t, replies.waitFor("refused "+tc.body, func(ms []bus.Message) bool { return len(results(t, ms, c)) == 1 }), c)
		if rs[0].State != "refused" || !strings.Contains(rs[0].Detail, tc.detail) {
			t.Errorf("%s: %+v, want refused with %q", tc.body, rs[0], tc.detail)
		}
	}
	// A command for a device no connector serves gets no answer: by the
	// time the next command is answered (commands are handled in order),
	// it would have been.
	command(t, tr.b, "building/campus/device/nobody/command", `{"f_port":2,"payload":"AQ=="}`, "zz")
	command(t, tr.b, probeCmd, `not json`, "after")
	ms = replies.waitFor("the answer after the stranger's", func(ms []bus.Message) bool { return len(results(t, ms, "after")) == 1 })
	if rs := results(t, ms, "zz"); len(rs) != 0 {
		t.Errorf("a stranger's command answered: %+v", rs)
	}
	var queued, refused uint64
	for _, u := range tr.ups {
		queued += u.stats.downlinks[resultQueued].Load()
		refused += u.stats.downlinks[resultRefused].Load()
	}
	if queued != 2 || refused != 10 {
		t.Errorf("downlinks queued %d, refused %d; want 2 and 10", queued, refused)
	}
}

// publishOn publishes a network server's message on the stand-in server.
func publishOn(t *testing.T, b *broker.Broker, topic string, body []byte) {
	t.Helper()
	l, err := bus.NewLocal(b, "")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Publish(context.Background(), bus.Message{Topic: topic, Payload: body}); err != nil {
		t.Fatal(err)
	}
}

func devInfo(tr *testRuntime, id string) chirpstack.DeviceInfo {
	d := tr.byID[id]
	return chirpstack.DeviceInfo{ApplicationID: d.up.app.ApplicationID, TenantID: d.up.app.TenantID, DeviceName: d.dev.NetworkID, DevEUI: chirpstack.EUI64(d.eui)}
}

func csEvent(t *testing.T, tr *testRuntime, id string, typ chirpstack.EventType, ev *chirpstack.Event) (string, []byte) {
	t.Helper()
	d := tr.byID[id]
	body, err := chirpstack.MarshalEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	return chirpstack.Topic{ApplicationID: d.up.app.ApplicationID, DevEUI: d.eui, Event: typ}.String(), body
}

// TestChirpStackStatus: ChirpStack's status event (the device's answer to
// a status request) becomes the device's status, with its battery where
// the battery point is a percentage; a join forgets the old session.
func TestChirpStackStatus(t *testing.T) {
	tr := newTestRuntime(t, nil)
	rec := record(t, tr.b, "+/+/device/+/status")
	ev := &chirpstack.Event{Status: &chirpstack.StatusEvent{Time: tr.clock.Now(), DeviceInfo: devInfo(tr, "npk-probe-01"), Margin: 7, BatteryLevel: 87}}
	topic, body := csEvent(t, tr, "npk-probe-01", chirpstack.EventStatus, ev)
	tr.deliver(t, "soil-twin", topic, body)
	join := &chirpstack.Event{Join: &chirpstack.JoinEvent{Time: tr.clock.Now(), DeviceInfo: devInfo(tr, "ph-probe-01")}}
	topic, body = csEvent(t, tr, "ph-probe-01", chirpstack.EventJoin, join)
	tr.deliver(t, "soil-twin", topic, body)
	// Statuses of small battery changes add nothing; a drop of 5 points
	// or more does.
	for _, level := range []float32{85, 83, 81} {
		ev.Status.BatteryLevel = level
		topic, body := csEvent(t, tr, "npk-probe-01", chirpstack.EventStatus, ev)
		tr.deliver(t, "soil-twin", topic, body)
	}
	ms := rec.waitFor("three statuses", func(ms []bus.Message) bool { return len(ms) == 3 })
	npk := statuses(t, ms, tr.byID["npk-probe-01"].status)
	if len(npk) != 2 || npk[0].State != event.Online || npk[0].Reason != reasonDeviceStatus || npk[0].Detail != "battery 87 %, link margin 7 dB" ||
		npk[0].Source.NetworkServer != "chirpstack" || npk[0].Battery != nil || npk[1].Detail != "battery 81 %, link margin 7 dB" {
		t.Errorf("npk statuses %+v", npk)
	}
	ph := statuses(t, ms, tr.byID["ph-probe-01"].status)
	if len(ph) != 1 || ph[0].Reason != event.ReasonJoin {
		t.Errorf("ph status %+v", ph)
	}
}

// TestDraginoIntervalDownlink: the Dragino codecs encode the transmit
// interval command and read it back, and refuse what is not an interval.
func TestDraginoIntervalDownlink(t *testing.T) {
	reg, err := codec.LoadDir(codecDir, codec.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	for _, id := range []string{"dragino-lse01", "dragino-lsph01", "dragino-lsnpk01", "dragino-llms01"} {
		c, ok := reg.Get(id)
		if !ok {
			t.Fatalf("no codec %s", id)
		}
		ctx := context.Background()
		out, err := c.EncodeDownlink(ctx, codec.DownlinkInput{Data: map[string]any{"interval": 1200.0}})
		if err != nil || string(out.Bytes) != "\x01\x00\x04\xb0" || out.FPort != 2 {
			t.Errorf("%s: %x on %d, %v; want 01 00 04 B0 on 2", id, out.Bytes, out.FPort, err)
		}
		back, err := c.DecodeDownlink(ctx, codec.DownlinkBytes{Bytes: []byte{1, 0, 0, 60}, FPort: 2})
		if err != nil || back.Data["interval"] != 60.0 {
			t.Errorf("%s: decoded %v, %v", id, back, err)
		}
		for _, bad := range []any{0.0, 1.5, -3.0, 16777216.0, "20m"} {
			if _, err := c.EncodeDownlink(ctx, codec.DownlinkInput{Data: map[string]any{"interval": bad}}); err == nil {
				t.Errorf("%s: interval %v accepted", id, bad)
			}
		}
	}
}
