// Package campus describes what exists on a campus: sites, buildings with
// their footprints, rooms, tenants, meters with their OBIS registers,
// LoRaWAN applications, gateways and devices, vineyard plots, patrol
// robots with their routes, and every information point — one stream of
// values of one asset — with a stable id, its quantity, its UN/CEFACT
// unit, its position and its tenant.
//
// One YAML file says it (docs/campus.md describes the format); geometry is
// GeoJSON, inline or in a file it refers to, and a robot's route is in
// package robot's route format, inline or by file. Points are declared per
// asset: a room type, a meter's registers, a device type of the catalogue
// (DeviceTypes) and a robot's route expand into points with derivable ids
// ({asset}/{key}: b03-2.14/temperature, el-b01-main/1-0:1.8.0,
// soil-probe-07/soilMoistureVwc, loomi/check/b04-escape), and a points list
// overrides, removes or adds single points. Load returns the fully
// expanded, validated Model with indexes by point id, by asset, by DevEUI,
// by network server id and by meter register; its errors name the file,
// line, field and what is wrong.
//
// Generate builds the reference campus, the Bildungscampus Heilbronn with
// its 35,666 information points (examples/campus/), or a smaller one.
// Model.Check tells whether an event (package event) agrees with the
// model; Model.DeviceValues turns a codec's decoded data into values.
package campus
