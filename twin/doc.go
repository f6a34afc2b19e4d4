// Package twin is the campus's digital twin: for every information point of
// the campus model its latest value, unit, observed and received time and
// source; for every asset its points, relationships, geometry and liveness;
// and queries over them by id, kind, site, tenant and geometry.
//
// State is pure: it is built from a campus.Model and fed city events
// (package event), with no broker. Service is the client of the bus that
// feeds it: it subscribes to the city events, publishes each asset's latest
// state retained under twin/{site}/{kind}/{asset}, hands numeric values to a
// history.Sink, and recovers its state from those retained messages when it
// starts. Handler serves the JSON query API under /api/v1/twin/
// (docs/twin.md).
package twin
