package live

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
	"github.com/citymesh/citymesh/vineyard"
	"github.com/citymesh/citymesh/vineyard/soil"
	"github.com/paulmach/orb"
	"github.com/paulmach/orb/planar"
)

// APIPrefix is where the service's HTTP API is mounted.
const APIPrefix = "/api/v1/vineyard/"

// MaxSamplesBody bounds the body of a samples POST; MaxSamples the samples
// in one.
const (
	MaxSamplesBody = 1 << 20
	MaxSamples     = 1000
)

// HTTPHandler returns the service's HTTP API, to be mounted at APIPrefix
// (its routes carry the whole path): the plots, their risk and weather,
// their soil samples and maps (docs/services.md, "Vineyard").
func (s *Service) HTTPHandler() http.Handler {
	mux := service.NewMux()
	mux.HandleFunc("GET "+APIPrefix+"plots", s.getPlots)
	mux.HandleFunc("GET "+APIPrefix+"plots/{plot}/risk", s.plotRoute(s.getRisk))
	mux.HandleFunc("GET "+APIPrefix+"plots/{plot}/weather", s.plotRoute(s.getWeather))
	mux.HandleFunc("GET "+APIPrefix+"plots/{plot}/weather.csv", s.plotRoute(s.getWeatherCSV))
	mux.HandleFunc("GET "+APIPrefix+"plots/{plot}/samples", s.plotRoute(s.getSamples))
	mux.HandleFunc("POST "+APIPrefix+"plots/{plot}/samples", s.plotRoute(s.postSamples))
	mux.HandleFunc("GET "+APIPrefix+"plots/{plot}/soil/{file}", s.plotRoute(s.getSoil))
	mux.HandleFunc(APIPrefix, func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such resource: "+r.URL.Path)
	})
	return mux
}

// problem writes an RFC 9457 problem details response
// (service.WriteProblem).
func problem(w http.ResponseWriter, code int, detail string) {
	service.WriteProblem(w, nil, code, detail)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(marshal(v), '\n'))
}

func (s *Service) tenant(r *http.Request) (string, bool) {
	if s.cfg.Tenant == nil {
		return "", true
	}
	return s.cfg.Tenant(r)
}

// plotRoute checks the plot exists and the request may see it (a plot of
// another tenant is not found, as in the twin's API).
func (s *Service) plotRoute(h func(w http.ResponseWriter, r *http.Request, pi *plotInfo)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		plot := r.PathValue("plot")
		t, all := s.tenant(r)
		if !s.visible(plot, t, all) {
			problem(w, http.StatusNotFound, fmt.Sprintf("no plot %q", plot))
			return
		}
		h(w, r, s.plots[plot])
	}
}

// PlotSummary is one entry of GET /api/v1/vineyard/plots.
type PlotSummary struct {
	ID      string `json:"id"`
	Name    string `json:"name,omitempty"`
	Site    string `json:"site"`
	Tenant  string `json:"tenant,omitempty"`
	Variety string `json:"variety,omitempty"`
	// Station is the weather station whose weather the plot uses;
	// LeafSensors its leaf-wetness sensors.
	Station     string   `json:"station,omitempty"`
	LeafSensors []string `json:"leaf_sensors"`
	// Hours is the number of hourly records; Date and Level the latest
	// day and its highest level (absent without weather).
	Hours int             `json:"hours"`
	Date  string          `json:"date,omitempty"`
	Level *vineyard.Level `json:"level,omitempty"`
	// Diseases are the latest day's level per disease.
	Diseases map[string]vineyard.Level `json:"diseases,omitempty"`
}

func (s *Service) getPlots(w http.ResponseWriter, r *http.Request) {
	t, all := s.tenant(r)
	out := []PlotSummary{}
	s.mu.Lock()
	for _, id := range s.plotIDs {
		if !s.visible(id, t, all) {
			continue
		}
		pi := s.plots[id]
		ps := PlotSummary{ID: id, Name: pi.Name, Site: pi.Site, Tenant: pi.Tenant, Variety: pi.Variety, Station: pi.station, LeafSensors: append([]string{}, pi.leaf...)}
		if res := s.mu.results[id]; res != nil {
			lv := res.risk.Level
			ps.Hours, ps.Date, ps.Level = res.risk.Hours, res.risk.Date, &lv
			ps.Diseases = map[string]vineyard.Level{}
			for _, d := range res.risk.Diseases {
				ps.Diseases[d.Disease] = d.Level
			}
		}
		out = append(out, ps)
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

// span reads the from and to query parameters: RFC 3339 or YYYY-MM-DD (a
// date: its local midnight; to is exclusive, a date's whole day included).
func (s *Service) span(r *http.Request) (from, to time.Time, err error) {
	parse := func(name string, end bool) (time.Time, error) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		if d, err := time.ParseInLocation("2006-01-02", v, s.model.Location); err == nil {
			if end {
				d = d.AddDate(0, 0, 1)
			}
			return d, nil
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: %q is neither YYYY-MM-DD nor RFC 3339", name, v)
		}
		return t, nil
	}
	if from, err = parse("from", false); err != nil {
		return
	}
	if to, err = parse("to", true); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		err = errors.New("to must be after from")
	}
	return
}

