// Package robot models facility patrol robots on a campus: a route of GPS
// waypoints with checks at each (air-conditioning setpoint, bollard state,
// escape route clear, lighting as scheduled), tracking a robot's positions
// against the route corridor, evaluating what the robot observed into
// anomalies, and an incident book that turns anomalies into incidents with a
// strict state machine, an audit trail and response-time figures.
//
// The package is pure: values in, values out. Time is always passed in; no
// function reads the clock. The only I/O is in the explicit readers
// (ReadRoute for the YAML route file, ReadTrackCSV, ReadChecksCSV and
// ReadEventsCSV), which take an io.Reader, and the GeoJSON writer
// WriteTrackGeoJSON (built with github.com/paulmach/orb/geojson), which
// takes an io.Writer.
//
// Distances between two points use the haversine formula on a sphere of
// radius EarthRadiusM (Movable Type Scripts, "Calculate distance, bearing and
// more between Latitude/Longitude points"; Ed Williams, "Aviation
// Formulary"); initial bearings come from github.com/paulmach/orb/geo.
// CrossTrackM and AlongTrackM give the great-circle cross-track
// and along-track distances from the same sources. The Tracker, which must
// be fast and handles campus-sized routes, measures deviation in a local
// equirectangular projection centred on the route; docs/models/robot.md
// explains the choice and its error bound.
package robot
