package twin

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the service's metrics for a Prometheus registry:
// citymesh_twin_events_received_total, _events_invalid_total,
// _snapshots_published_total, _publish_errors_total,
// _samples_sunk_total, _sink_errors_total, _samples_dropped_total, and
// the gauges citymesh_twin_points_with_value and
// citymesh_twin_recovered_assets.
func (s *Service) Collector() prometheus.Collector {
	return &collector{s: s}
}

type collector struct{ s *Service }

var (
	descReceived  = prometheus.NewDesc("citymesh_twin_events_received_total", "City events the twin received.", nil, nil)
	descInvalid   = prometheus.NewDesc("citymesh_twin_events_invalid_total", "City events the twin received that were not valid events.", nil, nil)
	descPublished = prometheus.NewDesc("citymesh_twin_snapshots_published_total", "Retained asset snapshots the twin published.", nil, nil)
	descPubErrors = prometheus.NewDesc("citymesh_twin_publish_errors_total", "Retained asset snapshots whose publish failed.", nil, nil)
	descSunk      = prometheus.NewDesc("citymesh_twin_samples_sunk_total", "Samples the twin's history sink took.", nil, nil)
	descSinkErrs  = prometheus.NewDesc("citymesh_twin_sink_errors_total", "Failed appends to the twin's history sink (the samples are retried).", nil, nil)
	descDropped   = prometheus.NewDesc("citymesh_twin_samples_dropped_total", "Samples dropped because the history sink lagged too far behind.", nil, nil)
	descApplied   = prometheus.NewDesc("citymesh_twin_values_applied_total", "Values applied to the twin's state, stale ones left out.", nil, nil)
	descValued    = prometheus.NewDesc("citymesh_twin_points_with_value", "Information points that have a value.", nil, nil)
	descRecovered = prometheus.NewDesc("citymesh_twin_recovered_assets", "Assets restored from retained snapshots at the start.", nil, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReceived, descInvalid, descPublished, descPubErrors, descSunk, descSinkErrs, descDropped, descApplied, descValued, descRecovered} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descReceived, st.Received}, {descInvalid, st.Invalid}, {descPublished, st.Published}, {descPubErrors, st.PublishErrors},
		{descSunk, st.Sunk}, {descSinkErrs, st.SinkErrors}, {descDropped, st.Dropped}, {descApplied, st.Applied}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
	valued := 0
	s := c.s.state
	s.mu.RLock()
	for i := range s.points {
		if s.points[i].set {
			valued++
		}
	}
	s.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(descValued, prometheus.GaugeValue, float64(valued))
	rec := 0
	if r := c.s.Recovered(); r != nil {
		rec = r.Assets
	}
	ch <- prometheus.MustNewConstMetric(descRecovered, prometheus.GaugeValue, float64(rec))
}
