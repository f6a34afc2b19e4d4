package robot

import (
	"fmt"
	"math"
	"time"

	"github.com/paulmach/orb"
)

// Fix is one position report of the robot.
type Fix struct {
	Time time.Time `json:"time"`
	Lat  float64   `json:"lat"`
	Lon  float64   `json:"lon"`
}

// TrackerConfig tunes a Tracker. The zero value takes the corridor and
// arrival radius from the route and a look-ahead of DefaultLookahead.
type TrackerConfig struct {
	// CorridorM overrides the route's corridor half-width when positive.
	CorridorM float64
	// ArrivalM overrides the route's default arrival radius when positive.
	ArrivalM float64
	// LookaheadM is how far ahead along the route, in metres from the
	// previous position, segments are searched for the nearest one.
	LookaheadM float64
}

// DefaultLookaheadM is the search distance ahead when
// TrackerConfig.LookaheadM is zero.
const DefaultLookaheadM = 25.0

// Position is what a Tracker makes of one Fix.
type Position struct {
	Time time.Time `json:"time"`
	Lat  float64   `json:"lat"`
	Lon  float64   `json:"lon"`
	// Segment is the index of the current segment, from waypoint From to
	// waypoint To.
	Segment int    `json:"segment"`
	From    string `json:"from"`
	To      string `json:"to"`
	// DeviationM is the signed distance to the nearest point of the
	// current segment: positive right of the direction of travel,
	// negative left.
	DeviationM float64 `json:"deviation_m"`
	// InCorridor is |DeviationM| ≤ the corridor half-width.
	InCorridor bool `json:"in_corridor"`
	// AlongM is the distance along the route to the foot of the
	// perpendicular; Progress is AlongM over the route length.
	AlongM   float64 `json:"along_m"`
	Progress float64 `json:"progress"`
	// Next is the id of the first waypoint not yet reached or missed.
	Next string `json:"next,omitempty"`
	// Reached and Missed list the waypoints decided by this fix.
	Reached []string `json:"reached,omitempty"`
	Missed  []string `json:"missed,omitempty"`
}

// WaypointState is the outcome of a waypoint on a patrol.
type WaypointState string

// Waypoint outcomes.
const (
	// WaypointPending: not decided yet (the robot has not got there).
	WaypointPending WaypointState = "not_reached"
	// WaypointReached: a fix came within the waypoint's arrival radius.
	WaypointReached WaypointState = "reached"
	// WaypointMissed: the robot's progress passed the waypoint by more
	// than its arrival radius without a fix within it.
	WaypointMissed WaypointState = "missed"
)

// WaypointStatus is the outcome of one waypoint.
type WaypointStatus struct {
	ID    string        `json:"id"`
	Name  string        `json:"name,omitempty"`
	State WaypointState `json:"state"`
	// ReachedAt is the time of the first fix within the arrival radius.
	ReachedAt time.Time `json:"reached_at,omitzero"`
	// ClosestM is the closest approach seen while the waypoint was in the
	// tracker's window; −1 when it never was.
	ClosestM float64 `json:"closest_m"`
}

// Tracker follows a robot's fixes along a route. Build it with NewTracker
// and feed fixes in time order with Update. A Tracker is not safe for
// concurrent use.
type Tracker struct {
	route     *Route
	corridor  float64
	lookahead float64
	proj      projection
	pts       []vec     // projected waypoints
	dir       []vec     // segment direction vectors
	l2        []float64 // squared segment lengths
	cum       []float64 // along-route distance at each waypoint
	tol       []float64 // arrival radius per waypoint
	total     float64

	seg       int
	along     float64
	decided   int // waypoints before this index are reached or missed
	state     []WaypointState
	reachedAt []time.Time
	closest   []float64
	last      time.Time
	started   bool
}