func inSpan(t, from, to time.Time) bool {
	return (from.IsZero() || !t.Before(from)) && (to.IsZero() || t.Before(to))
}

// RiskResponse is GET /api/v1/vineyard/plots/{plot}/risk: every disease's
// days in the span (the whole season by default).
type RiskResponse struct {
	Plot     string                 `json:"plot"`
	Date     string                 `json:"date,omitempty"`
	Level    vineyard.Level         `json:"level"`
	Hours    int                    `json:"hours"`
	Gaps     []vineyard.Gap         `json:"gaps"`
	Diseases []vineyard.DiseaseRisk `json:"diseases"`
}

func (s *Service) getRisk(w http.ResponseWriter, r *http.Request, pi *plotInfo) {
	from, to, err := s.span(r)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	res := s.mu.results[pi.ID]
	s.mu.Unlock()
	out := RiskResponse{Plot: pi.ID, Gaps: []vineyard.Gap{}, Diseases: []vineyard.DiseaseRisk{}}
	if res != nil {
		out.Date, out.Level, out.Hours, out.Gaps = res.risk.Date, res.risk.Level, res.risk.Hours, res.risk.Gaps
		for _, dr := range res.assessment.Risk {
			d := vineyard.DiseaseRisk{Disease: dr.Disease, Days: []vineyard.DayRisk{}}
			for _, day := range dr.Days {
				t, err := time.ParseInLocation("2006-01-02", day.Date, s.model.Location)
				if err != nil || !inSpan(t, from, to) && !(from.IsZero() && to.IsZero()) {
					continue
				}
				d.Days = append(d.Days, day)
				d.Peak = max(d.Peak, day.Level)
			}
			out.Diseases = append(out.Diseases, d)
		}
	}
	writeJSON(w, out)
}

// WeatherResponse is GET /api/v1/vineyard/plots/{plot}/weather.
type WeatherResponse struct {
	Plot  string        `json:"plot"`
	Hours []WeatherHour `json:"hours"`
}

func (s *Service) getWeather(w http.ResponseWriter, r *http.Request, pi *plotInfo) {
	from, to, err := s.span(r)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	res := s.mu.results[pi.ID]
	s.mu.Unlock()
	out := WeatherResponse{Plot: pi.ID, Hours: []WeatherHour{}}
	if res != nil {
		for _, h := range weatherHours(res.hours, res.derived) {
			if inSpan(h.Time, from, to) {
				out.Hours = append(out.Hours, h)
			}
		}
	}
	writeJSON(w, out)
}

