// Package live is the vineyard service (kind "vineyard"): it turns the
// LoRaWAN uplinks of a vineyard's devices into hourly weather per plot,
// the daily risk of downy mildew, powdery mildew and botrytis per plot
// (package vineyard's models, with their reasons), alarms when a risk
// rises, and soil maps of phosphorus, potassium and pH per plot (package
// vineyard/soil) from soil probes and laboratory samples.
//
// The service is correct under what the bus delivers: every raw value is
// kept in the service's State under a key made of its device, hour,
// quantity and measurement time, so a duplicate overwrites itself; an
// hour's weather is computed from the values the State holds for it, in
// key order, so the order of arrival does not matter; an hour that gets a
// late value is computed again, and with it the plot's risk. After a
// restart the State holds everything: the service recomputes and
// republishes each plot. docs/services.md ("Vineyard") describes the
// topics, schemas, configuration and HTTP routes.
package live
