package alarm

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/citymesh/citymesh/service"
)

// APIPrefix is where the alarm API is served.
const APIPrefix = "/api/v1/alarms"

// List is the body of GET /api/v1/alarms.
type List struct {
	Alarms []Alarm `json:"alarms"`
}

// CommandResult is the body of the answer to POST …/ack and …/clear.
type CommandResult struct {
	Result Result `json:"result"`
	Alarm  Alarm  `json:"alarm"`
}

// CommandBody is the optional body of POST …/ack and …/clear. Who acts is
// the authenticated user, never the body's.
type CommandBody struct {
	Comment string `json:"comment,omitempty"`
}

// Handler returns the HTTP API of the board's alarms, to be mounted at
// APIPrefix and APIPrefix+"/" (its routes carry the whole path):
//
//	GET  /api/v1/alarms?status=&severity=&site=&kind=&asset=&type=&originator=&acknowledged=&tenant=
//	GET  /api/v1/alarms/{id}
//	POST /api/v1/alarms/{id}/ack     {"comment": "..."} (optional)
//	POST /api/v1/alarms/{id}/clear
//
// access says whom each request is for: a tenant's user sees and acts on
// its tenant's alarms only (another's are 404, as if they did not exist),
// and the acting user is the audit trail's "by". Errors are RFC 9457
// problem details.
func (b *Board) Handler(access service.Access) http.Handler {
	if access.Tenant == nil || access.User == nil {
		access = service.AllAccess
	}
	h := &boardAPI{b: b, access: access}
	mux := service.NewMux()
	mux.HandleFunc("GET "+APIPrefix, h.list)
	mux.HandleFunc("GET "+APIPrefix+"/{id}", h.get)
	mux.HandleFunc("POST "+APIPrefix+"/{id}/{verb}", h.command)
	mux.HandleFunc(APIPrefix+"/", h.notFound)
	mux.HandleFunc(APIPrefix, h.notFound)
	return mux
}

type boardAPI struct {
	b      *Board
	access service.Access
}

// notFound answers what no route takes: 405 for a known path with another
// method, else 404.
func (h *boardAPI) notFound(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, APIPrefix), "/")
	parts := strings.Split(rest, "/")
	switch {
	case rest == "" || len(parts) == 1:
		w.Header().Set("Allow", "GET, HEAD")
		service.WriteProblem(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed here: "+w.Header().Get("Allow"))
	case len(parts) == 2 && (parts[1] == VerbAck || parts[1] == VerbClear):
		w.Header().Set("Allow", "POST")
		service.WriteProblem(w, r, http.StatusMethodNotAllowed, r.Method+" is not allowed here: POST")
	default:
		service.WriteProblem(w, r, http.StatusNotFound, "no such resource: "+r.URL.Path)
	}
}

// visible reports whether the request may see a.
func (h *boardAPI) visible(r *http.Request, a *Alarm) bool {
	tenant, all := h.access.Tenant(r)
	return all || tenant != "" && a.Tenant == tenant
}

var filterParams = []string{"status", "severity", "site", "kind", "asset", "type", "originator", "acknowledged", "tenant"}

func (h *boardAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if !contains(filterParams, k) {
			service.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (known: %s)", k, strings.Join(filterParams, ", ")))
			return
		}
		if len(q[k]) > 1 {
			service.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("query parameter %q given %d times", k, len(q[k])))
			return
		}
	}
	f := Filter{Site: q.Get("site"), Kind: q.Get("kind"), Asset: q.Get("asset"), Type: q.Get("type"),
		Originator: q.Get("originator"), Tenant: q.Get("tenant")}
	switch s := Status(q.Get("status")); s {
	case "", Active, Cleared:
		f.Status = s
	default:
		service.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("status %q: want active or cleared", s))
		return
	}
	if v := q.Get("severity"); v != "" {
		for _, s := range strings.Split(v, ",") {
			if !Severity(s).Valid() {
				service.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("severity %q: want critical, major, minor, warning or indeterminate (several separated by commas)", s))
				return
			}
			f.Severities = append(f.Severities, Severity(s))
		}
	}
	if v := q.Get("acknowledged"); v != "" {
		ack, err := strconv.ParseBool(v)
		if err != nil {
			service.WriteProblem(w, r, http.StatusBadRequest, fmt.Sprintf("acknowledged %q: want true or false", v))
			return
		}
		f.Acknowledged = &ack
	}
	tenant, all := h.access.Tenant(r)
	if !all {
		if tenant == "" || f.Tenant != "" && f.Tenant != tenant {
			writeJSON(w, http.StatusOK, List{Alarms: []Alarm{}})
			return
		}
		f.Tenant = tenant
	}
	writeJSON(w, http.StatusOK, List{Alarms: h.b.List(f)})
}

func (h *boardAPI) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	a, ok := h.b.Get(id)
	if !ok || !h.visible(r, &a) {
		service.WriteProblem(w, r, http.StatusNotFound, "no open alarm "+id)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (h *boardAPI) command(w http.ResponseWriter, r *http.Request) {
	id, verb := r.PathValue("id"), r.PathValue("verb")
	if verb != VerbAck && verb != VerbClear {
		service.WriteProblem(w, r, http.StatusNotFound, "no such resource: "+r.URL.Path+" (commands: ack, clear)")
		return
	}
	var body CommandBody
	raw, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		service.WriteProblem(w, r, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	if len(raw) > 64<<10 {
		service.WriteProblem(w, r, http.StatusRequestEntityTooLarge, "the body is larger than 64 KiB")
		return
	}
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			service.WriteProblem(w, r, http.StatusBadRequest, `body: want {"comment": "..."} (optional): `+err.Error())
			return
		}
	}
	if a, ok := h.b.Get(id); !ok || !h.visible(r, &a) {
		service.WriteProblem(w, r, http.StatusNotFound, "no open alarm "+id)
		return
	}
	a, res, err := h.b.Command(r.Context(), id, verb, h.access.User(r), body.Comment)
	switch {
	case errors.Is(err, ErrNotFound):
		service.WriteProblem(w, r, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrTimeout):
		service.WriteProblem(w, r, http.StatusGatewayTimeout, err.Error())
	case errors.Is(err, ErrInvalid):
		service.WriteProblem(w, r, http.StatusBadRequest, err.Error())
	case err != nil:
		service.WriteProblem(w, r, http.StatusBadGateway, err.Error())
	default:
		writeJSON(w, http.StatusOK, CommandResult{Result: res, Alarm: a})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		service.WriteProblem(w, nil, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// openAPI is the OpenAPI 3.1 document of the alarm API.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the alarm API (Handler's
// routes), which the node merges into its own.
func OpenAPI() []byte { return openAPI }
