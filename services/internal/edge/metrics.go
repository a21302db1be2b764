package edge

import (
	"fmt"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names.
const (
	MetricPublishTotal  = "dionysia_edge_publish_total"
	MetricLiveStreams   = "dionysia_edge_live_streams"
	MetricIngestBitrate = "dionysia_edge_ingest_bitrate_bits"
	MetricChildRestarts = "dionysia_edge_child_restarts_total"
	MetricChildUp       = "dionysia_edge_child_up"
)

type metrics struct {
	publish  *prometheus.CounterVec
	live     prometheus.Gauge
	bitrate  *prometheus.GaugeVec
	restarts prometheus.Counter
	childUp  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		publish: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricPublishTotal,
			Help: "Publish attempts decided by the edge, by result (accepted, refused) and reason.",
		}, []string{"result", "reason"}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricLiveStreams,
			Help: "Streams live on this edge.",
		}),
		bitrate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricIngestBitrate,
			Help: "Ingest bitrate per live stream, in bits per second (label: stream ID, or a hash of the path; never the key).",
		}, []string{"stream"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricChildRestarts,
			Help: "Restarts of the mediamtx child after it exited.",
		}),
		childUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: MetricChildUp,
			Help: "1 while the mediamtx child runs and answers its API, else 0.",
		}),
	}
	for _, c := range []prometheus.Collector{m.publish, m.live, m.bitrate, m.restarts, m.childUp} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering edge metrics: %w", err)
		}
	}
	return m, nil
}

var labelRe = regexp.MustCompile(`^[a-z0-9_]{1,40}$`)

// reasonLabel bounds the label values an API reason can create.
func reasonLabel(reason string) string {
	if labelRe.MatchString(reason) {
		return reason
	}
	return "other"
}
