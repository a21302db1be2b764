package worker

import (
	"github.com/dionysia/dionysia/workers/internal/recording"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the worker-level Prometheus metrics. The pipeline registers its
// own (frames, encode fps, real-time factor, dropped frames) on the same
// registry, and the origin counts its requests.
type Metrics struct {
	restarts  *prometheus.CounterVec
	recording *recording.Metrics
}

// NewMetrics registers the worker's metrics on reg. load and capacity are read
// at scrape time.
func NewMetrics(reg prometheus.Registerer, load func() int, capacity int) (*Metrics, error) {
	m := &Metrics{
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dionysia_worker_pipeline_restarts_total",
			Help: "Pipeline restarts after a failure, by stream.",
		}, []string{"stream_id"}),
		recording: &recording.Metrics{
			UploadedBytes: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "dionysia_worker_recording_uploaded_bytes_total",
				Help: "Bytes of recorded files (segments, headers, thumbnails) stored in the recording store.",
			}),
			UploadErrors: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "dionysia_worker_recording_upload_errors_total",
				Help: "Failed recording store requests (each is retried while its file stays queued).",
			}),
			LostSegments: prometheus.NewCounter(prometheus.CounterOpts{
				Name: "dionysia_worker_recording_lost_segments_total",
				Help: "Recorded segments that will never be uploaded (queue overflow, store unavailable at session end).",
			}),
			QueueBytes: prometheus.NewGauge(prometheus.GaugeOpts{
				Name: "dionysia_worker_recording_queue_bytes",
				Help: "Bytes of recorded files waiting for their upload.",
			}),
		},
	}
	collectors := []prometheus.Collector{
		m.restarts,
		m.recording.UploadedBytes, m.recording.UploadErrors, m.recording.LostSegments, m.recording.QueueBytes,
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

// recordingMetrics are the uploaders' metrics (nil: none).
func (m *Metrics) recordingMetrics() *recording.Metrics {
	if m == nil {
		return nil
	}
	return m.recording
}
