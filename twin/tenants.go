package twin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/citymesh/citymesh/bus"
	"github.com/citymesh/citymesh/event"
)

// TenantNamespace is the first level of a tenant's topic namespace on the
// broker: a client of tenant t sees $tenant/t/x as x (docs/security.md).
const TenantNamespace = "$tenant/"

// TenantTopic returns the topic of the copy of an asset's retained state
// in its tenant's namespace: $tenant/{tenant}/{topic}, which the tenant's
// MQTT clients read as {topic} (twin/{site}/{kind}/{asset}).
func TenantTopic(tenant, topic string) string {
	return TenantNamespace + tenant + "/" + topic
}

// publishTenantCopy publishes the snapshot of asset i, just published on
// topic, again in its tenant's namespace, if it has a tenant.
func (s *Service) publishTenantCopy(ctx context.Context, i int32, topic string, payload []byte) {
	tenant := s.state.assets[i].a.Tenant // read-only after NewState
	if tenant == "" {
		return
	}
	t := TenantTopic(tenant, topic)
	err := s.o.Bus.Publish(ctx, bus.Message{Topic: t, Payload: payload, QoS: event.QoS, Retain: true, ContentType: event.ContentType})
	if err != nil {
		s.publishErrors.Add(1)
		if ctx.Err() == nil {
			s.log.Warn("twin: publish", "topic", t, "err", err)
		}
		return
	}
	s.published.Add(1)
}

// Erasure says what EraseTenant erased.
type Erasure struct {
	// Assets is how many assets of the tenant had their state erased and
	// their retained snapshots cleared; Points how many of its points had
	// a value; Pending how many samples not yet handed to the history were
	// dropped; History whether the history's samples and events were
	// erased too (TenantData).
	Assets  int  `json:"assets"`
	Points  int  `json:"points"`
	Pending int  `json:"pending_samples"`
	History bool `json:"history"`
}

// EraseTenant erases what the twin holds of tenant: the values of its
// points and the liveness of its assets, the samples not yet handed to the
// history sink, and its assets' retained snapshots on the bus (an empty
// retained message on each topic, also in the tenant's namespace). The
// assets of other tenants that hold some of the tenant's points are
// published again without them. It does not touch the history sink: erase
// the history with history.DB.DeleteTenant. Events that arrive afterwards
// are kept as usual. Call it while Run runs or before it.
func (s *Service) EraseTenant(ctx context.Context, tenant string) (Erasure, error) {
	if tenant == "" {
		return Erasure{}, errors.New("twin: erase tenant: empty tenant")
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	var er Erasure
	s.smu.Lock()
	kept := s.pending[:0]
	for _, x := range s.pending {
		if x.Tenant == tenant {
			er.Pending++
			continue
		}
		kept = append(kept, x)
	}
	clear(s.pending[len(kept):])
	s.pending = kept
	s.smu.Unlock()

	st := s.state
	st.mu.Lock()
	var cleared []int32
	for i := range st.assets {
		a := &st.assets[i]
		if a.a.Tenant != tenant {
			continue
		}
		a.lastSeen, a.lastReceived, a.statusTime = time.Time{}, time.Time{}, time.Time{}
		a.status, a.reason, a.dirty = "", "", false
		cleared = append(cleared, int32(i))
	}
	for i := range st.points {
		p := &st.points[i]
		if p.p.Tenant != tenant {
			continue
		}
		if p.set {
			er.Points++
		}
		*p = pointEntry{p: p.p, asset: p.asset}
		if a := &st.assets[p.asset]; a.a.Tenant != tenant {
			a.dirty = true // published again by the next tick, without the point
		}
	}
	st.mu.Unlock()
	st.version.Add(1)
	er.Assets = len(cleared)

	var errs []error
	for _, i := range cleared {
		a := st.assets[i].a
		topic := AssetTopic(s.o.Prefix, a.Site, string(a.Kind), a.ID)
		for _, t := range []string{topic, TenantTopic(tenant, topic)} {
			if err := s.o.Bus.Publish(ctx, bus.Message{Topic: t, QoS: event.QoS, Retain: true}); err != nil {
				errs = append(errs, fmt.Errorf("twin: erase %s: %w", t, err))
			}
		}
	}
	s.log.Info("twin: tenant erased", "tenant", tenant, "assets", er.Assets, "points", er.Points, "pending_samples", er.Pending)
	return er, errors.Join(errs...)
}

// ExportTenant writes the state the twin holds of tenant to w as JSON
// Lines, one a line for each asset that is the tenant's or holds some of
// its points: {"kind":"asset","snapshot":{...}} with the asset's Snapshot
// as published retained on the bus (its liveness; of its points, those of
// the tenant that have a value).
func (s *Service) ExportTenant(ctx context.Context, tenant string, w io.Writer) error {
	if tenant == "" {
		return errors.New("twin: export tenant: empty tenant")
	}
	bw := bufio.NewWriter(w)
	now := s.o.Now()
	srcs := map[*event.Source][]byte{}
	for i := range s.state.assets {
		a := &s.state.assets[i]
		mixed := false // holds points of other tenants too
		ours := a.a.Tenant == tenant
		for _, pi := range a.points {
			if t := s.state.points[pi].p.Tenant; t == tenant {
				ours = true
			} else {
				mixed = true
			}
		}
		if !ours {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		_, b, err := s.state.snapshotJSON(s.o.Prefix, int32(i), now, srcs)
		if err != nil {
			return fmt.Errorf("twin: export %s: %w", tenant, err)
		}
		if mixed {
			var sn Snapshot
			if err := json.Unmarshal(b, &sn); err != nil {
				return fmt.Errorf("twin: export %s: %w", tenant, err)
			}
			sn.Points = slices.DeleteFunc(sn.Points, func(p PointState) bool { return p.Tenant != tenant })
			if b, err = json.Marshal(sn); err != nil {
				return fmt.Errorf("twin: export %s: %w", tenant, err)
			}
		}
		bw.WriteString(`{"kind":"asset","snapshot":`)
		bw.Write(b)
		if _, err := bw.WriteString("}\n"); err != nil {
			return fmt.Errorf("twin: export %s: %w", tenant, err)
		}
	}
	return bw.Flush()
}
