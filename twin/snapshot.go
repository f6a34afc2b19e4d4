package twin

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/citymesh/citymesh/event"
)

// DefaultPrefix is the first level of the twin's topics.
const DefaultPrefix = "twin"

// AssetTopic returns the topic of an asset's retained state:
// {prefix}/{site}/{kind}/{asset}, e.g. twin/campus/room/b03-2.14.
func AssetTopic(prefix, site, kind, asset string) string {
	return prefix + "/" + site + "/" + kind + "/" + asset
}

// Snapshot is the payload of an asset's retained state on the bus: its
// liveness and the latest state of each of its points that has a value.
type Snapshot struct {
	Asset    string       `json:"asset"`
	Kind     string       `json:"kind"`
	Site     string       `json:"site"`
	Liveness Liveness     `json:"liveness"`
	Points   []PointState `json:"points"`
}

// takeDirty appends the assets changed since the last call to dst and
// marks them clean.
func (s *State) takeDirty(dst []int32) []int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.assets {
		if s.assets[i].dirty {
			s.assets[i].dirty = false
			dst = append(dst, int32(i))
		}
	}
	return dst
}

// markDirty marks assets changed again (their publication did not happen).
func (s *State) markDirty(assets []int32) {
	if len(assets) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range assets {
		s.assets[i].dirty = true
	}
}

// snapshotJSON returns asset i's topic and Snapshot as JSON, at now.
func (s *State) snapshotJSON(prefix string, i int32, now time.Time, srcs map[*event.Source][]byte) (string, []byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := &s.assets[i]
	a := e.a
	lv, err := json.Marshal(e.liveness(now))
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 0, 256+300*len(e.points))
	b = append(b, `{"asset":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"kind":`...)
	b = appendString(b, string(a.Kind))
	b = append(b, `,"site":`...)
	b = appendString(b, a.Site)
	b = append(b, `,"liveness":`...)
	b = append(b, lv...)
	b = append(b, `,"points":[`...)
	n := 0
	for _, pi := range e.points {
		if !s.points[pi].set {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = s.appendPoint(b, pi, srcs)
	}
	b = append(b, "]}"...)
	return AssetTopic(prefix, a.Site, string(a.Kind), a.ID), b, nil
}

// Snapshot returns asset id's Snapshot at now, as published on the bus.
func (s *State) Snapshot(id string, now time.Time) (Snapshot, bool) {
	i, ok := s.byAsset[id]
	if !ok {
		return Snapshot{}, false
	}
	_, b, err := s.snapshotJSON(DefaultPrefix, i, now, map[*event.Source][]byte{})
	if err != nil {
		return Snapshot{}, false
	}
	var sn Snapshot
	if err := json.Unmarshal(b, &sn); err != nil {
		return Snapshot{}, false
	}
	return sn, true
}

// Restore merges a Snapshot's JSON (a retained twin message) into the
// state: each point's value replaces the state's unless that is newer by
// observed time, and the liveness takes the newer times. Points the model
// does not have, or that belong to another asset, are skipped and
// counted in the error.
func (s *State) Restore(payload []byte) error {
	var sn Snapshot
	if err := json.Unmarshal(payload, &sn); err != nil {
		return fmt.Errorf("twin: snapshot: %w", err)
	}
	ai, ok := s.byAsset[sn.Asset]
	if !ok || string(s.assets[ai].a.Kind) != sn.Kind {
		return fmt.Errorf("%w: snapshot of %q (%s)", ErrUnknownAsset, sn.Asset, sn.Kind)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.assets[ai]
	skipped := 0
	for k := range sn.Points {
		ps := &sn.Points[k]
		pi, ok := s.byPoint[ps.ID]
		if !ok || s.points[pi].asset != ai || ps.Observed.IsZero() {
			skipped++
			continue
		}
		p := &s.points[pi]
		if p.set && ps.Observed.Before(p.observed) {
			continue
		}
		p.set, p.numeric, p.text, p.hasPos = true, ps.Value != nil, ps.Text, ps.Position != nil
		p.value = 0
		if ps.Value != nil {
			p.value = *ps.Value
		}
		if ps.Position != nil {
			p.pos = *ps.Position
		}
		p.observed, p.received, p.source = ps.Observed, ps.Received, ps.Source
	}
	l := sn.Liveness
	if l.LastSeen.After(a.lastSeen) {
		a.lastSeen = l.LastSeen
	}
	if l.LastReceived.After(a.lastReceived) {
		a.lastReceived = l.LastReceived
	}
	if l.Status != "" && !l.StatusTime.Before(a.statusTime) {
		a.status, a.reason, a.statusTime = event.State(l.Status), l.Reason, l.StatusTime
	}
	s.version.Add(1)
	if skipped > 0 {
		return fmt.Errorf("%w: snapshot of %q: %d points skipped", ErrUnknownPoint, sn.Asset, skipped)
	}
	return nil
}
