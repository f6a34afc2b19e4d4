package live_test

import (
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/energy/live"
	"github.com/citymesh/citymesh/sim"
)

// TestParseExchangeDetail reads what the simulator writes and refuses
// details that are not exchange records.
func TestParseExchangeDetail(t *testing.T) {
	at := time.Date(2026, 5, 12, 9, 40, 0, 0, berlin)
	d := sim.ExchangeDetail("el-b01-main", at, []string{"1-0:1.8.0 old_final=13338.77 new_start=0", "1-0:2.8.0 old_final=60211.5 new_start=1.25"})
	meter, got, recs, err := live.ParseExchangeDetail(d)
	if err != nil || meter != "el-b01-main" || !got.Equal(at) || len(recs) != 2 ||
		recs[0] != (live.ExchangeRecord{OBIS: "1-0:1.8.0", OldFinal: 13338.77, NewStart: 0}) ||
		recs[1] != (live.ExchangeRecord{OBIS: "1-0:2.8.0", OldFinal: 60211.5, NewStart: 1.25}) {
		t.Fatalf("%q: %s %v %+v %v", d, meter, got, recs, err)
	}
	for _, bad := range []string{
		"",
		"connected",
		"meter  exchanged at 2026-05-12T09:40:00+02:00: 1-0:1.8.0 old_final=1 new_start=0",
		"meter m exchanged at yesterday: 1-0:1.8.0 old_final=1 new_start=0",
		"meter m exchanged at 2026-05-12T09:40:00+02:00",
		"meter m exchanged at 2026-05-12T09:40:00+02:00: 1-0:1.8.0 old_final=1",
		"meter m exchanged at 2026-05-12T09:40:00+02:00: 1-0:1.8.0 old_final=x new_start=0",
		"meter m exchanged at 2026-05-12T09:40:00+02:00: 1-0:1.8.0 old_final=NaN new_start=0",
		"meter m exchanged at 2026-05-12T09:40:00+02:00: 1-0:1.8.0 old_final=1 new_start=-2",
		"meter m exchanged at 2026-05-12T09:40:00+02:00: 1-0:1.8.0 new_start=0 old_final=1",
	} {
		if _, _, _, err := live.ParseExchangeDetail(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestBadEventsAreCountedAndSkipped: a payload that is not an event, a
// value whose OBIS code does not parse and an exchange record that does
// not parse are counted as errors; the readings around them are billed as
// if they had not come.
func TestBadEventsAreCountedAndSkipped(t *testing.T) {
	m := loadCampus(t, "../../examples/campus/small/campus.yaml")
	sites, err := live.SitesFromCampus(m)
	if err != nil {
		t.Fatal(err)
	}
	tf := loadTariff(t)
	from := time.Date(2026, 5, 1, 0, 0, 0, 0, berlin)
	until := from.Add(6 * time.Hour)
	msgs := simulate(t, m, from, until)
	want := batchInvoices(t, msgs, sites["campus"], tf, from, from.AddDate(0, 1, 0))
	b, _ := startBroker(t)
	ls := newLive(t, b, live.Config{Sites: sites, Tariffs: &tf, Debounce: 5 * time.Millisecond}, until)
	bad := []bus.Message{
		{Topic: "energy/campus/meter/el-b01-main/reading", Payload: []byte("not json"), QoS: 1},
		{Topic: "energy/campus/meter/el-b01-main/reading", QoS: 1, Payload: []byte(`{"time":"2026-05-01T03:00:00+02:00","asset":"el-b01-main","source":{"type":"building","gateway":"bms-b01"},"values":[{"point":"el-b01-main/1.8","value":5,"unit":"KWH"}]}`)},
		{Topic: "building/campus/gateway/bms-b01/status", QoS: 1, Payload: []byte(`{"time":"2026-05-01T03:00:00+02:00","asset":"bms-b01","source":{"type":"building","gateway":"bms-b01"},"state":"online","reason":"meter_exchange","detail":"meter el-b01-main swapped"}`)},
		{Topic: "energy/campus/meter/no-such-meter/reading", QoS: 1, Payload: []byte(`{"time":"2026-05-01T03:00:00+02:00","asset":"no-such-meter","source":{"type":"building","gateway":"bms-b01"},"values":[{"point":"no-such-meter/1-0:1.8.0","value":5,"unit":"KWH","obis":"1-0:1.8.0"}]}`)},
	}
	half := len(msgs) / 2
	publishAll(t, b, "gw", append(append(append([]bus.Message(nil), msgs[:half]...), bad...), msgs[half:]...))
	ls.waitInvoices("2026-05", want, 10*time.Second)
	if h := ls.env.Health(); h.Errors != 3 {
		t.Errorf("%d errors counted (last %q), want 3", h.Errors, h.LastError)
	}
}
