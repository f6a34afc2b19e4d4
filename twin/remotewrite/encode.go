package remotewrite

import (
	"slices"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/prompb"
)

// MetricName is the name (the __name__ label) of the series the writer
// sends, one per information point, the same as the embedded history's.
const MetricName = "citymesh_point_value"

// encoder builds the bodies of write requests, reusing its buffers from
// one request to the next (it belongs to the sender goroutine).
type encoder struct {
	index map[series]int
	req   prompb.WriteRequest
	raw   []byte
	body  []byte
}

// encode returns the snappy-compressed protobuf WriteRequest (remote write
// 1.0) of the samples qs of the series ss: one TimeSeries per distinct
// series, its labels sorted by name with the empty ones left out (the
// specification's rules for labels), its samples sorted by time. The
// result is valid until the next call.
func (e *encoder) encode(ss []series, qs []qsample) ([]byte, error) {
	if e.index == nil {
		e.index = make(map[series]int)
	}
	clear(e.index)
	ts := e.req.Timeseries[:0]
	for _, q := range qs {
		k := ss[q.series]
		i, ok := e.index[k]
		if !ok {
			i = len(ts)
			e.index[k] = i
			if i < cap(ts) {
				ts = ts[:i+1]
				ts[i].Labels = appendLabels(ts[i].Labels[:0], k)
				ts[i].Samples = ts[i].Samples[:0]
			} else {
				ts = append(ts, prompb.TimeSeries{Labels: appendLabels(nil, k)})
			}
		}
		ts[i].Samples = append(ts[i].Samples, prompb.Sample{Value: q.value, Timestamp: q.ms})
	}
	for i := range ts {
		s := ts[i].Samples
		if !slices.IsSortedFunc(s, cmpSample) {
			slices.SortStableFunc(s, cmpSample)
		}
	}
	e.req.Timeseries = ts
	size := e.req.Size()
	if cap(e.raw) < size {
		e.raw = make([]byte, size)
	}
	n, err := e.req.MarshalToSizedBuffer(e.raw[:size])
	if err != nil {
		return nil, err
	}
	raw := e.raw[size-n : size]
	e.body = s2.EncodeSnappy(e.body[:cap(e.body)], raw)
	return e.body, nil
}

func cmpSample(a, b prompb.Sample) int {
	switch {
	case a.Timestamp < b.Timestamp:
		return -1
	case a.Timestamp > b.Timestamp:
		return 1
	}
	return 0
}

// appendLabels appends the labels of k, sorted by name ("__name__" <
// "asset" < "asset_kind" < "point" < "quantity" < "site" < "tenant" <
// "unit"), leaving out the empty ones.
func appendLabels(dst []prompb.Label, k series) []prompb.Label {
	dst = append(dst, prompb.Label{Name: "__name__", Value: MetricName})
	for _, l := range [...]prompb.Label{
		{Name: "asset", Value: k.Asset},
		{Name: "asset_kind", Value: k.AssetKind},
		{Name: "point", Value: k.Point},
		{Name: "quantity", Value: k.Quantity},
		{Name: "site", Value: k.Site},
		{Name: "tenant", Value: k.Tenant},
		{Name: "unit", Value: k.Unit},
	} {
		if l.Value != "" {
			dst = append(dst, l)
		}
	}
	return dst
}
