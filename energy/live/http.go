package live

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/service"
)

// APIPrefix is where the service's HTTP API is mounted.
const APIPrefix = "/api/v1/energy/"

// HTTPHandler serves the service's API under /api/v1/energy/:
//
//	GET invoices             the tenants' invoices of the current month (?period=YYYY-MM, ?site=)
//	GET invoices/{tenant}    one tenant's invoices, every month kept (?period=, ?site=)
//	GET esg                  ESG figures per site and month (?period=, ?site=)
//
// Config.Tenant (or SetAccess) scopes the invoices to the request's
// tenant, and the ESG figures to the sites it is a tenant of. Bad input is
// answered with an RFC 9457 problem (application/problem+json).
func (s *Service) HTTPHandler() http.Handler {
	mux := service.NewMux()
	mux.HandleFunc("GET "+APIPrefix+"invoices", s.listInvoices)
	mux.HandleFunc("GET "+APIPrefix+"invoices/{tenant}", s.tenantInvoices)
	mux.HandleFunc("GET "+APIPrefix+"esg", s.listESG)
	mux.HandleFunc(APIPrefix, func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "not found", "no such energy resource: "+r.URL.Path)
	})
	return mux
}

// InvoiceList is the answer of GET invoices and invoices/{tenant}.
type InvoiceList struct {
	Invoices []InvoiceEvent `json:"invoices"`
}

// ESGList is the answer of GET esg.
type ESGList struct {
	ESG []ESGEvent `json:"esg"`
}

// query reads ?period and ?site.
func query(w http.ResponseWriter, r *http.Request) (period, site string, ok bool) {
	q := r.URL.Query()
	period, site = q.Get("period"), q.Get("site")
	if period != "" {
		if _, err := time.Parse("2006-01", period); err != nil {
			problem(w, http.StatusBadRequest, "bad period", "period "+quote(period)+": want YYYY-MM")
			return "", "", false
		}
	}
	if site != "" {
		if err := event.ValidID(site); err != nil {
			problem(w, http.StatusBadRequest, "bad site", err.Error())
			return "", "", false
		}
	}
	return period, site, true
}

// SetAccess takes the node's access hooks (service.AccessSetter): with
// them the node serves the API to tenants' users too, each scoped to its
// tenant as Config.Tenant says. Call it before HTTPHandler.
func (s *Service) SetAccess(a service.Access) {
	if a.Tenant != nil {
		s.cfg.Tenant = a.Tenant
	}
}

func (s *Service) scope(r *http.Request) (tenant string, all bool) {
	if s.cfg.Tenant == nil {
		return "", true
	}
	return s.cfg.Tenant(r)
}

func (s *Service) listInvoices(w http.ResponseWriter, r *http.Request) {
	period, site, ok := query(w, r)
	if !ok {
		return
	}
	tenant, all := s.scope(r)
	out := InvoiceList{Invoices: []InvoiceEvent{}}
	s.view.RLock()
	for sid, ps := range s.view.invoices {
		if site != "" && sid != site {
			continue
		}
		p := period
		if p == "" {
			for k := range ps {
				p = max(p, k)
			}
		}
		for tid, ev := range ps[p] {
			if all || tid == tenant {
				out.Invoices = append(out.Invoices, ev)
			}
		}
	}
	s.view.RUnlock()
	sortInvoices(out.Invoices)
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) tenantInvoices(w http.ResponseWriter, r *http.Request) {
	period, site, ok := query(w, r)
	if !ok {
		return
	}
	id := r.PathValue("tenant")
	if err := event.ValidID(id); err != nil {
		problem(w, http.StatusBadRequest, "bad tenant", err.Error())
		return
	}
	tenant, all := s.scope(r)
	out := InvoiceList{Invoices: []InvoiceEvent{}}
	known := false
	s.view.RLock()
	for sid, site0 := range s.sites {
		for _, t := range site0.Tenants {
			known = known || (t.ID == id && (site == "" || sid == site))
		}
	}
	for sid, ps := range s.view.invoices {
		if site != "" && sid != site {
			continue
		}
		for p, ts := range ps {
			if period != "" && p != period {
				continue
			}
			if ev, ok := ts[id]; ok {
				out.Invoices = append(out.Invoices, ev)
			}
		}
	}
	s.view.RUnlock()
	if !known || (!all && tenant != id) {
		// A tenant's user learns nothing of other tenants, not even that
		// they exist.
		problem(w, http.StatusNotFound, "unknown tenant", "no tenant "+quote(id))
		return
	}
	sortInvoices(out.Invoices)
	writeJSON(w, http.StatusOK, out)
}

func (s *Service) listESG(w http.ResponseWriter, r *http.Request) {
	period, site, ok := query(w, r)
	if !ok {
		return
	}
	tenant, all := s.scope(r)
	out := ESGList{ESG: []ESGEvent{}}
	s.view.RLock()
	for sid, ps := range s.view.esg {
		if site != "" && sid != site {
			continue
		}
		if !all && !s.hasTenant(sid, tenant) {
			continue // a tenant's user sees the sites it is a tenant of
		}
		for p, ev := range ps {
			if period == "" || p == period {
				out.ESG = append(out.ESG, ev)
			}
		}
	}
	s.view.RUnlock()
	slices.SortFunc(out.ESG, func(a, b ESGEvent) int {
		if c := strings.Compare(a.Site, b.Site); c != 0 {
			return c
		}
		return strings.Compare(a.Period, b.Period)
	})
	writeJSON(w, http.StatusOK, out)
}

// hasTenant reports whether tenant is a tenant of site.
func (s *Service) hasTenant(site, tenant string) bool {
	for _, t := range s.sites[site].Tenants {
		if tenant != "" && t.ID == tenant {
			return true
		}
	}
	return false
}

func sortInvoices(evs []InvoiceEvent) {
	slices.SortFunc(evs, func(a, b InvoiceEvent) int {
		for _, c := range []int{strings.Compare(a.Site, b.Site), strings.Compare(a.Period, b.Period), strings.Compare(a.Invoice.Tenant, b.Invoice.Tenant)} {
			if c != 0 {
				return c
			}
		}
		return 0
	})
}

// quote returns s as a JSON string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		problem(w, http.StatusInternalServerError, "encoding failed", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
}

// problem writes an RFC 9457 problem details answer (service.WriteProblem):
// its title the status's, what went wrong and why in its detail.
func problem(w http.ResponseWriter, code int, what, detail string) {
	service.WriteProblem(w, nil, code, what+": "+detail)
}

// The node mounts the API and gives it the access hooks.
var (
	_ service.HTTPService  = (*Service)(nil)
	_ service.AccessSetter = (*Service)(nil)
)

// openAPI is the OpenAPI 3.1 document of the service's routes.
//
//go:embed openapi.json
var openAPI []byte

// OpenAPI returns the OpenAPI 3.1 document of the service's routes
// (service.Documented), which the node merges into its own.
func (s *Service) OpenAPI() []byte { return openAPI }
