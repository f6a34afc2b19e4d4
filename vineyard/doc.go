// Package vineyard computes grapevine disease risk from hourly weather.
//
// It reads an hourly series of air temperature, relative humidity, rain and,
// when there is one, a leaf-wetness sensor (ReadCSV), derives leaf wetness,
// dew point and vapour-pressure deficit per hour (Derive), and runs:
//
//   - downy mildew (Plasmopara viticola): oospore maturity by degree-days,
//     the 3-10 rule, the Rossi et al. (2008) primary-infection model with its
//     incubation window, and secondary infection by leaf-wetness degree-hours;
//   - powdery mildew (Erysiphe necator): the Gubler-Thomas (UC Davis)
//     ascospore rule and conidial index with spray-interval advice;
//   - Botrytis bunch rot: the Broome et al. (1995) wetness–temperature index.
//
// Assess runs them all and returns, per disease and day, a Level and the
// Reasons for it: which rule fired on which hours, with the values it
// compared. Formulas, sources and what could not be confirmed are in
// docs/models/vineyard.md.
//
// The package is pure: plain values in and out, no I/O except ReadCSV and
// WriteCSV. Missing hours are reported as gaps and never filled in.
package vineyard
