package twin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/citymesh/citymesh/event"
	"github.com/citymesh/citymesh/twin/history"
)

// TenantAdmin exports and erases a tenant's data, for the API's
// administrators' routes.
type TenantAdmin interface {
	// ExportTenant writes everything held of tenant to w as JSON Lines.
	ExportTenant(ctx context.Context, tenant string, w io.Writer) error
	// EraseTenant erases everything held of tenant.
	EraseTenant(ctx context.Context, tenant string) (Erasure, error)
}

// TenantData is the TenantAdmin of a twin and its history: the state,
// retained snapshots and pending samples of Service, and the samples and
// events of History (nil: none).
type TenantData struct {
	Service *Service
	History *history.DB
}

// ExportTenant writes the tenant's assets ({"kind":"asset"} lines, see
// Service.ExportTenant), then its history's samples and events
// ({"kind":"sample"} and {"kind":"event"} lines, history.ExportRecord).
func (d TenantData) ExportTenant(ctx context.Context, tenant string, w io.Writer) error {
	if err := d.Service.ExportTenant(ctx, tenant, w); err != nil {
		return err
	}
	if d.History == nil {
		return nil
	}
	return d.History.ExportTenant(ctx, tenant, w)
}

// EraseTenant erases the tenant from the twin (Service.EraseTenant), then
// from the history (history.DB.DeleteTenant: samples and events).
func (d TenantData) EraseTenant(ctx context.Context, tenant string) (Erasure, error) {
	er, err := d.Service.EraseTenant(ctx, tenant)
	if d.History != nil {
		if herr := d.History.DeleteTenant(ctx, tenant); herr != nil {
			err = errors.Join(err, herr)
		} else {
			er.History = true
		}
	}
	return er, err
}

// tenantAdmin checks that the request may export or erase a tenant, and
// returns the tenant, or false after answering.
func (h *api) tenantAdmin(w http.ResponseWriter, r *http.Request) (string, bool) {
	if h.o.Tenants == nil {
		writeError(w, r, http.StatusNotFound, "tenant export and erasure are not served here")
		return "", false
	}
	if h.o.Admin == nil || !h.o.Admin(r) {
		writeError(w, r, http.StatusForbidden, "only administrators export or erase a tenant")
		return "", false
	}
	tenant := r.PathValue("tenant")
	if err := event.ValidID(tenant); err != nil {
		writeError(w, r, http.StatusBadRequest, fmt.Sprintf("tenant: %v", err))
		return "", false
	}
	return tenant, true
}

// exportTenant serves GET …/tenants/{tenant}/export: JSON Lines of the
// tenant's assets, samples and events.
func (h *api) exportTenant(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenantAdmin(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="`+tenant+`.jsonl"`)
	if err := h.o.Tenants.ExportTenant(r.Context(), tenant, w); err != nil {
		// The status is sent: cut the response short, so that the client
		// sees a broken transfer rather than a complete export.
		slog.Warn("twin: export tenant", "tenant", tenant, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// eraseTenant serves DELETE …/tenants/{tenant}.
func (h *api) eraseTenant(w http.ResponseWriter, r *http.Request) {
	tenant, ok := h.tenantAdmin(w, r)
	if !ok {
		return
	}
	er, err := h.o.Tenants.EraseTenant(r.Context(), tenant)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, err.Error())
		return
	}
	b, _ := json.Marshal(struct {
		Tenant string `json:"tenant"`
		Erasure
	}{tenant, er})
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(b, '\n'))
}
