package robot

import (
	"fmt"
	"io"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geojson"
)

// WriteTrackGeoJSON writes a patrol for a map as a GeoJSON
// FeatureCollection (RFC 7946; coordinates are [lon, lat]): the route as a
// LineString (properties kind "route", id, name, corridor_m), each waypoint
// as a Point (kind "waypoint", id, name, state, closest_m) and, when the
// report has positions, the robot's track as a LineString (kind "track",
// fixes) and every fix outside the corridor as a Point (kind "off_route",
// time, deviation_m, segment). Features come in that order and properties
// are JSON objects with sorted keys, so the same input gives the same bytes.
// The objects are built and encoded with github.com/paulmach/orb/geojson.
func WriteTrackGeoJSON(w io.Writer, r *Route, rep TrackReport) error {
	fc := geojson.NewFeatureCollection()
	route := make(orb.LineString, len(r.Waypoints))
	for i, wp := range r.Waypoints {
		route[i] = orb.Point{wp.Lon, wp.Lat}
	}
	fc.Append(newGeoFeature(route, geojson.Properties{"kind": "route", "id": r.ID, "name": r.Name, "corridor_m": rep.CorridorM}))
	states := make(map[string]WaypointStatus, len(rep.Waypoints))
	for _, s := range rep.Waypoints {
		states[s.ID] = s
	}
	for i, wp := range r.Waypoints {
		props := geojson.Properties{"kind": "waypoint", "id": wp.ID, "name": wp.Name}
		if s, ok := states[wp.ID]; ok {
			props["state"] = string(s.State)
			props["closest_m"] = s.ClosestM
		}
		fc.Append(newGeoFeature(route[i], props))
	}
	if len(rep.Positions) > 0 {
		track := make(orb.LineString, len(rep.Positions))
		for i, p := range rep.Positions {
			track[i] = orb.Point{p.Lon, p.Lat}
		}
		fc.Append(newGeoFeature(track, geojson.Properties{"kind": "track", "fixes": len(rep.Positions)}))
		for i, p := range rep.Positions {
			if p.InCorridor {
				continue
			}
			fc.Append(newGeoFeature(track[i], geojson.Properties{"kind": "off_route", "time": p.Time, "deviation_m": p.DeviationM, "segment": p.Segment}))
		}
	}
	data, err := fc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("track GeoJSON: %w", err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("track GeoJSON: %w", err)
	}
	return nil
}

// newGeoFeature returns a GeoJSON feature of g with the given properties.
func newGeoFeature(g orb.Geometry, props geojson.Properties) *geojson.Feature {
	f := geojson.NewFeature(g)
	f.Properties = props
	return f
}
