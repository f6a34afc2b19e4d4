package ngsild

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citymesh/citymesh/campus"
	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin"
	"github.com/citymesh/citymesh/twin/history"
)

const smallCampus = "../../examples/campus/small/campus.yaml"

var (
	smallOnce  sync.Once
	smallModel *campus.Model
	smallErr   error
)

func small(t testing.TB) *campus.Model {
	t.Helper()
	smallOnce.Do(func() { smallModel, smallErr = campus.Load(smallCampus) })
	if smallErr != nil {
		t.Fatal(smallErr)
	}
	return smallModel
}

var t0 = time.Date(2026, 5, 12, 9, 30, 0, 0, time.UTC)

// tempSeries are the temperatures written to room b01-0.01, one a minute
// from t0: what the temporal tests compute their expectations from.
var tempSeries = []float64{20.0, 20.5, 21.0, 21.5, 22.0, 21.0, 20.0, 19.5, 23.0, 22.5}

// fixture feeds the small campus's twin and a history in t.TempDir: the
// room b01-0.01's temperatures (tempSeries), b01-0.02's temperature, the
// soil probe's moisture and battery, the main electricity meter's
// registers, the robot's position.
func fixture(t *testing.T) (*twin.State, *history.DB) {
	t.Helper()
	s := twin.NewState(small(t))
	hist, err := history.Open(t.TempDir(), history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hist.Close() })
	apply := func(tp event.Topic, e event.Event, at time.Time) {
		t.Helper()
		m, err := event.NewMessage(tp, e)
		if err != nil {
			t.Fatal(err)
		}
		tp, e, err = event.ReadMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		samples, err := s.Apply(tp, e, at, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.Append(context.Background(), samples); err != nil {
			t.Fatal(err)
		}
	}
	bms := event.Source{Type: event.SourceBuilding, Gateway: "bms-b01"}
	room := func(id string) event.Topic {
		return event.NewTopic(event.DomainBuilding, "campus", event.AssetRoom, id, event.EventMeasurement)
	}
	for i, v := range tempSeries {
		at := t0.Add(time.Duration(i) * time.Minute)
		apply(room("b01-0.01"), event.NewMeasurement("b01-0.01", at, bms,
			event.Value{Point: "b01-0.01/temperature", Value: v, Unit: event.Celsius},
			event.Value{Point: "b01-0.01/co2", Value: 400 + float64(i)*10, Unit: event.PartsPerMillion}), at)
	}
	apply(room("b01-0.02"), event.NewMeasurement("b01-0.02", t0, bms,
		event.Value{Point: "b01-0.02/temperature", Value: 25.5, Unit: event.Celsius}), t0)
	meter := event.NewTopic(event.DomainBuilding, "campus", event.AssetMeter, "el-b01-main", event.EventReading)
	apply(meter, event.NewMeasurement("el-b01-main", t0, bms,
		event.Value{Point: "el-b01-main/1-0:1.8.0", Value: 1000, Unit: event.KilowattHour},
		event.Value{Point: "el-b01-main/1-0:1.8.1", Value: 600, Unit: event.KilowattHour}), t0)
	lora := event.Source{Type: event.SourceLoRaWAN, NetworkServer: "tts", Application: "hn-wartberg-vineyards", DeviceID: "soil-probe-01", DevEUI: probeEUI(t), FCnt: new(uint32(7)), Gateway: "hn-wartberg-north"}
	dev := event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-01", event.EventMeasurement)
	apply(dev, event.NewMeasurement("soil-probe-01", t0, lora,
		event.Value{Point: "soil-probe-01/soilMoistureVwc", Value: 31.5, Unit: event.Percent}), t0)
	return s, hist
}

