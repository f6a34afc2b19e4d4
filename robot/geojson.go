package robot

import (
	"encoding/json"
	"fmt"
	"io"
)

// The GeoJSON objects WriteTrackGeoJSON writes (RFC 7946).
type geoFeatureCollection struct {
	Type     string       `json:"type"`
	Features []geoFeature `json:"features"`
}

type geoFeature struct {
	Type       string         `json:"type"`
	Geometry   geoGeometry    `json:"geometry"`
	Properties map[string]any `json:"properties"`
}

type geoGeometry struct {
	Type        string `json:"type"`
	Coordinates any    `json:"coordinates"`
}

func geoPoint(lat, lon float64) geoGeometry {
	return geoGeometry{Type: "Point", Coordinates: [2]float64{lon, lat}}
}

// WriteTrackGeoJSON writes a patrol for a map as a GeoJSON
// FeatureCollection (RFC 7946; coordinates are [lon, lat]): the route as a
// LineString (properties kind "route", id, name, corridor_m), each waypoint
// as a Point (kind "waypoint", id, name, state, closest_m) and, when the
// report has positions, the robot's track as a LineString (kind "track")
// and every fix outside the corridor as a Point (kind "off_route", time,
// deviation_m, segment).
func WriteTrackGeoJSON(w io.Writer, r *Route, rep TrackReport) error {
	fc := geoFeatureCollection{Type: "FeatureCollection", Features: []geoFeature{}}
	line := make([][2]float64, len(r.Waypoints))
	for i, wp := range r.Waypoints {
		line[i] = [2]float64{wp.Lon, wp.Lat}
	}
	fc.Features = append(fc.Features, geoFeature{Type: "Feature", Geometry: geoGeometry{Type: "LineString", Coordinates: line},
		Properties: map[string]any{"kind": "route", "id": r.ID, "name": r.Name, "corridor_m": rep.CorridorM}})
	states := map[string]WaypointStatus{}
	for _, s := range rep.Waypoints {
		states[s.ID] = s
	}
	for _, wp := range r.Waypoints {
		props := map[string]any{"kind": "waypoint", "id": wp.ID, "name": wp.Name}
		if s, ok := states[wp.ID]; ok {
			props["state"] = string(s.State)
			props["closest_m"] = s.ClosestM
		}
		fc.Features = append(fc.Features, geoFeature{Type: "Feature", Geometry: geoPoint(wp.Lat, wp.Lon), Properties: props})
	}
	if len(rep.Positions) > 0 {
		track := make([][2]float64, len(rep.Positions))
		for i, p := range rep.Positions {
			track[i] = [2]float64{p.Lon, p.Lat}
		}
		fc.Features = append(fc.Features, geoFeature{Type: "Feature", Geometry: geoGeometry{Type: "LineString", Coordinates: track},
			Properties: map[string]any{"kind": "track", "fixes": len(rep.Positions)}})
		for _, p := range rep.Positions {
			if p.InCorridor {
				continue
			}
			fc.Features = append(fc.Features, geoFeature{Type: "Feature", Geometry: geoPoint(p.Lat, p.Lon),
				Properties: map[string]any{"kind": "off_route", "time": p.Time, "deviation_m": p.DeviationM, "segment": p.Segment}})
		}
	}
	data, err := json.Marshal(fc)
	if err != nil {
		return fmt.Errorf("track GeoJSON: %w", err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("track GeoJSON: %w", err)
	}
	return nil
}
