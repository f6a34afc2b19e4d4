package live

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/citymesh/citymesh/robot"
	"github.com/citymesh/citymesh/service"
)

// Incident is an incident as the service keeps and publishes it: package
// robot's incident (lifecycle, audit trail) with where it is and the
// pictures the robot took of it.
type Incident struct {
	robot.Incident
	// Site and Robot say where and by whom the anomaly was found.
	Site  string `json:"site"`
	Robot string `json:"robot"`
	// Tenant owns the asset (Config.Owners); empty for none.
	Tenant string `json:"tenant,omitempty"`
	// Seq numbers the incidents of one (site, asset, kind), from 1.
	Seq int `json:"seq"`
	// Pictures are the pictures of the anomalies, oldest first, at most
	// Config.MaxPicturesPerIncident of the latest.
	Pictures []PictureRef `json:"pictures,omitempty"`
	// Alarm is the topic of the incident's alarm.
	Alarm string `json:"alarm"`
}

// PictureRef is a picture of an incident: its hash, where to fetch it, and
// the check it was taken at.
type PictureRef struct {
	Hash  string    `json:"hash"`
	URL   string    `json:"url"`
	Time  time.Time `json:"time"`
	Check string    `json:"check,omitempty"`
}

// Final reports whether the incident is closed or cancelled: nothing can
// happen to it any more.
func (i *Incident) Final() bool {
	return i.State == robot.StateClosed || i.State == robot.StateCancelled
}

func (i *Incident) clone() *Incident {
	c := *i
	c.Audit = slices.Clone(i.Audit)
	c.Pictures = slices.Clone(i.Pictures)
	c.Incident.Pictures = nil
	return &c
}

// keyMeta is what the book keeps per (site, asset, kind).
type keyMeta struct {
	// Seq is the number of incidents opened; Open the id of the open one
	// (new, acknowledged or in progress), Last the latest one's.
	Seq  int    `json:"seq"`
	Open string `json:"open,omitempty"`
	Last string `json:"last,omitempty"`
	// LastEnd is when the latest incident stopped being open (resolved
	// or cancelled): an anomaly observed at or before it belongs to that
	// incident, one after it opens the next.
	LastEnd time.Time `json:"last_end,omitzero"`
	// Ended is the id of the incident that ended at LastEnd.
	Ended string `json:"ended,omitempty"`
}

// finding is one anomaly as the book records it.
type finding struct {
	robot.Anomaly
	Site, Robot string
	// Dedup is the anomaly's source key: the same observation delivered
	// again has the same key and time.
	Dedup      string
	PictureURL string
	// CheckKind is the kind of the check that found it ("" for a corridor
	// excursion).
	CheckKind robot.CheckKind
}

// Outcome of recording an anomaly, beyond robot's opened and updated.
const (
	// outcomeLate: the anomaly was observed while an incident now resolved
	// or cancelled was open; it counts on that incident.
	outcomeLate robot.Outcome = "late"
)

// book is the service's incidents, kept in its state. Anomalies are
// merged into incidents so that the result depends on the set of anomalies
// and people's actions, not on the order the anomalies arrive in: an
// incident's count, first and last sighting, severity and pictures are a
// count, a minimum, a maximum and sets.
type book struct {
	st      service.State
	dedup   *service.Dedup
	owners  map[string]string
	actor   string
	maxPics int
	prefix  string // alarm topic prefix

	mu    sync.Mutex
	byID  map[string]*Incident
	keys  map[string]*keyMeta
	order []string // ids in the order they were first stored
}

// State keys under the book's state.
const (
	stKey  = "key/"  // + site/asset/kind: keyMeta
	stInc  = "inc/"  // + id: Incident
	stGone = "gone/" // + id: a final incident whose retained message is still to be removed
)