func do(t *testing.T, h http.Handler, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

const (
	room1 = "urn:ngsi-ld:IndoorEnvironmentObserved:b01-0.01"
	b01   = "urn:ngsi-ld:Building:b01"
	probe = "urn:ngsi-ld:Device:soil-probe-01"
)

// The wartberg-01 plot's outline by hand around its eight devices, as in
// twin's tests, and the weather station's position.
const (
	plotCoords = `[[[9.2350,49.1594],[9.2363,49.1594],[9.2363,49.1600],[9.2350,49.1600],[9.2350,49.1594]]]`
	station    = `[9.2356427,49.1598024]`
)

func TestQueryEntities(t *testing.T) {
	s, hist := fixture(t)
	h := Handler(s, hist, Options{Now: func() time.Time { return t0 }})
	e := url.QueryEscape
	tests := []struct {
		name   string
		target string
		code   int
		ids    []string // the ids, in order; nil: not checked
		n      int      // how many; -1: not checked
		count  string   // NGSILD-Results-Count; "" not checked
		errTyp string
	}{
		{name: "by type", target: "entities?type=AgriParcel", code: 200, ids: []string{"urn:ngsi-ld:AgriParcel:wartberg-01"}},
		{name: "two types", target: "entities?type=Building,AgriParcel", code: 200, ids: []string{b01, "urn:ngsi-ld:AgriParcel:wartberg-01"}},
		{name: "unknown type selects nothing", target: "entities?type=Vehicle", code: 200, n: 0},
		{name: "type as an IRI", target: "entities?type=" + e("https://smartdatamodels.org/dataModel.Agrifood/AgriParcel"), code: 200,
			ids: []string{"urn:ngsi-ld:AgriParcel:wartberg-01"}},
		{name: "attrs as an IRI", target: "entities?attrs=" + e("https://smartdatamodels.org/dataModel.Agrifood/soilMoistureVwc"), code: 200, ids: []string{probe}},
		{name: "type, an IRI of no type served", target: "entities?type=" + e("https://example.org/Vehicle"), code: 200, n: 0},
		{name: "attrs, an IRI of no attribute served", target: "entities?attrs=" + e("https://example.org/speed"), code: 200, n: 0},
		{name: "by id", target: "entities?id=" + room1 + "," + b01, code: 200, ids: []string{room1, b01}}, // in the order of id
		{name: "id of another type", target: "entities?id=urn:ngsi-ld:Building:b01-0.01", code: 200, n: 0},
		{name: "idPattern", target: "entities?idPattern=" + e(`^urn:ngsi-ld:Device:soil-probe-0[12]$`), code: 200,
			ids: []string{probe, "urn:ngsi-ld:Device:soil-probe-02"}},
		{name: "q equal", target: "entities?type=IndoorEnvironmentObserved&q=" + e("temperature==22.5"), code: 200, ids: []string{room1}},
		{name: "q greater", target: "entities?type=IndoorEnvironmentObserved&q=" + e("temperature>23"), code: 200, ids: []string{"urn:ngsi-ld:IndoorEnvironmentObserved:b01-0.02"}},
		{name: "q and", target: "entities?q=" + e("temperature>=20;co2<500"), code: 200, ids: []string{room1}},
		// ";" unescaped, as NGSI-LD's examples and FIWARE clients write it.
		{name: "q and, ; unescaped", target: "entities?q=temperature>=20;co2<500", code: 200, ids: []string{room1}},
		{name: "near, ; unescaped", target: "entities?type=Device&georel=near;maxDistance==20&geometry=Point&coordinates=" + station, code: 200,
			ids: []string{"urn:ngsi-ld:Device:weather-station-01"}},
		{name: "bad escape", target: "entities?type=Device&q=a%zz", code: 400, errTyp: errBadRequestData},
		{name: "q or", target: "entities?q=" + e("temperature>25|soilMoistureVwc<40"), code: 200, ids: []string{"urn:ngsi-ld:IndoorEnvironmentObserved:b01-0.02", probe}},
		{name: "q not equal", target: "entities?type=IndoorEnvironmentObserved&q=" + e("temperature!=22.5"), code: 200, ids: []string{"urn:ngsi-ld:IndoorEnvironmentObserved:b01-0.02"}},
		{name: "q less or equal", target: "entities?q=" + e("temperature<=23"), code: 200, ids: []string{room1}},
		{name: "q range", target: "entities?q=" + e("temperature==22..24"), code: 200, ids: []string{room1}},
		{name: "q list", target: "entities?q=" + e("temperature==1,25.5"), code: 200, ids: []string{"urn:ngsi-ld:IndoorEnvironmentObserved:b01-0.02"}},
		{name: "q relationship", target: "entities?type=Device&q=" + e(`hasAgriParcel=="urn:ngsi-ld:AgriParcel:wartberg-01"`), code: 200, n: 8},
		{name: "q array property", target: "entities?type=Device&q=" + e(`category=="meter"`), code: 200, n: 11},
		{name: "q string pattern", target: "entities?type=Building&q=" + e(`name~="forum"`), code: 200, ids: []string{b01}},
		{name: "q existence", target: "entities?q=activeEnergyImportTariff1", code: 200, ids: []string{"urn:ngsi-ld:Device:el-b01-main"}},
		{name: "attrs", target: "entities?attrs=soilMoistureVwc", code: 200, ids: []string{probe}},
		{name: "near max", target: "entities?type=Device&georel=" + e("near;maxDistance==20") + "&geometry=Point&coordinates=" + e(station), code: 200,
			ids: []string{"urn:ngsi-ld:Device:weather-station-01"}},
		// From twin's tests: 8 devices within 40 m, 6 within 30 m.
		{name: "near min and max", target: "entities?type=Device&georel=" + e("near;minDistance==30;maxDistance==40") + "&geometry=Point&coordinates=" + e(station), code: 200, n: 2},
		{name: "within", target: "entities?type=Device&georel=within&geometry=Polygon&coordinates=" + e(plotCoords), code: 200, n: 8},
		{name: "intersects a point", target: "entities?type=Device&georel=intersects&geometry=Point&coordinates=" + e(station), code: 200,
			ids: []string{"urn:ngsi-ld:Device:weather-station-01"}},
		{name: "intersects the plot", target: "entities?type=AgriParcel&georel=intersects&geometry=Polygon&coordinates=" + e(plotCoords), code: 200, n: 1},
		{name: "page", target: "entities?type=IndoorEnvironmentObserved&limit=5&offset=55&count=true", code: 200, n: 2, count: "57"},
		{name: "count only", target: "entities?type=IndoorEnvironmentObserved&limit=0&count=true", code: 200, n: 0, count: "57"},
		{name: "default limit", target: "entities?type=IndoorEnvironmentObserved", code: 200, n: DefaultLimit},
		{name: "offset past the end", target: "entities?type=Building&offset=5", code: 200, n: 0},
		// Bad input.
		{name: "no selection", target: "entities", code: 400, errTyp: errBadRequestData},
		{name: "limit too large", target: "entities?type=Device&limit=1001", code: 403, errTyp: errTooManyResults},
		{name: "limit not a number", target: "entities?type=Device&limit=ten", code: 400, errTyp: errBadRequestData},
		{name: "limit 0 without count", target: "entities?type=Device&limit=0", code: 400, errTyp: errBadRequestData},
		{name: "bad type name", target: "entities?type=" + e("Dev ice"), code: 400, errTyp: errBadRequestData},
		{name: "bad q", target: "entities?q=" + e("temperature=>3"), code: 400, errTyp: errInvalidRequest},
		{name: "bad q value", target: "entities?q=" + e("temperature=="), code: 400, errTyp: errInvalidRequest},
		{name: "q too long", target: "entities?q=" + strings.Repeat("a", 3000), code: 403, errTyp: errTooComplexQuery},
		{name: "bad georel", target: "entities?georel=nearby&geometry=Point&coordinates=" + e(station), code: 400, errTyp: errBadRequestData},
		{name: "near without distance", target: "entities?georel=near&geometry=Point&coordinates=" + e(station), code: 400, errTyp: errBadRequestData},
		{name: "near from a polygon", target: "entities?georel=" + e("near;maxDistance==5") + "&geometry=Polygon&coordinates=" + e(plotCoords), code: 400, errTyp: errBadRequestData},
		{name: "bad coordinates", target: "entities?georel=within&geometry=Polygon&coordinates=" + e("[[1,2]]"), code: 400, errTyp: errBadRequestData},
		{name: "open ring", target: "entities?georel=within&geometry=Polygon&coordinates=" + e("[[[1,2],[3,4],[5,6],[7,8]]]"), code: 400, errTyp: errBadRequestData},
		{name: "georel without geometry", target: "entities?georel=within", code: 400, errTyp: errBadRequestData},
		{name: "unsupported georel", target: "entities?georel=disjoint&geometry=Point&coordinates=" + e(station), code: 400, errTyp: errBadRequestData},
		{name: "bad idPattern", target: "entities?idPattern=" + e("(["), code: 400, errTyp: errBadRequestData},
		{name: "idPattern too long", target: "entities?idPattern=" + strings.Repeat("a", 3000), code: 403, errTyp: errTooComplexQuery},
		{name: "unknown parameter", target: "entities?type=Device&colour=red", code: 400, errTyp: errBadRequestData},
		{name: "bad options", target: "entities?type=Device&options=pretty", code: 400, errTyp: errBadRequestData},
		{name: "temporal options", target: "entities?type=Device&options=temporalValues", code: 400, errTyp: errBadRequestData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ids != nil {
				tc.n = len(tc.ids)
			}
			w := do(t, h, Prefix+tc.target)
			if w.Code != tc.code {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.code)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.errTyp != "" {
				var p ProblemDetails
				if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Type != tc.errTyp || p.Title == "" || p.Detail == "" {
					t.Fatalf("problem %s, want type %s", w.Body, tc.errTyp)
				}
				return
			}
			var list []map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil {
				t.Fatalf("%v: %s", err, w.Body)
			}
			var ids []string
			for _, e := range list {
				ids = append(ids, e["id"].(string))
			}
			if tc.n >= 0 && len(list) != tc.n {
				t.Errorf("%d entities %v, want %d", len(list), ids, tc.n)
			}
			if tc.ids != nil && !slices.Equal(ids, tc.ids) {
				t.Errorf("ids %v, want %v", ids, tc.ids)
			}
			if got := w.Header().Get(CountHeader); got != tc.count {
				t.Errorf("%s %q, want %q", CountHeader, got, tc.count)
			}
			if link := w.Header().Get("Link"); !strings.Contains(link, ContextPath) || !strings.Contains(link, `rel="http://www.w3.org/ns/json-ld#context"`) {
				t.Errorf("Link %q", link)
			}
		})
	}
}

