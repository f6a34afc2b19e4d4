// Package ngsild serves the twin (twin.State) and its history
// (history.DB) as a read-only subset of the NGSI-LD API, ETSI GS CIM 009
// V1.8.1, for FIWARE users: query entities (GET /ngsi-ld/v1/entities, with
// type, id, idPattern, q, attrs, georel, pagination, keyValues and
// normalized representations), retrieve an entity, and the temporal API
// (GET /ngsi-ld/v1/temporal/entities and …/{id}: timerel, lastN, the
// temporalValues and aggregatedValues representations).
//
// Every asset of the campus model is one entity, of a Smart Data Models
// type (Building, IndoorEnvironmentObserved, Device, AgriParcel), with id
// urn:ngsi-ld:{Type}:{asset id}; each information point with a value is one
// Property named after its quantity (campus.Quantity names are Smart Data
// Models property names where those have one), with observedAt and a
// UN/CEFACT unitCode. docs/twin.md has the mapping table and says what of
// NGSI-LD is covered.
//
//	node.Handle(ngsild.Prefix, ngsild.Handler(state, hist, ngsild.Options{}))
package ngsild
