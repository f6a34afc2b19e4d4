package remotewrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/citymesh/citymesh/twin/history"
)

// A record is one value of the queue: up to MaxSamplesPerSend samples of
// one Append. Its encoding:
//
//	version      byte (recordVersion)
//	samples      uvarint
//	minTime      varint, milliseconds since the Unix epoch
//	series       uvarint, then per series its seven labels (point, asset,
//	             asset_kind, quantity, unit, site, tenant), each a uvarint
//	             length and the bytes
//	per sample   uvarint series index, varint milliseconds, 8 bytes
//	             little-endian IEEE 754 value
//
// The labels of a series are written once per record, so that a record of
// many samples of few points stays small.
const recordVersion = 1

// series is the identity of a time series: the labels of a sample.
type series struct {
	Point, Asset, AssetKind, Quantity, Unit, Site, Tenant string
}

func seriesOf(s *history.Sample) series {
	return series{s.Point, s.Asset, s.AssetKind, s.Quantity, s.Unit, s.Site, s.Tenant}
}

// qsample is a decoded sample: its series' index in the record and its
// value.
type qsample struct {
	series int
	ms     int64
	value  float64
}

// encodeRecord appends the record of samples to dst; index and idx are
// scratch space, returned for reuse.
func encodeRecord(dst []byte, samples []history.Sample, index map[series]int, idx []int) ([]byte, []int) {
	clear(index)
	idx = idx[:0]
	var order []series
	minTime := int64(math.MaxInt64)
	size := 16
	for i := range samples {
		k := seriesOf(&samples[i])
		j, ok := index[k]
		if !ok {
			j = len(order)
			index[k] = j
			order = append(order, k)
			size += len(k.Point) + len(k.Asset) + len(k.AssetKind) + len(k.Quantity) + len(k.Unit) + len(k.Site) + len(k.Tenant) + 7
		}
		idx = append(idx, j)
		if ms := samples[i].Time.UnixMilli(); ms < minTime {
			minTime = ms
		}
	}
	dst = slices.Grow(dst, size+len(samples)*(binary.MaxVarintLen32+binary.MaxVarintLen64+8))
	dst = append(dst, recordVersion)
	dst = binary.AppendUvarint(dst, uint64(len(samples)))
	dst = binary.AppendVarint(dst, minTime)
	dst = binary.AppendUvarint(dst, uint64(len(order)))
	for _, k := range order {
		for _, l := range [...]string{k.Point, k.Asset, k.AssetKind, k.Quantity, k.Unit, k.Site, k.Tenant} {
			dst = binary.AppendUvarint(dst, uint64(len(l)))
			dst = append(dst, l...)
		}
	}
	for i := range samples {
		dst = binary.AppendUvarint(dst, uint64(idx[i]))
		dst = binary.AppendVarint(dst, samples[i].Time.UnixMilli())
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(samples[i].Value))
	}
	return dst, idx
}

var errBadRecord = errors.New("remotewrite: damaged queue record")

// recordHeader decodes the number of samples and the oldest time of a
// record.
func recordHeader(b []byte) (n int, minTime int64, err error) {
	if len(b) < 1 || b[0] != recordVersion {
		return 0, 0, fmt.Errorf("%w: version %v", errBadRecord, b[:min(1, len(b))])
	}
	b = b[1:]
	un, k := binary.Uvarint(b)
	if k <= 0 || un > math.MaxInt32 {
		return 0, 0, errBadRecord
	}
	b = b[k:]
	minTime, k = binary.Varint(b)
	if k <= 0 {
		return 0, 0, errBadRecord
	}
	return int(un), minTime, nil
}

// decodeRecord decodes a record, appending its series to ss and its samples
// to qs; the samples' series indexes are made relative to ss.
func decodeRecord(b []byte, ss []series, qs []qsample) ([]series, []qsample, error) {
	n, _, err := recordHeader(b)
	if err != nil {
		return ss, qs, err
	}
	// Skip the header again, now that it is known to be well formed.
	b = b[1:]
	_, k := binary.Uvarint(b)
	b = b[k:]
	_, k = binary.Varint(b)
	b = b[k:]
	nser, k := binary.Uvarint(b)
	if k <= 0 || nser > uint64(len(b)) {
		return ss, qs, errBadRecord
	}
	b = b[k:]
	base := len(ss)
	for range nser {
		var l [7]string
		for j := range l {
			ln, k := binary.Uvarint(b)
			if k <= 0 || ln > uint64(len(b)-k) {
				return ss, qs, errBadRecord
			}
			l[j] = string(b[k : k+int(ln)])
			b = b[k+int(ln):]
		}
		ss = append(ss, series{l[0], l[1], l[2], l[3], l[4], l[5], l[6]})
	}
	for range n {
		si, k := binary.Uvarint(b)
		if k <= 0 || si >= nser {
			return ss, qs, errBadRecord
		}
		b = b[k:]
		ms, k := binary.Varint(b)
		if k <= 0 || len(b)-k < 8 {
			return ss, qs, errBadRecord
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(b[k:]))
		b = b[k+8:]
		qs = append(qs, qsample{series: base + int(si), ms: ms, value: v})
	}
	if len(b) != 0 {
		return ss, qs, errBadRecord
	}
	return ss, qs, nil
}
