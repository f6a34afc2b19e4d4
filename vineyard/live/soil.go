package live

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/vineyard/soil"
	"github.com/paulmach/orb/geojson"
)

// LabSample is one laboratory soil sample of a plot, as posted to
// POST /api/v1/vineyard/plots/{plot}/samples. P and K are CAL-extracted
// and given as the element, in mg per 100 g of soil.
type LabSample struct {
	// ID names the sample; posting a sample with the same id again
	// replaces it.
	ID string `json:"id"`
	// Time is when it was taken.
	Time time.Time `json:"time"`
	Lon  float64   `json:"lon"`
	Lat  float64   `json:"lat"`
	P    float64   `json:"p_mg_100g"`
	K    float64   `json:"k_mg_100g"`
	PH   float64   `json:"ph"`
}

// probeValue is a soil probe's latest value of one quantity.
type probeValue struct {
	T int64   `json:"t"` // Unix nanoseconds
	V float64 `json:"v"`
}

// soilMaps are a plot's maps, one per nutrient (nil where there are no
// samples), and the samples they were made from.
type soilMaps struct {
	maps    [3]*soil.Map
	samples [3][]nutrientSample
	errs    [3]string
	built   time.Time
}

// nutrientSample is one sample of one nutrient and where it came from.
type nutrientSample struct {
	Lon, Lat float64
	Value    float64
	Source   string // "lab:{id}" or "probe:{device}"
	Time     time.Time
}

// putProbeLocked keeps a soil probe's value if it is newer than the one
// kept (at the same time, the larger value, so the result does not depend
// on the order); it reports whether it changed. s.mu held.
func (s *Service) putProbeLocked(b *service.Batch, plot, dev, q string, at time.Time, v float64) (bool, error) {
	if soilNutrient[q] != soil.PH {
		v = soil.PPMToMgPer100g(v) // the probes report mg/kg
	}
	key := "p/" + plot + "/" + dev + "/" + q
	raw, ok, err := s.mu.st.Get(key)
	if err != nil {
		return false, fmt.Errorf("vineyard: read probe %s: %w", dev, err)
	}
	nv := probeValue{T: at.UnixNano(), V: v}
	if ok {
		var old probeValue
		if json.Unmarshal(raw, &old) == nil && (old.T > nv.T || old.T == nv.T && old.V >= nv.V) {
			return false, nil
		}
	}
	b.Set(s.mu.st, key, marshal(nv))
	return true, nil
}

// putLab keeps laboratory samples of a plot and schedules its maps.
func (s *Service) putLab(plot string, samples []LabSample) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.st == nil {
		return errNotRunning
	}
	var b service.Batch
	for _, ls := range samples {
		b.Set(s.mu.st, "l/"+plot+"/"+ls.ID, marshal(ls))
	}
	if err := s.mu.st.Apply(&b); err != nil {
		return fmt.Errorf("vineyard: keep samples: %w", err)
	}
	s.soilDeb.Put(plot, struct{}{})
	return nil
}

var errNotRunning = errors.New("vineyard: the service is not running")

// labSamples returns a plot's laboratory samples, by id.
func (s *Service) labSamplesLocked(plot string) ([]LabSample, error) {
	var out []LabSample
	err := s.mu.st.Scan("l/"+plot+"/", func(_ string, v []byte) error {
		var ls LabSample
		if err := json.Unmarshal(v, &ls); err != nil {
			return err
		}
		out = append(out, ls)
		return nil
	})
	return out, err
}

// nutrientSamplesLocked returns the samples of each nutrient of a plot:
// the laboratory samples and each probe's latest value. Two samples at the
// same point: the later one counts (the laboratory's on a tie). s.mu held.
func (s *Service) nutrientSamplesLocked(plot string) ([3][]nutrientSample, error) {
	var out [3][]nutrientSample
	labs, err := s.labSamplesLocked(plot)
	if err != nil {
		return out, err
	}
	type at struct{ lon, lat float64 }
	best := [3]map[at]nutrientSample{{}, {}, {}}
	put := func(n soil.Nutrient, ns nutrientSample) {
		k := at{math.Round(ns.Lon * 1e7), math.Round(ns.Lat * 1e7)}
		if old, ok := best[n][k]; ok && !ns.Time.After(old.Time) {
			return
		}
		best[n][k] = ns
	}
	for _, ls := range labs {
		for n, v := range [3]float64{ls.P, ls.K, ls.PH} {
			put(soil.Nutrient(n), nutrientSample{Lon: ls.Lon, Lat: ls.Lat, Value: v, Source: "lab:" + ls.ID, Time: ls.Time})
		}
	}
	err = s.mu.st.Scan("p/"+plot+"/", func(key string, v []byte) error {
		var pv probeValue
		if err := json.Unmarshal(v, &pv); err != nil {
			return err
		}
		rest := key[len("p/"+plot+"/"):]
		var dev, q string
		for i := len(rest) - 1; i >= 0; i-- {
			if rest[i] == '/' {
				dev, q = rest[:i], rest[i+1:]
				break
			}
		}
		d, ok := s.model.Device(dev)
		if !ok {
			return nil
		}
		put(soilNutrient[q], nutrientSample{Lon: d.Location.Lon(), Lat: d.Location.Lat(), Value: pv.V, Source: "probe:" + dev, Time: time.Unix(0, pv.T).UTC()})
		return nil
	})
	for n := range best {
		for _, ns := range best[n] {
			out[n] = append(out[n], ns)
		}
		sort.Slice(out[n], func(i, j int) bool {
			a, b := out[n][i], out[n][j]
			if a.Lon != b.Lon {
				return a.Lon < b.Lon
			}
			return a.Lat < b.Lat
		})
	}
	return out, err
}