// NewTracker prepares a tracker for the route. The route must be valid
// (ReadRoute validates; call Route.Validate on routes built in code).
func NewTracker(r *Route, cfg TrackerConfig) (*Tracker, error) {
	if r == nil || len(r.Waypoints) < 2 {
		return nil, fmt.Errorf("tracker: route needs at least 2 waypoints")
	}
	t := &Tracker{route: r, corridor: r.CorridorM, lookahead: cfg.LookaheadM}
	if cfg.CorridorM > 0 {
		t.corridor = cfg.CorridorM
	}
	if t.corridor <= 0 || math.IsNaN(t.corridor) {
		t.corridor = DefaultCorridorM
	}
	if !(t.lookahead > 0) || math.IsInf(t.lookahead, 0) {
		t.lookahead = DefaultLookaheadM
	}
	arrival := r.ArrivalM
	if cfg.ArrivalM > 0 {
		arrival = cfg.ArrivalM
	}
	if arrival <= 0 || math.IsNaN(arrival) {
		arrival = DefaultArrivalM
	}
	// Centre the projection on the middle of the route's bounding box.
	line := make(orb.LineString, len(r.Waypoints))
	for i, w := range r.Waypoints {
		if !validPoint(w.Lat, w.Lon) {
			return nil, fmt.Errorf("tracker: waypoint %q: position (%v, %v) out of range", w.ID, w.Lat, w.Lon)
		}
		line[i] = w.Point().orb()
	}
	centre := line.Bound().Center()
	t.proj = newProjection(centre.Lat(), centre.Lon())
	n := len(r.Waypoints)
	t.pts = make([]vec, n)
	t.cum = make([]float64, n)
	t.tol = make([]float64, n)
	t.dir = make([]vec, n-1)
	t.l2 = make([]float64, n-1)
	for i, w := range r.Waypoints {
		t.pts[i] = t.proj.project(w.Lat, w.Lon)
		t.tol[i] = arrival
		if w.ToleranceM > 0 {
			t.tol[i] = w.ToleranceM
		}
	}
	for i := 0; i < n-1; i++ {
		d := vec{t.pts[i+1].x - t.pts[i].x, t.pts[i+1].y - t.pts[i].y}
		t.dir[i] = d
		t.l2[i] = d.x*d.x + d.y*d.y
		t.cum[i+1] = t.cum[i] + math.Sqrt(t.l2[i])
	}
	t.total = t.cum[n-1]
	t.Reset()
	return t, nil
}

// Reset starts a new patrol on the same route.
func (t *Tracker) Reset() {
	n := len(t.pts)
	t.seg, t.along, t.decided, t.started, t.last = 0, 0, 0, false, time.Time{}
	t.state = make([]WaypointState, n)
	t.reachedAt = make([]time.Time, n)
	t.closest = make([]float64, n)
	for i := range t.state {
		t.state[i] = WaypointPending
		t.closest[i] = -1
	}
}

// CorridorM returns the corridor half-width the tracker uses.
func (t *Tracker) CorridorM() float64 { return t.corridor }

// LengthM returns the route length in the tracker's projection.
func (t *Tracker) LengthM() float64 { return t.total }

