package api

import (
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, pool *pgxpool.Pool) (*metrics, error) {
	m := &metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dionysia_api_request_duration_seconds",
			Help:    "Duration of management API requests, by route template, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "method", "status"}),
	}
	for _, c := range []prometheus.Collector{m.duration, &poolCollector{pool: pool}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering api metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(route, method string, status int, d time.Duration) {
	m.duration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// poolCollector exports pgxpool statistics at scrape time.
type poolCollector struct{ pool *pgxpool.Pool }

var (
	poolAcquired = prometheus.NewDesc("dionysia_db_pool_acquired_connections", "PostgreSQL connections currently in use.", nil, nil)
	poolIdle     = prometheus.NewDesc("dionysia_db_pool_idle_connections", "PostgreSQL connections idle in the pool.", nil, nil)
	poolTotal    = prometheus.NewDesc("dionysia_db_pool_total_connections", "PostgreSQL connections open (in use, idle or being opened).", nil, nil)
	poolMax      = prometheus.NewDesc("dionysia_db_pool_max_connections", "Maximum size of the PostgreSQL pool.", nil, nil)
	poolAcquires = prometheus.NewDesc("dionysia_db_pool_acquires_total", "Successful connection acquisitions from the pool.", nil, nil)
	poolEmpty    = prometheus.NewDesc("dionysia_db_pool_empty_acquires_total", "Acquisitions that had to wait because the pool was empty.", nil, nil)
	poolCanceled = prometheus.NewDesc("dionysia_db_pool_canceled_acquires_total", "Acquisitions cancelled by their context.", nil, nil)
	poolWait     = prometheus.NewDesc("dionysia_db_pool_acquire_wait_seconds_total", "Total time spent waiting for a connection.", nil, nil)
)

func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolAcquires, poolEmpty, poolCanceled, poolWait} {
		ch <- d
	}
}

func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
}
