package demo_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/demo"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/node"
	"github.com/citymesh/citymesh/sim"
	"github.com/citymesh/citymesh/twin"
)

// dayCollector keeps, independently of the twin, every value the city
// events on the bus carry: each point's samples (the first of a
// millisecond, as the history keeps) and its last value, text or position
// (the newest by observed time; at the same time the later one).
type dayCollector struct {
	mu      sync.Mutex
	samples map[string]map[int64]float64
	last    map[string]lastValue
	events  int
	bad     []string
}

type lastValue struct {
	at       time.Time
	value    *float64
	text     string
	lon, lat float64
	pos      bool
}

func (c *dayCollector) handle(_ context.Context, m bus.Message) {
	_, e, err := event.ReadMessage(m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad = append(c.bad, m.Topic+": "+err.Error())
		return
	}
	c.events++
	h := e.Head()
	num := func(point string, at time.Time, v float64) {
		s := c.samples[point]
		if s == nil {
			s = map[int64]float64{}
			c.samples[point] = s
		}
		if _, dup := s[at.UnixMilli()]; !dup {
			s[at.UnixMilli()] = v
		}
		c.set(point, lastValue{at: at, value: &v})
	}
	val := func(v *event.Value) {
		at := h.Time
		if v.Time != nil {
			at = *v.Time
		}
		num(v.Point, at, v.Value)
	}
	switch e := e.(type) {
	case *event.Measurement:
		for i := range e.Values {
			val(&e.Values[i])
		}
	case *event.Status:
		if e.Battery != nil {
			val(e.Battery)
		}
	case *event.Position:
		c.set(e.Point, lastValue{at: h.Time, lon: e.Lon, lat: e.Lat, pos: true})
		if e.Battery != nil {
			val(e.Battery)
		}
	case *event.Check:
		switch e.Observed {
		case "up", "clear", "on":
			num(e.Point, h.Time, 1)
		case "down", "blocked", "off":
			num(e.Point, h.Time, 0)
		default:
			var f float64
			if _, err := fmt.Sscan(e.Observed, &f); err == nil && !strings.ContainsAny(e.Observed, "xXpP_") {
				num(e.Point, h.Time, f)
			}
		}
		lv := c.last[e.Point]
		if !h.Time.Before(lv.at) {
			lv.text = e.Observed
			c.last[e.Point] = lv
		}
	}
}

// set makes v the point's last value unless it is older. c.mu is held.
func (c *dayCollector) set(point string, v lastValue) {
	if prev, ok := c.last[point]; ok && v.at.Before(prev.at) {
		return
	}
	c.last[point] = v
}

// bucket is the aggregates of one window, computed from the collected
// samples.
type bucket struct {
	count              int
	sum, min, max, lst float64
	lastT              int64
}

func (c *dayCollector) aggregates(point string, from time.Time, step time.Duration) map[int64]*bucket {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int64]*bucket{}
	for t, v := range c.samples[point] {
		k := from.UnixMilli() + (t-from.UnixMilli())/step.Milliseconds()*step.Milliseconds()
		b := out[k]
		if b == nil {
			b = &bucket{min: v, max: v, lst: v, lastT: t}
			out[k] = b
		}
		b.count++
		b.sum += v
		b.min, b.max = min(b.min, v), max(b.max, v)
		if t >= b.lastT {
			b.lst, b.lastT = v, t
		}
	}
	return out
}

func postJSON(t *testing.T, url string, body any, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %s %v", url, resp.StatusCode, raw, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatal(err)
	}
}