// Update places one fix on the route. Fixes must come in time order; a fix
// out of range or earlier than the previous one is an error and leaves the
// tracker unchanged.
//
// The first fix is placed on the first segment, in route order, whose
// corridor holds it, or else on the nearest segment. Later fixes search the
// segments from one corridor width behind the previous position to
// LookaheadM ahead of it, and take the nearest (the earlier one on a tie).
// If that one is outside the corridor, the first segment further ahead
// whose corridor holds the fix is taken (the robot rejoined the route
// ahead); if there is none, the robot is off route and stays on the
// nearest segment of the window. Searching near the previous position
// keeps a loop route, whose end passes its start, from jumping to the end.
func (t *Tracker) Update(f Fix) (Position, error) {
	if !validPoint(f.Lat, f.Lon) {
		return Position{}, fmt.Errorf("tracker: fix at %s: position (%v, %v) out of range", f.Time.Format(time.RFC3339), f.Lat, f.Lon)
	}
	if t.started && f.Time.Before(t.last) {
		return Position{}, fmt.Errorf("tracker: fix at %s is earlier than the previous fix at %s", f.Time.Format(time.RFC3339), t.last.Format(time.RFC3339))
	}
	p := t.proj.project(f.Lat, f.Lon)
	nseg := len(t.dir)
	best, bestT, bestD := -1, 0.0, 0.0
	lo, hi := 0, nseg-1
	if !t.started {
		nb, nt, nd := -1, 0.0, 0.0
		for s := 0; s < nseg; s++ {
			ft, d := segmentFoot(t.pts[s], t.dir[s], t.l2[s], p)
			if math.Abs(d) <= t.corridor {
				best, bestT, bestD = s, ft, d
				break
			}
			if nb < 0 || math.Abs(d) < math.Abs(nd) {
				nb, nt, nd = s, ft, d
			}
		}
		if best < 0 {
			best, bestT, bestD = nb, nt, nd
		}
		lo, hi = best, best
	} else {
		lo, hi = t.seg, t.seg
		for lo > 0 && t.cum[lo] > t.along-t.corridor {
			lo--
		}
		for hi < nseg-1 && t.cum[hi+1] < t.along+t.lookahead {
			hi++
		}
		for s := lo; s <= hi; s++ {
			ft, d := segmentFoot(t.pts[s], t.dir[s], t.l2[s], p)
			if best < 0 || math.Abs(d) < math.Abs(bestD) {
				best, bestT, bestD = s, ft, d
			}
		}
		if math.Abs(bestD) > t.corridor {
			for s := hi + 1; s < nseg; s++ {
				ft, d := segmentFoot(t.pts[s], t.dir[s], t.l2[s], p)
				if math.Abs(d) <= t.corridor {
					best, bestT, bestD = s, ft, d
					hi = s
					break
				}
			}
		}
	}
	t.started, t.last = true, f.Time
	t.seg = best
	along := t.cum[best] + bestT*math.Sqrt(t.l2[best])
	t.along = along
	pos := Position{
		Time: f.Time, Lat: f.Lat, Lon: f.Lon,
		Segment:    best,
		From:       t.route.Waypoints[best].ID,
		To:         t.route.Waypoints[best+1].ID,
		DeviationM: bestD,
		InCorridor: math.Abs(bestD) <= t.corridor,
		AlongM:     along,
	}
	if t.total > 0 {
		pos.Progress = along / t.total
	}
	// Arrivals: undecided waypoints in the window.
	from := t.decided
	if from < lo {
		from = lo
	}
	for i := from; i <= hi+1 && i < len(t.pts); i++ {
		if t.state[i] != WaypointPending {
			continue
		}
		dx, dy := p.x-t.pts[i].x, p.y-t.pts[i].y
		d := math.Sqrt(dx*dx + dy*dy)
		if t.closest[i] < 0 || d < t.closest[i] {
			t.closest[i] = d
		}
		if d <= t.tol[i] {
			t.state[i] = WaypointReached
			t.reachedAt[i] = f.Time
			pos.Reached = append(pos.Reached, t.route.Waypoints[i].ID)
		}
	}
	// Waypoints passed: reached ones are settled, the others are missed.
	for t.decided < len(t.pts) {
		i := t.decided
		if t.state[i] == WaypointPending {
			if along <= t.cum[i]+t.tol[i] {
				break
			}
			t.state[i] = WaypointMissed
			pos.Missed = append(pos.Missed, t.route.Waypoints[i].ID)
		}
		t.decided++
	}
	if t.decided < len(t.pts) {
		pos.Next = t.route.Waypoints[t.decided].ID
	}
	return pos, nil
}

// Waypoints returns the outcome of every waypoint so far.
func (t *Tracker) Waypoints() []WaypointStatus {
	out := make([]WaypointStatus, len(t.pts))
	for i, w := range t.route.Waypoints {
		out[i] = WaypointStatus{ID: w.ID, Name: w.Name, State: t.state[i], ReachedAt: t.reachedAt[i], ClosestM: t.closest[i]}
	}
	return out
}