func TestRetrieveEntity(t *testing.T) {
	s, hist := fixture(t)
	h := Handler(s, hist, Options{Now: func() time.Time { return t0 }})
	w := do(t, h, Prefix+"entities/"+room1)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var e map[string]any
	json.Unmarshal(w.Body.Bytes(), &e)
	temp := e["temperature"].(map[string]any)
	if temp["type"] != "Property" || temp["value"] != 22.5 || temp["unitCode"] != "CEL" || temp["observedAt"] != "2026-05-12T09:39:00.000Z" {
		t.Errorf("temperature %v", temp)
	}
	if rel := e["refBuilding"].(map[string]any); rel["type"] != "Relationship" || rel["object"] != b01 {
		t.Errorf("refBuilding %v", rel)
	}
	if _, ok := e["@context"]; ok {
		t.Error("@context in an application/json body")
	}
	// The meter's tariff register has a name of its own.
	w = do(t, h, Prefix+"entities/urn:ngsi-ld:Device:el-b01-main?options=keyValues")
	json.Unmarshal(w.Body.Bytes(), &e)
	if e["activeEnergyImport"] != 1000.0 || e["activeEnergyImportTariff1"] != 600.0 {
		t.Errorf("meter %s", w.Body)
	}
	for _, tc := range []struct {
		target string
		code   int
		typ    string
	}{
		{"entities/urn:ngsi-ld:Building:nosuch", 404, errResourceNotFound},
		{"entities/urn:ngsi-ld:Vehicle:b01", 404, errResourceNotFound},
		{"entities/b01", 400, errBadRequestData},
		{"entities/" + b01 + "?options=nope", 400, errBadRequestData},
		{"entities/" + b01 + "?attrs=" + url.QueryEscape("a b"), 400, errBadRequestData},
		{"nosuch", 404, errResourceNotFound},
	} {
		w := do(t, h, Prefix+tc.target)
		var p ProblemDetails
		if w.Code != tc.code || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Type != tc.typ || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %s, want %d %s", tc.target, w.Code, w.Body, tc.code, tc.typ)
		}
	}
	// A write is refused: the API is read-only.
	r := httptest.NewRequest("POST", Prefix+"entities", strings.NewReader("{}"))
	rw := httptest.NewRecorder()
	h.ServeHTTP(rw, r)
	if rw.Code != http.StatusMethodNotAllowed || !strings.Contains(rw.Body.String(), "OperationNotSupported") {
		t.Errorf("POST: %d %s", rw.Code, rw.Body)
	}
}

