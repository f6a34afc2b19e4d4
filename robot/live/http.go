package live

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
)

// APIPrefix is where the service's HTTP API is mounted.
const APIPrefix = "/api/v1/robot/"

// HTTPHandler returns the service's HTTP API, to be mounted at APIPrefix
// (its routes carry the whole path). docs/services.md, "Robot".
func (s *Service) HTTPHandler() http.Handler {
	mux := service.NewMux()
	mux.HandleFunc("GET "+APIPrefix+"incidents", s.listIncidents)
	mux.HandleFunc("GET "+APIPrefix+"incidents/{id}", s.getIncident)
	mux.HandleFunc("POST "+APIPrefix+"incidents/{id}/{action}", s.actOnIncident)
	mux.HandleFunc("GET "+APIPrefix+"progress", s.listProgress)
	mux.HandleFunc("GET "+APIPrefix+"routes", s.listRoutes)
	mux.HandleFunc("POST "+APIPrefix+"pictures", s.uploadPicture)
	mux.HandleFunc("GET "+APIPrefix+"pictures/{hash}", s.getPicture)
	mux.HandleFunc(APIPrefix, func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such resource", r.Method+" "+r.URL.Path+" is not a route of the robot API")
	})
	return mux
}

// problem writes an RFC 9457 problem details response
// (service.WriteProblem): its title the status's, what went wrong and why
// in its detail.
func problem(w http.ResponseWriter, status int, what, detail string) {
	w.Header().Set("Cache-Control", "no-store")
	service.WriteProblem(w, nil, status, what+": "+detail)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// running returns the current run, or answers 503.
func (s *Service) running(w http.ResponseWriter) *run {
	r := s.cur.Load()
	if r == nil {
		w.Header().Set("Retry-After", "1")
		problem(w, http.StatusServiceUnavailable, "service not running", "the robot service "+s.name+" is starting or stopped")
	}
	return r
}

// visible reports whether the request may see inc.
func (s *Service) visible(req *http.Request, inc *Incident) bool {
	if s.opts.Tenant == nil {
		return true
	}
	t, all := s.opts.Tenant(req)
	return all || t != "" && inc.Tenant == t
}

func (s *Service) listIncidents(w http.ResponseWriter, req *http.Request) {
	r := s.running(w)
	if r == nil {
		return
	}
	q := req.URL.Query()
	state := q.Get("state")
	if state != "" && state != "open" && state != "all" {
		if _, err := robot.ParseState(state); err != nil {
			problem(w, http.StatusBadRequest, "bad state", err.Error()+" (or open, all)")
			return
		}
	}
	site, rob, asset := q.Get("site"), q.Get("robot"), q.Get("asset")
	list := r.book.list(func(i *Incident) bool {
		switch {
		case state == "" || state == "open":
			if !i.State.Open() {
				return false
			}
		case state != "all" && string(i.State) != state:
			return false
		}
		return (site == "" || i.Site == site) && (rob == "" || i.Robot == rob) && (asset == "" || i.Asset == asset) && s.visible(req, i)
	})
	writeJSON(w, http.StatusOK, map[string]any{"incidents": list})
}

func (s *Service) getIncident(w http.ResponseWriter, req *http.Request) {
	r := s.running(w)
	if r == nil {
		return
	}
	inc, ok := r.book.get(req.PathValue("id"))
	if !ok || !s.visible(req, inc) {
		problem(w, http.StatusNotFound, "no such incident", "incident "+req.PathValue("id")+" does not exist or is not yours")
		return
	}
	writeJSON(w, http.StatusOK, inc)
}

// actOnIncident is POST …/incidents/{id}/{action} with an optional body
// {"note": "…"} (and "by" when no User hook names the user).
func (s *Service) actOnIncident(w http.ResponseWriter, req *http.Request) {
	r := s.running(w)
	if r == nil {
		return
	}
	id, action := req.PathValue("id"), req.PathValue("action")
	if _, ok := actionTarget(action); !ok {
		problem(w, http.StatusNotFound, "unknown action", fmt.Sprintf("action %q: want %s", action, strings.Join(Actions, ", ")))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 64<<10))
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "body too large", err.Error())
		return
	}
	c, err := decodeCommand(body)
	if err != nil {
		problem(w, http.StatusBadRequest, "bad body", err.Error())
		return
	}
	if s.opts.User != nil {
		if u := s.opts.User(req); u != "" {
			c.By = u
		} else {
			problem(w, http.StatusUnauthorized, "not authenticated", "acting on an incident needs an authenticated user")
			return
		}
	}
	inc, ok := r.book.get(id)
	if !ok || !s.visible(req, inc) {
		problem(w, http.StatusNotFound, "no such incident", "incident "+id+" does not exist or is not yours")
		return
	}
	inc, res, err := r.act(req.Context(), id, action, c.By, c.Note)
	switch {
	case errors.Is(err, errConflict):
		problem(w, http.StatusConflict, "action not allowed", err.Error())
		return
	case errors.Is(err, errNoActor):
		problem(w, http.StatusBadRequest, "who acts", err.Error())
		return
	case err != nil:
		problem(w, http.StatusInternalServerError, "action failed", err.Error())
		return
	}
	if res == resultDone {
		res = string(inc.State)
	}
	writeJSON(w, http.StatusOK, Reply{OK: true, Result: res, Incident: inc})
}