// TestSimulatedDay runs the small campus for a simulated day as fast as
// the machine goes, through the real path (the simulator publishing over
// MQTT to the node and to the network servers' endpoint, the connectors,
// the twin, its history), with a second subscriber on the node's bus
// keeping every value on its own. Then (a) the twin's state equals that
// subscriber's last value of every point, and no other point has one;
// (b) the 15-minute and hourly avg, min, max, sum, count and last of every
// point, from the history route, equal those computed from the
// subscriber's samples; (c) geometric queries with polygons drawn by hand
// around parts of the plot and the building select exactly the assets
// listed by hand from the campus file.
func TestSimulatedDay(t *testing.T) {
	if testing.Short() {
		t.Skip("a simulated day: not in -short")
	}
	opts := options(t)
	opts.Store, opts.WS = "memory", "off"
	opts.Clock = sim.NewVirtualClock(start)
	opts.Until = start.Add(24 * time.Hour)
	d, err := demo.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	col := &dayCollector{samples: map[string]map[int64]float64{}, last: map[string]lastValue{}}
	cb, err := bus.NewLocal(d.Node().Broker(), "day-collector")
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	for _, ev := range []string{event.EventMeasurement, event.EventReading, event.EventStatus, event.EventPosition, event.EventCheck} {
		if err := cb.Subscribe(context.Background(), event.Filter("", "", "", "", ev), event.QoS, col.handle); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for d.Stats().SimTime.Before(opts.Until) {
		if time.Now().After(deadline) {
			t.Fatalf("the simulation reached %v, not %v", d.Stats().SimTime, opts.Until)
		}
		select {
		case <-d.Failed():
			t.Fatal(d.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	played := time.Since(began)
	st := d.Twin().State()
	model := d.Model()

	// (a) The state equals the subscriber's last values: wait for the
	// connectors and the twin to catch up.
	mismatch := func() []string {
		col.mu.Lock()
		defer col.mu.Unlock()
		var bad []string
		for _, p := range model.Points {
			ps, _ := st.Point(p.ID)
			lv, ok := col.last[p.ID]
			switch {
			case !ok:
				if ps.Value != nil || ps.Text != "" || ps.Position != nil {
					bad = append(bad, p.ID+": has a value the subscriber never saw")
				}
			case lv.pos:
				if ps.Position == nil || ps.Position[0] != lv.lon || ps.Position[1] != lv.lat || !ps.Observed.Equal(lv.at) {
					bad = append(bad, fmt.Sprintf("%s: position %v at %v, want %v,%v at %v", p.ID, ps.Position, ps.Observed, lv.lon, lv.lat, lv.at))
				}
			case lv.text != "":
				if ps.Text != lv.text || !ps.Observed.Equal(lv.at) {
					bad = append(bad, fmt.Sprintf("%s: %q at %v, want %q at %v", p.ID, ps.Text, ps.Observed, lv.text, lv.at))
				}
			default:
				if ps.Value == nil || *ps.Value != *lv.value || !ps.Observed.Equal(lv.at) {
					bad = append(bad, fmt.Sprintf("%s: %v at %v, want %v at %v", p.ID, ps.Value, ps.Observed, *lv.value, lv.at))
				}
			}
		}
		return bad
	}
	deadline = time.Now().Add(30 * time.Second)
	for bad := mismatch(); len(bad) > 0; bad = mismatch() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d points differ from the last values on the bus, e.g. %v", len(bad), len(model.Points), bad[:min(5, len(bad))])
		}
		time.Sleep(20 * time.Millisecond)
	}
	col.mu.Lock()
	valued, events, bad := len(col.last), col.events, col.bad
	var numeric []string
	total := 0
	for p, s := range col.samples {
		numeric = append(numeric, p)
		total += len(s)
	}
	col.mu.Unlock()
	slices.Sort(numeric)
	if len(bad) > 0 {
		t.Fatalf("invalid events on the bus: %v", bad[:min(5, len(bad))])
	}
	if valued < len(model.Points)*9/10 {
		t.Fatalf("only %d of %d points got a value in a day", valued, len(model.Points))
	}
	if s := d.Twin().Stats(); s.Invalid != 0 || s.Rejected != 0 {
		t.Errorf("twin stats %+v: want no invalid or rejected events", s)
	}

	// (b) The history's aggregates equal the subscriber's. Wait until
	// the history holds every sample.
	base := "http://" + d.Addr(node.ListenerHTTP).String() + twin.APIPrefix
	from, to := start, opts.Until.Add(time.Hour)
	type answer struct {
		Series []struct {
			Point   string           `json:"point"`
			Buckets []map[string]any `json:"buckets"`
		} `json:"series"`
	}
	query := func(step time.Duration) answer {
		var a answer
		postJSON(t, base+"history/query", map[string]any{"ids": numeric, "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339),
			"step": step.String(), "agg": []string{"avg", "min", "max", "sum", "count", "last"}}, &a)
		return a
	}
	//
	// When the simulation reaches its end, events may still be on their
	// way (the network servers' path through the connectors is longer):
	// the twin's state may equal the subscriber's last values while both
	// still miss the same late ones. So the subscriber's samples are
	// counted again at every poll, and both counts must hold still
	// between two polls.
	deadline = time.Now().Add(30 * time.Second)
	prev := -1
	for {
		n := 0
		per := map[string]int{}
		for _, s := range query(24 * time.Hour).Series {
			for _, b := range s.Buckets {
				c := int(b["count"].(float64))
				n += c
				per[s.Point] += c
			}
		}
		col.mu.Lock()
		total = 0
		var diff []string
		numeric = numeric[:0]
		for p, s := range col.samples {
			numeric = append(numeric, p)
			total += len(s)
			if per[p] != len(s) {
				diff = append(diff, fmt.Sprintf("%s: history %d, subscriber %d", p, per[p], len(s)))
			}
		}
		col.mu.Unlock()
		slices.Sort(numeric)
		if n == total && total == prev {
			break
		}
		if time.Now().After(deadline) {
			slices.Sort(diff)
			t.Fatalf("the history has %d samples, the subscriber %d (%v); dropped: %v", n, total, diff[:min(10, len(diff))], d.Node().Broker().Stats().Dropped)
		}
		prev = total
		time.Sleep(250 * time.Millisecond)
	}
	if bad := mismatch(); len(bad) > 0 {
		t.Fatalf("after the last events, %d points differ from the last values on the bus, e.g. %v", len(bad), bad[:min(5, len(bad))])
	}
	for _, step := range []time.Duration{15 * time.Minute, time.Hour} {
		a := query(step)
		if len(a.Series) != len(numeric) {
			t.Fatalf("step %s: %d series, want %d", step, len(a.Series), len(numeric))
		}
		buckets := 0
		for i, s := range a.Series {
			if s.Point != numeric[i] {
				t.Fatalf("step %s: series %d is %s, want %s", step, i, s.Point, numeric[i])
			}
			want := col.aggregates(s.Point, from, step)
			if len(s.Buckets) != len(want) {
				t.Fatalf("%s step %s: %d buckets, want %d", s.Point, step, len(s.Buckets), len(want))
			}
			for _, b := range s.Buckets {
				at, _ := time.Parse(time.RFC3339, b["start"].(string))
				w := want[at.UnixMilli()]
				if w == nil {
					t.Fatalf("%s step %s: a bucket at %v the subscriber has not", s.Point, step, at)
				}
				for f, v := range map[string]float64{"count": float64(w.count), "sum": w.sum, "min": w.min, "max": w.max,
					"last": w.lst, "avg": w.sum / float64(w.count)} {
					got := b[f].(float64)
					if math.Abs(got-v) > 1e-9*max(1, math.Abs(v)) {
						t.Fatalf("%s step %s at %v: %s = %v, want %v", s.Point, step, at, f, got, v)
					}
				}
				buckets++
			}
		}
		t.Logf("step %s: %d points, %d buckets equal", step, len(a.Series), buckets)
	}

	// (c) Geometric queries with polygons drawn by hand; the sets listed
	// by hand from examples/campus/small (devices' locations, the plot's
	// and the building's footprints in geometry.geojson; a building's
	// rooms, meters and gateway stand at its footprint's centroid).
	poly := func(ring ...[2]float64) map[string]any {
		var cs [][]float64
		for _, p := range append(ring, ring[0]) {
			cs = append(cs, []float64{p[0], p[1]})
		}
		return map[string]any{"type": "Polygon", "coordinates": [][][]float64{cs}}
	}
	for _, tc := range []struct {
		name  string
		kind  string
		shape map[string]any
		want  []string
	}{
		// The plot's western part: lon 9.2350..9.2355; the weather
		// station and soil-probe-02 (9.2356427) and the plot's centroid
		// (about 9.23566) lie east of it.
		{"plot west", "", poly([2]float64{9.2350, 49.1595}, [2]float64{9.2355, 49.1595}, [2]float64{9.2355, 49.1597}, [2]float64{9.2350, 49.1597}),
			[]string{"leaf-sensor-01", "ph-probe-01", "soil-probe-01"}},
		// A triangle in the plot's east, below the line from
		// (9.2357, 49.1595) to (9.2362, 49.15984), of slope 0.68
		// (latitude over longitude): soil-probe-03 (9.2360548,
		// 49.1595688: 0.19) and npk-probe-01 (9.2358899, 49.1596227:
		// 0.646) lie below it, leaf-sensor-02 (9.2359518, 49.1596766:
		// 0.701) inside its bounding box but above the line.
		{"plot east triangle", "", poly([2]float64{9.2357, 49.1595}, [2]float64{9.2362, 49.1595}, [2]float64{9.2362, 49.15984}),
			[]string{"npk-probe-01", "soil-probe-03"}},
		// Building b01's footprint: its building gateway and the LoRaWAN
		// gateway on its roof (9.2086134, 49.1494936); not the
		// vineyard's gateways.
		{"b01 gateways", "gateway", poly([2]float64{9.2081877, 49.1493678}, [2]float64{9.2090392, 49.1493678}, [2]float64{9.2090392, 49.1496193}, [2]float64{9.2081877, 49.1496193}),
			[]string{"bms-b01", "hn-campus-roof"}},
		// The same footprint: b01's eleven meters.
		{"b01 meters", "meter", poly([2]float64{9.2081877, 49.1493678}, [2]float64{9.2090392, 49.1493678}, [2]float64{9.2090392, 49.1496193}, [2]float64{9.2081877, 49.1496193}),
			[]string{"el-b01-f0", "el-b01-f1", "el-b01-f2", "el-b01-f3", "el-b01-main", "ht-b01-f0", "ht-b01-f1", "ht-b01-f2", "ht-b01-f3", "ht-b01-main", "wa-b01-main"}},
	} {
		var l struct {
			Assets []struct {
				ID string `json:"id"`
			} `json:"assets"`
		}
		body := map[string]any{"within": tc.shape}
		if tc.kind != "" {
			body["kind"] = tc.kind
		}
		postJSON(t, base+"assets/query", body, &l)
		var got []string
		for _, a := range l.Assets {
			got = append(got, a.ID)
		}
		sort.Strings(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		// The history of the same area: the points of those assets
		// that have samples.
		if tc.kind == "" {
			var a answer
			postJSON(t, base+"history/query", map[string]any{"within": tc.shape, "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339), "step": "24h", "agg": []string{"count"}}, &a)
			assets := map[string]bool{}
			for _, s := range a.Series {
				assets[strings.Split(s.Point, "/")[0]] = true
			}
			if len(assets) != len(tc.want) {
				t.Errorf("%s: the history of the area has points of %v, want %v", tc.name, assets, tc.want)
			}
		}
	}
	t.Logf("a simulated day in %s: %d events, %d points with a value, %d samples", played.Round(time.Millisecond), events, valued, total)
}
