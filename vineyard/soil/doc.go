// Package soil maps vineyard soil nutrients (phosphorus, potassium and pH)
// from point samples onto a regular grid over a plot polygon.
//
// The package is the soil part of the vineyard digital twin. It reads soil
// samples (CSV) and a plot outline (GeoJSON), projects longitude and latitude
// onto a local metric plane (an equirectangular projection about the centre of
// the plot's bounding box), and interpolates each cell by inverse distance
// weighting or by ordinary kriging with a fitted spherical, exponential or
// Gaussian semivariogram. Every cell is classed A–E against vineyard target
// ranges for CAL-extracted P2O5 and K2O and for pH by soil type. Results are
// written as GeoJSON and as a PNG heat map with a legend.
//
// Everything except the explicit readers and writers is pure: plain values
// in, plain values out, no global state. Formulas and their sources are
// listed in docs/models/soil.md.
package soil