func (s *Service) listProgress(w http.ResponseWriter, req *http.Request) {
	r := s.running(w)
	if r == nil {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"robots": r.lastProgress()})
}

// RouteInfo is a followed robot's route, for a map: the route's
// waypoints in patrol order with their positions and checks, and the
// corridor half-width the service holds the robot to.
type RouteInfo struct {
	Robot     string       `json:"robot"`
	Site      string       `json:"site"`
	CorridorM float64      `json:"corridor_m"`
	LengthM   float64      `json:"length_m"`
	Route     *robot.Route `json:"route"`
}

// listRoutes is GET …/routes: every followed robot's route, by robot id.
// Routes are the campus's, like the robots' progress: every caller of the
// API sees them.
func (s *Service) listRoutes(w http.ResponseWriter, req *http.Request) {
	r := s.running(w)
	if r == nil {
		return
	}
	out := make([]RouteInfo, 0, len(r.trackers))
	for _, tr := range r.trackers { // built before the run starts, read-only after
		out = append(out, RouteInfo{Robot: tr.id, Site: tr.site, CorridorM: tr.tracker.CorridorM(), LengthM: tr.tracker.LengthM(), Route: tr.route})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Robot < out[j].Robot })
	writeJSON(w, http.StatusOK, map[string]any{"routes": out})
}

// UploadResult answers a picture upload.
type UploadResult struct {
	Hash        string `json:"hash"`
	URL         string `json:"url"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// uploadPicture is POST …/pictures with the picture's bytes as the body:
// 201 with the picture's hash and URL, 200 when it was there already.
func (s *Service) uploadPicture(w http.ResponseWriter, req *http.Request) {
	r := s.running(w)
	if r == nil {
		return
	}
	if s.opts.Tenant != nil {
		if _, all := s.opts.Tenant(req); !all {
			problem(w, http.StatusForbidden, "not allowed", "only robots and operators upload pictures")
			return
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, req.Body, s.cfg.Pictures.MaxBytes))
	if err != nil {
		problem(w, http.StatusRequestEntityTooLarge, "picture too large", fmt.Sprintf("a picture may have at most %d bytes", s.cfg.Pictures.MaxBytes))
		return
	}
	m, created, err := r.pics.put(data, req.Header.Get("Content-Type"))
	switch {
	case errors.Is(err, errTooBig):
		problem(w, http.StatusRequestEntityTooLarge, "picture too large", err.Error())
		return
	case errors.Is(err, errNotImage):
		problem(w, http.StatusUnsupportedMediaType, "not an image", err.Error())
		return
	case errors.Is(err, errFull):
		problem(w, http.StatusInsufficientStorage, "picture storage full", err.Error())
		return
	case err != nil:
		problem(w, http.StatusInternalServerError, "picture not stored", err.Error())
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.Header().Set("Location", PicturePath(m.Hash))
	writeJSON(w, status, UploadResult{Hash: m.Hash, URL: s.pictureURL(m.Hash), ContentType: m.ContentType, Size: m.Size})
}

// getPicture serves a picture: its type, a strong ETag (its hash) and,
// since the bytes of a hash never change, a year of caching.
func (s *Service) getPicture(w http.ResponseWriter, req *http.Request) {
	r := s.running(w)
	if r == nil {
		return
	}
	hx := strings.TrimPrefix(req.PathValue("hash"), "sha256:")
	if len(hx) != 64 || strings.Trim(hx, "0123456789abcdef") != "" {
		problem(w, http.StatusBadRequest, "bad picture hash", "want 64 lower-case hex digits (the SHA-256), optionally after sha256:")
		return
	}
	m, data, err := r.pics.get(hx)
	if errors.Is(err, os.ErrNotExist) {
		if u, ok := r.pics.where(hx); ok {
			http.Redirect(w, req, u, http.StatusFound)
			return
		}
		problem(w, http.StatusNotFound, "no such picture", "picture sha256:"+hx+" is not stored here")
		return
	}
	if err != nil {
		problem(w, http.StatusInternalServerError, "picture not readable", err.Error())
		return
	}
	w.Header().Set("Content-Type", m.ContentType)
	w.Header().Set("ETag", `"sha256-`+hx+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, req, "", time.Time{}, strings.NewReader(string(data)))
}

// openAPI is the OpenAPI 3.1 document of the service's routes.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the service's routes
// (service.Documented), which the node merges into its own.
func (s *Service) OpenAPI() []byte { return openAPI }
