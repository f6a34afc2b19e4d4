// Package energy turns cumulative meter readings into interval consumption,
// allocates consumption to tenants, prices it with time-of-use tariffs into
// invoices that reconcile to the cent, splits central heating costs under
// Heizkostenverordnung §7, computes ESG figures (energy by carrier, Scope 2
// CO2e location- and market-based, the ESRS E1-5 energy mix) and flags
// anomalies (baseline deviations checked with ASHRAE Guideline 14 metrics,
// night base load, water leaks from the minimum night flow).
//
// The package is pure: plain values in, plain values out. The only I/O is in
// the explicit readers (ReadReadingsCSV, ReadTariffYAML, ReadSiteYAML,
// ReadFactorsYAML, ReadTemperatureCSV). Money is computed with
// github.com/shopspring/decimal; energy quantities are float64 in the
// register's unit until they are rounded for an invoice line.
//
// Formulas, constants and their sources are listed in docs/models/energy.md.
package energy