// soilSamples turns one nutrient's samples into soil.Samples: the other
// nutrients get neutral placeholders (soil.NewMap maps only the one asked
// for).
func soilSamples(n soil.Nutrient, ns []nutrientSample) []soil.Sample {
	out := make([]soil.Sample, len(ns))
	for i, x := range ns {
		s := soil.Sample{Lon: x.Lon, Lat: x.Lat, P: 0, K: 0, PH: 7}
		switch n {
		case soil.Phosphorus:
			s.P = x.Value
		case soil.Potassium:
			s.K = x.Value
		default:
			s.PH = x.Value
		}
		out[i] = s
	}
	return out
}

// refreshSoil rebuilds a plot's soil maps and publishes their summary.
func (s *Service) refreshSoil(ctx context.Context, plot string) {
	s.mu.Lock()
	env := s.mu.env
	ns, err := s.nutrientSamplesLocked(plot)
	s.mu.Unlock()
	if err != nil {
		env.Error(fmt.Errorf("vineyard: soil samples of %s: %w", plot, err))
		return
	}
	pi := s.plots[plot]
	sm := &soilMaps{samples: ns, built: env.Now().UTC()}
	haveSamples := false
	for n := range 3 {
		if len(ns[n]) == 0 {
			continue
		}
		haveSamples = true
		m, err := soil.NewMap(soilSamples(soil.Nutrient(n), ns[n]), pi.Area, soil.Options{Nutrient: soil.Nutrient(n), CellSize: s.cfg.SoilCellM, SoilType: s.soilType})
		if err != nil {
			sm.errs[n] = err.Error()
			env.Error(fmt.Errorf("vineyard: soil map %s %s: %w", plot, soil.Nutrient(n), err))
			continue
		}
		m.Title = pi.ID
		sm.maps[n] = m
	}
	if !haveSamples {
		return
	}
	s.mu.Lock()
	s.mu.maps[plot] = sm
	s.mu.Unlock()
	topic := event.NewTopic(event.DomainVineyard, pi.Site, event.AssetPlot, plot, eventSoil).String()
	s.publishRetained(ctx, env, topic, pi.Tenant, marshal(soilDoc(pi, sm, s.name)))
}

// Soil is the retained message on vineyard/{site}/plot/{plot}/soil: a
// summary of the plot's soil maps.
type Soil struct {
	Time      time.Time    `json:"time"`
	Asset     string       `json:"asset"`
	Source    event.Source `json:"source"`
	Site      string       `json:"site"`
	Nutrients []SoilMap    `json:"nutrients"`
}

// SoilMap summarises one nutrient's map.
type SoilMap struct {
	Nutrient string           `json:"nutrient"`
	Unit     string           `json:"unit"`
	Samples  int              `json:"samples"`
	Method   string           `json:"method,omitempty"`
	Note     string           `json:"note,omitempty"`
	Min      float64          `json:"min"`
	Max      float64          `json:"max"`
	Classes  []soil.ClassArea `json:"classes,omitempty"`
	Error    string           `json:"error,omitempty"`
	// GeoJSON and PNG are the map's paths in the HTTP API.
	GeoJSON string `json:"geojson,omitempty"`
	PNG     string `json:"png,omitempty"`
}

func soilDoc(pi *plotInfo, sm *soilMaps, name string) Soil {
	d := Soil{Time: sm.built, Asset: pi.ID, Source: event.Source{Type: event.SourceService, Service: name}, Site: pi.Site, Nutrients: []SoilMap{}}
	for n := range 3 {
		if len(sm.samples[n]) == 0 {
			continue
		}
		nu := soil.Nutrient(n)
		x := SoilMap{Nutrient: nu.String(), Unit: soil.ValueUnit(nu, soil.Element), Samples: len(sm.samples[n]), Error: sm.errs[n]}
		for _, s := range sm.samples[n] {
			x.Min, x.Max = s.Value, s.Value
			break
		}
		if m := sm.maps[n]; m != nil {
			x.Method, x.Note, x.Min, x.Max, x.Classes = m.Method.String(), m.Note, round(m.Min, 3), round(m.Max, 3), m.ClassAreas
			x.GeoJSON = APIPrefix + "plots/" + pi.ID + "/soil/" + nu.String() + ".geojson"
			x.PNG = APIPrefix + "plots/" + pi.ID + "/soil/" + nu.String() + ".png"
		}
		d.Nutrients = append(d.Nutrients, x)
	}
	return d
}

// writeSoilGeoJSON writes a map as soil.WriteGeoJSON does, with each
// sample's own nutrient value and source instead of all three.
func writeSoilGeoJSON(m *soil.Map, ns []nutrientSample) ([]byte, error) {
	var buf bytes.Buffer
	if err := soil.WriteGeoJSON(&buf, m, nil); err != nil {
		return nil, err
	}
	fc, err := geojson.UnmarshalFeatureCollection(buf.Bytes())
	if err != nil {
		return nil, err
	}
	unit := m.Unit()
	for i, x := range ns {
		f := geojson.NewFeature(orbPoint(x.Lon, x.Lat))
		f.Properties = geojson.Properties{"kind": "sample", "index": i, "nutrient": m.Nutrient.String(), "value": x.Value, "unit": unit,
			"source": x.Source, "time": x.Time.UTC().Format(time.RFC3339),
			"class": m.Scheme.Classify(soil.ToSchemeUnit(m.Nutrient, m.Form, x.Value)).String()}
		fc.Append(f)
	}
	out, err := fc.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