// Excursion is a run of consecutive fixes outside the corridor.
type Excursion struct {
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Fixes         int       `json:"fixes"`
	MaxDeviationM float64   `json:"max_deviation_m"`
	// Segment is the segment of the fix farthest from the route.
	Segment int `json:"segment"`
}

// TrackReport summarises a patrol's fixes against a route.
type TrackReport struct {
	RouteID   string  `json:"route_id"`
	LengthM   float64 `json:"length_m"`
	CorridorM float64 `json:"corridor_m"`
	Fixes     int     `json:"fixes"`
	// Positions has one entry per fix.
	Positions []Position       `json:"positions,omitempty"`
	OffRoute  []Excursion      `json:"off_route"`
	Waypoints []WaypointStatus `json:"waypoints"`
	Reached   int              `json:"reached"`
	Missed    int              `json:"missed"`
	Pending   int              `json:"not_reached"`
	// MaxDeviationM and MeanDeviationM are over |DeviationM|.
	MaxDeviationM      float64 `json:"max_deviation_m"`
	MeanDeviationM     float64 `json:"mean_deviation_m"`
	InCorridorFraction float64 `json:"in_corridor_fraction"`
	FinalProgress      float64 `json:"final_progress"`
}

// Track runs all fixes of one patrol through a new tracker and summarises
// them.
func Track(r *Route, fixes []Fix, cfg TrackerConfig) (TrackReport, error) {
	t, err := NewTracker(r, cfg)
	if err != nil {
		return TrackReport{}, err
	}
	rep := TrackReport{RouteID: r.ID, LengthM: t.LengthM(), CorridorM: t.CorridorM(), Fixes: len(fixes), OffRoute: []Excursion{}}
	rep.Positions = make([]Position, 0, len(fixes))
	var sum float64
	in := 0
	var cur *Excursion
	for i, f := range fixes {
		pos, err := t.Update(f)
		if err != nil {
			return TrackReport{}, fmt.Errorf("fix %d: %w", i+1, err)
		}
		rep.Positions = append(rep.Positions, pos)
		d := math.Abs(pos.DeviationM)
		sum += d
		rep.MaxDeviationM = math.Max(rep.MaxDeviationM, d)
		rep.FinalProgress = pos.Progress
		if pos.InCorridor {
			in++
			cur = nil
			continue
		}
		if cur == nil {
			rep.OffRoute = append(rep.OffRoute, Excursion{Start: f.Time})
			cur = &rep.OffRoute[len(rep.OffRoute)-1]
		}
		cur.End = f.Time
		cur.Fixes++
		if d > cur.MaxDeviationM {
			cur.MaxDeviationM, cur.Segment = d, pos.Segment
		}
	}
	if len(fixes) > 0 {
		rep.MeanDeviationM = sum / float64(len(fixes))
		rep.InCorridorFraction = float64(in) / float64(len(fixes))
	}
	rep.Waypoints = t.Waypoints()
	for _, w := range rep.Waypoints {
		switch w.State {
		case WaypointReached:
			rep.Reached++
		case WaypointMissed:
			rep.Missed++
		default:
			rep.Pending++
		}
	}
	return rep, nil
}

// Nearest returns the route segment nearest to (lat, lon) over the whole
// route and the signed distance to it (positive right of the direction of
// travel), regardless of the tracker's position: unlike Update it depends on
// no earlier fix, so a service that receives fixes out of order decides the
// same for each one. On a tie the earlier segment wins. A position out of
// range gives segment −1.
func (t *Tracker) Nearest(lat, lon float64) (segment int, deviationM float64) {
	if !validPoint(lat, lon) {
		return -1, math.NaN()
	}
	p := t.proj.project(lat, lon)
	best, bestD := -1, 0.0
	for s := range t.dir {
		_, d := segmentFoot(t.pts[s], t.dir[s], t.l2[s], p)
		if best < 0 || math.Abs(d) < math.Abs(bestD) {
			best, bestD = s, d
		}
	}
	return best, bestD
}