func TestAcceptAndContext(t *testing.T) {
	s, hist := fixture(t)
	h := Handler(s, hist, Options{Now: func() time.Time { return t0 }})
	w := do(t, h, Prefix+"entities/"+b01, "Accept", "application/ld+json")
	var e map[string]any
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/ld+json" || w.Header().Get("Link") != "" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	ctx, _ := e["@context"].([]any)
	if len(ctx) != 2 || ctx[0] != "http://example.com"+ContextPath || ctx[1] != CoreContext {
		t.Errorf("@context %v", e["@context"])
	}
	if w := do(t, h, Prefix+"entities/"+b01, "Accept", "text/html"); w.Code != http.StatusNotAcceptable {
		t.Errorf("text/html: %d", w.Code)
	}
	if w := do(t, h, Prefix+"entities/"+b01, "Accept", "text/html, */*;q=0.1"); w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("*/*: %d", w.Code)
	}
	if w := do(t, h, Prefix+"entities/"+b01, "Accept", "application/ld+json;q=0.0, application/json"); w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("ld+json refused: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	// The citymesh context names every attribute an entity has.
	w = do(t, h, ContextPath)
	var doc struct {
		Context []any `json:"@context"`
	}
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &doc) != nil || len(doc.Context) != 2 || doc.Context[1] != CoreContext {
		t.Fatalf("context: %d %s", w.Code, w.Body)
	}
	terms := doc.Context[0].(map[string]any)
	for _, q := range campus.Quantities() {
		if _, ok := terms[q.Name]; !ok && q.Name != "location" {
			t.Errorf("the context lacks quantity %s", q.Name)
		}
	}
	for _, typ := range []string{"Building", "IndoorEnvironmentObserved", "Device", "AgriParcel"} {
		w := do(t, h, Prefix+"entities?type="+typ+"&limit=1000")
		var list []map[string]any
		json.Unmarshal(w.Body.Bytes(), &list)
		for _, e := range list {
			for k := range e {
				if _, ok := terms[k]; !ok && k != "id" && k != "type" && k != "location" && !strings.Contains(k, "Tariff") && !strings.Contains(k, "_") {
					t.Errorf("the context lacks %s (of %s)", k, e["id"])
				}
			}
		}
	}
}

