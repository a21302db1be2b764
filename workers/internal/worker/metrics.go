package worker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker-level Prometheus metrics. The pipeline registers its
// own (frames, encode fps, real-time factor, dropped frames) on the same
// registry, and the origin counts its requests.
type Metrics struct {
	restarts *prometheus.CounterVec
}

// NewMetrics registers the worker's metrics on reg. load and capacity are read
// at scrape time.
func NewMetrics(reg prometheus.Registerer, load func() int, capacity int) (*Metrics, error) {
	m := &Metrics{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_worker_pipeline_restarts_total",
			Help: "Pipeline restarts after a failure, by stream.",
		}, []string{"stream_id"}),
	}
	collectors := []prometheus.Collector{
		m.restarts,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dionysia_worker_active_jobs",
			Help: "Live transcodes running on this worker.",
		}, func() float64 { return float64(load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "dionysia_worker_free_capacity",
			Help: "How many more live transcodes this worker accepts.",
		}, func() float64 { return float64(max(capacity-load(), 0)) }),
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) restart(streamID string) {
	if m != nil {
		m.restarts.WithLabelValues(streamID).Inc()
	}
}