// getWeatherCSV serves the plot's hourly weather of the span as the CSV
// `citymesh model disease -weather` reads (vineyard.WriteCSV).
func (s *Service) getWeatherCSV(w http.ResponseWriter, r *http.Request, pi *plotInfo) {
	from, to, err := s.span(r)
	if err != nil {
		problem(w, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	res := s.mu.results[pi.ID]
	s.mu.Unlock()
	var hours []vineyard.Hour
	if res != nil {
		for _, h := range res.hours {
			if inSpan(h.Time, from, to) {
				hours = append(hours, h)
			}
		}
	}
	var buf bytes.Buffer
	if err := vineyard.WriteCSV(&buf, hours); err != nil {
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Write(buf.Bytes())
}

// SamplesRequest is the body of POST /api/v1/vineyard/plots/{plot}/samples.
type SamplesRequest struct {
	Samples []LabSample `json:"samples"`
}

func (s *Service) postSamples(w http.ResponseWriter, r *http.Request, pi *plotInfo) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		problem(w, http.StatusUnsupportedMediaType, "want application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxSamplesBody))
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", MaxSamplesBody))
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var req SamplesRequest
	if err := dec.Decode(&req); err != nil {
		problem(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	if dec.More() {
		problem(w, http.StatusBadRequest, "body: more than one JSON value")
		return
	}
	if err := s.checkSamples(pi, req.Samples); err != nil {
		problem(w, http.StatusUnprocessableEntity, err.Error())
		return
	}
	if err := s.putLab(pi.ID, req.Samples); err != nil {
		problem(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	w.Write(marshal(map[string]any{"plot": pi.ID, "accepted": len(req.Samples)}))
}

// checkSamples validates posted samples: ids, times, ranges (those of
// soil.ReadSamplesCSV), each inside the plot's outline, no id twice.
func (s *Service) checkSamples(pi *plotInfo, samples []LabSample) error {
	if len(samples) == 0 || len(samples) > MaxSamples {
		return fmt.Errorf("samples: want 1 to %d", MaxSamples)
	}
	ids := map[string]bool{}
	for i, ls := range samples {
		if err := event.ValidID(ls.ID); err != nil {
			return fmt.Errorf("samples[%d].id: %w", i, err)
		}
		if ids[ls.ID] {
			return fmt.Errorf("samples[%d].id: %q given twice", i, ls.ID)
		}
		ids[ls.ID] = true
		if ls.Time.IsZero() || ls.Time.Year() < 1970 {
			return fmt.Errorf("samples[%d].time: required, RFC 3339", i)
		}
		for _, v := range []float64{ls.Lon, ls.Lat, ls.P, ls.K, ls.PH} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("samples[%d]: a value is not a finite number", i)
			}
		}
		if err := soil.ValidateSamples([]soil.Sample{{Lon: ls.Lon, Lat: ls.Lat, P: ls.P, K: ls.K, PH: ls.PH}}); err != nil {
			return fmt.Errorf("samples[%d]: %w", i, err)
		}
		if !planar.MultiPolygonContains(pi.Area, orb.Point{ls.Lon, ls.Lat}) {
			return fmt.Errorf("samples[%d]: (%g, %g) is not inside plot %s", i, ls.Lon, ls.Lat, pi.ID)
		}
	}
	return nil
}

func (s *Service) getSamples(w http.ResponseWriter, r *http.Request, pi *plotInfo) {
	s.mu.Lock()
	if s.mu.st == nil {
		s.mu.Unlock()
		problem(w, http.StatusServiceUnavailable, errNotRunning.Error())
		return
	}
	labs, err := s.labSamplesLocked(pi.ID)
	s.mu.Unlock()
	if err != nil {
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	if labs == nil {
		labs = []LabSample{}
	}
	writeJSON(w, SamplesRequest{Samples: labs})
}

func (s *Service) getSoil(w http.ResponseWriter, r *http.Request, pi *plotInfo) {
	file := r.PathValue("file")
	name, ext, _ := strings.Cut(file, ".")
	if ext != "geojson" && ext != "png" {
		problem(w, http.StatusNotFound, fmt.Sprintf("no soil map %q: want {p,k,ph}.geojson or .png", file))
		return
	}
	n, err := soil.ParseNutrient(name)
	if err != nil || strings.ToLower(name) != name {
		problem(w, http.StatusNotFound, fmt.Sprintf("no soil map %q: want {p,k,ph}.geojson or .png", file))
		return
	}
	s.mu.Lock()
	sm := s.mu.maps[pi.ID]
	s.mu.Unlock()
	if sm == nil || sm.maps[n] == nil {
		detail := fmt.Sprintf("plot %s has no %s map yet", pi.ID, n.Label())
		if sm != nil && sm.errs[n] != "" {
			detail += ": " + sm.errs[n]
		}
		problem(w, http.StatusNotFound, detail)
		return
	}
	m := sm.maps[n]
	var out []byte
	if ext == "png" {
		var buf bytes.Buffer
		err = soil.WritePNG(&buf, m, soilSamples(n, sm.samples[n]))
		out = buf.Bytes()
		w.Header().Set("Content-Type", "image/png")
	} else {
		out, err = writeSoilGeoJSON(m, sm.samples[n])
		w.Header().Set("Content-Type", "application/geo+json")
	}
	if err != nil {
		w.Header().Del("Content-Type")
		problem(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Write(out)
}

func orbPoint(lon, lat float64) orb.Point { return orb.Point{lon, lat} }

// openAPI is the OpenAPI 3.1 document of the service's routes.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the service's routes
// (service.Documented), which the node merges into its own.
func (s *Service) OpenAPI() []byte { return openAPI }