func TestTenant(t *testing.T) {
	s, hist := fixture(t)
	count := func(h http.Handler, hdr ...string) (int, int, []map[string]any) {
		w := do(t, h, Prefix+"entities?type=Device&limit=1000", hdr...)
		var list []map[string]any
		json.Unmarshal(w.Body.Bytes(), &list)
		return w.Code, len(list), list
	}
	plain := Handler(s, hist, Options{})
	_, all, _ := count(plain)
	code, grow, _ := count(plain, TenantHeader, "wartberg-growers")
	if code != 200 || grow == 0 || grow >= all {
		t.Errorf("NGSILD-Tenant without the hook: %d, %d of %d devices", code, grow, all)
	}
	if w := do(t, plain, Prefix+"entities?type=Device", TenantHeader, "nosuch"); w.Code != 404 || !strings.Contains(w.Body.String(), "NonexistentTenant") {
		t.Errorf("unknown tenant: %d %s", w.Code, w.Body)
	}
	hook := Handler(s, hist, Options{Tenant: func(r *http.Request) (string, bool) {
		u := r.Header.Get("X-User-Tenant")
		return u, u == ""
	}})
	if code, n, list := count(hook, "X-User-Tenant", "wartberg-growers"); code != 200 || n != grow {
		t.Errorf("a tenant's user: %d, %d devices, want %d", code, n, grow)
	} else {
		for _, e := range list {
			if !strings.Contains(e["id"].(string), "probe") && !strings.Contains(e["id"].(string), "sensor") && !strings.Contains(e["id"].(string), "station") {
				t.Errorf("the vineyard's user sees %s", e["id"])
			}
		}
	}
	if code, _, _ := count(hook, "X-User-Tenant", "wartberg-growers", TenantHeader, "wartberg-growers"); code != 200 {
		t.Errorf("own tenant named: %d", code)
	}
	if w := do(t, hook, Prefix+"entities?type=Device", "X-User-Tenant", "wartberg-growers", TenantHeader, "campus-service"); w.Code != 403 {
		t.Errorf("another tenant named: %d %s", w.Code, w.Body)
	}
	if w := do(t, hook, Prefix+"entities/urn:ngsi-ld:Device:el-b01-f0", "X-User-Tenant", "wartberg-growers"); w.Code != 404 {
		t.Errorf("another tenant's entity: %d", w.Code)
	}
	if code, n, _ := count(hook, TenantHeader, "wartberg-growers"); code != 200 || n != grow {
		t.Errorf("an operator naming a tenant: %d, %d", code, n)
	}
}

