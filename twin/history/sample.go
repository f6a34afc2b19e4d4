// Package history keeps the numeric history of the campus's information
// points and the events that are not numbers, and answers queries over them.
package history

import (
	"context"
	"time"
)

// A Sample is one numeric value of one information point at one time.
type Sample struct {
	// Point is the information point's id ({asset}/{key}, campus.Point.ID).
	Point string
	// Asset and AssetKind are the asset the point belongs to and its kind
	// (meter, room, device, ...).
	Asset     string
	AssetKind string
	// Quantity is what the point measures (temperature, energy, ...) and
	// Unit the unit of Value.
	Quantity string
	Unit     string
	// Site and Tenant are the point's site and tenant ("" if none).
	Site   string
	Tenant string
	// Time is when the value was observed.
	Time time.Time
	// Value is the value in Unit.
	Value float64
}

// A Sink takes samples in: the embedded history, a remote write queue. An
// Append that returns nil has taken the samples for good (they survive a
// restart of the process); one that returns an error has taken none of them.
type Sink interface {
	Append(ctx context.Context, samples []Sample) error
}