func openBook(st service.State, window time.Duration, owners map[string]string, actor string, maxPics int) (*book, error) {
	dd, err := service.NewDedup(st.Sub("seen"), window)
	if err != nil {
		return nil, err
	}
	b := &book{st: st, dedup: dd, owners: owners, actor: actor, maxPics: maxPics, prefix: "alarm",
		byID: map[string]*Incident{}, keys: map[string]*keyMeta{}}
	err = st.Scan(stKey, func(k string, v []byte) error {
		var m keyMeta
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		b.keys[strings.TrimPrefix(k, stKey)] = &m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("robot incidents: load: %w", err)
	}
	var all []*Incident
	err = st.Scan(stInc, func(k string, v []byte) error {
		var inc Incident
		if err := json.Unmarshal(v, &inc); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		all = append(all, &inc)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("robot incidents: load: %w", err)
	}
	sort.Slice(all, func(i, j int) bool {
		if !all[i].OpenedAt.Equal(all[j].OpenedAt) {
			return all[i].OpenedAt.Before(all[j].OpenedAt)
		}
		return all[i].ID < all[j].ID
	})
	for _, inc := range all {
		b.byID[inc.ID] = inc
		b.order = append(b.order, inc.ID)
	}
	return b, nil
}

func metaKey(site, asset string, kind robot.AnomalyKind) string {
	return site + "/" + asset + "/" + string(kind)
}

// incidentID is an incident's id: derived from what it is about and its
// number, so that the same anomalies give the same ids whatever order they
// arrive in (and after a restart).
func incidentID(site, asset string, kind robot.AnomalyKind, seq int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s\x00%s\x00%d", site, asset, kind, seq)))
	return "inc-" + hex.EncodeToString(h[:8])
}

// record files an anomaly: it joins the open incident of its (site,
// asset, kind), or the latest one if it was observed before that one
// ended, or opens a new one. A redelivered anomaly (same source key and
// time) changes nothing: verdict Duplicate (or Stale, when older than the
// dedup window).
func (b *book) record(f finding) (*Incident, robot.Outcome, service.Verdict, error) {
	if f.Asset == "" || f.Kind == "" || f.Severity.Rank() == 0 {
		return nil, "", service.New, fmt.Errorf("robot incidents: anomaly %q on %q with severity %q is incomplete", f.Kind, f.Asset, f.Severity)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var out *Incident
	var outcome robot.Outcome
	var meta *keyMeta
	mk := metaKey(f.Site, f.Asset, f.Kind)
	v, err := b.dedup.Apply(f.Dedup, f.Time, func(batch *service.Batch) error {
		m := keyMeta{}
		if cur := b.keys[mk]; cur != nil {
			m = *cur
		}
		switch {
		case !m.LastEnd.IsZero() && !f.Time.After(m.LastEnd) && b.byID[m.Ended] == nil:
			// It belongs to an incident closed and pruned long ago.
			return errPruned
		case m.Ended != "" && !f.Time.After(m.LastEnd):
			out, outcome = b.byID[m.Ended].clone(), outcomeLate
			b.merge(out, f)
		case m.Open != "":
			out, outcome = b.byID[m.Open].clone(), robot.Updated
			b.merge(out, f)
		default:
			m.Seq++
			id := incidentID(f.Site, f.Asset, f.Kind, m.Seq)
			m.Open, m.Last = id, id
			out, outcome = &Incident{Site: f.Site, Robot: f.Robot, Tenant: b.owners[f.Asset], Seq: m.Seq,
				Alarm: alarmKey(f.Site, f.Robot, f.Asset, f.Kind, f.checkKind()).Topic(b.prefix)}, robot.Opened
			out.ID, out.Asset, out.Kind, out.State, out.Severity = id, f.Asset, f.Kind, robot.StateNew, f.Severity
			out.OpenedAt, out.LastSeenAt, out.UpdatedAt = f.Time, f.Time, f.Time
			out.Audit = []robot.AuditEntry{{Time: f.Time, Actor: b.actor, Action: robot.ActionOpen, To: robot.StateNew, Note: f.Reason}}
			b.merge(out, f)
			out.Count = 1
		}
		meta = &m
		return b.write(batch, out, meta, false)
	})
	if errors.Is(err, errPruned) {
		return nil, "", service.Stale, nil
	}
	if err != nil || v != service.New {
		return nil, "", v, err
	}
	b.install(out, meta)
	return out.clone(), outcome, v, nil
}

// checkKind is the kind of check the finding came from ("" for a
// corridor excursion).
func (f finding) checkKind() robot.CheckKind { return f.CheckKind }

// merge adds an anomaly to an incident, order-independently.
func (b *book) merge(inc *Incident, f finding) {
	inc.Count++
	if f.Time.Before(inc.OpenedAt) {
		inc.OpenedAt = f.Time
		inc.Audit[0].Time = f.Time
		inc.Audit[0].Note = f.Reason
		sortAudit(inc.Audit)
	}
	if f.Time.After(inc.LastSeenAt) || f.Time.Equal(inc.LastSeenAt) && f.Check >= inc.Check {
		inc.LastSeenAt = f.Time
		inc.Waypoint, inc.Check = f.Waypoint, f.Check
		inc.Observed, inc.Expected, inc.Reason = f.Observed, f.Expected, f.Reason
	}
	if f.Time.After(inc.UpdatedAt) {
		inc.UpdatedAt = f.Time
	}
	if f.Severity.Rank() > inc.Severity.Rank() {
		inc.Severity = f.Severity
	}
	if f.Picture == "" || slices.ContainsFunc(inc.Pictures, func(p PictureRef) bool { return p.Hash == f.Picture }) {
		return
	}
	inc.Pictures = append(inc.Pictures, PictureRef{Hash: f.Picture, URL: f.PictureURL, Time: f.Time, Check: f.Check})
	sort.SliceStable(inc.Pictures, func(i, j int) bool {
		if !inc.Pictures[i].Time.Equal(inc.Pictures[j].Time) {
			return inc.Pictures[i].Time.Before(inc.Pictures[j].Time)
		}
		return inc.Pictures[i].Hash < inc.Pictures[j].Hash
	})
	if max := b.maxPics; max > 0 && len(inc.Pictures) > max {
		inc.Pictures = slices.Delete(inc.Pictures, 0, len(inc.Pictures)-max)
	}
}

// sortAudit orders the audit trail by time, the opening entry first among
// equal times.
func sortAudit(a []robot.AuditEntry) {
	sort.SliceStable(a, func(i, j int) bool { return a[i].Time.Before(a[j].Time) })
}

func (b *book) write(batch *service.Batch, inc *Incident, m *keyMeta, gone bool) error {
	v, err := json.Marshal(inc)
	if err != nil {
		return err
	}
	batch.Set(b.st, stInc+inc.ID, v)
	if m != nil {
		mv, err := json.Marshal(m)
		if err != nil {
			return err
		}
		batch.Set(b.st, stKey+metaKey(inc.Site, inc.Asset, inc.Kind), mv)
	}
	if gone {
		batch.Set(b.st, stGone+inc.ID, nil)
	}
	return nil
}

func (b *book) install(inc *Incident, m *keyMeta) {
	if _, ok := b.byID[inc.ID]; !ok {
		b.order = append(b.order, inc.ID)
	}
	b.byID[inc.ID] = inc
	if m != nil {
		b.keys[metaKey(inc.Site, inc.Asset, inc.Kind)] = m
	}
}

// Errors of act, told apart by the HTTP API and the commands.
var (
	errNoIncident = errors.New("no such incident")
	errAction     = errors.New("unknown action")
	errConflict   = errors.New("not allowed in the incident's state")
	errNoActor    = errors.New("needs who does it (by)")
	errPruned     = errors.New("the incident was pruned")
)

// Results of act.
const (
	resultDone      = "done"
	resultUnchanged = "unchanged"
)

// actionTarget is the state an action moves an incident to.
func actionTarget(action string) (robot.State, bool) {
	switch action {
	case robot.ActionAcknowledge:
		return robot.StateAcknowledged, true
	case robot.ActionStart, robot.ActionReopen:
		return robot.StateInProgress, true
	case robot.ActionResolve:
		return robot.StateResolved, true
	case robot.ActionClose:
		return robot.StateClosed, true
	case robot.ActionCancel:
		return robot.StateCancelled, true
	}
	return "", false
}

// Actions lists the actions people take on incidents.
var Actions = []string{robot.ActionAcknowledge, robot.ActionStart, robot.ActionResolve, robot.ActionClose, robot.ActionCancel, robot.ActionReopen}

// act carries out a person's action on incident id at time at: the move
// must be in robot's transition table (an action that finds the incident
// already in its target state is "unchanged": a redelivered command). It
// returns the incident after the action, its state before, and whether
// it changed.
func (b *book) act(id, action, by, note string, at time.Time) (*Incident, robot.State, string, error) {
	to, ok := actionTarget(action)
	if !ok {
		return nil, "", "", fmt.Errorf("action %q: %w (want %s)", action, errAction, strings.Join(Actions, ", "))
	}
	if strings.TrimSpace(by) == "" {
		return nil, "", "", fmt.Errorf("incident %s: %s %w", id, action, errNoActor)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.byID[id]
	if !ok {
		return nil, "", "", fmt.Errorf("incident %s: %w", id, errNoIncident)
	}
	from := cur.State
	if from == to && action != robot.ActionReopen {
		return cur.clone(), from, resultUnchanged, nil
	}
	if !robot.CanTransition(from, to) || action == robot.ActionReopen && from != robot.StateResolved ||
		action == robot.ActionStart && from == robot.StateResolved {
		return nil, from, "", fmt.Errorf("%w: %w", errConflict, &robot.TransitionError{Incident: id, From: from, To: to})
	}
	mk := metaKey(cur.Site, cur.Asset, cur.Kind)
	m := keyMeta{}
	if km := b.keys[mk]; km != nil {
		m = *km
	}
	if from == robot.StateResolved && to == robot.StateInProgress && (m.Last != id || m.Open != "") {
		return nil, from, "", fmt.Errorf("incident %s: %w: a later incident of %s %s exists", id, errConflict, cur.Asset, cur.Kind)
	}
	if at.Before(cur.UpdatedAt) {
		at = cur.UpdatedAt
	}
	inc := cur.clone()
	inc.Audit = append(inc.Audit, robot.AuditEntry{Time: at, Actor: by, Action: action, From: from, To: to, Note: note})
	inc.State, inc.UpdatedAt = to, at
	if from == robot.StateNew && to != robot.StateCancelled {
		inc.AcknowledgedAt = at
	}
	switch to {
	case robot.StateResolved:
		inc.ResolvedAt = at
	case robot.StateInProgress:
		if from == robot.StateResolved {
			inc.ResolvedAt = time.Time{}
			inc.ReopenCount++
			m.Open = id
		}
	case robot.StateClosed:
		inc.ClosedAt = at
	case robot.StateCancelled:
		inc.CancelledAt = at
	}
	if !to.Open() && m.Open == id {
		m.Open, m.Ended = "", id
		if at.After(m.LastEnd) {
			m.LastEnd = at
		}
	}
	var batch service.Batch
	if err := b.write(&batch, inc, &m, inc.Final()); err != nil {
		return nil, from, "", err
	}
	if err := b.st.Apply(&batch); err != nil {
		return nil, from, "", fmt.Errorf("incident %s: %w", id, err)
	}
	b.install(inc, &m)
	return inc.clone(), from, resultDone, nil
}

// get returns a copy of incident id.
func (b *book) get(id string) (*Incident, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	inc, ok := b.byID[id]
	if !ok {
		return nil, false
	}
	return inc.clone(), true
}

// byKey returns the id of the open incident of (site, asset, kind), or the
// latest one.
func (b *book) byKey(site, asset string, kind robot.AnomalyKind) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.keys[metaKey(site, asset, kind)]
	if m == nil {
		return "", false
	}
	if m.Open != "" {
		return m.Open, true
	}
	return m.Last, m.Last != ""
}

// list returns copies of the incidents that keep returns true for, oldest
// first.
func (b *book) list(keep func(*Incident) bool) []*Incident {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []*Incident{}
	for _, id := range b.order {
		if inc := b.byID[id]; keep(inc) {
			out = append(out, inc.clone())
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].OpenedAt.Equal(out[j].OpenedAt) {
			return out[i].OpenedAt.Before(out[j].OpenedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// gone lists the final incidents whose retained message may still be
// there, and forgetGone forgets one once it was removed.
func (b *book) gone() []string {
	var ids []string
	b.st.Scan(stGone, func(k string, _ []byte) error {
		ids = append(ids, strings.TrimPrefix(k, stGone))
		return nil
	})
	return ids
}

func (b *book) forgetGone(id string) error {
	var batch service.Batch
	batch.Delete(b.st, stGone+id)
	return b.st.Apply(&batch)
}

// prune removes the incidents closed or cancelled before limit, and
// returns how many. Their keys keep their numbering and the end of the
// latest incident, so an anomaly from before that end is still not a new
// incident.
func (b *book) prune(limit time.Time) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	kept := b.order[:0]
	for _, id := range b.order {
		inc := b.byID[id]
		end := inc.ClosedAt
		if inc.State == robot.StateCancelled {
			end = inc.CancelledAt
		}
		if !inc.Final() || !end.Before(limit) {
			kept = append(kept, id)
			continue
		}
		var batch service.Batch
		batch.Delete(b.st, stInc+id)
		mk := metaKey(inc.Site, inc.Asset, inc.Kind)
		m := b.keys[mk]
		if m != nil && (m.Ended == id || m.Last == id) {
			c := *m
			if c.Ended == id {
				c.Ended = ""
			}
			if c.Last == id {
				c.Last = ""
			}
			mv, _ := json.Marshal(&c)
			batch.Set(b.st, stKey+mk, mv)
			m = &c
		}
		if err := b.st.Apply(&batch); err != nil {
			b.order = append(kept, b.order[len(kept)+n:]...)
			return n, err
		}
		if m != nil {
			b.keys[mk] = m
		}
		delete(b.byID, id)
		n++
	}
	b.order = kept
	return n, nil
}