func TestTemporal(t *testing.T) {
	s, hist := fixture(t)
	h := Handler(s, hist, Options{Now: func() time.Time { return t0 }})
	at := func(i int) string { return t0.Add(time.Duration(i) * time.Minute).Format(time.RFC3339) }
	type inst struct {
		Type       string  `json:"type"`
		Value      float64 `json:"value"`
		ObservedAt string  `json:"observedAt"`
		UnitCode   string  `json:"unitCode"`
	}
	base := Prefix + "temporal/entities/" + room1 + "?attrs=temperature"
	// Instances: which indexes of tempSeries each selection gives.
	for _, tc := range []struct {
		name, params string
		want         []int
	}{
		{"all", "", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}},
		{"before", "&timerel=before&timeAt=" + at(3), []int{0, 1, 2}},
		{"after", "&timerel=after&timeAt=" + at(7), []int{7, 8, 9}},
		{"between", "&timerel=between&timeAt=" + at(2) + "&endTimeAt=" + at(5), []int{2, 3, 4}},
		{"lastN", "&lastN=3", []int{7, 8, 9}},
		{"lastN of between", "&timerel=between&timeAt=" + at(2) + "&endTimeAt=" + at(6) + "&lastN=2", []int{4, 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, base+tc.params)
			var e struct {
				ID          string `json:"id"`
				Temperature []inst `json:"temperature"`
				CO2         []inst `json:"co2"`
			}
			if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &e) != nil || e.ID != room1 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if e.CO2 != nil {
				t.Error("attrs=temperature returned co2")
			}
			if len(e.Temperature) != len(tc.want) {
				t.Fatalf("%d instances, want %d: %s", len(e.Temperature), len(tc.want), w.Body)
			}
			for j, i := range tc.want {
				x := e.Temperature[j]
				if x.Type != "Property" || x.Value != tempSeries[i] || x.ObservedAt != t0.Add(time.Duration(i)*time.Minute).Format("2006-01-02T15:04:05.000Z") || x.UnitCode != "CEL" {
					t.Errorf("instance %d: %+v, want %v at minute %d", j, x, tempSeries[i], i)
				}
			}
		})
	}
	// temporalValues.
	w := do(t, h, base+"&options=temporalValues&lastN=2")
	var tv struct {
		Temperature struct {
			Type   string  `json:"type"`
			Values [][]any `json:"values"`
		} `json:"temperature"`
	}
	if json.Unmarshal(w.Body.Bytes(), &tv) != nil || tv.Temperature.Type != "Property" || len(tv.Temperature.Values) != 2 ||
		tv.Temperature.Values[1][0] != 22.5 || tv.Temperature.Values[1][1] != "2026-05-12T09:39:00.000Z" {
		t.Errorf("temporalValues %s", w.Body)
	}
	// Aggregates, against values computed here from tempSeries: periods of
	// 5 minutes from timeAt.
	w = do(t, h, base+"&options=aggregatedValues&aggrMethods=totalCount,sum,avg,min,max&aggrPeriodDuration=PT5M&timerel=between&timeAt="+at(0)+"&endTimeAt="+at(10))
	var whole, temp map[string]json.RawMessage
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &whole) != nil || json.Unmarshal(whole["temperature"], &temp) != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	for m, f := range map[string]func([]float64) float64{
		"totalCount": func(v []float64) float64 { return float64(len(v)) },
		"sum":        sum,
		"avg":        func(v []float64) float64 { return sum(v) / float64(len(v)) },
		"min":        func(v []float64) float64 { return slices.Min(v) },
		"max":        func(v []float64) float64 { return slices.Max(v) },
	} {
		var rows [][3]any
		if err := json.Unmarshal(temp[m], &rows); err != nil || len(rows) != 2 {
			t.Fatalf("%s: %s", m, w.Body)
		}
		for k, row := range rows {
			want := f(tempSeries[5*k : 5*k+5])
			if math.Abs(row[0].(float64)-want) > 1e-9 || row[1] != timeString(t0.Add(time.Duration(5*k)*time.Minute)) || row[2] != timeString(t0.Add(time.Duration(5*k+5)*time.Minute)) {
				t.Errorf("%s period %d: %v, want %v", m, k, row, want)
			}
		}
	}
	// The whole range (no period) of the whole history.
	w = do(t, h, base+"&options=aggregatedValues&aggrMethods=avg")
	json.Unmarshal(w.Body.Bytes(), &whole)
	json.Unmarshal(whole["temperature"], &temp)
	var rows [][3]any
	json.Unmarshal(temp["avg"], &rows)
	if len(rows) != 1 || math.Abs(rows[0][0].(float64)-sum(tempSeries)/10) > 1e-9 || rows[0][1] != timeString(t0) {
		t.Errorf("whole range avg %s", w.Body)
	}
	// Periods from the first instance when timerel leaves the start open;
	// the last period whole when it leaves the end open.
	w = do(t, h, base+"&options=aggregatedValues&aggrMethods=max&aggrPeriodDuration=PT4M")
	json.Unmarshal(w.Body.Bytes(), &whole)
	json.Unmarshal(whole["temperature"], &temp)
	rows = nil
	json.Unmarshal(temp["max"], &rows)
	if len(rows) != 3 || rows[2][0] != slices.Max(tempSeries[8:]) || rows[2][1] != timeString(t0.Add(8*time.Minute)) || rows[2][2] != timeString(t0.Add(12*time.Minute)) {
		t.Errorf("open-ended periods %s", w.Body)
	}
	// lastN of an aggregation is the last periods, of all instances.
	w = do(t, h, base+"&options=aggregatedValues&aggrMethods=totalCount&aggrPeriodDuration=PT5M&lastN=1")
	json.Unmarshal(w.Body.Bytes(), &whole)
	json.Unmarshal(whole["temperature"], &temp)
	rows = nil
	json.Unmarshal(temp["totalCount"], &rows)
	if len(rows) != 1 || rows[0][0] != 5.0 || rows[0][1] != timeString(t0.Add(5*time.Minute)) {
		t.Errorf("lastN of periods %s", w.Body)
	}
	// The list form.
	w = do(t, h, Prefix+"temporal/entities?type=IndoorEnvironmentObserved&attrs=temperature&lastN=1&count=true")
	var list []map[string]any
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list) != 2 || w.Header().Get(CountHeader) != "2" {
		t.Errorf("list: %d %s", w.Code, w.Body)
	}
	// Bad input.
	for _, tc := range []struct{ params, typ string }{
		{"&timerel=during&timeAt=" + at(0), errBadRequestData},
		{"&timerel=before", errBadRequestData},
		{"&timerel=before&timeAt=yesterday", errBadRequestData},
		{"&timerel=between&timeAt=" + at(3) + "&endTimeAt=" + at(1), errBadRequestData},
		{"&timeAt=" + at(3), errBadRequestData},
		{"&lastN=0", errBadRequestData},
		{"&options=aggregatedValues", errBadRequestData},
		{"&options=aggregatedValues&aggrMethods=median", errBadRequestData},
		{"&options=aggregatedValues&aggrMethods=stddev", errBadRequestData},
		{"&options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=5M", errBadRequestData},
		{"&options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=P1M", errBadRequestData},
		{"&options=aggregatedValues&aggrMethods=avg&aggrPeriodDuration=PT1S&timerel=between&timeAt=2020-01-01T00:00:00Z&endTimeAt=" + at(10), errTooManyResults},
		{"&aggrMethods=avg", errBadRequestData},
		{"&options=keyValues", errBadRequestData},
		{"&timeproperty=modifiedAt", errBadRequestData},
	} {
		w := do(t, h, base+tc.params)
		var p ProblemDetails
		if w.Code/100 != 4 || json.Unmarshal(w.Body.Bytes(), &p) != nil || p.Type != tc.typ {
			t.Errorf("%s: %d %s, want %s", tc.params, w.Code, w.Body, tc.typ)
		}
	}
	// Without a history.
	if w := do(t, Handler(s, nil, Options{}), base); w.Code != http.StatusUnprocessableEntity || !strings.Contains(w.Body.String(), "OperationNotSupported") {
		t.Errorf("no history: %d %s", w.Code, w.Body)
	}
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want time.Duration
		ok   bool
	}{
		{"PT0S", 0, true}, {"P0D", 0, true}, {"PT15M", 15 * time.Minute, true}, {"P1W", 7 * 24 * time.Hour, true},
		{"P1DT12H", 36 * time.Hour, true}, {"PT1.5H", 90 * time.Minute, true}, {"PT0,5S", 500 * time.Millisecond, true},
		{"P1Y", 0, false}, {"P2M", 0, false}, {"PT", 0, false}, {"P", 0, false}, {"15M", 0, false},
		{"PT1H30", 0, false}, {"P1H", 0, false}, {"PTT1H", 0, false}, {"PT1.5H30M", 0, false}, {"P999999999D", 0, false},
	} {
		got, err := ParseDuration(tc.s)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %v %v, want %v ok %v", tc.s, got, err, tc.want, tc.ok)
		}
	}
}

