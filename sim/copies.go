package sim

import "github.com/citymesh/citymesh/campus"

// Copies of the campus (load tests): copy 0 is the campus as described;
// copy k > 0 has the same assets under ids with the suffix "-x{k}"
// (b03-2.14-x2, soil-probe-07-x2, bms-b03-x2, loomi-x2), so its topics,
// client ids and device ids differ, and DevEUIs and gateway EUIs with k
// XORed into their fourth and fifth bytes. Sites, applications, room and
// meter types, route and check ids are shared. The names are the campus
// package's (campus.CopyID and the rest), so campus.Model.Copies makes
// the model of the copies a player plays: a connector given it knows the
// copies' devices, and a receiver checks a copy's events against it, or
// maps a copy's ids back with CopyOf.

// CopyID returns the id of asset id in copy k (campus.CopyID).
func CopyID(id string, k int) string { return campus.CopyID(id, k) }

// CopyOf returns the original id and the copy number of an id made by
// CopyID (campus.CopyOf). An id without a copy suffix is copy 0.
func CopyOf(id string) (string, int) { return campus.CopyOf(id) }

// CopyPoint returns the id of a point of asset in copy k
// (campus.CopyPoint).
func CopyPoint(point, asset string, k int) string { return campus.CopyPoint(point, asset, k) }

// CopyEUI returns the EUI (16 hex digits) of a device or gateway in copy k
// (campus.CopyEUI): k XORed into bytes 3 and 4 (of 0–7), so copies of one
// device differ and keep the vendor's prefix.
func CopyEUI(eui string, k int) (string, error) { return campus.CopyEUI(eui, k) }
