package sim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/citymesh/citymesh/event"
)

// Copies of the campus (load tests): copy 0 is the campus as described;
// copy k > 0 has the same assets under ids with the suffix "-x{k}"
// (b03-2.14-x2, soil-probe-07-x2, bms-b03-x2, loomi-x2), so its topics,
// client ids and device ids differ, and DevEUIs and gateway EUIs with k
// XORed into their fourth and fifth bytes. Sites, applications, room and
// meter types, route and check ids are shared. A receiver that checks
// events against the campus model maps a copy's ids back with CopyOf.

// CopyID returns the id of asset id in copy k.
func CopyID(id string, k int) string {
	if k == 0 {
		return id
	}
	return id + "-x" + strconv.Itoa(k)
}

// CopyOf returns the original id and the copy number of an id made by
// CopyID. An id without a copy suffix is copy 0. (An original id that
// itself ends in "-x" and digits is read as a copy: avoid such ids in
// campuses played with copies.)
func CopyOf(id string) (string, int) {
	i := strings.LastIndex(id, "-x")
	if i < 0 {
		return id, 0
	}
	k, err := strconv.Atoi(id[i+2:])
	if err != nil || k <= 0 || strconv.Itoa(k) != id[i+2:] {
		return id, 0
	}
	return id[:i], k
}

// CopyPoint returns the id of a point of asset in copy k.
func CopyPoint(point, asset string, k int) string {
	if k == 0 {
		return point
	}
	return CopyID(asset, k) + strings.TrimPrefix(point, asset)
}

// CopyEUI returns the EUI (16 hex digits) of a device or gateway in copy k:
// k XORed into bytes 3 and 4 (of 0–7), so copies of one device differ and
// keep the vendor's prefix.
func CopyEUI(eui string, k int) (string, error) {
	e, err := event.ParseEUI(eui)
	if err != nil {
		return "", err
	}
	if k == 0 {
		return e, nil
	}
	if k > 0xffff {
		return "", fmt.Errorf("copy %d: at most 65535 copies", k)
	}
	v, err := strconv.ParseUint(e, 16, 64)
	if err != nil {
		return "", err
	}
	v ^= uint64(k) << 24
	return fmt.Sprintf("%016X", v), nil
}