func probeEUI(t *testing.T) string {
	d, ok := small(t).Device("soil-probe-01")
	if !ok {
		t.Fatal("no soil-probe-01")
	}
	return d.DevEUI
}

// TestTemporalMany writes more instances of one point than a response
// holds: without lastN the query is refused, with lastN it answers, and an
// aggregation counts them all.
func TestTemporalMany(t *testing.T) {
	s, hist := fixture(t)
	h := Handler(s, hist, Options{})
	n := MaxInstances + 10
	p, _ := small(t).Point("soil-probe-01/soilTemperature")
	samples := make([]history.Sample, n)
	for i := range samples {
		samples[i] = history.Sample{Point: p.ID, Asset: p.Asset, AssetKind: string(p.AssetKind), Quantity: p.Quantity, Unit: string(p.Unit),
			Site: p.Site, Tenant: p.Tenant, Time: t0.Add(-time.Duration(n-i) * time.Second), Value: float64(i)}
	}
	if err := hist.Append(context.Background(), samples); err != nil {
		t.Fatal(err)
	}
	// The twin's latest value makes the entity have the property.
	lora := event.Source{Type: event.SourceLoRaWAN, NetworkServer: "tts", Application: "hn-wartberg-vineyards", DeviceID: "soil-probe-01",
		DevEUI: probeEUI(t), FCnt: new(uint32(8)), Gateway: "hn-wartberg-north"}
	tp := event.NewTopic(event.DomainVineyard, "wartberg", event.AssetDevice, "soil-probe-01", event.EventMeasurement)
	if _, err := s.Apply(tp, event.NewMeasurement("soil-probe-01", t0, lora, event.Value{Point: p.ID, Value: 12, Unit: p.Unit}), t0, nil); err != nil {
		t.Fatal(err)
	}
	base := Prefix + "temporal/entities/" + probe + "?attrs=soilTemperature"
	if w := do(t, h, base); w.Code != 403 || !strings.Contains(w.Body.String(), "TooManyResults") {
		t.Errorf("%d instances without lastN: %d %.200s", n, w.Code, w.Body)
	}
	w := do(t, h, base+"&lastN=3&options=temporalValues")
	var e struct {
		T struct {
			Values [][]any `json:"values"`
		} `json:"soilTemperature"`
	}
	if json.Unmarshal(w.Body.Bytes(), &e) != nil || len(e.T.Values) != 3 || e.T.Values[2][0] != float64(n-1) {
		t.Errorf("lastN=3: %d %.300s", w.Code, w.Body)
	}
	w = do(t, h, base+"&options=aggregatedValues&aggrMethods=totalCount,max&lastN=1")
	var a struct {
		T struct {
			Count [][3]any `json:"totalCount"`
			Max   [][3]any `json:"max"`
		} `json:"soilTemperature"`
	}
	if json.Unmarshal(w.Body.Bytes(), &a) != nil || len(a.T.Count) != 1 || a.T.Count[0][0] != float64(n) || a.T.Max[0][0] != float64(n-1) {
		t.Errorf("aggregate of %d: %d %.300s", n, w.Code, w.Body)
	}
}
