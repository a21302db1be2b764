package health

import (
	"context"
	"log/slog"
	"time"

	"github.com/dionysia/dionysia/services/internal/apiv1"
	"github.com/dionysia/dionysia/services/internal/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Statuses lists every health status, in the order the metric shows them.
var Statuses = []string{apiv1.HealthHealthy, apiv1.HealthDegraded, apiv1.HealthStarving, apiv1.HealthUnknown}

// StatusAt is the status recorded at updatedAt as it stands at now: unknown
// without a report or when the report is older than StaleAfter.
func StatusAt(status string, updatedAt, now time.Time) string {
	if status == "" || updatedAt.IsZero() || now.Sub(updatedAt) > StaleAfter {
		return apiv1.HealthUnknown
	}
	return status
}

// Collector exports dionysia_stream_health{stream_id,status}: for every live
// stream, 1 for its current status and 0 for the others, read from the
// database at each scrape (so every API replica reports the same).
type Collector struct {
	Store  *store.Store
	Logger *slog.Logger
	desc   *prometheus.Desc
}

// NewCollector creates the collector.
func NewCollector(st *store.Store, log *slog.Logger) *Collector {
	return &Collector{Store: st, Logger: log, desc: prometheus.NewDesc("dionysia_stream_health",
		"Health status of each live stream: 1 for its current status (healthy, degraded, starving, unknown), 0 for the others.",
		[]string{"stream_id", "status"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := c.Store.OpenSessionHealth(ctx)
	if err != nil {
		c.Logger.Warn("collecting stream health", "err", err)
		return
	}
	now := time.Now()
	for _, r := range rows {
		cur := StatusAt(r.Status, r.UpdatedAt, now)
		for _, s := range Statuses {
			v := 0.0
			if s == cur {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, r.StreamID.String(), s)
		}
	}
}
